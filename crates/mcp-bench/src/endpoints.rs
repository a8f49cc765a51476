//! Rates of the OAuth endpoints: registrations, full sign-in flows (argon2-bound), code
//! exchanges and refreshes, each over several keep-alive connections, every answer checked.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::Conn;
use crate::measure::{Failures, Run};
use crate::oauth::{self, PendingCode, Tokens};
use crate::procfs;

#[derive(Default)]
pub(crate) struct WorkerOut {
    latencies_ns: Vec<u64>,
    failures: Failures,
}

impl WorkerOut {
    fn record<T, E: Display>(&mut self, started: Instant, outcome: Result<T, E>) -> Option<T> {
        match outcome {
            Ok(v) => {
                self.latencies_ns.push(started.elapsed().as_nanos() as u64);
                Some(v)
            }
            Err(e) => {
                self.failures.record(e);
                None
            }
        }
    }
}

/// Run `workers` tasks, each on its own connection, and measure from the first request to the
/// last answer.
async fn run_workers<F, Fut>(addr: SocketAddr, workers: usize, server_pid: u32, f: F) -> Run
where
    F: Fn(usize, Conn) -> Fut,
    Fut: Future<Output = WorkerOut> + Send + 'static,
{
    let mut failures = Failures::default();
    let mut conns = Vec::new();
    for _ in 0..workers {
        match Conn::connect(addr).await {
            Ok(c) => conns.push(c),
            Err(e) => failures.record(e),
        }
    }
    let before = procfs::sample(server_pid);
    let started = Instant::now();
    let mut set = JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        set.spawn(f(i, conn));
    }
    let mut latencies = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(out) => {
                latencies.extend(out.latencies_ns);
                failures.absorb(out.failures);
            }
            Err(e) => failures.record(format_args!("task failed: {e}")),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let after = procfs::sample(server_pid);
    Run::new(latencies, secs, (&before, &after), secs, failures)
}

/// `POST /register` for `duration`.
pub(crate) async fn registrations(addr: SocketAddr, conns: usize, duration: Duration, pid: u32) -> Run {
    let end = Instant::now() + duration;
    run_workers(addr, conns, pid, move |_, mut conn| async move {
        let mut out = WorkerOut::default();
        while Instant::now() < end {
            let t = Instant::now();
            let r = oauth::register(&mut conn).await;
            out.record(t, r);
        }
        out
    })
    .await
}

/// `n` sign-ins (`/authorize`, login page, `POST /login`), one browser per client in `clients`
/// at a time: a platform registered once, whose users sign in again and again. The latencies
/// are those of the whole flow. Returns the codes, to exchange.
pub(crate) async fn sign_ins(
    addr: SocketAddr,
    base: &str,
    n: usize,
    clients: &[String],
    pid: u32,
) -> (Run, Vec<PendingCode>, Vec<Duration>) {
    let left = Arc::new(Mutex::new(n));
    let codes = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let login_times = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let base = base.to_owned();
    let rate = run_workers(addr, clients.len(), pid, |i, mut conn| {
        let (left, codes, login_times, base) = (left.clone(), codes.clone(), login_times.clone(), base.clone());
        let client_id = clients[i].clone();
        async move {
            let mut out = WorkerOut::default();
            let user = oauth::USERS[i % oauth::USERS.len()];
            loop {
                {
                    let mut left = left.lock().unwrap_or_else(|p| p.into_inner());
                    if *left == 0 {
                        break;
                    }
                    *left -= 1;
                }
                let t = Instant::now();
                let r = oauth::authorize(&mut conn, &base, &client_id, user).await;
                if let Some((code, login)) = out.record(t, r) {
                    codes.lock().unwrap_or_else(|p| p.into_inner()).push(code);
                    login_times.lock().unwrap_or_else(|p| p.into_inner()).push(login);
                }
            }
            out
        }
    })
    .await;
    let codes = std::mem::take(&mut *codes.lock().unwrap_or_else(|p| p.into_inner()));
    let logins = std::mem::take(&mut *login_times.lock().unwrap_or_else(|p| p.into_inner()));
    (rate, codes, logins)
}

/// Exchange every code, as fast as `conns` connections go.
pub(crate) async fn exchanges(
    addr: SocketAddr,
    base: &str,
    codes: Vec<PendingCode>,
    conns: usize,
    pid: u32,
) -> (Run, Vec<Tokens>) {
    let queue = Arc::new(Mutex::new(codes));
    let issued = Arc::new(Mutex::new(Vec::new()));
    let base = base.to_owned();
    let rate = run_workers(addr, conns, pid, |_, mut conn| {
        let (queue, issued, base) = (queue.clone(), issued.clone(), base.clone());
        async move {
            let mut out = WorkerOut::default();
            loop {
                let Some(code) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else { break };
                let t = Instant::now();
                let r = oauth::exchange(&mut conn, &base, &code).await;
                if let Some(tokens) = out.record(t, r) {
                    issued.lock().unwrap_or_else(|p| p.into_inner()).push(tokens);
                }
            }
            out
        }
    })
    .await;
    let tokens = std::mem::take(&mut *issued.lock().unwrap_or_else(|p| p.into_inner()));
    (rate, tokens)
}

/// Refresh one token chain per connection, each refresh with the previous one's new token.
pub(crate) async fn refreshes(addr: SocketAddr, chains: Vec<Tokens>, duration: Duration, pid: u32) -> Run {
    let end = Instant::now() + duration;
    let chains = Arc::new(chains);
    let n = chains.len();
    run_workers(addr, n, pid, move |i, mut conn| {
        let mut tokens = chains[i].clone();
        async move {
            let mut out = WorkerOut::default();
            while Instant::now() < end {
                let t = Instant::now();
                let r = oauth::refresh(&mut conn, &tokens).await;
                match out.record(t, r) {
                    Some(next) => tokens = next,
                    None => break, // a broken chain cannot go on
                }
            }
            out
        }
    })
    .await
}
