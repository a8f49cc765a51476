//! # attack-suite
//!
//! Attacks a running `mcp-server-example` over HTTP the way an attacker would (registration
//! abuse, redirect-URI tricks, PKCE downgrades, code replay, refresh-token reuse, login CSRF,
//! password guessing, username enumeration, session hijacking, DNS rebinding, token misuse,
//! forged upstream sign-in callbacks, malformed input) and prints one line per probe, `PASS  <id>: <what was observed>` or
//! `FAIL  <id>: <what was wrong>`, then `N passed, M failed`. Exits with 1 if any probe failed.
//!
//! ```text
//! cargo build --release -p mcp-server-example -p attack-suite
//! PORT=18300 PUBLIC_URL=http://127.0.0.1:18300 DATABASE_URL=memory target/release/mcp-server-example &
//! PORT=18301 PUBLIC_URL=http://127.0.0.1:18301 DATABASE_URL=memory ACCESS_TOKEN_TTL_SECS=3 \
//!     target/release/mcp-server-example &
//! target/release/attack-suite http://127.0.0.1:18300 --expiry-server http://127.0.0.1:18301
//! ```
//!
//! Two servers, because expiry and revocation want opposite lifetimes. The first, which every
//! probe but one attacks, must be **freshly started** with exactly this environment:
//! - the default access-token lifetime (an hour; at least 10 minutes): a 401 after revocation
//!   then cannot be plain expiry, and each revocation probe also checks that a twin token issued
//!   beside the revoked one still works;
//! - the rate limits **unset** (the defaults: `OAUTH_RATE_LIMIT_PER_MINUTE` 600, the
//!   sign-in limits, and at `/token` 1200 per client a minute): the suite stays well under
//!   them, and its last OAuth probe checks that code guessing at `/token` runs into the
//!   per-client one;
//! - `DATABASE_URL=memory`, so that nothing is left on disk (the suite passes on the example's
//!   default SQLite file too: it registers its own clients and needs no earlier state);
//! - the demo users alice/password123 and bob/hunter2.
//!
//! The second (`--expiry-server`) runs with `ACCESS_TOKEN_TTL_SECS=3`: the expiry probe waits
//! that lifetime out there (it refuses to wait for more than 5 s).
//!
//! Fresh, because the probes leave marks that last as long as the process: bob is locked out at
//! the suite's address for 15 minutes, the address has used up its 20 failed sign-ins, and the OAuth
//! endpoints are throttled for the rest of the minute. The arguments are the servers'
//! `PUBLIC_URL`s. A run takes 5 to 10 s; every loop is bounded and every request times out.

mod authorize;
mod callback;
mod checks;
mod client;
mod introspect;
mod login;
mod malformed;
mod mcp;
mod rebinding;
mod registration;
mod report;
mod tokens;

use std::process::ExitCode;

use client::{CLIENT_REDIRECT, Target};
use report::Report;

const USAGE: &str = "usage: attack-suite <PUBLIC_URL> --expiry-server <PUBLIC_URL>\n\
two freshly started mcp-server-example servers: the first with the default token lifetime, \
the second with ACCESS_TOKEN_TTL_SECS=3 (see the crate documentation)";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (base, expiry_base) = match args.as_slice() {
        [base, flag, expiry] if flag == "--expiry-server" && !base.starts_with('-') => (base, expiry),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut report = Report::default();
    run(base, &mut report).await;
    report.record("bearer/expired", mcp::expired(expiry_base).await);
    println!("{}", report.summary());
    if report.failed() > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// The probes, in an order that matters: sign-ins before the probes that lock accounts, and
/// the rate-limit probe after everything else that uses the OAuth endpoints.
async fn run(base: &str, report: &mut Report) {
    let target = match Target::connect(base).await {
        Ok(t) => t,
        Err(e) => return report.record("setup/server-reachable", Err(e)),
    };
    let t = &target;
    let app = match t.register_app("Legit MCP host", &[CLIENT_REDIRECT]).await {
        Ok(app) => app,
        Err(e) => {
            let e = e.context("was the server freshly started, with the environment this suite documents?");
            return report.record("setup/register-client", Err(e));
        }
    };
    registration::run(t, report).await;
    authorize::run(t, &app, report).await;
    tokens::run(t, &app, report).await;
    login::run(t, &app, report).await;
    mcp::run(t, &app, report).await;
    rebinding::run(t, report).await;
    introspect::run(t, &app, report).await;
    callback::run(t, &app, report).await;
    malformed::run(t, &app, report).await;
    login::run_guessing(t, &app, report).await;
    malformed::run_last(t, &app, report).await;
}
