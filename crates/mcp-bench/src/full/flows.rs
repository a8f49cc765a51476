//! The OAuth part of `full`: on one server with short lifetimes, single sign-ins and then many
//! full flows in batches, with the memory after each batch and after a wait with nothing to do;
//! on a second server with the default lifetimes, refreshes and registrations.

use std::time::Duration;

use anyhow::{anyhow, ensure};

use crate::client::Conn;
use crate::endpoints;
use crate::full::{FLOW_CONCURRENCY, OAUTH_CONNS, Plan};
use crate::measure::Run;
use crate::measure::median;
use crate::procfs::wait_quiet;
use crate::report::{FlowBatch, OAuthResults};
use crate::servers::{Env, Kind, Server, Spec, Store};
use crate::{log, oauth};

/// Register `n` public clients: the platforms that the sign-ins then use again and again.
async fn register_clients(server: &Server, n: usize) -> anyhow::Result<Vec<String>> {
    let mut conn = Conn::connect(server.addr).await?;
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(oauth::register(&mut conn).await.map_err(|e| anyhow!("registration: {e}"))?);
    }
    Ok(clients)
}

/// The example with the in-memory store, stateless, with `extra` environment before the
/// user's `--server-env`.
async fn oauth_server(env: &Env, plan: &Plan, extra: Vec<(String, String)>) -> anyhow::Result<Server> {
    let mut spec = Spec::new(Kind::Example, Store::Memory, true);
    spec.extra_env = extra;
    spec.extra_env.extend(plan.setup.server_env.iter().cloned());
    let mut server = Server::spawn(env, &spec)?;
    server.wait_ready(Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(server)
}

fn absorb(r: &mut OAuthResults, rate: &Run) {
    r.failures.absorb(rate.failures.clone());
}

pub(super) async fn run(env: &Env, plan: &Plan) -> anyhow::Result<OAuthResults> {
    // First server: single sign-ins, then the many flows, with short lifetimes.
    let life = &plan.flow_lifetimes;
    let mut server = oauth_server(env, plan, life.env()).await?;
    let mut r = OAuthResults { rss_start: server.memory().0, ..OAuthResults::default() };
    let clients = register_clients(&server, FLOW_CONCURRENCY).await?;
    // Single sign-ins one at a time: the latency of POST /login is argon2's cost on one core.
    wait_quiet(plan.cells.quiet_wait).await;
    let (single, _, login_times) =
        endpoints::sign_ins(server.addr, &server.base, plan.cold_runs.max(3), &clients[..1], server.pid).await;
    r.single_sign_ins = single.ops;
    r.login_single_ms = median(login_times.iter().map(|d| d.as_secs_f64() * 1000.0).collect());
    absorb(&mut r, &single);
    // Full flows in batches: sign-ins (argon2-bound) then a burst of code exchanges (codes
    // live 60 s, so they cannot all wait for the end).
    let mut left = plan.flows;
    r.rss_before_flows = server.memory().0;
    while left > 0 {
        let n = left.min(plan.flow_batch);
        left -= n;
        wait_quiet(plan.cells.quiet_wait).await;
        let (flows, codes, logins) = endpoints::sign_ins(server.addr, &server.base, n, &clients, server.pid).await;
        let (exch, _) = endpoints::exchanges(server.addr, &server.base, codes, OAUTH_CONNS, server.pid).await;
        let (rss, hwm) = server.memory();
        log(format!(
            "flows: {} sign-ins at {:.1}/s ({:.1} ms CPU each), {} exchanges at {:.0}/s, RSS {:.1} MiB",
            flows.ops,
            flows.rate,
            flows.cpu_us_per_op / 1000.0,
            exch.ops,
            exch.rate,
            rss as f64 / 1024.0,
        ));
        absorb(&mut r, &flows);
        absorb(&mut r, &exch);
        r.login_latency_ms.extend(logins.iter().map(|d| d.as_secs_f64() * 1000.0));
        r.batches.push(FlowBatch { flows, exchanges: exch, rss_kib: rss, hwm_kib: hwm });
    }
    r.rss_after_flows = server.memory().0;
    // Nothing more happens: every record of the flows expires, and the sweeper drops it.
    r.expiry_wait = life.wait();
    log(format!("waiting {:?} for the flows' state to expire and be swept", r.expiry_wait));
    tokio::time::sleep(r.expiry_wait).await;
    server.check_running().map_err(|e| e.context("during the wait after the flows"))?;
    (r.rss_after_sweep, r.hwm_flows) = server.memory();
    log(format!("after the wait: RSS {:.1} MiB", r.rss_after_sweep as f64 / 1024.0));
    server.stop()?;

    // Second server, default lifetimes (a refresh chain must not expire mid-step, and the
    // memory per refresh is then what a deployment sees): refreshes on one rotating chain per
    // connection, then registrations.
    let server = oauth_server(env, plan, Vec::new()).await?;
    let clients = register_clients(&server, FLOW_CONCURRENCY).await?;
    let (flows, codes, _) = endpoints::sign_ins(server.addr, &server.base, OAUTH_CONNS, &clients, server.pid).await;
    let (exch, chains) = endpoints::exchanges(server.addr, &server.base, codes, OAUTH_CONNS, server.pid).await;
    absorb(&mut r, &flows);
    absorb(&mut r, &exch);
    ensure!(!chains.is_empty(), "no tokens to refresh");
    r.rss_before_refresh = server.memory().0;
    wait_quiet(plan.cells.quiet_wait).await;
    r.refresh = endpoints::refreshes(server.addr, chains, plan.oauth_duration, server.pid).await;
    log(format!("refreshes: {:.0}/s", r.refresh.rate));
    r.rss_after_refresh = server.memory().0;
    wait_quiet(plan.cells.quiet_wait).await;
    r.registration = endpoints::registrations(server.addr, OAUTH_CONNS, plan.oauth_duration, server.pid).await;
    log(format!("registrations: {:.0}/s", r.registration.rate));
    let (refresh, registration) = (r.refresh.clone(), r.registration.clone());
    absorb(&mut r, &refresh);
    absorb(&mut r, &registration);
    r.rss_end = server.memory().0;
    server.stop()?;
    for s in &r.failures.samples {
        log(format!("  error: {s}"));
    }
    Ok(r)
}
