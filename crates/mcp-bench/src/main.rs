//! `mcp-bench`: the performance benchmark of `mcp-server-example` (docs/PERFORMANCE.md).
//!
//! ```sh
//! cargo run --release -p mcp-bench -- smoke       # under a minute, one round; exit 1 on any failed check (CI)
//! cargo run --release -p mcp-bench -- full        # everything, 3 interleaved rounds; target/bench-results.md
//! cargo run --release -p mcp-bench -- paired      # example / ceiling ratio from short alternating slices
//! cargo run --release -p mcp-bench -- profile     # the example under callgrind for a stateless load
//! cargo run --release -p mcp-bench -- form-flood  # /token: a 64 KiB parameter flood against a bad request
//! cargo run --release -p mcp-bench -- help full   # each mode's options
//! ```
//!
//! It builds the release example, the JWT server (`mcp-jwt-server`: the example's tools with a
//! `JwtVerifier`) and the two baselines (`rmcp-ceiling`, `mcp-floor`), pins
//! every server to core 0 and itself (the load generator) to core 1, signs in through the real
//! OAuth flow, and drives `tools/call roll_dice`, checking every answer.

mod cli;
mod client;
mod endpoints;
mod form_flood;
mod full;
mod jwt;
mod load;
mod measure;
mod oauth;
mod paired;
mod procfs;
mod profile;
mod report;
mod servers;
mod tokens;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context as _, bail, ensure};
use clap::Parser as _;

use crate::cli::{Cli, Mode};
use crate::servers::{Env, Kind};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(errors) => {
            log(format!("{errors} failed requests or checks (see above)"));
            ExitCode::from(1)
        }
        Err(e) => {
            log(format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}

/// Prepare the machine and the binaries, then measure; returns the failed requests and checks.
fn run(cli: Cli) -> anyhow::Result<u64> {
    let exe = std::env::current_exe().context("where is this executable")?;
    let bin_dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    ensure!(
        bin_dir.file_name().and_then(|n| n.to_str()) == Some("release"),
        "run the release build (`cargo run --release -p mcp-bench -- …`); a debug benchmark measures nothing useful"
    );
    if !cli.no_build {
        build(&bin_dir)?;
    }
    let taskset = Command::new("taskset").arg("--version").output();
    ensure!(
        taskset.is_ok_and(|o| o.status.success()),
        "`taskset` is missing: install util-linux (apt-get install util-linux)"
    );
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pin = cores >= 2;
    if pin {
        pin_self()?;
    } else {
        log(format!("only {cores} core available: server and load generator share it (numbers are not comparable)"));
    }
    let tmp = std::env::temp_dir().join(format!("mcp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| tmp.display().to_string())?;
    let env = Env { bin_dir, tmp: tmp.clone(), pin };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    let result = rt.block_on(async {
        match cli.mode {
            Mode::Full(args) => full::run(&env, &args.plan(), cores).await,
            Mode::Smoke => full::run(&env, &cli::smoke_plan(), cores).await,
            Mode::Paired(args) => paired::run(&env, &args.plan()).await,
            Mode::Profile(args) => profile::run(&env, &args).await,
            Mode::FormFlood(args) => form_flood::run(&env, args.duration).await,
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// The workspace's root, where `target/` and the reports are.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Build the release example and this crate's binaries (the JWT server and the baselines) (no-ops when they are up to date).
/// Two invocations, not one: built together, cargo would unify their dependencies' features,
/// so the example would differ from a plain `cargo build --release -p mcp-server-example` and
/// `cargo run -p mcp-bench` would rebuild this crate every time.
fn build(bin_dir: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for args in
        [&["build", "--release", "-p", "mcp-server-example"][..], &["build", "--release", "-p", "mcp-bench", "--bins"]]
    {
        log(format!("cargo {}", args.join(" ")));
        let status = Command::new(&cargo)
            .args(args)
            .current_dir(workspace_root())
            .status()
            .with_context(|| format!("running {cargo}"))?;
        ensure!(status.success(), "cargo {} failed ({status})", args.join(" "));
    }
    for kind in [Kind::Example, Kind::Jwt, Kind::Ceiling, Kind::Floor] {
        ensure!(bin_dir.join(kind.binary()).exists(), "{} was not built into {}", kind.binary(), bin_dir.display());
    }
    Ok(())
}

/// Pin this process (the load generator) to core 1, before the runtime starts its threads.
fn pin_self() -> anyhow::Result<()> {
    let pid = std::process::id().to_string();
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &pid])
        .stdout(std::process::Stdio::null())
        .status()
        .context("taskset")?;
    if !status.success() {
        bail!("taskset -p -c 1 {pid} failed ({status})");
    }
    Ok(())
}

/// Write a markdown report, creating its directory.
pub(crate) fn write_report(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    log(format!("report: {}", path.display()));
    Ok(())
}

/// A progress line on stderr (stdout holds the report).
pub(crate) fn log(msg: impl AsRef<str>) {
    eprintln!("mcp-bench: {}", msg.as_ref());
}
