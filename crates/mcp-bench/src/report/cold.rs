//! The cold-start section of the report: from spawn to the first answers, and idle memory.

use std::fmt::Write as _;

use crate::measure::median;
use crate::report::mib;

#[derive(Debug, Clone, Default)]
pub(crate) struct ColdStart {
    pub(crate) taskset_ms: Vec<f64>,
    pub(crate) prm_memory_ms: Vec<f64>,
    pub(crate) prm_sqlite_fresh_ms: Vec<f64>,
    pub(crate) first_call_sqlite_ms: Vec<f64>,
    pub(crate) rss_idle_memory_kib: u64,
    pub(crate) rss_idle_sqlite_kib: u64,
}

/// The cold-start table and idle RSS.
pub(super) fn render(s: &mut String, c: &ColdStart) {
    let _ = writeln!(
        s,
        "\n## Cold start (median of {} runs; each includes `taskset`'s exec, {:.1} ms)\n",
        c.prm_memory_ms.len(),
        median(c.taskset_ms.clone())
    );
    let _ = writeln!(s, "| from spawn to | ms (median) | all runs |");
    let _ = writeln!(s, "|---|--:|---|");
    let rows = [
        ("PRM 200, in-memory store", &c.prm_memory_ms),
        ("PRM 200, new SQLite file (migrations run)", &c.prm_sqlite_fresh_ms),
        (
            "first 200 `tools/call`, token issued before the restart, persisted SQLite (stateless)",
            &c.first_call_sqlite_ms,
        ),
    ];
    for (what, runs) in rows {
        let all: Vec<String> = runs.iter().map(|x| format!("{x:.1}")).collect();
        let _ = writeln!(s, "| {what} | {:.1} | {} |", median(runs.clone()), all.join(", "));
    }
    let _ = writeln!(
        s,
        "\nIdle RSS right after start: {:.1} MiB (memory store), {:.1} MiB (SQLite).",
        mib(c.rss_idle_memory_kib),
        mib(c.rss_idle_sqlite_kib)
    );
}
