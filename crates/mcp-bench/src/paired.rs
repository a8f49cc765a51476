//! `mcp-bench paired`: the example / rmcp ceiling ratio from many short back-to-back slices.
//!
//! `full` starts each server afresh per round, so the two runs a ratio compares are seconds
//! apart, and on a virtual machine whose speed drifts over seconds their ratios scatter. Here
//! both servers run side by side on core 0 for the whole cell, and the generator drives them in
//! turn, A B B A …, each for a short slice (by default 0.2 s of warm-up and 0.5 s measured):
//! the two halves of a pair are under a second apart, so a drift slower than that cancels out
//! of their ratio. The idle server takes no CPU meanwhile. Every answer is checked exactly as in
//! `full` (`load.rs`).
//!
//! With `--candidate-bin`/`--candidate-env`, the candidate (another build or environment of the
//! example, signed in like it) takes the ceiling's place: an A/B test of a kit change, or, with
//! the same binary, an A/A test of the method itself. With `--candidate jwt` it is the JWT
//! server, called with JWTs the bench signs, against the example's opaque tokens: what the
//! choice of token costs the MCP hot path.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::cli::{Cells, PairedPlan};
use crate::load::{self, Load, mode_name};
use crate::measure::Run;
use crate::measure::nearest_rank;
use crate::procfs::wait_quiet;
use crate::servers::{Env, Kind, Server, Spec, Store};
use crate::{log, tokens};

/// The target: the example reaches at least this share of the ceiling's calls/s.
const TARGET: f64 = 0.9;

/// One pair of slices: the example's and the baseline's (the ceiling, or the candidate) calls/s
/// and server CPU per call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair {
    pub(crate) example_rate: f64,
    pub(crate) baseline_rate: f64,
    pub(crate) example_cpu_us: f64,
    pub(crate) baseline_cpu_us: f64,
}

impl Pair {
    fn ratio(&self) -> f64 {
        self.example_rate / self.baseline_rate
    }
}

/// What the pairs of one cell say.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) pairs: usize,
    /// Median of the per-pair ratios of calls/s (example / baseline).
    pub(crate) median: f64,
    /// Their 25th and 75th percentiles.
    pub(crate) q1: f64,
    pub(crate) q3: f64,
    /// Share of pairs at or above [`TARGET`].
    pub(crate) at_target: f64,
    /// Median of the per-pair ratios of server CPU per call (baseline / example): the same
    /// quantity seen from the CPU side, where calls/s is bound by the server's core.
    pub(crate) cpu_median: f64,
    pub(crate) example_rate: f64,
    pub(crate) baseline_rate: f64,
}

/// The `q`-quantile of sorted finite values (nearest rank); NaN when there are none.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    nearest_rank(sorted, q).unwrap_or(f64::NAN)
}

