//! The results as a markdown report: the machine, the MCP table, interleaved ratios, the
//! OAuth endpoints, memory, cold start, and the targets with ✓/✗.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::endpoints::Rate;
use crate::load::Cell;
use crate::servers::{DEFAULT_LOG, Sweeps};
use crate::{CODE_TTL, Opts, median, mode_name};

/// A server configuration measured in the MCP rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Variant {
    ExampleMemory,
    /// `--candidate-bin` / `--candidate-env`: another build or setting of the example (memory store).
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

#[derive(Debug, Clone, Default)]
pub(crate) struct FlowBatch {
    pub(crate) flows: Rate,
    pub(crate) exchanges: Rate,
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
    /// What the sweeper had removed when the batch ended (since the server started).
    pub(crate) swept: Sweeps,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct OAuthResults {
    // The flows' server (short lifetimes).
    pub(crate) rss_start: u64,
    /// Sign-ins one at a time before the flows (their codes are not exchanged).
    pub(crate) single_sign_ins: u64,
    pub(crate) rss_before_flows: u64,
    pub(crate) rss_after_flows: u64,
    /// How long the bench waited after the flows, with nothing running.
    pub(crate) expiry_wait: Duration,
    pub(crate) rss_after_sweep: u64,
    /// VmHWM of the flows' server after the wait: the most it ever held.
    pub(crate) hwm_flows: u64,
    /// What the sweeper removed on the flows' server, in all.
    pub(crate) swept_end: Sweeps,
    // The refresh and registration server (default lifetimes).
    pub(crate) rss_before_refresh: u64,
    pub(crate) rss_after_refresh: u64,
    pub(crate) rss_end: u64,
    pub(crate) login_single_ms: f64,
    pub(crate) login_latency_ms: Vec<f64>,
    pub(crate) batches: Vec<FlowBatch>,
    pub(crate) registration: Rate,
    pub(crate) refresh: Rate,
    pub(crate) errors: u64,
    pub(crate) samples: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ColdStart {
    pub(crate) taskset_ms: Vec<f64>,
    pub(crate) prm_memory_ms: Vec<f64>,
    pub(crate) prm_sqlite_fresh_ms: Vec<f64>,
    pub(crate) first_call_sqlite_ms: Vec<f64>,
    pub(crate) rss_idle_memory_kib: u64,
    pub(crate) rss_idle_sqlite_kib: u64,
}

impl OAuthResults {
    /// The full flows run, over all batches.
    pub(crate) fn flows(&self) -> u64 {
        self.batches.iter().map(|b| b.flows.ops).sum()
    }

    /// RSS growth per flow over the second half of the batches (from the end of batch n/2 to
    /// the end of the last), in bytes, and the flows in that half. `None` with one batch.
    /// Lifetimes are short, so by then the state of old flows is being swept as fast as new
    /// flows add theirs: whatever still grows is kept for good.
    pub(crate) fn second_half_growth(&self) -> Option<(f64, u64)> {
        let n = self.batches.len();
        if n < 2 {
            return None;
        }
        let half = n / 2;
        let flows: u64 = self.batches[half..].iter().map(|b| b.flows.ops).sum();
        let grown_kib = self.batches[n - 1].rss_kib as f64 - self.batches[half - 1].rss_kib as f64;
        Some((grown_kib * 1024.0 / flows.max(1) as f64, flows))
    }

    /// The records that the sign-ins left and that had expired by the final sweep: a sign-in
    /// session per sign-in, an access and a refresh token per exchanged code, and the codes
    /// themselves once the wait outlasted their 60 s (pending sign-ins are consumed by the login,
    /// and no consent is remembered).
    pub(crate) fn expected_swept(&self) -> u64 {
        let sign_ins = self.flows() + self.single_sign_ins;
        let exchanged: u64 = self.batches.iter().map(|b| b.exchanges.ops).sum();
        let codes = if self.expiry_wait >= CODE_TTL { sign_ins } else { 0 };
        sign_ins + 2 * exchanged + codes
    }

    /// The largest VmRSS read during the flows (before them, after each batch, after the wait).
    pub(crate) fn max_rss(&self) -> u64 {
        self.batches.iter().map(|b| b.rss_kib).chain([self.rss_before_flows, self.rss_after_sweep]).max().unwrap_or(0)
    }
}

pub(crate) struct Report {
    opts: Opts,
    /// Date, commit and tree state when the run started (the tree may change while it runs).
    started: String,
    cores: usize,
    pinned: bool,
    pub(crate) mcp: BTreeMap<McpKey, Vec<Cell>>,
    pub(crate) boots: Vec<Boot>,
    pub(crate) oauth: Option<OAuthResults>,
    pub(crate) cold: Option<ColdStart>,
    pub(crate) failures: Vec<String>,
    pub(crate) total_secs: f64,
}

/// The idle-RSS target for the example as it ships (16 MiB). Smoke mode enforces it: unlike
/// rates and latencies it does not move with the machine's load.
pub(crate) const IDLE_RSS_LIMIT_KIB: u64 = 16 * 1024;

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
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

/// One row for many batches: operations and errors summed, rates, latencies and CPU of the
/// median batch, other load the worst.
fn combined<'a>(rates: impl Iterator<Item = &'a Rate>) -> Rate {
    let rates: Vec<&Rate> = rates.collect();
    let m = |f: fn(&Rate) -> f64| median(rates.iter().map(|r| f(r)).collect());
    let worst = |f: fn(&Rate) -> f64| rates.iter().map(|r| f(r)).fold(0.0, f64::max);
    Rate {
        ops: rates.iter().map(|r| r.ops).sum(),
        secs: m(|r| r.secs),
        rate: m(|r| r.rate),
        p50_us: m(|r| r.p50_us),
        p99_us: m(|r| r.p99_us),
        errors: rates.iter().map(|r| r.errors).sum(),
        error_samples: Vec::new(),
        cpu_us_per_op: m(|r| r.cpu_us_per_op),
        server_cpu: m(|r| r.server_cpu),
        other_core0: worst(|r| r.other_core0),
        other_core1: worst(|r| r.other_core1),
    }
}

/// The memory of the many flows (short lifetimes, swept as they go), then the memory that
/// refreshes and registrations add on a server with the default lifetimes.
fn flows_memory(r: &OAuthResults, o: &Opts) -> String {
    let mut s = String::new();
    let flows = r.flows();
    let env: Vec<String> = o.flow_lifetimes.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        s,
        "\n### Memory over {flows} full OAuth flows (authorize + login + token, {} clients registered once)\n",
        o.flow_concurrency
    );
    let _ = writeln!(
        s,
        "The server runs with `{}` (and `RUST_LOG={DEFAULT_LOG},mcp_oauth_kit::serve=debug`, so that each sweep logs what it removed); codes live {} s (`Config::code_ttl`, not settable from the environment). Each flow leaves a used code, an access token, a refresh token and a sign-in session, each dropped by a sweep once it has expired (the pending sign-in is consumed by the login; no consent is remembered). The flows reuse one client per browser, as a platform that registered once: registrations are measured on their own, on the second server below.\n",
        env.join(" "),
        CODE_TTL.as_secs()
    );
    let _ = writeln!(s, "| point | VmRSS (MiB) | records swept so far |");
    let _ = writeln!(s, "|---|--:|--:|");
    let _ = writeln!(s, "| server ready | {:.1} | |", mib(r.rss_start));
    let _ = writeln!(
        s,
        "| before the flows ({} registrations, {} single sign-ins) | {:.1} | |",
        o.flow_concurrency,
        r.single_sign_ins,
        mib(r.rss_before_flows)
    );
    for (i, b) in r.batches.iter().enumerate() {
        let _ = writeln!(
            s,
            "| after batch {} ({} flows so far; VmHWM {:.1}) | {:.1} | {} |",
            i + 1,
            r.batches[..=i].iter().map(|b| b.flows.ops).sum::<u64>(),
            mib(b.hwm_kib),
            mib(b.rss_kib),
            b.swept.removed
        );
    }
    let _ = writeln!(
        s,
        "| after {:.0} s without requests (final sweep) | {:.1} | {} |",
        r.expiry_wait.as_secs_f64(),
        mib(r.rss_after_sweep),
        r.swept_end.removed
    );
    let _ = writeln!(
        s,
        "\nMax VmRSS read: {:.1} MiB; VmHWM (the most ever resident): {:.1} MiB; right after the flows {:.1} MiB, after the final sweep {:.1} MiB (freed records do not shrink RSS: malloc keeps the memory, and the store's maps their capacity, for the next ones).",
        mib(r.max_rss()),
        mib(r.hwm_flows),
        mib(r.rss_after_flows),
        mib(r.rss_after_sweep)
    );
    match r.second_half_growth() {
        Some((per_flow, half_flows)) => {
            let half = r.batches.len() / 2;
            let _ = writeln!(
                s,
                "Growth over the second half (after batch {half} → after batch {}, {half_flows} flows): {:+.2} MiB, **{per_flow:+.0} bytes per flow** (the first half: {:+.0} bytes per flow, while the records of the first minute accumulate).",
                r.batches.len(),
                per_flow * half_flows as f64 / 1024.0 / 1024.0,
                (r.batches[half - 1].rss_kib as f64 - r.rss_before_flows as f64) * 1024.0
                    / r.batches[..half].iter().map(|b| b.flows.ops).sum::<u64>().max(1) as f64
            );
        }
        None => {
            let _ = writeln!(s, "One batch only: no second half to measure growth over.");
        }
    }
    let _ = writeln!(
        s,
        "The sweeper removed **{} records** in {} sweeps; the sign-ins had left {} that expired before the final sweep (a sign-in session each, an access and a refresh token per exchanged code{}).",
        r.swept_end.removed,
        r.swept_end.count,
        r.expected_swept(),
        if r.expiry_wait >= CODE_TTL { ", and the codes" } else { "; not the codes, whose 60 s outlast the wait" }
    );

