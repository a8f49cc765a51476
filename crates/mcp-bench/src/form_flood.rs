//! `mcp-bench form-flood`: what a 64 KiB `/token` body of 16,000 distinct form parameters
//! costs the example, against an ordinary bad request (`grant_type=unknown`). Both must be
//! answered 400. Each kind is sent back to back on one keep-alive connection for the measured
//! time (`--duration`, at least 5 requests); the table shows latency and the server's CPU per
//! request.

use std::time::{Duration, Instant};

use anyhow::ensure;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Full;

use crate::client::Conn;
use crate::procfs;
use crate::servers::{Env, Kind, Server, Spec, Store};

/// Distinct keys in the flood: three characters and `&` each, 64,000 bytes in all.
const KEYS: usize = 16_000;
/// Requests of each kind before measuring.
const WARMUP: usize = 3;
/// Requests of each kind at least, whatever the duration.
const MIN_REQUESTS: usize = 5;

/// `KEYS` distinct three-character keys without values.
fn flood() -> String {
    let alphabet: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let n = alphabet.len();
    (0..KEYS).map(|i| format!("{}{}{}&", alphabet[i / (n * n)], alphabet[(i / n) % n], alphabet[i % n])).collect()
}

/// One kind of request, measured.
struct Measured {
    requests: usize,
    p50: Duration,
    max: Duration,
    cpu_per_request: Duration,
}

/// Post `body` to `/token` once; the answer must be 400.
async fn post(conn: &mut Conn, body: &Bytes) -> anyhow::Result<()> {
    let req = conn
        .request(Method::POST, "/token")
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(body.clone()))?;
    let reply = conn.send(req).await?;
    ensure!(reply.status == StatusCode::BAD_REQUEST, "expected 400, got {}: {}", reply.status, reply.excerpt());
    Ok(())
}

/// Post `body` until `duration` has passed (and at least [`MIN_REQUESTS`] times).
async fn measure(conn: &mut Conn, pid: u32, body: &Bytes, duration: Duration) -> anyhow::Result<Measured> {
    for _ in 0..WARMUP {
        post(conn, body).await?;
    }
    let pid = pid.to_string();
    let cpu_before = procfs::cpu_secs(&pid).unwrap_or(0.0);
    let started = Instant::now();
    let mut latencies = Vec::new();
    while latencies.len() < MIN_REQUESTS || started.elapsed() < duration {
        let sent = Instant::now();
        post(conn, body).await?;
        latencies.push(sent.elapsed());
    }
    let cpu = (procfs::cpu_secs(&pid).unwrap_or(0.0) - cpu_before).max(0.0);
    latencies.sort();
    Ok(Measured {
        requests: latencies.len(),
        p50: latencies[latencies.len() / 2],
        max: latencies[latencies.len() - 1],
        cpu_per_request: Duration::from_secs_f64(cpu / latencies.len() as f64),
    })
}

/// Run the comparison on a fresh example server (in-memory store) and print the table; any
/// answer but 400 is an error.
pub(crate) async fn run(env: &Env, duration: Duration) -> anyhow::Result<u64> {
    let mut server = Server::spawn(env, &Spec::new(Kind::Example, Store::Memory, true))?;
    server.wait_ready(Duration::from_secs(60)).await?;
    let mut conn = Conn::connect(server.addr).await?;
    let flood = Bytes::from(flood());
    let kinds = [
        (format!("{KEYS} distinct keys ({} bytes)", flood.len()), flood),
        ("grant_type=unknown".to_owned(), Bytes::from_static(b"grant_type=unknown")),
    ];
    println!("| POST /token body | requests | p50 | max | server CPU per request |");
    println!("|---|---|---|---|---|");
    for (label, body) in kinds {
        let m = measure(&mut conn, server.pid, &body, duration).await?;
        println!(
            "| {label} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            m.requests,
            m.p50.as_secs_f64() * 1e3,
            m.max.as_secs_f64() * 1e3,
            m.cpu_per_request.as_secs_f64() * 1e3
        );
    }
    server.stop()?;
    Ok(0)
}
