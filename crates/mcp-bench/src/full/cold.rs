//! The cold-start part of `full`: from spawn to the first metadata answer (memory store, new
//! SQLite file) and to the first tool call with a token issued before a restart.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::Full;

use crate::client::Conn;
use crate::full::Plan;
use crate::measure::median;
use crate::report::ColdStart;
use crate::servers::{self, Env, Kind, Server, Spec, Store};
use crate::{load, log, tokens};

/// Poll until a `tools/call` with `token` succeeds; returns the time since spawn.
async fn first_tool_call(server: &mut Server, token: &str, user: &str) -> anyhow::Result<Duration> {
    let deadline = server.spawned_at + Duration::from_secs(20);
    loop {
        if let Ok(mut conn) = Conn::connect(server.addr).await {
            let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"roll_dice","arguments":{"sides":6}}}"#;
            let req = conn
                .request(http::Method::POST, "/mcp")
                .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
                .header(http::header::ACCEPT, "application/json, text/event-stream")
                .header(http::header::CONTENT_TYPE, "application/json")
                .header("mcp-protocol-version", load::PROTOCOL_VERSION)
                .body(Full::new(Bytes::from_static(body.as_bytes())))?;
            let reply = conn.send(req).await?;
            load::check_roll(&reply, 1, user).context("the first tool call")?;
            return Ok(server.spawned_at.elapsed());
        }
        if Instant::now() > deadline {
            bail!("no tool call answered within 20 s:\n{}", server.log_tail());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

pub(super) async fn run(env: &Env, plan: &Plan) -> anyhow::Result<ColdStart> {
    let mut c = ColdStart::default();
    let server_env = &plan.setup.server_env;
    crate::procfs::wait_quiet(plan.cells.quiet_wait).await;
    // taskset's own exec, part of every spawn below.
    for _ in 0..plan.cold_runs {
        let t = Instant::now();
        let _ = Command::new("taskset").args(["-c", "0", "true"]).status();
        c.taskset_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // spawn → PRM 200, both stores (SQLite: a fresh file each time, so migrations run).
    for i in 0..plan.cold_runs {
        let path = env.tmp.join(format!("cold-fresh-{i}.sqlite3"));
        for store in [Store::Memory, Store::Sqlite(path.clone())] {
            let mut spec = Spec::new(Kind::Example, store.clone(), true);
            spec.extra_env = server_env.clone();
            let mut server = Server::spawn(env, &spec)?;
            let ready_ms = server.wait_ready(Duration::from_secs(20)).await?.as_secs_f64() * 1000.0;
            let rss = server.memory().0;
            server.stop()?;
            let (times, idle) = match store {
                Store::Memory => (&mut c.prm_memory_ms, &mut c.rss_idle_memory_kib),
                Store::Sqlite(_) => (&mut c.prm_sqlite_fresh_ms, &mut c.rss_idle_sqlite_kib),
            };
            times.push(ready_ms);
            if i == 0 {
                *idle = rss;
            }
        }
        servers::remove_sqlite(&path);
    }
    // spawn → first 200 tool call, with a token obtained before the restart (persisted SQLite).
    let path = env.tmp.join("cold-persisted.sqlite3");
    let mut spec = Spec::new(Kind::Example, Store::Sqlite(path.clone()), true);
    spec.extra_env = server_env.clone();
    let mut server = Server::spawn(env, &spec)?;
    server.wait_ready(Duration::from_secs(20)).await?;
    let (token, user) = tokens::sign_in(&server, 1).await?.into_iter().next().context("no token")?;
    // The token's audience is `http://127.0.0.1:PORT/mcp`: restart on the same port.
    spec.port = Some(server.port);
    server.stop()?;
    for _ in 0..plan.cold_runs {
        let mut server = Server::spawn(env, &spec)?;
        let first = first_tool_call(&mut server, &token, &user).await;
        let prm = server.wait_ready(Duration::from_secs(20)).await;
        server.stop()?;
        c.first_call_sqlite_ms.push(first?.as_secs_f64() * 1000.0);
        drop(prm);
    }
    servers::remove_sqlite(&path);
    log(format!(
        "cold start: PRM {:.1} ms (memory), {:.1} ms (fresh SQLite); first tool call {:.1} ms (persisted SQLite); taskset {:.1} ms",
        median(c.prm_memory_ms.clone()),
        median(c.prm_sqlite_fresh_ms.clone()),
        median(c.first_call_sqlite_ms.clone()),
        median(c.taskset_ms.clone())
    ));
    Ok(c)
}
