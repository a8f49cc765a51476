//! Starting and stopping the servers under test: the release example, the JWT server, the rmcp
//! ceiling and the floor, each pinned to core 0 with `taskset`, with the benchmark's environment.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

use crate::client::Conn;

pub(crate) const PRM_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Example,
    /// The example's tools behind the kit with a `JwtVerifier` (`src/bin/jwt_server.rs`).
    Jwt,
    Ceiling,
    Floor,
}

impl Kind {
    /// The kit serves it: it reads the example's environment and serves the protected-resource
    /// metadata.
    pub(crate) fn is_kit(self) -> bool {
        matches!(self, Kind::Example | Kind::Jwt)
    }

    pub(crate) fn binary(self) -> &'static str {
        match self {
            Kind::Example => "mcp-server-example",
            Kind::Jwt => "mcp-jwt-server",
            Kind::Ceiling => "rmcp-ceiling",
            Kind::Floor => "mcp-floor",
        }
    }
}

/// Where the example keeps its OAuth state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Store {
    Memory,
    Sqlite(PathBuf),
}

impl Store {
    pub(crate) fn database_url(&self) -> String {
        match self {
            Store::Memory => "memory".into(),
            Store::Sqlite(p) => format!("sqlite://{}", p.display()),
        }
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) kind: Kind,
    pub(crate) store: Store,
    pub(crate) stateless: bool,
    /// Tokens the floor accepts.
    pub(crate) floor_tokens: Vec<String>,
    /// A command the server runs under (`valgrind --tool=callgrind …`), for profiling.
    pub(crate) wrapper: Vec<String>,
    /// Listen on this port (a restart that must keep its tokens' audience); default: a free one.
    pub(crate) port: Option<u16>,
    /// Extra environment for the example or the JWT server (`--server-env K=V`), for experiments.
    pub(crate) extra_env: Vec<(String, String)>,
    /// Another build of the example (`--candidate-bin`), instead of the one next to mcp-bench.
    pub(crate) binary: Option<PathBuf>,
}

impl Spec {
    pub(crate) fn new(kind: Kind, store: Store, stateless: bool) -> Self {
        Self {
            kind,
            store,
            stateless,
            floor_tokens: Vec::new(),
            wrapper: Vec::new(),
            port: None,
            extra_env: Vec::new(),
            binary: None,
        }
    }
}

/// Where the binaries are, and whether to pin.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub(crate) bin_dir: PathBuf,
    pub(crate) tmp: PathBuf,
    pub(crate) pin: bool,
}

/// A running server.
pub(crate) struct Server {
    child: Option<Child>,
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, its `PUBLIC_URL`.
    pub(crate) base: String,
    pub(crate) kind: Kind,
    pub(crate) port: u16,
    pub(crate) spawned_at: Instant,
    log: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free port")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    /// Start the server; returns at once (see [`Server::wait_ready`]).
    pub(crate) fn spawn(env: &Env, spec: &Spec) -> anyhow::Result<Self> {
        let port = match spec.port {
            Some(p) => p,
            None => free_port()?,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let base = format!("http://127.0.0.1:{port}");
        let binary = spec.binary.clone().unwrap_or_else(|| env.bin_dir.join(spec.kind.binary()));
        ensure!(
            binary.exists(),
            "{} is missing: run `cargo build --release -p mcp-server-example` and `cargo build --release -p mcp-bench --bins`",
            binary.display()
        );
        let log = env.tmp.join(format!("{}-{port}.log", spec.kind.binary()));
        let log_file = std::fs::File::create(&log).with_context(|| log.display().to_string())?;
        // The example prints where to connect on stdout, and logs (tracing) and errors on
        // stderr: both go to the log.
        let log_out = log_file.try_clone().with_context(|| log.display().to_string())?;
        let mut argv: Vec<String> = Vec::new();
        if env.pin {
            argv.extend(["taskset".into(), "-c".into(), "0".into()]);
        }
        argv.extend(spec.wrapper.iter().cloned());
        argv.push(binary.display().to_string());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log_out))
            .stderr(Stdio::from(log_file))
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("PUBLIC_URL", &base)
            // The bench measures throughput, so the request budgets are off; the attack suite
            // checks them at their defaults.
            .env("OAUTH_RATE_LIMIT_PER_MINUTE", "0")
            .env("TOKEN_RATE_LIMIT_PER_MINUTE", "0")
            .env("TOKEN_RATE_LIMIT_PER_CLIENT_PER_MINUTE", "0")
            .env("MCP_STATELESS", if spec.stateless { "true" } else { "false" })
            .env("DATABASE_URL", spec.store.database_url())
            .env("FLOOR_TOKENS", spec.floor_tokens.join(","));
        // Settings of the caller's shell that would change what is measured; removed before
        // the extra environment is added, so that a spec (or `--server-env`) can still set them.
        // Without `RUST_LOG` the example logs at its own default, as it ships.
        for var in [
            "RUST_LOG",
            "ACCESS_TOKEN_TTL_SECS",
            "REFRESH_TOKEN_TTL_SECS",
            "SESSION_TTL_SECS",
            "CONSENT_TTL_SECS",
            "SWEEP_INTERVAL_SECS",
            "ALLOWED_HOSTS",
            "ALLOWED_ORIGINS",
            "TRUST_FORWARDED_FOR",
        ] {
            cmd.env_remove(var);
        }
        if spec.kind == Kind::Jwt {
            cmd.env("BENCH_JWT_ISSUER", crate::jwt::ISSUER).env("BENCH_JWKS", crate::jwt::jwks());
        }
        if spec.kind.is_kit() {
            cmd.envs(spec.extra_env.iter().map(|(k, v)| (k, v)));
        }
        let spawned_at = Instant::now();
        let child = cmd.spawn().with_context(|| format!("spawning {}", argv.join(" ")))?;
        Ok(Self { pid: child.id(), child: Some(child), addr, base, kind: spec.kind, port, spawned_at, log })
    }

    /// The last lines of the server's output.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// `Err` (with the exit status and the log's tail) if the server is no longer running:
    /// its memory can then not be read, and reads as 0.
    pub(crate) fn check_running(&mut self) -> anyhow::Result<()> {
        match self.exited() {
            Some(why) => bail!("{} {why}", self.kind.binary()),
            None => Ok(()),
        }
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(status))) => Some(format!("exited with {status}:\n{}", self.log_tail())),
            _ => None,
        }
    }

    /// Poll until the server answers (the kit's servers: PRM 200; the baselines: any HTTP answer).
    /// Returns the time since spawn.
    pub(crate) async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let deadline = self.spawned_at + timeout;
        loop {
            if let Ok(mut conn) = Conn::connect(self.addr).await
                && let Ok(reply) = conn.get(PRM_PATH, None).await
                && (!self.kind.is_kit() || reply.status == http::StatusCode::OK)
            {
                return Ok(self.spawned_at.elapsed());
            }
            self.check_running()?;
            ensure!(
                Instant::now() <= deadline,
                "{} not ready after {timeout:?}:\n{}",
                self.kind.binary(),
                self.log_tail()
            );
            // Blocking on purpose: nothing else runs meanwhile, and tokio's timer has 1 ms steps.
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// `VmRSS` and `VmHWM` in KiB.
    pub(crate) fn memory(&self) -> (u64, u64) {
        crate::procfs::rss_hwm(self.pid)
    }

    /// SIGTERM, wait for the graceful shutdown (at most 15 s), then SIGKILL.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("{} did not stop on SIGTERM within 15 s", self.kind.binary());
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Remove a SQLite database and its WAL files.
pub(crate) fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
