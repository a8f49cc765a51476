//! The report's last section: each target with what was measured, and ✓ or ✗.

use std::fmt::Write as _;

use crate::load::mode_name;
use crate::measure::median;
use crate::report::{IDLE_RSS_LIMIT_KIB, Report, Variant, mib};

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

impl Report {
    pub(super) fn targets(&self) -> String {
        let mut s = String::from("\n## Targets\n\n| target | measured | |\n|---|---|:-:|\n");
        let mut line = |name: String, measured: String, ok: Option<bool>| {
            let m = ok.map_or("n/a", mark);
            let _ = writeln!(s, "| {name} | {measured} | {m} |");
        };
        for stateless in [false, true] {
            for conns in [16, 64] {
                let (m, text) = self.ratio_text(Variant::ExampleMemory, Variant::Ceiling, stateless, conns);
                if !m.is_finite() {
                    continue; // not measured in this run (`--only`, `--conns`)
                }
                line(
                    format!("example ≥ 0.9× rmcp ceiling, {} {conns} conns", mode_name(stateless)),
                    text,
                    m.is_finite().then_some(m >= 0.9),
                );
            }
        }
        for variant in [Variant::ExampleMemory, Variant::ExampleSqlite] {
            for stateless in [false, true] {
                for (conns, limit) in [(16, 2.0), (64, 5.0)] {
                    let cells = self.cells(variant, stateless, conns);
                    if cells.is_empty() {
                        continue;
                    }
                    let p99 = median(cells.iter().map(|c| c.latency.p99_us / 1000.0).collect());
                    let worst = cells.iter().map(|c| c.latency.p99_us / 1000.0).fold(0.0, f64::max);
                    let errors: u64 = cells.iter().map(|c| c.failures.count).sum();
                    line(
                        format!(
                            "{} {} {conns} conns: p99 ≤ {limit} ms, 0 errors",
                            variant.label(),
                            mode_name(stateless)
                        ),
                        format!("p99 {p99:.2} ms (worst round {worst:.2}), {errors} errors"),
                        Some(p99 <= limit && errors == 0),
                    );
                }
            }
        }
        for stateless in [false, true] {
            for &conns in &self.plan.cells.conns {
                let (m, text) = self.ratio_text(Variant::ExampleSqlite, Variant::ExampleMemory, stateless, conns);
                if !m.is_finite() {
                    continue;
                }
                line(
                    format!("SQLite ≥ 0.9× in-memory, {} {conns} conns", mode_name(stateless)),
                    text,
                    m.is_finite().then_some(m >= 0.9),
                );
            }
        }
        for variant in [Variant::ExampleMemory, Variant::ExampleSqlite] {
            let worst = self.boots.iter().filter(|b| b.variant == variant).map(|b| b.rss_ready).max();
            if let Some(w) = worst {
                line(
                    format!("idle RSS ≤ {:.0} MiB, {}", mib(IDLE_RSS_LIMIT_KIB), variant.label()),
                    format!("{:.1} MiB (largest start)", mib(w)),
                    Some(w <= IDLE_RSS_LIMIT_KIB),
                );
            }
        }
        if let Some(r) = &self.oauth {
            // Boundedness over history, judged where it shows: by the second half of the run
            // every lifetime (60 s at most, the codes') has passed, so old flows' records are
            // swept as fast as new ones arrive and RSS should be flat. 1 KiB per flow catches a
            // leak of a fraction of what a flow leaves (docs/PERFORMANCE.md), and over the
            // ≥ 1,000 flows required it is ≥ 1 MiB, above the allocator's granularity.
            let flows = r.flows();
            let measured = format!(
                "{flows} flows: {:.1} MiB before, max {:.1}, {:.1} after the final sweep; ",
                mib(r.rss_before_flows),
                mib(r.max_rss()),
                mib(r.rss_after_sweep)
            );
            let (growth, ok) = match r.second_half_growth() {
                Some((per_flow, half_flows)) => (
                    format!("last {half_flows} flows {per_flow:+.0} B/flow"),
                    (half_flows >= 1000).then_some(per_flow <= 1024.0),
                ),
                None => ("one batch, no second half".to_owned(), None),
            };
            line(
                "RSS bounded over history: growth over the last half of the flows ≤ 1 KiB/flow".into(),
                measured + &growth,
                ok,
            );
            line(
                "registrations ≥ 5,000/s (one core, memory)".into(),
                format!("{:.0}/s", r.registration.rate),
                Some(r.registration.rate >= 5000.0),
            );
            let ex = median(r.batches.iter().map(|b| b.exchanges.rate).collect());
            line(
                "code exchanges ≥ 5,000/s".into(),
                format!("{ex:.0}/s (median of {} bursts of {} codes)", r.batches.len(), self.plan.flow_batch),
                Some(ex >= 5000.0),
            );
            line("refreshes ≥ 5,000/s".into(), format!("{:.0}/s", r.refresh.rate), Some(r.refresh.rate >= 5000.0));
        }
        if let Some(c) = &self.cold {
            let first = median(c.first_call_sqlite_ms.clone());
            line(
                "cold start ≤ 50 ms: spawn → first tool call (persisted SQLite)".into(),
                format!("{first:.1} ms"),
                Some(first <= 50.0),
            );
            let prm = median(c.prm_memory_ms.clone());
            line("cold start ≤ 50 ms: spawn → PRM 200 (memory)".into(), format!("{prm:.1} ms"), Some(prm <= 50.0));
        }
        s
    }
}
