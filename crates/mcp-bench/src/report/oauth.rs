//! The OAuth sections of the report: the endpoints' rates, sign-ins, and memory over many
//! flows and per refresh and registration.

use std::fmt::Write as _;
use std::time::Duration;

use crate::full::{CODE_TTL, FLOW_CONCURRENCY, OAUTH_CONNS, Plan};
use crate::measure::{Failures, Latency, Run, median};
use crate::procfs::CpuShare;
use crate::report::mib;

#[derive(Debug, Clone, Default)]
pub(crate) struct FlowBatch {
    pub(crate) flows: Run,
    pub(crate) exchanges: Run,
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
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
    // The refresh and registration server (default lifetimes).
    pub(crate) rss_before_refresh: u64,
    pub(crate) rss_after_refresh: u64,
    pub(crate) rss_end: u64,
    pub(crate) login_single_ms: f64,
    pub(crate) login_latency_ms: Vec<f64>,
    pub(crate) batches: Vec<FlowBatch>,
    pub(crate) registration: Run,
    pub(crate) refresh: Run,
    pub(crate) failures: Failures,
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

    /// The largest VmRSS read during the flows (before them, after each batch, after the wait).
    pub(crate) fn max_rss(&self) -> u64 {
        self.batches.iter().map(|b| b.rss_kib).chain([self.rss_before_flows, self.rss_after_sweep]).max().unwrap_or(0)
    }
}

/// One row for many batches: operations and errors summed, rates, latencies and CPU of the
/// median batch, other load the worst.
fn combined<'a>(rates: impl Iterator<Item = &'a Run>) -> Run {
    let rates: Vec<&Run> = rates.collect();
    let m = |f: fn(&Run) -> f64| median(rates.iter().map(|r| f(r)).collect());
    let worst = |f: fn(&Run) -> f64| rates.iter().map(|r| f(r)).fold(0.0, f64::max);
    Run {
        ops: rates.iter().map(|r| r.ops).sum(),
        secs: m(|r| r.secs),
        rate: m(|r| r.rate),
        latency: Latency {
            p50_us: m(|r| r.latency.p50_us),
            p99_us: m(|r| r.latency.p99_us),
            max_us: m(|r| r.latency.max_us),
        },
        failures: Failures { count: rates.iter().map(|r| r.failures.count).sum(), samples: Vec::new() },
        cpu_us_per_op: m(|r| r.cpu_us_per_op),
        cpu: CpuShare {
            server: m(|r| r.cpu.server),
            generator: m(|r| r.cpu.generator),
            other_core0: worst(|r| r.cpu.other_core0),
            other_core1: worst(|r| r.cpu.other_core1),
        },
    }
}

/// The memory of the many flows (short lifetimes, swept as they go), then the memory that
/// refreshes and registrations add on a server with the default lifetimes.
fn flows_memory(r: &OAuthResults, plan: &Plan) -> String {
    let mut s = String::new();
    let flows = r.flows();
    let env: Vec<String> = plan.flow_lifetimes.env().iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        s,
        "\n### Memory over {flows} full OAuth flows (authorize + login + token, {FLOW_CONCURRENCY} clients registered once)\n"
    );
    let _ = writeln!(
        s,
        "The server runs with `{}`; codes live {} s (`Config::code_ttl`, not settable from the environment). Each flow leaves a used code, an access token, a refresh token and a sign-in session, each dropped by a sweep once it has expired (the pending sign-in is consumed by the login; no consent is remembered). The flows reuse one client per browser, as a platform that registered once: registrations are measured on their own, on the second server below.\n",
        env.join(" "),
        CODE_TTL.as_secs()
    );
    let _ = writeln!(s, "| point | VmRSS (MiB) |");
    let _ = writeln!(s, "|---|--:|");
    let _ = writeln!(s, "| server ready | {:.1} |", mib(r.rss_start));
    let _ = writeln!(
        s,
        "| before the flows ({FLOW_CONCURRENCY} registrations, {} single sign-ins) | {:.1} |",
        r.single_sign_ins,
        mib(r.rss_before_flows)
    );
    for (i, b) in r.batches.iter().enumerate() {
        let _ = writeln!(
            s,
            "| after batch {} ({} flows so far; VmHWM {:.1}) | {:.1} |",
            i + 1,
            r.batches[..=i].iter().map(|b| b.flows.ops).sum::<u64>(),
            mib(b.hwm_kib),
            mib(b.rss_kib)
        );
    }
    let _ = writeln!(
        s,
        "| after {:.0} s without requests (final sweep) | {:.1} |",
        r.expiry_wait.as_secs_f64(),
        mib(r.rss_after_sweep)
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
    let _ = writeln!(s, "\n### Memory per refresh and per registration (a second server, default lifetimes)\n");
    let _ = writeln!(s, "| point | VmRSS (MiB) |");
    let _ = writeln!(s, "|---|--:|");
    let _ = writeln!(s, "| after {OAUTH_CONNS} sign-ins (the refresh chains) | {:.1} |", mib(r.rss_before_refresh));
    let _ = writeln!(s, "| after {} refreshes | {:.1} |", r.refresh.ops, mib(r.rss_after_refresh));
    let _ = writeln!(s, "| after {} more registrations | {:.1} |", r.registration.ops, mib(r.rss_end));
    let per = |a: u64, b: u64, n: u64| (b as f64 - a as f64) * 1024.0 / n.max(1) as f64;
    let _ = writeln!(
        s,
        "\n{:.0} bytes per refresh (a rotated refresh token stays until it expires, for reuse detection, and its sealed successor until the first sweep after the grace window; each refresh also adds an access token) and {:.0} bytes per registration (a client no one signs in to is swept after `Config::unused_client_ttl`).",
        per(r.rss_before_refresh, r.rss_after_refresh, r.refresh.ops),
        per(r.rss_after_refresh, r.rss_end, r.registration.ops)
    );
    s
}

