//! What every measured run records, whatever it drives (MCP calls, OAuth requests): its rate,
//! latency percentiles, CPU and failures, and the medians and quantiles the reports take.

use std::fmt::Display;

use crate::procfs::{CpuSample, CpuShare};

/// One measured run of operations of one kind against one server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Run {
    /// Operations that succeeded within the measured time.
    pub(crate) ops: u64,
    /// The measured time, in seconds.
    pub(crate) secs: f64,
    /// `ops / secs`.
    pub(crate) rate: f64,
    pub(crate) latency: Latency,
    pub(crate) failures: Failures,
    /// CPU over the measured time.
    pub(crate) cpu: CpuShare,
    /// Server CPU per operation, in microseconds; NaN when the window was too short to tell.
    pub(crate) cpu_us_per_op: f64,
}

impl Run {
    /// `utime + stime` count in 10 ms ticks: a shorter window says nothing about CPU per operation.
    const MIN_CPU_WINDOW_SECS: f64 = 0.25;

    /// From the latencies (in nanoseconds) of the operations that succeeded within `secs`, and
    /// CPU samples taken `window` seconds apart around them.
    pub(crate) fn new(
        mut latencies_ns: Vec<u64>,
        secs: f64,
        cpu: (&CpuSample, &CpuSample),
        window: f64,
        failures: Failures,
    ) -> Self {
        latencies_ns.sort_unstable();
        let ops = latencies_ns.len() as u64;
        let rate = ops as f64 / secs;
        let cpu = cpu.0.share_until(cpu.1, window);
        let cpu_us_per_op =
            if ops > 0 && window >= Self::MIN_CPU_WINDOW_SECS { cpu.server * 1e6 / rate } else { f64::NAN };
        Self { ops, secs, rate, latency: Latency::of_sorted_ns(&latencies_ns), failures, cpu, cpu_us_per_op }
    }
}

/// The median of the finite values; NaN when there are none.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|x| x.is_finite());
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The `q`-quantile (0 < `q` ≤ 1) of sorted values, by nearest rank; `None` when empty.
pub(crate) fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// Latency percentiles of one run, in microseconds (NaN without a sample).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Latency {
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
}

impl Latency {
    /// From latencies in nanoseconds, sorted.
    pub(crate) fn of_sorted_ns(sorted: &[u64]) -> Self {
        let us = |q| nearest_rank(sorted, q).map_or(f64::NAN, |ns| ns as f64 / 1000.0);
        Self { p50_us: us(0.5), p99_us: us(0.99), max_us: us(1.0) }
    }
}

/// The requests or checks of a run that failed: how many, and the first few messages.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failures {
    pub(crate) count: u64,
    pub(crate) samples: Vec<String>,
}

impl Failures {
    /// Messages kept per run: enough to see what went wrong, not a log of every failure.
    const KEPT: usize = 5;

    /// Count one failure and keep its message if there is room.
    pub(crate) fn record(&mut self, error: impl Display) {
        self.count += 1;
        if self.samples.len() < Self::KEPT {
            // `{:#}` prints an `anyhow` chain on one line; other errors are unaffected.
            self.samples.push(format!("{error:#}"));
        }
    }

    /// Add another run's failures to these.
    pub(crate) fn absorb(&mut self, other: Failures) {
        self.count += other.count;
        let room = Self::KEPT.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_skip_what_is_not_finite() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, f64::NAN, 2.0, 3.0]), 2.5);
        assert!(median(vec![f64::INFINITY]).is_nan());
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let ns: Vec<u64> = (1..=200).map(|i| i * 1000).collect();
        let l = Latency::of_sorted_ns(&ns);
        assert_eq!((l.p50_us, l.p99_us, l.max_us), (100.0, 198.0, 200.0));
        assert!(Latency::of_sorted_ns(&[]).p50_us.is_nan());
        assert_eq!(nearest_rank(&[0.8, 0.85, 0.92, 0.95, 1.0], 0.25), Some(0.85));
    }

    #[test]
    fn failures_keep_a_few_messages_and_count_all() {
        let mut a = Failures::default();
        for i in 0..7 {
            a.record(i);
        }
        let mut b = Failures::default();
        b.record("late");
        a.absorb(b);
        assert_eq!((a.count, a.samples.len()), (8, 5));
        assert_eq!(a.samples[0], "0");
    }
}