fn sorted(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Summarize the pairs of one cell (pairs with a zero rate on either side are left out).
pub(crate) fn summarize(pairs: &[Pair]) -> Summary {
    let valid: Vec<&Pair> = pairs.iter().filter(|p| p.example_rate > 0.0 && p.baseline_rate > 0.0).collect();
    let ratios = sorted(valid.iter().map(|p| p.ratio()));
    let cpu = sorted(valid.iter().map(|p| p.baseline_cpu_us / p.example_cpu_us));
    let at_target = ratios.iter().filter(|r| **r >= TARGET).count() as f64 / ratios.len().max(1) as f64;
    Summary {
        pairs: ratios.len(),
        median: quantile(&ratios, 0.5),
        q1: quantile(&ratios, 0.25),
        q3: quantile(&ratios, 0.75),
        at_target,
        cpu_median: quantile(&cpu, 0.5),
        example_rate: quantile(&sorted(valid.iter().map(|p| p.example_rate)), 0.5),
        baseline_rate: quantile(&sorted(valid.iter().map(|p| p.baseline_rate)), 0.5),
    }
}

/// One slice against one server; errors are logged and counted.
async fn slice(server: &Server, tokens: &[(String, String)], conns: usize, stateless: bool, cells: &Cells) -> Run {
    let load = Load {
        addr: server.addr,
        conns,
        stateful: !stateless,
        tokens: tokens.to_vec(),
        warmup: cells.warmup,
        duration: cells.duration,
        server_pid: server.pid,
    };
    let cell = load::run(&load).await;
    for e in &cell.failures.samples {
        log(format!("  error: {e}"));
    }
    cell
}

/// Run every mode and connection count; write the report to `plan.cells.out`. Returns the
/// number of failed requests.
pub(crate) async fn run(env: &Env, plan: &PairedPlan) -> anyhow::Result<u64> {
    let started = Instant::now();
    let cells = &plan.cells;
    let mut errors = 0;
    let mut table = String::new();
    let mut detail = String::new();
    let candidate = plan.setup.candidate.as_ref();
    let baseline = if candidate.is_some() { "candidate" } else { "ceiling" };
    for stateless in [false, true] {
        let mode = mode_name(stateless);
        let mut spec = Spec::new(Kind::Example, Store::Memory, stateless);
        spec.extra_env = plan.setup.server_env.clone();
        let mut example = Server::spawn(env, &spec)?;
        example.wait_ready(Duration::from_secs(20)).await?;
        let mut spec = Spec::new(candidate.map_or(Kind::Ceiling, |c| c.kind), Store::Memory, stateless);
        if let Some(c) = candidate {
            spec.extra_env = plan.setup.server_env.iter().chain(&c.env).cloned().collect();
            spec.binary = c.bin.clone();
        }
        let mut other = Server::spawn(env, &spec)?;
        other.wait_ready(Duration::from_secs(20)).await?;
        let example_tokens = tokens::sign_in(&example, plan.tokens_per_boot).await?;
        let baseline_tokens = tokens::for_kit(&other, plan.tokens_per_boot)
            .await?
            .unwrap_or_else(|| (0..plan.tokens_per_boot).map(|_| tokens::random()).collect());
        for &conns in &cells.conns {
            let mut pairs = Vec::with_capacity(cells.rounds);
            for i in 0..cells.rounds {
                wait_quiet(cells.quiet_wait).await;
                // A B B A: neither server always goes first after the quiet wait.
                let (e, c) = if i % 2 == 0 {
                    let e = slice(&example, &example_tokens, conns, stateless, cells).await;
                    (e, slice(&other, &baseline_tokens, conns, stateless, cells).await)
                } else {
                    let c = slice(&other, &baseline_tokens, conns, stateless, cells).await;
                    (slice(&example, &example_tokens, conns, stateless, cells).await, c)
                };
                errors += e.failures.count + c.failures.count;
                let pair = Pair {
                    example_rate: e.rate,
                    baseline_rate: c.rate,
                    example_cpu_us: e.cpu_us_per_op,
                    baseline_cpu_us: c.cpu_us_per_op,
                };
                log(format!(
                    "{mode} {conns:>2} conns, pair {:>2}: example {:>7.0} calls/s, {baseline} {:>7.0} calls/s, ratio {:.3} (other load {:.2}/{:.2})",
                    i + 1,
                    e.rate,
                    c.rate,
                    pair.ratio(),
                    e.cpu.other_core0.max(c.cpu.other_core0),
                    e.cpu.other_core1.max(c.cpu.other_core1),
                ));
                pairs.push(pair);
            }
            let s = summarize(&pairs);
            log(format!(
                "{mode} {conns} conns: median ratio {:.3} (quartiles {:.3}–{:.3}), {:.0} % of {} pairs ≥ {TARGET}",
                s.median,
                s.q1,
                s.q3,
                s.at_target * 100.0,
                s.pairs
            ));
            let _ = writeln!(
                table,
                "| {mode} | {conns} | **{:.3}** | {:.3}–{:.3} | {:.0} % | {:.3} | {:.0} | {:.0} | {} |",
                s.median,
                s.q1,
                s.q3,
                s.at_target * 100.0,
                s.cpu_median,
                s.example_rate,
                s.baseline_rate,
                s.pairs
            );
            let ratios: Vec<String> = pairs.iter().map(|p| format!("{:.2}", p.ratio())).collect();
            let _ = writeln!(detail, "- {mode}, {conns} connections: {}", ratios.join(" "));
        }
        let stopped = (example.stop(), other.stop());
        stopped.0?;
        stopped.1?;
    }
    let mut md = String::new();
    let _ = writeln!(md, "# mcp-bench paired: example (memory store) / {baseline}\n");
    if let Some(c) = candidate {
        let _ = writeln!(md, "Candidate: {}.\n", c.describe());
    }
    let _ = writeln!(
        md,
        "- {} pairs per cell, each slice {:.1} s of warm-up and {:.1} s measured, A B B A; both servers on core 0, the generator on core 1; {:.0} s in all\n",
        cells.rounds,
        cells.warmup.as_secs_f64(),
        cells.duration.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(
        md,
        "| mode | conns | median ratio of calls/s | quartiles | pairs ≥ {TARGET} | median ratio of CPU per call ({baseline} / example) | example calls/s (median) | {baseline} calls/s (median) | pairs |"
    );
    let _ = writeln!(md, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    md.push_str(&table);
    let _ = writeln!(md, "\nEach pair's ratio, in order:\n");
    md.push_str(&detail);
    crate::write_report(&cells.out, &md)?;
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(example_rate: f64, baseline_rate: f64) -> Pair {
        // CPU per call moves opposite to the rate on a saturated core.
        Pair { example_rate, baseline_rate, example_cpu_us: 1e6 / example_rate, baseline_cpu_us: 1e6 / baseline_rate }
    }

    #[test]
    fn the_summary_takes_quantiles_of_the_per_pair_ratios() {
        let pairs: Vec<Pair> = [0.80, 0.95, 0.92, 0.85, 1.00].iter().map(|r| pair(r * 10_000.0, 10_000.0)).collect();
        let s = summarize(&pairs);
        assert_eq!(s.pairs, 5);
        assert!((s.median - 0.92).abs() < 1e-9, "{s:?}");
        assert!((s.q1 - 0.85).abs() < 1e-9 && (s.q3 - 0.95).abs() < 1e-9, "{s:?}");
        assert!((s.at_target - 0.6).abs() < 1e-9, "three of five pairs reach 0.9: {s:?}");
        assert!((s.cpu_median - 0.92).abs() < 1e-9, "{s:?}");
        assert!((s.baseline_rate - 10_000.0).abs() < 1e-9);
    }

    #[test]
    fn pairs_with_a_failed_slice_are_left_out() {
        let s = summarize(&[pair(9_000.0, 10_000.0), Pair { example_rate: 0.0, ..pair(1.0, 1.0) }]);
        assert_eq!(s.pairs, 1);
        assert!((s.median - 0.9).abs() < 1e-9);
        assert!((s.at_target - 1.0).abs() < 1e-9, "0.9 itself meets the target");
        assert!(summarize(&[]).median.is_nan());
    }
}
