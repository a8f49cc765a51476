//! `mcp-bench full` and `smoke`: the MCP rounds, the OAuth endpoints with memory over many
//! sign-ins, and cold start, in that order, into one markdown report.

mod cold;
mod flows;
mod mcp;

use std::time::{Duration, Instant};

use crate::cli::{Cells, Part, Setup};
use crate::load::mode_name;
use crate::log;
use crate::report::{Report, Variant};
use crate::servers::Env;

/// What `full` or `smoke` runs.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Smoke mode: one short round, and an idle RSS over the target is a failure.
    pub(crate) smoke: bool,
    pub(crate) cells: Cells,
    pub(crate) setup: Setup,
    pub(crate) parts: Vec<Part>,
    /// Full sign-in flows for the memory check (authorize + login + token, with clients
    /// registered once), in batches of `flow_batch`.
    pub(crate) flows: usize,
    pub(crate) flow_batch: usize,
    /// Lifetimes of the server the flows run on: short, so that their state expires.
    pub(crate) flow_lifetimes: FlowLifetimes,
    /// How long refreshes and registrations each run.
    pub(crate) oauth_duration: Duration,
    pub(crate) cold_runs: usize,
    /// Sign-ins per example start (tokens shared round-robin by the connections).
    pub(crate) tokens_per_boot: usize,
}

impl Plan {
    fn runs(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }

    pub(crate) fn mode(&self) -> &'static str {
        if self.smoke { "smoke" } else { "full" }
    }
}

/// Browsers signing in at once, each for its own client, in the flows.
pub(crate) const FLOW_CONCURRENCY: usize = 4;
/// Connections of the code exchanges, refreshes and registrations.
pub(crate) const OAUTH_CONNS: usize = 16;

/// The kit's `Config::code_ttl`: not settable from the environment, so used codes stay this
/// long on the flows' server too.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);

/// Lifetimes of the server that runs the many flows, short enough that what each flow leaves
/// (a used code, an access and a refresh token, a sign-in session) expires and is swept while
/// the flows go on: memory then follows the flows of the last minute, not the whole history.
#[derive(Debug, Clone)]
pub(crate) struct FlowLifetimes {
    pub(crate) access: Duration,
    pub(crate) refresh: Duration,
    /// The sign-in session each password sign-in starts.
    pub(crate) session: Duration,
    pub(crate) sweep: Duration,
    /// The longest the bench waits after the flows for their state to expire and be swept.
    pub(crate) max_wait: Duration,
}

impl FlowLifetimes {
    /// The server's environment for these lifetimes.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        [
            ("ACCESS_TOKEN_TTL_SECS", self.access),
            ("REFRESH_TOKEN_TTL_SECS", self.refresh),
            ("SESSION_TTL_SECS", self.session),
            ("SWEEP_INTERVAL_SECS", self.sweep),
        ]
        .into_iter()
        .map(|(k, d)| (k.to_owned(), d.as_secs().to_string()))
        .collect()
    }

    /// After the last flow: until its longest-lived record (a used code, 60 s) has expired
    /// and two sweeps have run since, plus a second; at most `max_wait`.
    pub(crate) fn wait(&self) -> Duration {
        let longest = self.access.max(self.refresh).max(self.session).max(CODE_TTL);
        (longest + 2 * self.sweep + Duration::from_secs(1)).min(self.max_wait)
    }
}

/// Run the plan and write its report; returns the failed requests and checks.
pub(crate) async fn run(env: &Env, plan: &Plan, cores: usize) -> anyhow::Result<u64> {
    let started = Instant::now();
    let mut report = Report::new(plan.clone(), cores, env.pin);
    // 1. MCP throughput, interleaved: example, [candidate], ceiling, example (SQLite), floor;
    //    reversed on odd rounds, so that drift does not favour one side.
    let rounds = if plan.runs(Part::Mcp) { plan.cells.rounds } else { 0 };
    for round in 0..rounds {
        for stateless in [false, true] {
            let mut order = vec![Variant::ExampleMemory, Variant::Ceiling, Variant::ExampleSqlite];
            if plan.setup.candidate.is_some() {
                order.insert(1, Variant::Candidate);
            }
            if stateless {
                order.push(Variant::Floor);
            }
            if round % 2 == 1 {
                order.reverse();
            }
            for variant in order {
                if let Err(e) = mcp::boot_and_run(env, plan, variant, stateless, round, &mut report).await {
                    report.failures.push(format!("{} ({}): {e:#}", variant.label(), mode_name(stateless)));
                    log(format!("FAILED {}: {e:#}", variant.label()));
                }
            }
        }
    }
    // 2. OAuth endpoints and memory after many flows (in-memory store).
    if plan.runs(Part::Oauth) {
        match flows::run(env, plan).await {
            Ok(r) => report.oauth = Some(r),
            Err(e) => {
                log(format!("FAILED OAuth endpoints: {e:#}"));
                report.failures.push(format!("OAuth endpoints: {e:#}"));
            }
        }
    }
    // 3. Cold start.
    if plan.runs(Part::Cold) {
        match cold::run(env, plan).await {
            Ok(c) => report.cold = Some(c),
            Err(e) => {
                log(format!("FAILED cold start: {e:#}"));
                report.failures.push(format!("cold start: {e:#}"));
            }
        }
    }
    if plan.smoke {
        for over in report.idle_rss_over_limit() {
            log(format!("FAILED {over}"));
            report.failures.push(over);
        }
    }
    report.total_secs = started.elapsed().as_secs_f64();
    let text = report.render();
    println!("{text}");
    crate::write_report(&plan.cells.out, &text)?;
    Ok(report.error_count())
}
