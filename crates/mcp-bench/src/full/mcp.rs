//! The MCP part of `full`: one start of one server, signed in, driven at every connection
//! count.

use std::time::Duration;

use crate::full::Plan;
use crate::load::{self, Load, mode_name};
use crate::report::{Boot, McpKey, Report, Variant};
use crate::servers::{self, Env, Kind, Server, Spec, Store};
use crate::{log, tokens};

/// One boot of one variant: start, sign in, run every connection count, stop.
pub(super) async fn boot_and_run(
    env: &Env,
    plan: &Plan,
    variant: Variant,
    stateless: bool,
    round: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (kind, store) = match (variant, &plan.setup.candidate) {
        (Variant::Candidate, Some(candidate)) => (candidate.kind, Store::Memory),
        (Variant::ExampleMemory | Variant::Candidate, _) => (Kind::Example, Store::Memory),
        (Variant::ExampleSqlite, _) => {
            let path = env.tmp.join(format!("r{round}-{}.sqlite3", mode_name(stateless)));
            (Kind::Example, Store::Sqlite(path))
        }
        (Variant::Ceiling, _) => (Kind::Ceiling, Store::Memory),
        (Variant::Floor, _) => (Kind::Floor, Store::Memory),
    };
    let mut spec = Spec::new(kind, store.clone(), stateless);
    spec.extra_env = plan.setup.server_env.clone();
    if let (Variant::Candidate, Some(candidate)) = (variant, &plan.setup.candidate) {
        spec.extra_env.extend(candidate.env.iter().cloned());
        spec.binary = candidate.bin.clone();
    }
    let baseline_tokens: Vec<(String, String)> = (0..plan.tokens_per_boot).map(|_| tokens::random()).collect();
    spec.floor_tokens = baseline_tokens.iter().map(|(t, _)| t.clone()).collect();
    let mut server = Server::spawn(env, &spec)?;
    let ready = server.wait_ready(Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (rss_ready, _) = server.memory();
    let tokens = tokens::for_kit(&server, plan.tokens_per_boot).await?.unwrap_or(baseline_tokens);
    let (rss_signed_in, _) = server.memory();
    for &conns in &plan.cells.conns {
        crate::procfs::wait_quiet(plan.cells.quiet_wait).await;
        let load = Load {
            addr: server.addr,
            conns,
            stateful: !stateless,
            tokens: tokens.clone(),
            warmup: plan.cells.warmup,
            duration: plan.cells.duration,
            server_pid: server.pid,
        };
        let cell = load::run(&load).await;
        log(format!(
            "round {} {:<16} {:<9} {:>2} conns: {:>8.0} calls/s p50 {:>6.3} ms p99 {:>6.3} ms cpu {:>4.2} gen {:>4.2} other {:.2}/{:.2} errors {}",
            round + 1,
            variant.label(),
            mode_name(stateless),
            conns,
            cell.rate,
            cell.latency.p50_us / 1000.0,
            cell.latency.p99_us / 1000.0,
            cell.cpu.server,
            cell.cpu.generator,
            cell.cpu.other_core0,
            cell.cpu.other_core1,
            cell.failures.count
        ));
        for e in &cell.failures.samples {
            log(format!("  error: {e}"));
        }
        report.mcp.entry(McpKey { variant, stateless, conns }).or_default().push(cell);
    }
    let (rss_after, hwm) = server.memory();
    report.boots.push(Boot { variant, stateless, ready, rss_ready, rss_signed_in, rss_after, hwm });
    let stopped = server.stop();
    if let Store::Sqlite(path) = &store {
        servers::remove_sqlite(path);
    }
    stopped
}