    let _ = writeln!(s, "\n### Memory per refresh and per registration (a second server, default lifetimes)\n");
    let _ = writeln!(s, "| point | VmRSS (MiB) |");
    let _ = writeln!(s, "|---|--:|");
    let _ = writeln!(s, "| after {} sign-ins (the refresh chains) | {:.1} |", o.oauth_conns, mib(r.rss_before_refresh));
    let _ = writeln!(s, "| after {} refreshes | {:.1} |", r.refresh.ops, mib(r.rss_after_refresh));
    let _ = writeln!(s, "| after {} more registrations | {:.1} |", r.registration.ops, mib(r.rss_end));
    let per = |a: u64, b: u64, n: u64| (b as f64 - a as f64) * 1024.0 / n.max(1) as f64;
    let _ = writeln!(
        s,
        "\n{:.0} bytes per refresh (a rotated refresh token stays until it expires, 30 days, for reuse detection, and its sealed successor until the first sweep (every 60 s) after the 10 s grace window; each refresh also adds an access token, 1 h) and {:.0} bytes per registration (a client no one signs in to is swept after 24 h).",
        per(r.rss_before_refresh, r.rss_after_refresh, r.refresh.ops),
        per(r.rss_after_refresh, r.rss_end, r.registration.ops)
    );
    s
}

