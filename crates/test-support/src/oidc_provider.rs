//! The real OpenID provider of the upstream sign-in tests: node-oidc-provider (npm
//! `oidc-provider`, OpenID Certified), whose script and lock file live in the kit's
//! `tests/oidc-provider/` (the script's header lists the variables it reads).
//!
//! [`node_or_skip`] says whether Node.js is there (a notice when not; a failure under
//! `REQUIRE_OIDC_PROVIDER=1`, as in CI), [`install`] runs `npm ci` once, and [`spawn`] starts
//! the provider and reads the port it chose. Waiting for its discovery document is the
//! caller's, with its own HTTP client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the provider may take to print its port, and another test's `npm ci` to finish.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// The provider's folder: `provider.mjs`, `package.json`, `package-lock.json`.
pub fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../mcp-oauth-kit/tests/oidc-provider")
}

fn tool_present(name: &str) -> bool {
    Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Whether `node` and `npm` are installed; without them, a notice on stderr, or a panic when
/// `REQUIRE_OIDC_PROVIDER=1`.
pub fn node_or_skip() -> bool {
    if tool_present("node") && tool_present("npm") {
        return true;
    }
    assert!(
        std::env::var("REQUIRE_OIDC_PROVIDER").as_deref() != Ok("1"),
        "REQUIRE_OIDC_PROVIDER=1 but node or npm is missing (apt-get install nodejs npm)"
    );
    eprintln!("SKIPPED: node and npm are needed to run the OpenID provider these tests use");
    false
}

/// Run `npm ci` once if `node_modules` lacks the provider. A lock directory (`mkdir` is atomic)
/// keeps concurrent test binaries from installing over each other; a lock older than the
/// install may take is left by a killed run and is taken over.
pub fn install() {
    let dir = folder();
    let installed = || dir.join("node_modules").join("oidc-provider").join("package.json").is_file();
    if installed() {
        return;
    }
    let lock = dir.join(".npm-ci.lock");
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    loop {
        match std::fs::create_dir(&lock) {
            Ok(()) => break,
            Err(_) if installed() => return,
            Err(_) => {
                let stale = std::fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() > INSTALL_TIMEOUT);
                if stale {
                    let _ = std::fs::remove_dir(&lock);
                }
                assert!(Instant::now() < deadline, "waited too long for another test's npm ci");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    if !installed() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .expect("run npm ci");
        let _ = std::fs::remove_dir(&lock);
        assert!(status.success(), "npm ci in {} failed", dir.display());
    } else {
        let _ = std::fs::remove_dir(&lock);
    }
}

/// Start `node provider.mjs` with `env` (`OIDC_PORT`, `OIDC_CLIENT_ID`, …), its stderr into
/// `log`; returns the process and the port it printed (`OIDC_PROVIDER_PORT=…`), or panics with
/// the log when it printed none within a bound. Blocks while it waits.
pub fn spawn(env: &[(&str, String)], log: &Path) -> (Child, u16) {
    let stderr = std::fs::File::create(log).expect("a log file");
    let mut child = Command::new("node")
        .arg("provider.mjs")
        .current_dir(folder())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start node provider.mjs");
    let stdout = child.stdout.take().expect("its stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.strip_prefix("OIDC_PROVIDER_PORT=") {
                let _ = tx.send(port.trim().parse::<u16>().ok());
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT).ok().flatten() {
        Some(port) => (child, port),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the OpenID provider did not start:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
    }
}
