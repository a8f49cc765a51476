//! What the kernel says: a process's CPU time (`/proc/PID/stat` utime + stime, all threads) and
//! memory (`/proc/PID/status` `VmRSS`, `VmHWM`), and how busy each core is (`/proc/stat`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::log;

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`, 100 on Linux).
pub(crate) fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of `pid` (`"self"` for this process), in seconds.
pub(crate) fn cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clk_tck())
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
pub(crate) fn status_kib(pid: &str, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `VmRSS` and `VmHWM` in KiB (0 when unreadable).
pub(crate) fn rss_hwm(pid: u32) -> (u64, u64) {
    let pid = pid.to_string();
    (status_kib(&pid, "VmRSS").unwrap_or(0), status_kib(&pid, "VmHWM").unwrap_or(0))
}

/// CPU seconds of the server and of this process, read together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    pub(crate) server: f64,
    pub(crate) generator: f64,
    /// Busy time of core 0 (the server's) and core 1 (the generator's), whoever ran there.
    pub(crate) core0: f64,
    pub(crate) core1: f64,
}

/// CPU use over a measured window, in cores (1.0 = one core busy throughout).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuShare {
    /// The server under test.
    pub(crate) server: f64,
    /// This process, the load generator: near 1.0, the generator is the limit.
    pub(crate) generator: f64,
    /// Other processes on core 0 (the server's) and core 1 (the generator's): noise.
    pub(crate) other_core0: f64,
    pub(crate) other_core1: f64,
}

impl CpuSample {
    /// What was used between this sample and `after`, `secs` later.
    pub(crate) fn share_until(&self, after: &CpuSample, secs: f64) -> CpuShare {
        let server = (after.server - self.server) / secs;
        let generator = (after.generator - self.generator) / secs;
        CpuShare {
            server,
            generator,
            other_core0: ((after.core0 - self.core0) / secs - server).max(0.0),
            other_core1: ((after.core1 - self.core1) / secs - generator).max(0.0),
        }
    }
}

pub(crate) fn sample(server_pid: u32) -> CpuSample {
    CpuSample {
        server: cpu_secs(&server_pid.to_string()).unwrap_or(f64::NAN),
        generator: cpu_secs("self").unwrap_or(f64::NAN),
        core0: core_busy_secs(0).unwrap_or(f64::NAN),
        core1: core_busy_secs(1).unwrap_or(f64::NAN),
    }
}

/// Busy seconds of one core so far (`/proc/stat` `cpuN`: everything but idle and iowait).
pub(crate) fn core_busy_secs(core: usize) -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.split_whitespace().next() == Some(&format!("cpu{core}")))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle) as f64 / clk_tck())
}

/// Wait (at most `max`) until cores 0 and 1 are idle: between cells nothing of ours runs, so
/// whatever is busy there is another process (a compiler) that would disturb the next cell.
pub(crate) async fn wait_quiet(max: Duration) {
    if max.is_zero() {
        return;
    }
    let deadline = Instant::now() + max;
    let mut waited = false;
    loop {
        let (a0, a1) = (core_busy_secs(0), core_busy_secs(1));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (b0, b1) = (core_busy_secs(0), core_busy_secs(1));
        let busy = match (a0, a1, b0, b1) {
            (Some(a0), Some(a1), Some(b0), Some(b1)) => ((b0 - a0) / 0.3).max((b1 - a1) / 0.3),
            _ => 0.0,
        };
        if busy < 0.15 {
            return;
        }
        if Instant::now() > deadline {
            log(format!("cores still {:.0}% busy with other processes after {max:?}; measuring anyway", busy * 100.0));
            return;
        }
        if !waited {
            log(format!("other processes keep the cores {:.0}% busy: waiting up to {max:?}", busy * 100.0));
            waited = true;
        }
    }
}
