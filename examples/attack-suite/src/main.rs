//! # attack-suite
//!
//! Attacks a running `mcp-server-example` over HTTP the way an attacker would (registration
//! abuse, redirect-URI tricks, PKCE downgrades, code replay, refresh-token reuse, login CSRF,
//! password guessing, username enumeration, session hijacking, DNS rebinding, token misuse,
//! malformed input) and prints one line per probe, `PASS  <id>: <what was observed>` or
//! `FAIL  <id>: <what was wrong>`, then `N passed, M failed`. Exits with 1 if any probe failed.
//!
//! ```text
//! cargo build --release -p mcp-server-example -p attack-suite
//! PORT=18300 PUBLIC_URL=http://127.0.0.1:18300 ACCESS_TOKEN_TTL_SECS=3 DATABASE_URL=memory \
//!     target/release/mcp-server-example &
//! target/release/attack-suite http://127.0.0.1:18300
//! ```
//!
//! The server must be **freshly started** with exactly this environment:
//! - `ACCESS_TOKEN_TTL_SECS=3`: the expiry probe waits the lifetime out (it refuses to wait
//!   for more than 5 s); a revocation probe whose 401 comes after half the lifetime fails as
//!   inconclusive, since plain expiry could have caused it;
//! - `OAUTH_RATE_LIMIT_PER_MINUTE` **unset** (the default, 600): the suite stays well under it,
//!   and its last OAuth probe checks that code guessing at `/token` runs into it;
//! - `DATABASE_URL=memory`, so that nothing is left on disk (the suite passes on the example's
//!   default SQLite file too: it registers its own clients and needs no earlier state);
//! - the demo users alice/password123 and bob/hunter2.
//!
//! Fresh, because the probes leave marks that last as long as the process: bob is locked out
//! for 15 minutes, the client address has used up its 20 failed sign-ins, and the OAuth
//! endpoints are throttled for the rest of the minute. The argument is the server's
//! `PUBLIC_URL`. A run takes 5 to 10 s; every loop is bounded and every request times out.

mod authorize;
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

#[tokio::main]
async fn main() -> ExitCode {
    let Some(base) = std::env::args().nth(1).filter(|a| !a.starts_with('-')) else {
        eprintln!("usage: attack-suite <PUBLIC_URL of a freshly started mcp-server-example>");
        eprintln!("the server must run with ACCESS_TOKEN_TTL_SECS=3 (see the crate documentation)");
        return ExitCode::from(2);
    };
    let mut report = Report::default();
    run(&base, &mut report).await;
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
    malformed::run(t, &app, report).await;
    login::run_guessing(t, &app, report).await;
    malformed::run_last(t, &app, report).await;
}
