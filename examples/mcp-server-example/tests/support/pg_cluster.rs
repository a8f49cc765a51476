//! A PostgreSQL cluster of one test's own, in a temporary directory, that the test may stop and
//! start at will: the machine's PostgreSQL serves other tests and people, so an outage is
//! played on a private one. The cluster is stopped and its directory removed when dropped.
//!
//! It needs PostgreSQL's server binaries (`initdb`, `pg_ctl`: `/usr/lib/postgresql/N/bin`, or
//! the directory in `PG_BIN_DIR`). Without them a test skips with a notice, and fails instead
//! under `REQUIRE_POSTGRES_BINARIES=1` (CI sets it). PostgreSQL refuses to run as root, so as
//! root the cluster belongs to, and runs as, the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::TempDir;

/// How long `pg_ctl` waits for the server to start or stop (`pg_ctl -t`), in seconds.
const PG_CTL_WAIT_SECS: &str = "30";
/// The system user that owns the cluster when the test runs as root.
const OWNER: &str = "postgres";

/// A private PostgreSQL cluster on `127.0.0.1:port`, with trust authentication.
pub(crate) struct PgCluster {
    bin: PathBuf,
    dir: TempDir,
    /// Where the server listens; kept across restarts, as a real database's address is.
    pub(crate) port: u16,
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate: nothing in it needs keeping, and a test that failed should not wait.
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
    }
}

impl PgCluster {
    /// Create and start a cluster, or `None` after a notice when the server binaries are
    /// missing.
    ///
    /// # Panics
    /// When the binaries are missing under `REQUIRE_POSTGRES_BINARIES=1`, or when `initdb` or
    /// the first start fails (with its output).
    pub(crate) fn start(test: &str) -> Option<Self> {
        let Some(bin) = server_binaries() else {
            assert!(
                std::env::var("REQUIRE_POSTGRES_BINARIES").as_deref() != Ok("1"),
                "{test}: REQUIRE_POSTGRES_BINARIES=1 but no initdb and pg_ctl in PG_BIN_DIR or /usr/lib/postgresql/*/bin"
            );
            eprintln!("{test}: skipped: no PostgreSQL server binaries (set PG_BIN_DIR to their directory)");
            return None;
        };
        let dir = TempDir::new("pg-cluster");
        if is_root() {
            run(Command::new("chown").arg(format!("{OWNER}:")).arg(dir.path()), "chown the cluster directory");
        }
        // A port the system hands out now, for the cluster to bind; it keeps it across restarts.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port for the cluster")
            .port();
        let cluster = Self { bin, dir, port };
        let data = cluster.data();
        // No fsync: the cluster lives as long as one test.
        cluster.as_owner(&cluster.bin.join("initdb"), &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"]);
        cluster.start_server();
        Some(cluster)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stop the server as `pg_ctl stop -m fast` does (clients are disconnected at once), and
    /// return once it is down.
    pub(crate) fn stop(&self) {
        let out = self.pg_ctl(&["stop", "-m", "fast"]);
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Start the stopped server again on the same port and data, and return once it accepts
    /// connections.
    pub(crate) fn start_server(&self) {
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let log = self.dir.path().join("server.log");
        let out = self.pg_ctl(&["start", "-o", &options, "-l", &log.display().to_string()]);
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(out.status.success(), "pg_ctl start: {}\n{log}", String::from_utf8_lossy(&out.stderr));
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// `pg_ctl -D DATA -w -t … ARGS`, as the cluster's owner.
    fn pg_ctl(&self, args: &[&str]) -> Output {
        let data = self.data();
        let mut all = vec!["-D", &data, "-w", "-t", PG_CTL_WAIT_SECS];
        all.extend_from_slice(args);
        self.owner_command(&self.bin.join("pg_ctl"), &all).output().expect("run pg_ctl")
    }

    /// Run `program` as the cluster's owner; it must succeed.
    fn as_owner(&self, program: &Path, args: &[&str]) {
        run(&mut self.owner_command(program, args), &program.display().to_string());
    }

    fn owner_command(&self, program: &Path, args: &[&str]) -> Command {
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", OWNER, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.args(args).current_dir(self.dir.path());
        command
    }
}

/// Run `command`, which must succeed; `what` names it in the panic with its output.
fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `PG_BIN_DIR`, else the newest `/usr/lib/postgresql/N/bin`, if it holds `initdb` and `pg_ctl`.
fn server_binaries() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir)).filter(|d| has_both(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}
