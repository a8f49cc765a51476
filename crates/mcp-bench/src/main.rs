//! `mcp-bench`: the performance benchmark of `mcp-server-example` (see docs/PERFORMANCE.md).
//!
//! ```sh
//! cargo run --release -p mcp-bench -- smoke   # a few seconds, one round; exit 1 on any error (CI)
//! cargo run --release -p mcp-bench -- full    # everything, 3 interleaved rounds, table in target/bench-results.md
//! cargo run --release -p mcp-bench -- profile # the example under callgrind for a short stateless load
//! cargo run --release -p mcp-bench -- paired  # example / ceiling ratio from short alternating slices
//! cargo run --release -p mcp-bench -- form-flood # /token: a 64 KiB parameter flood against a bad request
//! ```
//!
//! It builds the release example and the two baselines (`rmcp-ceiling`, `mcp-floor`), pins
//! every server to core 0 and itself (the load generator) to core 1, signs in through the real
//! OAuth flow, and drives `tools/call roll_dice`, checking every answer.

mod client;
mod endpoints;
mod form_flood;
mod load;
mod oauth;
mod paired;
mod procfs;
mod report;
mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use crate::client::Conn;
use crate::load::{Cell, Load};
use crate::report::{Boot, ColdStart, FlowBatch, McpKey, OAuthResults, Report, Variant};
use crate::servers::{DEFAULT_LOG, Env, Kind, Server, Spec, Store};

/// How much to run.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) mode: String,
    pub(crate) rounds: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) conns: Vec<usize>,
    /// Full sign-in flows for the memory check (authorize + login + token, with clients
    /// registered once).
    pub(crate) flows: usize,
    pub(crate) flow_batch: usize,
    /// Browsers signing in at once, each for its own client.
    pub(crate) flow_concurrency: usize,
    /// Lifetimes of the server the flows run on: short, so that their state expires.
    pub(crate) flow_lifetimes: FlowLifetimes,
    pub(crate) oauth_duration: Duration,
    pub(crate) oauth_conns: usize,
    pub(crate) cold_runs: usize,
    /// Sign-ins per example boot (tokens shared round-robin by the connections).
    pub(crate) tokens_per_boot: usize,
    pub(crate) out: PathBuf,
    pub(crate) build: bool,
    pub(crate) profile_secs: f64,
    /// Extra environment for the example server (`--server-env K=V`, repeatable).
    pub(crate) server_env: Vec<(String, String)>,
    /// A fifth variant, interleaved with the others: another example build and/or environment.
    pub(crate) candidate: Candidate,
    /// Before each cell, wait up to this long for cores 0 and 1 to be idle (other processes).
    pub(crate) quiet_wait: Duration,
    /// Parts to run (`--only mcp,oauth,cold`); all by default.
    pub(crate) parts: Vec<String>,
    /// `profile --stateful`: profile the session mode instead of the stateless one.
    pub(crate) profile_stateful: bool,
    /// `profile --ceiling`: profile the rmcp ceiling instead of the example.
    pub(crate) profile_ceiling: bool,
    /// `profile --cache-sim`: callgrind also simulates the caches (I1, D1 and LL misses).
    pub(crate) profile_cache_sim: bool,
}

impl Opts {
    fn runs(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }
}

/// The kit's `Config::code_ttl`: not settable from the environment, so used codes stay this
/// long on the flows' server too.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);

/// Lifetimes of the server that runs the many flows, short enough that what each flow leaves
/// (a used code, an access and a refresh token, a sign-in session) expires and is swept while
/// the flows go on: memory then follows the flows of the last minute, not the whole history.
#[derive(Debug, Clone)]
pub(crate) struct FlowLifetimes {
    pub(crate) access: Duration,
    pub(crate) refresh: Duration,
    /// The sign-in session each password sign-in starts.
    pub(crate) session: Duration,
    pub(crate) sweep: Duration,
    /// The longest the bench waits after the flows for their state to expire and be swept.
    pub(crate) max_wait: Duration,
}

impl FlowLifetimes {
    /// The server's environment for these lifetimes.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        [
            ("ACCESS_TOKEN_TTL_SECS", self.access),
            ("REFRESH_TOKEN_TTL_SECS", self.refresh),
            ("SESSION_TTL_SECS", self.session),
            ("SWEEP_INTERVAL_SECS", self.sweep),
        ]
        .into_iter()
        .map(|(k, d)| (k.to_owned(), d.as_secs().to_string()))
        .collect()
    }

    /// After the last flow: until its longest-lived record (a used code, 60 s) has expired
    /// and two sweeps have run since, plus a second; at most `max_wait`.
    pub(crate) fn wait(&self) -> Duration {
        let longest = self.access.max(self.refresh).max(self.session).max(CODE_TTL);
        (longest + 2 * self.sweep + Duration::from_secs(1)).min(self.max_wait)
    }
}