impl Report {
    pub(crate) fn new(opts: Opts, cores: usize, pinned: bool) -> Self {
        let dirty =
            shell("git", &["status", "--porcelain", "--", "crates/mcp-oauth-kit", "examples/mcp-server-example"]);
        let started = format!(
            "{}; commit {}{}",
            shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            shell("git", &["rev-parse", "--short", "HEAD"]),
            if dirty.is_empty() { "" } else { " with uncommitted changes in the kit or the example" }
        );
        Self {
            opts,
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
        let mcp: u64 = self.mcp.values().flatten().map(|c| c.errors).sum();
        mcp + self.oauth.as_ref().map_or(0, |o| o.errors) + self.failures.len() as u64
    }

    fn cells(&self, variant: Variant, stateless: bool, conns: usize) -> &[Cell] {
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
        let o = &self.opts;
        let _ = writeln!(s, "# mcp-bench results ({} mode)\n", o.mode);
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
        if !o.server_env.is_empty() {
            let env: Vec<String> = o.server_env.iter().map(|(k, v)| format!("{k}={v}")).collect();
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
            o.warmup.as_secs_f64(),
            o.duration.as_secs_f64(),
            o.rounds,
            self.total_secs
        );
        let _ = writeln!(
            s,
            "- Server env: `OAUTH_RATE_LIMIT_PER_MINUTE=0 PUBLIC_URL=http://127.0.0.1:PORT`, `MCP_STATELESS`, `DATABASE_URL=memory|sqlite://…`; `RUST_LOG={DEFAULT_LOG}` for the example (its default), `warn` for the baselines\n"
        );

        let _ = writeln!(s, "## MCP `tools/call roll_dice`\n");
        let _ = writeln!(
            s,
            "| mode | server | conns | calls/s | min–max | p50 ms | p99 ms | max ms | errors | server CPU (cores) | server CPU µs/call | generator CPU | other load core 0 / 1 | server VmHWM MiB |"
        );
        let _ = writeln!(s, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
        for stateless in [false, true] {
            for &conns in &o.conns {
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
                    let m = |f: fn(&Cell) -> f64| median(cells.iter().map(f).collect());
                    let min = cells.iter().map(|c| c.rate).fold(f64::INFINITY, f64::min);
                    let max = cells.iter().map(|c| c.rate).fold(0.0, f64::max);
                    let errors: u64 = cells.iter().map(|c| c.errors).sum();
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {:.0} | {:.0}–{:.0} | {:.3} | {:.3} | {:.2} | {} | {:.2} | {:.1} | {:.2} | {:.2} / {:.2} | {:.1} |",
                        mode_name(stateless),
                        variant.label(),
                        conns,
                        m(|c| c.rate),
                        min,
                        max,
                        m(|c| c.p50_us) / 1000.0,
                        m(|c| c.p99_us) / 1000.0,
                        m(|c| c.max_us) / 1000.0,
                        errors,
                        m(|c| c.server_cpu),
                        m(|c| c.cpu_us_per_call),
                        m(|c| c.gen_cpu),
                        cells.iter().map(|c| c.other_core0).fold(0.0, f64::max),
                        cells.iter().map(|c| c.other_core1).fold(0.0, f64::max),
                        mib(cells.iter().map(|c| c.hwm_kib).max().unwrap_or(0)),
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
            for &conns in &o.conns {
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
        if self.mcp.keys().any(|k| k.variant == Variant::Candidate) {
            let _ = writeln!(s, "\n| mode | conns | candidate / example (memory) | candidate / rmcp ceiling |");
            let _ = writeln!(s, "|---|--:|--:|--:|");
            for stateless in [false, true] {
                for &conns in &o.conns {
                    let (_, a) = self.ratio_text(Variant::Candidate, Variant::ExampleMemory, stateless, conns);
                    let (_, b) = self.ratio_text(Variant::Candidate, Variant::Ceiling, stateless, conns);
                    let _ = writeln!(s, "| {} | {} | {a} | {b} |", mode_name(stateless), conns);
                }
            }
            let c = &o.candidate;
            let env: Vec<String> = c.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                s,
                "\nCandidate: binary `{}`, extra env: {}.",
                c.bin.as_ref().map_or("the same example".into(), |p| p.display().to_string()),
                if env.is_empty() { "none".to_owned() } else { format!("`{}`", env.join(" ")) }
            );
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
            let _ = writeln!(s, "\n## OAuth endpoints (example, in-memory store, server on one core)\n");
            let _ = writeln!(
                s,
                "| operation | count | rate /s | p50 ms | p99 ms | server CPU per op | errors | other load core 0 / 1 |"
            );
            let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|");
            let row = |s: &mut String, name: &str, x: &Rate| {
                let _ = writeln!(
                    s,
                    "| {name} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {} |",
                    x.ops,
                    x.rate,
                    x.p50_us / 1000.0,
                    x.p99_us / 1000.0,
                    if x.cpu_us_per_op.is_finite() {
                        format!("{:.1} µs", x.cpu_us_per_op)
                    } else {
                        "— (burst < 0.5 s)".into()
                    },
                    x.errors,
                    if x.secs >= 0.5 { format!("{:.2} / {:.2}", x.other_core0, x.other_core1) } else { "—".into() }
                );
            };
            row(&mut s, &format!("registration (`POST /register`, {} conns)", o.oauth_conns), &r.registration);
            // Twenty rows of each batch would bury the table: beyond four, one row of medians.
            let each = r.batches.len() <= 4;
            if each {
                for (i, b) in r.batches.iter().enumerate() {
                    row(&mut s, &format!("code exchange, batch {} ({} conns)", i + 1, o.oauth_conns), &b.exchanges);
                }
            } else {
                row(
                    &mut s,
                    &format!(
                        "code exchange ({} conns), {} bursts of ≤ {} codes: the median burst, errors summed",
                        o.oauth_conns,
                        r.batches.len(),
                        o.flow_batch
                    ),
                    &combined(r.batches.iter().map(|b| &b.exchanges)),
                );
            }
            row(&mut s, &format!("refresh with rotation ({} chains)", o.oauth_conns), &r.refresh);
            let flow_rows: Vec<(String, Rate)> = if each {
                r.batches.iter().enumerate().map(|(i, b)| (format!("batch {}", i + 1), b.flows.clone())).collect()
            } else {
                vec![(
                    format!(
                        "{} batches of ≤ {}: the median batch, errors summed, the worst other load",
                        r.batches.len(),
                        o.flow_batch
                    ),
                    combined(r.batches.iter().map(|b| &b.flows)),
                )]
            };
            for (label, f) in flow_rows {
                let _ = writeln!(
                    s,
                    "| sign-in flow ({} browsers, a client each: /authorize, login page, POST /login), {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} ms | {} | {:.2} / {:.2} |",
                    o.flow_concurrency,
                    f.ops,
                    f.rate,
                    f.p50_us / 1000.0,
                    f.p99_us / 1000.0,
                    f.cpu_us_per_op / 1000.0,
                    f.errors,
                    f.other_core0,
                    f.other_core1
                );
            }
            let _ = writeln!(
                s,
                "\nargon2id parameters m=19456 KiB, t=2, p=1 (the demo hashes, `Argon2::default()`). A lone `POST /login` takes **{:.1} ms** (median of single sign-ins, one at a time); under load, with {} concurrent browsers, `POST /login` takes {:.1} ms (median), and the whole sign-in costs the server the CPU shown above. Logins/s on one core ≈ 1000 / (argon2 ms).",
                r.login_single_ms,
                o.flow_concurrency,
                median(r.login_latency_ms.clone())
            );
            s.push_str(&flows_memory(r, o));
        }

        if let Some(c) = &self.cold {
            let _ = writeln!(
                s,
                "\n## Cold start (median of {} runs; each includes `taskset`'s exec, {:.1} ms)\n",
                c.prm_memory_ms.len(),
                median(c.taskset_ms.clone())
            );
            let _ = writeln!(s, "| from spawn to | ms (median) | all runs |");
            let _ = writeln!(s, "|---|--:|---|");
            let list = |v: &[f64]| v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(", ");
            let _ = writeln!(
                s,
                "| PRM 200, in-memory store | {:.1} | {} |",
                median(c.prm_memory_ms.clone()),
                list(&c.prm_memory_ms)
            );
            let _ = writeln!(
                s,
                "| PRM 200, new SQLite file (migrations run) | {:.1} | {} |",
                median(c.prm_sqlite_fresh_ms.clone()),
                list(&c.prm_sqlite_fresh_ms)
            );
            let _ = writeln!(
                s,
                "| first 200 `tools/call`, token issued before the restart, persisted SQLite (stateless) | {:.1} | {} |",
                median(c.first_call_sqlite_ms.clone()),
                list(&c.first_call_sqlite_ms)
            );
            let _ = writeln!(
                s,
                "\nIdle RSS right after start: {:.1} MiB (memory store), {:.1} MiB (SQLite).",
                mib(c.rss_idle_memory_kib),
                mib(c.rss_idle_sqlite_kib)
            );
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

    fn targets(&self) -> String {
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
                    let p99 = median(cells.iter().map(|c| c.p99_us / 1000.0).collect());
                    let worst = cells.iter().map(|c| c.p99_us / 1000.0).fold(0.0, f64::max);
                    let errors: u64 = cells.iter().map(|c| c.errors).sum();
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
            for &conns in &self.opts.conns {
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
            // swept as fast as new ones arrive and RSS should be flat. What a flow leaves, if
            // kept, measures ~3.5 KB (4.1 KB per flow with a registration each, before flows
            // reused their clients); 1 KiB per flow catches a leak of a quarter of it, and over
            // the ≥ 1,000 flows required it is ≥ 1 MiB, above the allocator's granularity
            // (a few hundred KiB of arena and table growth).
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
                "expired state is swept (the sweeper's debug log)".into(),
                format!(
                    "{} records removed in {} sweeps, of {} that expired",
                    r.swept_end.removed,
                    r.swept_end.count,
                    r.expected_swept()
                ),
                Some(r.swept_end.removed > 0 && r.swept_end.removed >= r.expected_swept()),
            );
            line(
                "registrations ≥ 5,000/s (one core, memory)".into(),
                format!("{:.0}/s", r.registration.rate),
                Some(r.registration.rate >= 5000.0),
            );
            let ex = median(r.batches.iter().map(|b| b.exchanges.rate).collect());
            line(
                "code exchanges ≥ 5,000/s".into(),
                format!("{ex:.0}/s (median of {} bursts of {} codes)", r.batches.len(), self.opts.flow_batch),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(ops: u64, rss_kib: u64) -> FlowBatch {
        FlowBatch { flows: Rate { ops, ..Rate::default() }, rss_kib, ..FlowBatch::default() }
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

    fn parse_smoke_opts() -> crate::Opts {
        crate::parse_args_from(["mcp-bench", "smoke"].into_iter().map(String::from)).expect("smoke options")
    }

    #[test]
    fn expected_sweeps_count_codes_only_once_they_expired() {
        let mut r = OAuthResults { single_sign_ins: 3, ..OAuthResults::default() };
        let mut b = batch(24, 0);
        b.exchanges.ops = 24;
        r.batches = vec![b];
        // 27 sessions, 24 access + 24 refresh tokens; the codes still live after a 5 s wait.
        r.expiry_wait = Duration::from_secs(5);
        assert_eq!(r.expected_swept(), 27 + 48);
        r.expiry_wait = Duration::from_secs(65);
        assert_eq!(r.expected_swept(), 27 + 48 + 27);
    }
}