/// The OAuth endpoints' table, sign-in latency, and the memory sections.
pub(super) fn render(s: &mut String, r: &OAuthResults, plan: &Plan) {
    let _ = writeln!(s, "\n## OAuth endpoints (example, in-memory store, server on one core)\n");
    let _ = writeln!(
        s,
        "| operation | count | rate /s | p50 ms | p99 ms | server CPU per op | errors | other load core 0 / 1 |"
    );
    let _ = writeln!(s, "|---|--:|--:|--:|--:|--:|--:|--:|");
    let row = |s: &mut String, name: &str, x: &Run| {
        let _ = writeln!(
            s,
            "| {name} | {} | {:.0} | {:.3} | {:.3} | {} | {} | {} |",
            x.ops,
            x.rate,
            x.latency.p50_us / 1000.0,
            x.latency.p99_us / 1000.0,
            if x.cpu_us_per_op.is_finite() {
                format!("{:.1} µs", x.cpu_us_per_op)
            } else {
                "— (burst too short)".into()
            },
            x.failures.count,
            if x.secs >= 0.5 { format!("{:.2} / {:.2}", x.cpu.other_core0, x.cpu.other_core1) } else { "—".into() }
        );
    };
    row(&mut *s, &format!("registration (`POST /register`, {} conns)", OAUTH_CONNS), &r.registration);
    // Twenty rows of each batch would bury the table: beyond four, one row of medians.
    let each = r.batches.len() <= 4;
    if each {
        for (i, b) in r.batches.iter().enumerate() {
            row(&mut *s, &format!("code exchange, batch {} ({} conns)", i + 1, OAUTH_CONNS), &b.exchanges);
        }
    } else {
        row(
            &mut *s,
            &format!(
                "code exchange ({} conns), {} bursts of ≤ {} codes: the median burst, errors summed",
                OAUTH_CONNS,
                r.batches.len(),
                plan.flow_batch
            ),
            &combined(r.batches.iter().map(|b| &b.exchanges)),
        );
    }
    row(&mut *s, &format!("refresh with rotation ({} chains)", OAUTH_CONNS), &r.refresh);
    let flow_rows: Vec<(String, Run)> = if each {
        r.batches.iter().enumerate().map(|(i, b)| (format!("batch {}", i + 1), b.flows.clone())).collect()
    } else {
        vec![(
            format!(
                "{} batches of ≤ {}: the median batch, errors summed, the worst other load",
                r.batches.len(),
                plan.flow_batch
            ),
            combined(r.batches.iter().map(|b| &b.flows)),
        )]
    };
    for (label, f) in flow_rows {
        let _ = writeln!(
            s,
            "| sign-in flow ({} browsers, a client each: /authorize, login page, POST /login), {label} | {} | {:.1} | {:.1} | {:.1} | {:.1} ms | {} | {:.2} / {:.2} |",
            FLOW_CONCURRENCY,
            f.ops,
            f.rate,
            f.latency.p50_us / 1000.0,
            f.latency.p99_us / 1000.0,
            f.cpu_us_per_op / 1000.0,
            f.failures.count,
            f.cpu.other_core0,
            f.cpu.other_core1
        );
    }
    let _ = writeln!(
        s,
        "\nargon2id parameters m=19456 KiB, t=2, p=1 (the demo hashes, `Argon2::default()`). A lone `POST /login` takes **{:.1} ms** (median of single sign-ins, one at a time); under load, with {} concurrent browsers, `POST /login` takes {:.1} ms (median), and the whole sign-in costs the server the CPU shown above. Logins/s on one core ≈ 1000 / (argon2 ms).",
        r.login_single_ms,
        FLOW_CONCURRENCY,
        median(r.login_latency_ms.clone())
    );
    s.push_str(&flows_memory(r, plan));
}
