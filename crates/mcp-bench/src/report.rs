//! The results of `full` and `smoke` as a markdown report: the machine, the MCP table,
//! interleaved ratios and memory per server here; the OAuth endpoints, cold start and the
//! targets with ✓/✗ in the submodules.

mod cold;
mod oauth;
mod targets;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

pub(crate) use self::cold::ColdStart;
pub(crate) use self::oauth::{FlowBatch, OAuthResults};
use crate::full::Plan;
use crate::load::mode_name;
use crate::measure::{Run, median};

/// A server configuration measured in the MCP rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Variant {
    ExampleMemory,
    /// `--candidate-bin` / `--candidate-env`: another build or setting of the example; `--candidate
    /// jwt` (and smoke): the JWT server (memory store either way).
    Candidate,
    ExampleSqlite,
    Ceiling,
    Floor,
}

impl Variant {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Variant::ExampleMemory => "example (memory)",
            Variant::Candidate => "candidate (memory)",
            Variant::ExampleSqlite => "example (SQLite)",
            Variant::Ceiling => "rmcp ceiling",
            Variant::Floor => "floor",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct McpKey {
    pub(crate) stateless: bool,
    pub(crate) conns: usize,
    pub(crate) variant: Variant,
}

/// One server start in the MCP rounds.
#[derive(Debug, Clone)]
pub(crate) struct Boot {
    pub(crate) variant: Variant,
    pub(crate) stateless: bool,
    pub(crate) ready: Duration,
    pub(crate) rss_ready: u64,
    pub(crate) rss_signed_in: u64,
    pub(crate) rss_after: u64,
    pub(crate) hwm: u64,
}

pub(crate) struct Report {
    plan: Plan,
    /// Date, commit and tree state when the run started (the tree may change while it runs).
    started: String,
    cores: usize,
    pinned: bool,
    pub(crate) mcp: BTreeMap<McpKey, Vec<Run>>,
    pub(crate) boots: Vec<Boot>,
    pub(crate) oauth: Option<OAuthResults>,
    pub(crate) cold: Option<ColdStart>,
    pub(crate) failures: Vec<String>,
    pub(crate) total_secs: f64,
}

/// The idle-RSS target for the example as it ships (16 MiB). Smoke mode enforces it: unlike
/// rates and latencies it does not move with the machine's load.
pub(crate) const IDLE_RSS_LIMIT_KIB: u64 = 16 * 1024;

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn shell(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

impl Report {
    pub(crate) fn new(plan: Plan, cores: usize, pinned: bool) -> Self {
        let dirty =
            shell("git", &["status", "--porcelain", "--", "crates/mcp-oauth-kit", "examples/mcp-server-example"]);
        let started = format!(
            "{}; commit {}{}",
            shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            shell("git", &["rev-parse", "--short", "HEAD"]),
            if dirty.is_empty() { "" } else { " with uncommitted changes in the kit or the example" }
        );
        Self {
            plan,
            started,
            cores,
            pinned,
            mcp: BTreeMap::new(),
            boots: Vec::new(),
            oauth: None,
            cold: None,
            failures: Vec::new(),
            total_secs: 0.0,
        }
    }

    /// Every start of the example that was over [`IDLE_RSS_LIMIT_KIB`] when it first answered.
    pub(crate) fn idle_rss_over_limit(&self) -> Vec<String> {
        let boots = self
            .boots
            .iter()
            .filter(|b| matches!(b.variant, Variant::ExampleMemory | Variant::ExampleSqlite))
            .map(|b| (b.variant.label(), b.rss_ready));
        let cold = self.cold.iter().flat_map(|c| {
            [
                ("cold start, memory store", c.rss_idle_memory_kib),
                ("cold start, new SQLite file", c.rss_idle_sqlite_kib),
            ]
        });
        boots
            .chain(cold)
            .filter(|(_, kib)| *kib > IDLE_RSS_LIMIT_KIB)
            .map(|(what, kib)| format!("idle RSS {:.1} MiB > {:.0} MiB ({what})", mib(kib), mib(IDLE_RSS_LIMIT_KIB)))
            .collect()
    }

    pub(crate) fn error_count(&self) -> u64 {
        let mcp: u64 = self.mcp.values().flatten().map(|c| c.failures.count).sum();
        mcp + self.oauth.as_ref().map_or(0, |o| o.failures.count) + self.failures.len() as u64
    }

    fn cells(&self, variant: Variant, stateless: bool, conns: usize) -> &[Run] {
        self.mcp.get(&McpKey { variant, stateless, conns }).map_or(&[], Vec::as_slice)
    }

    /// Per-round ratios of calls/s, `a` over `b` (rounds where both ran).
    fn ratios(&self, a: Variant, b: Variant, stateless: bool, conns: usize) -> Vec<f64> {
        self.cells(a, stateless, conns)
            .iter()
            .zip(self.cells(b, stateless, conns))
            .map(|(x, y)| x.rate / y.rate)
            .collect()
    }

    fn ratio_text(&self, a: Variant, b: Variant, stateless: bool, conns: usize) -> (f64, String) {
        let r = self.ratios(a, b, stateless, conns);
        let m = median(r.clone());
        let rounds: Vec<String> = r.iter().map(|x| format!("{x:.2}")).collect();
        (m, format!("**{m:.2}** ({})", rounds.join(", ")))
    }

    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        let o = &self.plan;
        let _ = writeln!(s, "# mcp-bench results ({} mode)\n", o.mode());
        let args: Vec<String> = std::env::args().skip(1).collect();
        let _ = writeln!(s, "- Command: `cargo run --release -p mcp-bench -- {}`", args.join(" "));
        let _ = writeln!(
            s,
            "- Machine: {} cores (`nproc`), {}, kernel {}; {}",
            self.cores,
            cpu_model(),
            shell("uname", &["-r"]),
            shell("rustc", &["-V"])
        );
        let _ = writeln!(s, "- Started: {} (git of the current directory)", self.started);
        if !o.setup.server_env.is_empty() {
            let env: Vec<String> = o.setup.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(s, "- Extra example env (experiment): `{}`", env.join(" "));
        }
        let _ = writeln!(
            s,
            "- Pinning: {}",
            if self.pinned {
                "servers on core 0 (`taskset -c 0`), load generator on core 1"
            } else {
                "NONE (one core): numbers not comparable"
            }
        );
        let _ = writeln!(
            s,
            "- Each cell: {:.1} s warm-up then {:.1} s measured, HTTP/1.1 keep-alive, one connection per task; {} interleaved round(s) (order reversed on odd rounds); values are medians over rounds. Total run time {:.0} s.",
            o.cells.warmup.as_secs_f64(),
            o.cells.duration.as_secs_f64(),
            o.cells.rounds,
            self.total_secs
        );
        let _ = writeln!(
            s,
            "- Server env: `OAUTH_RATE_LIMIT_PER_MINUTE=0 TOKEN_RATE_LIMIT_PER_MINUTE=0 TOKEN_RATE_LIMIT_PER_CLIENT_PER_MINUTE=0 PUBLIC_URL=http://127.0.0.1:PORT`, `MCP_STATELESS`, `DATABASE_URL=memory|sqlite://…`; `RUST_LOG` unset, so the example logs at its default filter\n"
        );

        let _ = writeln!(s, "## MCP `tools/call roll_dice`\n");
        let _ = writeln!(
            s,
            "| mode | server | conns | calls/s | min–max | p50 ms | p99 ms | max ms | errors | server CPU (cores) | server CPU µs/call | generator CPU | other load core 0 / 1 |"
        );
        let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for stateless in [false, true] {
            for &conns in &o.cells.conns {
                for variant in [
                    Variant::ExampleMemory,
                    Variant::Candidate,
                    Variant::ExampleSqlite,
                    Variant::Ceiling,
                    Variant::Floor,
                ] {
                    let cells = self.cells(variant, stateless, conns);
                    if cells.is_empty() {
                        continue;
                    }
                    let m = |f: fn(&Run) -> f64| median(cells.iter().map(f).collect());
                    let min = cells.iter().map(|c| c.rate).fold(f64::INFINITY, f64::min);
                    let max = cells.iter().map(|c| c.rate).fold(0.0, f64::max);
                    let errors: u64 = cells.iter().map(|c| c.failures.count).sum();
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {:.0} | {:.0}–{:.0} | {:.3} | {:.3} | {:.2} | {} | {:.2} | {:.1} | {:.2} | {:.2} / {:.2} |",
                        mode_name(stateless),
                        variant.label(),
                        conns,
                        m(|c| c.rate),
                        min,
                        max,
                        m(|c| c.latency.p50_us) / 1000.0,
                        m(|c| c.latency.p99_us) / 1000.0,
                        m(|c| c.latency.max_us) / 1000.0,
                        errors,
                        m(|c| c.cpu.server),
                        m(|c| c.cpu_us_per_op),
                        m(|c| c.cpu.generator),
                        cells.iter().map(|c| c.cpu.other_core0).fold(0.0, f64::max),
                        cells.iter().map(|c| c.cpu.other_core1).fold(0.0, f64::max),
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "\n*other load core 0 / 1*: the most CPU (in cores, over the rounds) that other processes used on the server's / the generator's core during a measured window; above ~0.05 the cell was disturbed. *generator CPU* near 1.0 means the load generator, not the server, was the limit (the floor).\n"
        );
        let _ = writeln!(s, "\n### Interleaved ratios of calls/s (median, then each round)\n");
        let _ = writeln!(
            s,
            "| mode | conns | example (memory) / rmcp ceiling | example (SQLite) / example (memory) | rmcp ceiling / floor |"
        );
        let _ = writeln!(s, "|---|--:|--:|--:|--:|");
        for stateless in [false, true] {
            for &conns in &o.cells.conns {
                let (_, a) = self.ratio_text(Variant::ExampleMemory, Variant::Ceiling, stateless, conns);
                let (_, b) = self.ratio_text(Variant::ExampleSqlite, Variant::ExampleMemory, stateless, conns);
                let c = if stateless {
                    self.ratio_text(Variant::Ceiling, Variant::Floor, stateless, conns).1
                } else {
                    "—".into()
                };
                let _ = writeln!(s, "| {} | {} | {a} | {b} | {c} |", mode_name(stateless), conns);
            }
        }
        if let Some(c) = &o.setup.candidate {
            let _ = writeln!(s, "\n| mode | conns | candidate / example (memory) | candidate / rmcp ceiling |");
            let _ = writeln!(s, "|---|--:|--:|--:|");
            for stateless in [false, true] {
                for &conns in &o.cells.conns {
                    let (_, a) = self.ratio_text(Variant::Candidate, Variant::ExampleMemory, stateless, conns);
                    let (_, b) = self.ratio_text(Variant::Candidate, Variant::Ceiling, stateless, conns);
                    let _ = writeln!(s, "| {} | {} | {a} | {b} |", mode_name(stateless), conns);
                }
            }
            let _ = writeln!(s, "\nCandidate: {}.", c.describe());
        }
        let _ = writeln!(s, "\nThe floor runs in one mode only (JSON answers; its `initialize` is a canned reply).\n");

        let _ = writeln!(s, "### Memory of the MCP servers (per start, median)\n");
        let _ = writeln!(
            s,
            "| server | mode | ready after (ms) | RSS when ready (MiB) | RSS after sign-ins (MiB) | RSS after the load (MiB) | VmHWM (MiB) |"
        );
        let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|");
        for variant in
            [Variant::ExampleMemory, Variant::Candidate, Variant::ExampleSqlite, Variant::Ceiling, Variant::Floor]
        {
            for stateless in [false, true] {
                let b: Vec<&Boot> =
                    self.boots.iter().filter(|b| b.variant == variant && b.stateless == stateless).collect();
                if b.is_empty() {
                    continue;
                }
                let m = |f: fn(&Boot) -> f64| median(b.iter().map(|x| f(x)).collect());
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                    variant.label(),
                    mode_name(stateless),
                    m(|x| x.ready.as_secs_f64() * 1000.0),
                    m(|x| mib(x.rss_ready)),
                    m(|x| mib(x.rss_signed_in)),
                    m(|x| mib(x.rss_after)),
                    m(|x| mib(x.hwm)),
                );
            }
        }

        if let Some(r) = &self.oauth {
            oauth::render(&mut s, r, o);
        }
        if let Some(c) = &self.cold {
            cold::render(&mut s, c);
        }
        s.push_str(&self.targets());
        if !self.failures.is_empty() {
            let _ = writeln!(s, "\n## Failures\n");
            for f in &self.failures {
                let _ = writeln!(s, "- {f}");
            }
        }
        let _ = writeln!(s, "\nTotal errors (failed requests or checks): {}", self.error_count());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(ops: u64, rss_kib: u64) -> FlowBatch {
        FlowBatch { flows: Run { ops, ..Run::default() }, rss_kib, ..FlowBatch::default() }
    }

    #[test]
    fn growth_is_measured_over_the_second_half() {
        let mut r = OAuthResults { rss_before_flows: 1000, ..OAuthResults::default() };
        r.batches = vec![batch(500, 3000)];
        assert_eq!(r.second_half_growth(), None, "one batch has no second half");
        // After batch 2 (of 4) 4000 KiB, after batch 4 5000 KiB: 1000 KiB over 1000 flows.
        r.batches = vec![batch(500, 3000), batch(500, 4000), batch(500, 4600), batch(500, 5000)];
        assert_eq!(r.second_half_growth(), Some((1024.0, 1000)));
        assert_eq!(r.flows(), 2000);
        r.rss_after_sweep = 4500;
        assert_eq!(r.max_rss(), 5000);
    }

    #[test]
    fn idle_rss_over_the_limit_names_each_example_start() {
        let boot = |variant, rss_ready| Boot {
            variant,
            stateless: true,
            ready: Duration::ZERO,
            rss_ready,
            rss_signed_in: 0,
            rss_after: 0,
            hwm: 0,
        };
        let mut r = Report::new(parse_smoke_opts(), 2, true);
        r.boots = vec![boot(Variant::ExampleMemory, 9000), boot(Variant::Ceiling, 20_000)];
        r.cold = Some(ColdStart { rss_idle_memory_kib: 6000, rss_idle_sqlite_kib: 7000, ..ColdStart::default() });
        assert!(r.idle_rss_over_limit().is_empty(), "the baselines are not held to the example's target");
        r.boots.push(boot(Variant::ExampleSqlite, IDLE_RSS_LIMIT_KIB + 1));
        r.cold = Some(ColdStart { rss_idle_memory_kib: 6000, rss_idle_sqlite_kib: 17 * 1024, ..ColdStart::default() });
        let over = r.idle_rss_over_limit();
        assert_eq!(over.len(), 2, "{over:?}");
        assert!(over[0].contains("example (SQLite)") && over[0].contains("16.0 MiB > 16 MiB"), "{over:?}");
        assert!(over[1].contains("new SQLite file") && over[1].contains("17.0 MiB > 16 MiB"), "{over:?}");
    }

    fn parse_smoke_opts() -> Plan {
        crate::cli::smoke_plan()
    }
}