/// `--candidate-bin PATH`, `--candidate-env K=V`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidate {
    pub(crate) bin: Option<PathBuf>,
    pub(crate) env: Vec<(String, String)>,
}

impl Candidate {
    pub(crate) fn enabled(&self) -> bool {
        self.bin.is_some() || !self.env.is_empty()
    }
}

const USAGE: &str = "usage: mcp-bench <full|smoke|profile|paired|form-flood> [--rounds N] [--duration SECS] [--warmup SECS] \
[--conns 1,16,64] [--flows N] [--out PATH] [--no-build] [--server-env KEY=VALUE]… \
[--candidate-bin PATH] [--candidate-env KEY=VALUE]… [--quiet-wait SECS] [--only mcp,oauth,cold] [--stateful] [--ceiling] [--cache-sim] (the last three: profile)";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn parse_args() -> Result<Opts, String> {
    parse_args_from(std::env::args())
}

/// [`parse_args`] over any argument list (the program's name first).
fn parse_args_from(args: impl Iterator<Item = String>) -> Result<Opts, String> {
    let all: Vec<String> = args.skip(1).collect();
    let mut args = all.iter().cloned();
    let mode = args.next().ok_or(USAGE)?;
    let root = workspace_root();
    let mut o = match mode.as_str() {
        "full" | "profile" | "paired" | "form-flood" => Opts {
            mode: mode.clone(),
            rounds: 3,
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(3),
            conns: vec![1, 16, 64],
            flows: 10_000,
            flow_batch: 500,
            flow_concurrency: 4,
            // 10,000 flows take ~3 min: tokens and sessions expire 10 s after a flow, codes
            // after 60 s, so most of the run is in the steady state.
            flow_lifetimes: FlowLifetimes {
                access: Duration::from_secs(5),
                refresh: Duration::from_secs(10),
                session: Duration::from_secs(10),
                sweep: Duration::from_secs(2),
                max_wait: Duration::from_secs(120),
            },
            oauth_duration: Duration::from_secs(3),
            oauth_conns: 16,
            cold_runs: 5,
            tokens_per_boot: 4,
            out: root.join("target/bench-results.md"),
            build: true,
            profile_secs: 10.0,
            server_env: Vec::new(),
            candidate: Candidate::default(),
            quiet_wait: Duration::from_secs(30),
            parts: vec!["mcp".into(), "oauth".into(), "cold".into()],
            profile_stateful: false,
            profile_ceiling: false,
            profile_cache_sim: false,
        },
        "smoke" => Opts {
            mode: mode.clone(),
            rounds: 1,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(300),
            conns: vec![1, 16, 64],
            flows: 24,
            flow_batch: 24,
            flow_concurrency: 4,
            // Enough to see the sweeper remove tokens and sessions within 5 s (not the codes:
            // their 60 s is fixed); 24 flows are too few to judge boundedness anyway.
            flow_lifetimes: FlowLifetimes {
                access: Duration::from_secs(1),
                refresh: Duration::from_secs(2),
                session: Duration::from_secs(2),
                sweep: Duration::from_secs(1),
                max_wait: Duration::from_secs(5),
            },
            oauth_duration: Duration::from_millis(300),
            oauth_conns: 16,
            cold_runs: 1,
            tokens_per_boot: 2,
            out: root.join("target/bench-smoke.md"),
            build: true,
            profile_secs: 2.0,
            server_env: Vec::new(),
            candidate: Candidate::default(),
            quiet_wait: Duration::ZERO,
            parts: vec!["mcp".into(), "oauth".into(), "cold".into()],
            profile_stateful: false,
            profile_ceiling: false,
            profile_cache_sim: false,
        },
        "-h" | "--help" | "help" => return Err(USAGE.into()),
        other => return Err(format!("unknown mode {other:?}\n{USAGE}")),
    };
    let secs = |v: Option<String>, name: &str| -> Result<Duration, String> {
        let v = v.ok_or(format!("{name} needs a value"))?;
        v.parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or(format!("{name}: {v:?} is not a positive number of seconds"))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => o.rounds = args.next().and_then(|v| v.parse().ok()).filter(|n| *n > 0).ok_or("--rounds N")?,
            "--duration" => o.duration = secs(args.next(), "--duration")?,
            "--warmup" => o.warmup = secs(args.next(), "--warmup")?,
            "--flows" => o.flows = args.next().and_then(|v| v.parse().ok()).ok_or("--flows N")?,
            "--conns" => {
                o.conns = args
                    .next()
                    .ok_or("--conns 1,16,64")?
                    .split(',')
                    .map(|c| c.trim().parse().ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or("--conns: comma-separated positive numbers")?;
            }
            "--out" => o.out = PathBuf::from(args.next().ok_or("--out PATH")?),
            "--no-build" => o.build = false,
            "--candidate-bin" => o.candidate.bin = Some(PathBuf::from(args.next().ok_or("--candidate-bin PATH")?)),
            "--candidate-env" => {
                let kv = args.next().ok_or("--candidate-env KEY=VALUE")?;
                let (k, v) = kv.split_once('=').ok_or("--candidate-env KEY=VALUE")?;
                o.candidate.env.push((k.to_owned(), v.to_owned()));
            }
            "--only" => {
                o.parts = args.next().ok_or("--only mcp,oauth,cold")?.split(',').map(|p| p.trim().to_owned()).collect();
                if let Some(bad) = o.parts.iter().find(|p| !matches!(p.as_str(), "mcp" | "oauth" | "cold")) {
                    return Err(format!("--only: unknown part {bad:?} (mcp, oauth, cold)"));
                }
            }
            "--stateful" => o.profile_stateful = true,
            "--ceiling" => o.profile_ceiling = true,
            "--cache-sim" => o.profile_cache_sim = true,
            "--quiet-wait" => {
                o.quiet_wait =
                    Duration::from_secs_f64(args.next().and_then(|v| v.parse().ok()).ok_or("--quiet-wait SECS")?)
            }
            "--server-env" => {
                let kv = args.next().ok_or("--server-env KEY=VALUE")?;
                let (k, v) = kv.split_once('=').ok_or("--server-env KEY=VALUE")?;
                o.server_env.push((k.to_owned(), v.to_owned()));
            }
            "--profile-secs" => o.profile_secs = secs(args.next(), "--profile-secs")?.as_secs_f64(),
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    o.flow_batch = o.flow_batch.min(o.flows.max(1));
    Ok(if o.mode == "paired" { paired_defaults(o, &all) } else { o })
}

/// `paired`'s own defaults, where the command line left `full`'s: many short slices.
fn paired_defaults(mut o: Opts, args: &[String]) -> Opts {
    let given = |flag: &str| args.iter().any(|a| a == flag);
    if !given("--rounds") {
        o.rounds = 30;
    }
    if !given("--warmup") {
        o.warmup = Duration::from_millis(200);
    }
    if !given("--duration") {
        o.duration = Duration::from_millis(500);
    }
    if !given("--conns") {
        o.conns = vec![16, 64];
    }
    if !given("--quiet-wait") {
        o.quiet_wait = Duration::from_secs(2);
    }
    if !given("--out") {
        o.out = workspace_root().join("target/bench-paired.md");
    }
    o
}

fn command_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Build the release example and this crate's binaries (no-ops when they are up to date).
/// Two invocations, not one: built together, cargo would unify their dependencies' features,
/// so the example would differ from a plain `cargo build --release -p mcp-server-example` and
/// `cargo run -p mcp-bench` would rebuild this crate every time.
fn build(bin_dir: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for args in
        [&["build", "--release", "-p", "mcp-server-example"][..], &["build", "--release", "-p", "mcp-bench", "--bins"]]
    {
        eprintln!("mcp-bench: cargo {}", args.join(" "));
        let status = Command::new(&cargo)
            .args(args)
            .current_dir(workspace_root())
            .status()
            .map_err(|e| format!("running {cargo}: {e}"))?;
        if !status.success() {
            return Err(format!("cargo {} failed ({status})", args.join(" ")));
        }
    }
    for kind in [Kind::Example, Kind::Ceiling, Kind::Floor] {
        if !bin_dir.join(kind.binary()).exists() {
            return Err(format!("{} was not built into {}", kind.binary(), bin_dir.display()));
        }
    }
    Ok(())
}

/// Pin this process (the load generator) to core 1, before the runtime starts its threads.
fn pin_self() -> Result<(), String> {
    let pid = std::process::id().to_string();
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &pid])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("taskset is missing ({e}): install util-linux"))?;
    if status.success() { Ok(()) } else { Err(format!("taskset -p -c 1 {pid} failed")) }
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let exe = std::env::current_exe().unwrap_or_default();
    let bin_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if bin_dir.file_name().and_then(|n| n.to_str()) != Some("release") {
        eprintln!(
            "mcp-bench: run the release build (`cargo run --release -p mcp-bench -- …`); a debug benchmark measures nothing useful"
        );
        return ExitCode::from(2);
    }
    if opts.build
        && let Err(e) = build(&bin_dir)
    {
        eprintln!("mcp-bench: {e}");
        return ExitCode::from(2);
    }
    if command_output("taskset", &["--version"]).is_none() {
        eprintln!("mcp-bench: `taskset` is missing: install util-linux (apt-get install util-linux)");
        return ExitCode::from(2);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pin = cores >= 2;
    if pin {
        if let Err(e) = pin_self() {
            eprintln!("mcp-bench: {e}");
            return ExitCode::from(2);
        }
    } else {
        eprintln!(
            "mcp-bench: only {cores} core available: server and load generator share it (numbers are not comparable)"
        );
    }
    let tmp = std::env::temp_dir().join(format!("mcp-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&tmp) {
        eprintln!("mcp-bench: {}: {e}", tmp.display());
        return ExitCode::from(2);
    }
    let env = Env { bin_dir, tmp: tmp.clone(), pin };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-bench: tokio runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match opts.mode.as_str() {
        "profile" => rt.block_on(profile(&env, &opts)),
        "paired" => rt.block_on(paired::run(&env, &opts)),
        "form-flood" => rt.block_on(form_flood::run(&env, &opts)),
        _ => rt.block_on(bench(&env, &opts, cores)),
    };
    let _ = std::fs::remove_dir_all(&tmp);
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            eprintln!("mcp-bench: {errors} failed requests or checks (see above)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("mcp-bench: {e}");
            ExitCode::from(1)
        }
    }
}

