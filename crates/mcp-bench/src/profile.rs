//! `mcp-bench profile`: the example (or the JWT server, or the rmcp ceiling) under callgrind, instrumented only
//! during a stateless load at 4 connections that follows an uninstrumented warm-up; logs the
//! counts per call at the end.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure};

use crate::cli::ProfileArgs;
use crate::load::{self, Load};
use crate::servers::{Env, Server, Spec, Store};
use crate::{log, tokens, workspace_root};

/// `Ir 131048, I1mr 4496, …`: the `totals:` of a callgrind output file divided by `calls`.
fn per_call(out: &Path, calls: u64) -> Option<String> {
    per_call_counts(&std::fs::read_to_string(out).ok()?, calls)
}

fn per_call_counts(text: &str, calls: u64) -> Option<String> {
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(str::split_whitespace);
    let (events, totals) = (field("events:")?, field("totals:")?);
    let calls = calls.max(1) as f64;
    let counts: Vec<String> = events
        .zip(totals)
        .filter_map(|(event, total)| Some(format!("{event} {:.0}", total.parse::<f64>().ok()? / calls)))
        .collect();
    (!counts.is_empty()).then(|| counts.join(", "))
}

/// `callgrind_control`; valgrind names its control pipes after `$HOST`, which the server has.
fn callgrind_control(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("callgrind_control").args(args).env("HOST", "127.0.0.1").output()
}

/// Profile; returns the failed calls.
pub(crate) async fn run(env: &Env, args: &ProfileArgs) -> anyhow::Result<u64> {
    let kind = args.kind();
    let out = workspace_root().join(format!(
        "target/callgrind.{}{}.out",
        kind.binary(),
        if args.stateful { ".stateful" } else { "" }
    ));
    let mut spec = Spec::new(kind, Store::Memory, !args.stateful);
    spec.extra_env = args.server_env.clone();
    spec.binary = args.bin.clone();
    spec.wrapper = vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--instr-atstart=no".into(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    if args.cache_sim {
        // Simulated caches (the host's sizes): the way to see instruction-cache misses on a
        // machine whose hardware counters are unavailable, as on virtual machines.
        spec.wrapper.push("--cache-sim=yes".into());
    }
    let mut server = Server::spawn(env, &spec)?;
    server.wait_ready(Duration::from_secs(120)).await?;
    let tokens = tokens::for_kit(&server, 2).await?.unwrap_or_else(|| vec![tokens::random()]);
    let pid = server.pid.to_string();
    let mut load = Load {
        addr: server.addr,
        conns: 4,
        stateful: args.stateful,
        tokens,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        server_pid: server.pid,
    };
    // Uninstrumented, so that one-time work (first allocations, lazy statics) stays out of the
    // counts, which are then almost exactly those of the measured calls.
    let warm = load::run(&load).await;
    ensure!(warm.failures.count == 0, "{} errors in the warm-up load", warm.failures.count);
    match callgrind_control(&["-i", "on", &pid]) {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("OK") => {}
        Ok(o) => bail!(
            "callgrind_control -i on {pid} failed: {} {}",
            String::from_utf8_lossy(&o.stdout).trim(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => bail!("callgrind_control (valgrind) is missing: {e}"),
    }
    load.duration = args.duration;
    let cell = load::run(&load).await;
    if let Ok(o) = callgrind_control(&["-s", &pid]) {
        log(String::from_utf8_lossy(&o.stdout));
    }
    let _ = callgrind_control(&["-i", "off", &pid]);
    log(format!("profiled {} calls under callgrind ({:.0}/s, {} errors)", cell.ops, cell.rate, cell.failures.count));
    let tail = server.log_tail();
    server.stop()?;
    log(tail);
    match per_call(&out, cell.ops) {
        Some(line) => log(format!("per call (each connection's opening requests included): {line}")),
        None => log(format!("no totals in {}", out.display())),
    }
    log(format!(
        "callgrind output: {} (callgrind_annotate --inclusive=yes {} | head -80)",
        out.display(),
        out.display()
    ));
    Ok(cell.failures.count)
}

#[cfg(test)]
mod tests {
    use super::per_call_counts;

    #[test]
    fn per_call_divides_callgrind_totals_by_the_calls() {
        let out = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir I1mr D1mr\nsummary: 0\ntotals: 1000 50 7\n";
        assert_eq!(per_call_counts(out, 10).as_deref(), Some("Ir 100, I1mr 5, D1mr 1"));
        // Without cache simulation there is one event.
        assert_eq!(per_call_counts("events: Ir\ntotals: 262000\n", 2).as_deref(), Some("Ir 131000"));
        assert_eq!(per_call_counts("events: Ir\n", 2), None, "no totals line");
    }
}