/// Wait (at most `max`) until cores 0 and 1 are idle: between cells nothing of ours runs, so
/// whatever is busy there is another process (a compiler) that would disturb the next cell.
async fn wait_quiet(max: Duration) {
    if max.is_zero() {
        return;
    }
    let deadline = Instant::now() + max;
    let mut waited = false;
    loop {
        let (a0, a1) = (procfs::core_busy_secs(0), procfs::core_busy_secs(1));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (b0, b1) = (procfs::core_busy_secs(0), procfs::core_busy_secs(1));
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

fn log(msg: impl AsRef<str>) {
    eprintln!("mcp-bench: {}", msg.as_ref());
}

/// Sign in `n` times through the real flow (alternating alice and bob).
async fn sign_in_tokens(server: &Server, n: usize) -> Result<Vec<(String, String)>, String> {
    let mut conn = Conn::connect(server.addr).await?;
    let mut tokens = Vec::new();
    for i in 0..n {
        let user = oauth::USERS[i % oauth::USERS.len()];
        let t = oauth::sign_in(&mut conn, &server.base, user).await?;
        tokens.push((t.access, t.username));
    }
    Ok(tokens)
}

fn random_token() -> String {
    use base64::Engine as _;
    format!("mcp_at_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

/// One boot of one variant: start, sign in, run every connection count, stop.
async fn boot_and_run(
    env: &Env,
    opts: &Opts,
    variant: Variant,
    stateless: bool,
    round: usize,
    report: &mut Report,
) -> Result<(), String> {
    let (kind, store) = match variant {
        Variant::ExampleMemory | Variant::Candidate => (Kind::Example, Store::Memory),
        Variant::ExampleSqlite => {
            let path = env.tmp.join(format!("r{round}-{}.sqlite3", if stateless { "stateless" } else { "stateful" }));
            (Kind::Example, Store::Sqlite(path))
        }
        Variant::Ceiling => (Kind::Ceiling, Store::Memory),
        Variant::Floor => (Kind::Floor, Store::Memory),
    };
    let mut spec = Spec::new(kind, store.clone(), stateless);
    spec.extra_env = opts.server_env.clone();
    if variant == Variant::Candidate {
        spec.extra_env.extend(opts.candidate.env.iter().cloned());
        spec.binary = opts.candidate.bin.clone();
    }
    let floor_tokens: Vec<String> = (0..opts.tokens_per_boot).map(|_| random_token()).collect();
    spec.floor_tokens = floor_tokens.clone();
    let mut server = Server::spawn(env, &spec)?;
    let ready = server.wait_ready(Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (rss_ready, _) = server.memory();
    let tokens = match kind {
        Kind::Example => sign_in_tokens(&server, opts.tokens_per_boot).await?,
        Kind::Ceiling => floor_tokens.iter().map(|t| (t.clone(), "bench".to_owned())).collect(),
        Kind::Floor => floor_tokens.iter().map(|t| (t.clone(), "bench".to_owned())).collect(),
    };
    let (rss_signed_in, _) = server.memory();
    for &conns in &opts.conns {
        wait_quiet(opts.quiet_wait).await;
        let load = Load {
            addr: server.addr,
            conns,
            stateful: !stateless,
            tokens: tokens.clone(),
            warmup: opts.warmup,
            duration: opts.duration,
            server_pid: server.pid,
        };
        let cell: Cell = load::run(&load).await;
        log(format!(
            "round {} {:<16} {:<9} {:>2} conns: {:>8.0} calls/s p50 {:>6.3} ms p99 {:>6.3} ms cpu {:>4.2} gen {:>4.2} other {:.2}/{:.2} errors {}",
            round + 1,
            variant.label(),
            if stateless { "stateless" } else { "stateful" },
            conns,
            cell.rate,
            cell.p50_us / 1000.0,
            cell.p99_us / 1000.0,
            cell.server_cpu,
            cell.gen_cpu,
            cell.other_core0,
            cell.other_core1,
            cell.errors
        ));
        for e in &cell.error_samples {
            log(format!("  error: {e}"));
        }
        report.mcp.entry(McpKey { variant, stateless, conns }).or_default().push(cell);
    }
    let (rss_after, hwm) = server.memory();
    report.boots.push(Boot { variant, stateless, ready, rss_ready, rss_signed_in, rss_after, hwm });
    let stopped = server.stop();
    if let Store::Sqlite(path) = &store {
        servers::remove_sqlite(path);
    }
    stopped
}

async fn bench(env: &Env, opts: &Opts, cores: usize) -> Result<u64, String> {
    let started = Instant::now();
    let mut report = Report::new(opts.clone(), cores, env.pin);
    // 1. MCP throughput, interleaved: example, ceiling, example (SQLite), floor; reversed on
    //    odd rounds, so that drift does not favour one side.
    let rounds = if opts.runs("mcp") { opts.rounds } else { 0 };
    for round in 0..rounds {
        for stateless in [false, true] {
            let mut order = vec![Variant::ExampleMemory, Variant::Ceiling, Variant::ExampleSqlite];
            if opts.candidate.enabled() {
                order.insert(1, Variant::Candidate);
            }
            if stateless {
                order.push(Variant::Floor);
            }
            if round % 2 == 1 {
                order.reverse();
            }
            for variant in order {
                if let Err(e) = boot_and_run(env, opts, variant, stateless, round, &mut report).await {
                    report.failures.push(format!("{} ({}): {e}", variant.label(), mode_name(stateless)));
                    log(format!("FAILED {}: {e}", variant.label()));
                }
            }
        }
    }
    // 2. OAuth endpoints and memory after many flows (in-memory store).
    if opts.runs("oauth") {
        match oauth_bench(env, opts).await {
            Ok(r) => report.oauth = Some(r),
            Err(e) => {
                log(format!("FAILED OAuth endpoints: {e}"));
                report.failures.push(format!("OAuth endpoints: {e}"));
            }
        }
    }
    // 3. Cold start.
    if opts.runs("cold") {
        match cold_start(env, opts).await {
            Ok(c) => report.cold = Some(c),
            Err(e) => {
                log(format!("FAILED cold start: {e}"));
                report.failures.push(format!("cold start: {e}"));
            }
        }
    }
    if opts.mode == "smoke" {
        for over in report.idle_rss_over_limit() {
            log(format!("FAILED {over}"));
            report.failures.push(over);
        }
    }
    report.total_secs = started.elapsed().as_secs_f64();
    let text = report.render();
    println!("{text}");
    if let Some(dir) = opts.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&opts.out, &text) {
        Ok(()) => log(format!("results written to {}", opts.out.display())),
        Err(e) => log(format!("cannot write {}: {e}", opts.out.display())),
    }
    Ok(report.error_count())
}

pub(crate) fn mode_name(stateless: bool) -> &'static str {
    if stateless { "stateless" } else { "stateful" }
}

/// Register `n` public clients: the platforms that the sign-ins then use again and again.
async fn register_clients(server: &Server, n: usize) -> Result<Vec<String>, String> {
    let mut conn = Conn::connect(server.addr).await?;
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(oauth::register(&mut conn).await?);
    }
    Ok(clients)
}

/// The example with the in-memory store, stateless, with `extra` environment before the
/// user's `--server-env`.
async fn oauth_server(env: &Env, opts: &Opts, extra: Vec<(String, String)>) -> Result<Server, String> {
    let mut spec = Spec::new(Kind::Example, Store::Memory, true);
    spec.extra_env = extra;
    spec.extra_env.extend(opts.server_env.iter().cloned());
    let mut server = Server::spawn(env, &spec)?;
    server.wait_ready(Duration::from_secs(20)).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(server)
}

async fn oauth_bench(env: &Env, opts: &Opts) -> Result<OAuthResults, String> {
    // First server: single sign-ins, then the many flows, with short lifetimes and the
    // sweeper's removals in its log.
    let life = &opts.flow_lifetimes;
    let mut flow_env = life.env();
    flow_env.push(("RUST_LOG".into(), format!("{DEFAULT_LOG},mcp_oauth_kit::serve=debug")));
    let mut server = oauth_server(env, opts, flow_env).await?;
    let mut r = OAuthResults { rss_start: server.memory().0, ..OAuthResults::default() };
    let clients = register_clients(&server, opts.flow_concurrency.max(1)).await?;
    // Single sign-ins one at a time: the latency of POST /login is argon2's cost on one core.
    wait_quiet(opts.quiet_wait).await;
    let (single, _, login_times) =
        endpoints::sign_ins(server.addr, &server.base, opts.cold_runs.max(3), &clients[..1], server.pid).await;
    r.single_sign_ins = single.ops;
    r.login_single_ms = median(login_times.iter().map(|d| d.as_secs_f64() * 1000.0).collect());
    r.errors += single.errors;
    r.samples.extend(single.error_samples);
    // Full flows in batches: sign-ins (argon2-bound) then a burst of code exchanges (codes
    // live 60 s, so they cannot all wait for the end).
    let mut left = opts.flows;
    r.rss_before_flows = server.memory().0;
    while left > 0 {
        let n = left.min(opts.flow_batch);
        left -= n;
        wait_quiet(opts.quiet_wait).await;
        let (flows, codes, logins) = endpoints::sign_ins(server.addr, &server.base, n, &clients, server.pid).await;
        let (exch, _) = endpoints::exchanges(server.addr, &server.base, codes, opts.oauth_conns, server.pid).await;
        let (rss, hwm) = server.memory();
        let swept = server.sweeps();
        log(format!(
            "flows: {} sign-ins at {:.1}/s ({:.1} ms CPU each), {} exchanges at {:.0}/s, RSS {:.1} MiB, {} records swept so far",
            flows.ops,
            flows.rate,
            flows.cpu_us_per_op / 1000.0,
            exch.ops,
            exch.rate,
            rss as f64 / 1024.0,
            swept.removed
        ));
        r.errors += flows.errors + exch.errors;
        r.samples.extend(flows.error_samples.iter().cloned());
        r.samples.extend(exch.error_samples.iter().cloned());
        r.login_latency_ms.extend(logins.iter().map(|d| d.as_secs_f64() * 1000.0));
        r.batches.push(FlowBatch { flows, exchanges: exch, rss_kib: rss, hwm_kib: hwm, swept });
    }
    r.rss_after_flows = server.memory().0;
    // Nothing more happens: every record of the flows expires, and the sweeper drops it.
    r.expiry_wait = life.wait();
    log(format!("waiting {:?} for the flows' state to expire and be swept", r.expiry_wait));
    tokio::time::sleep(r.expiry_wait).await;
    server.check_running().map_err(|e| format!("during the wait after the flows: {e}"))?;
    (r.rss_after_sweep, r.hwm_flows) = server.memory();
    r.swept_end = server.sweeps();
    log(format!(
        "after the wait: RSS {:.1} MiB; the sweeper removed {} records in {} sweeps",
        r.rss_after_sweep as f64 / 1024.0,
        r.swept_end.removed,
        r.swept_end.count
    ));
    server.stop()?;

    // Second server, default lifetimes (a refresh chain must not expire mid-step, and the
    // memory per refresh is then what a deployment sees): refreshes on one rotating chain per
    // connection, then registrations.
    let server = oauth_server(env, opts, Vec::new()).await?;
    let clients = register_clients(&server, opts.flow_concurrency.max(1)).await?;
    let (flows, codes, _) =
        endpoints::sign_ins(server.addr, &server.base, opts.oauth_conns, &clients, server.pid).await;
    let (exch, chains) = endpoints::exchanges(server.addr, &server.base, codes, opts.oauth_conns, server.pid).await;
    r.errors += flows.errors + exch.errors;
    r.samples.extend(flows.error_samples);
    r.samples.extend(exch.error_samples);
    if chains.is_empty() {
        return Err("no tokens to refresh".into());
    }
    r.rss_before_refresh = server.memory().0;
    wait_quiet(opts.quiet_wait).await;
    r.refresh = endpoints::refreshes(server.addr, chains, opts.oauth_duration, server.pid).await;
    log(format!("refreshes: {:.0}/s", r.refresh.rate));
    r.rss_after_refresh = server.memory().0;
    wait_quiet(opts.quiet_wait).await;
    r.registration = endpoints::registrations(server.addr, opts.oauth_conns, opts.oauth_duration, server.pid).await;
    log(format!("registrations: {:.0}/s", r.registration.rate));
    r.errors += r.refresh.errors + r.registration.errors;
    r.samples.extend(r.refresh.error_samples.iter().cloned());
    r.samples.extend(r.registration.error_samples.iter().cloned());
    r.rss_end = server.memory().0;
    server.stop()?;
    for s in &r.samples {
        log(format!("  error: {s}"));
    }
    Ok(r)
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Poll until a `tools/call` with `token` succeeds; returns the time since spawn.
async fn first_tool_call(server: &mut Server, token: &str, user: &str) -> Result<Duration, String> {
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
                .body(http_body_util::Full::new(bytes::Bytes::from_static(body.as_bytes())))
                .map_err(|e| e.to_string())?;
            let reply = conn.send(req).await?;
            load::check_roll(&reply, 1, user)?;
            return Ok(server.spawned_at.elapsed());
        }
        if Instant::now() > deadline {
            return Err(format!("no tool call answered within 20 s:\n{}", server.log_tail()));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

async fn cold_start(env: &Env, opts: &Opts) -> Result<ColdStart, String> {
    let mut c = ColdStart::default();
    wait_quiet(opts.quiet_wait).await;
    // taskset's own exec, part of every spawn below.
    for _ in 0..opts.cold_runs {
        let t = Instant::now();
        let _ = Command::new("taskset").args(["-c", "0", "true"]).status();
        c.taskset_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // spawn → PRM 200, both stores (SQLite: a fresh file each time, so migrations run).
    for i in 0..opts.cold_runs {
        let mut spec = Spec::new(Kind::Example, Store::Memory, true);
        spec.extra_env = opts.server_env.clone();
        let mut server = Server::spawn(env, &spec)?;
        c.prm_memory_ms.push(server.wait_ready(Duration::from_secs(20)).await?.as_secs_f64() * 1000.0);
        if i == 0 {
            c.rss_idle_memory_kib = server.memory().0;
        }
        server.stop()?;
        let path = env.tmp.join(format!("cold-fresh-{i}.sqlite3"));
        let mut spec = Spec::new(Kind::Example, Store::Sqlite(path.clone()), true);
        spec.extra_env = opts.server_env.clone();
        let mut server = Server::spawn(env, &spec)?;
        c.prm_sqlite_fresh_ms.push(server.wait_ready(Duration::from_secs(20)).await?.as_secs_f64() * 1000.0);
        if i == 0 {
            c.rss_idle_sqlite_kib = server.memory().0;
        }
        server.stop()?;
        servers::remove_sqlite(&path);
    }
    // spawn → first 200 tool call, with a token obtained before the restart (persisted SQLite).
    let path = env.tmp.join("cold-persisted.sqlite3");
    let mut spec = Spec::new(Kind::Example, Store::Sqlite(path.clone()), true);
    spec.extra_env = opts.server_env.clone();
    let mut server = Server::spawn(env, &spec)?;
    server.wait_ready(Duration::from_secs(20)).await?;
    let tokens = sign_in_tokens(&server, 1).await?;
    let (token, user) = tokens.into_iter().next().ok_or("no token")?;
    // The token's audience is `http://127.0.0.1:PORT/mcp`: restart on the same port.
    spec.port = Some(server.port);
    server.stop()?;
    for _ in 0..opts.cold_runs {
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

/// `Ir 131048, I1mr 4496, …`: the `totals:` of a callgrind output file divided by `calls`.
fn per_call(out: &Path, calls: u64) -> Option<String> {
    per_call_counts(&std::fs::read_to_string(out).ok()?, calls)
}

fn per_call_counts(text: &str, calls: u64) -> Option<String> {
    let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(str::split_whitespace);
    let (events, totals) = (field("events:")?, field("totals:")?);
    let calls = calls.max(1) as f64;
    let counts: Vec<String> = events
        .zip(totals)
        .filter_map(|(event, total)| Some(format!("{event} {:.0}", total.parse::<f64>().ok()? / calls)))
        .collect();
    (!counts.is_empty()).then(|| counts.join(", "))
}

/// `callgrind_control`; valgrind names its control pipes after `$HOST`, which the server has.
fn callgrind_control(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("callgrind_control").args(args).env("HOST", "127.0.0.1").output()
}

/// The example under callgrind, instrumented only during a stateless load at 4 connections
/// that follows an uninstrumented warm-up; logs the counts per call at the end.
async fn profile(env: &Env, opts: &Opts) -> Result<u64, String> {
    let kind = if opts.profile_ceiling { Kind::Ceiling } else { Kind::Example };
    let out = workspace_root().join(format!(
        "target/callgrind.{}{}.out",
        kind.binary(),
        if opts.profile_stateful { ".stateful" } else { "" }
    ));
    let mut spec = Spec::new(kind, Store::Memory, !opts.profile_stateful);
    spec.extra_env = opts.server_env.clone();
    spec.wrapper = vec![
        "valgrind".into(),
        "--tool=callgrind".into(),
        "--instr-atstart=no".into(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    if opts.profile_cache_sim {
        // Simulated caches (the host's sizes): the way to see instruction-cache misses on a
        // machine whose hardware counters are unavailable, as on virtual machines.
        spec.wrapper.push("--cache-sim=yes".into());
    }
    let mut server = Server::spawn(env, &spec)?;
    server.wait_ready(Duration::from_secs(120)).await?;
    let tokens = match kind {
        Kind::Example => sign_in_tokens(&server, 2).await?,
        _ => vec![(random_token(), "bench".to_owned())],
    };
    let pid = server.pid.to_string();
    let mut load = Load {
        addr: server.addr,
        conns: 4,
        stateful: opts.profile_stateful,
        tokens,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        server_pid: server.pid,
    };
    // Uninstrumented, so that one-time work (first allocations, lazy statics) stays out of the
    // counts, which are then almost exactly those of the measured calls.
    let warm = load::run(&load).await;
    if warm.errors > 0 {
        return Err(format!("{} errors in the warm-up load", warm.errors));
    }
    let on = callgrind_control(&["-i", "on", &pid]);
    if let Ok(o) = &on {
        log(format!(
            "callgrind_control -i on: {} {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    match &on {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("OK") => {}
        _ => return Err(format!("callgrind_control -i on {pid} failed: {on:?}")),
    }
    load.duration = Duration::from_secs_f64(opts.profile_secs);
    let cell = load::run(&load).await;
    let stat = callgrind_control(&["-s", &pid]);
    if let Ok(o) = &stat {
        log(String::from_utf8_lossy(&o.stdout));
    }
    let _ = callgrind_control(&["-i", "off", &pid]);
    log(format!("profiled {} calls under callgrind ({:.0}/s, {} errors)", cell.calls, cell.rate, cell.errors));
    let tail = server.log_tail();
    server.stop()?;
    log(tail);
    match per_call(&out, cell.calls) {
        Some(line) => log(format!("per call (each connection's opening requests included): {line}")),
        None => log(format!("no totals in {}", out.display())),
    }
    log(format!(
        "callgrind output: {} (callgrind_annotate --inclusive=yes {} | head -80)",
        out.display(),
        out.display()
    ));
    Ok(cell.errors)
}

#[cfg(test)]
mod tests {
    use super::per_call_counts;

    #[test]
    fn per_call_divides_callgrind_totals_by_the_calls() {
        let out = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir I1mr D1mr\nsummary: 0\ntotals: 1000 50 7\n";
        assert_eq!(per_call_counts(out, 10).as_deref(), Some("Ir 100, I1mr 5, D1mr 1"));
        // Without cache simulation there is one event.
        assert_eq!(per_call_counts("events: Ir\ntotals: 262000\n", 2).as_deref(), Some("Ir 131000"));
        assert_eq!(per_call_counts("events: Ir\n", 2), None, "no totals line");
    }
}
