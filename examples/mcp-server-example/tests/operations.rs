//! The operator's procedures of docs/DEPLOY.md against the real `mcp-server-example` binary on
//! SQLite: a cold copy of the main file after SIGTERM, `backup PATH` while the server runs,
//! restoring (a database the server cannot write stops its start), and `revoke-all`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::{Launch, Server, TempDir, Tokens, oauth_error, server_bin, tokens_of};

/// How long a command of the binary (`backup`, `revoke-all`, a refused start) may take.
const COMMAND_BOUND: Duration = Duration::from_secs(20);

fn sqlite_url(file: &Path) -> String {
    format!("sqlite://{}", file.display())
}

/// A server on the SQLite file `file`, stateless so that each tool call stands alone.
async fn start_on(file: &Path) -> Server {
    Launch::local().env("DATABASE_URL", sqlite_url(file)).env("MCP_STATELESS", "true").start().await
}

/// Run the binary with `args` on `database`, bounded; returns its output.
fn run_command(database: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(server_bin())
        .args(args)
        .env("DATABASE_URL", sqlite_url(database))
        .env("PUBLIC_URL", support::PUBLIC_URL)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the binary");
    let deadline = Instant::now() + COMMAND_BOUND;
    while child.try_wait().expect("poll").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} did not finish within {COMMAND_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the command's output")
}

/// Two clients, each with a user signed in: what a copy must keep.
async fn clients_with_tokens(server: &Server) -> Vec<(String, Tokens)> {
    let mut signed_in = Vec::new();
    for (user, password) in [("alice", "password123"), ("bob", "hunter2")] {
        let client_id = server.register_public().await;
        let tokens = server.sign_in(&client_id, user, password).await;
        signed_in.push((client_id, tokens));
    }
    signed_in
}

/// A server on a new SQLite file `oauth.sqlite3` in a temp dir, with two clients signed in.
async fn serving_with_data(label: &str) -> (TempDir, PathBuf, Server, Vec<(String, Tokens)>) {
    let dir = TempDir::new(label);
    let live = dir.path().join("oauth.sqlite3");
    let server = start_on(&live).await;
    let signed_in = clients_with_tokens(&server).await;
    (dir, live, server, signed_in)
}

/// Every client, access token and refresh token of `signed_in` works on `server`.
async fn all_present(server: &Server, signed_in: &[(String, Tokens)]) {
    for ((client_id, tokens), user) in signed_in.iter().zip(["alice", "bob"]) {
        server.assert_rolls_as(&tokens.access, None, user).await;
        tokens_of(server.refresh(client_id, &tokens.refresh).await, "refresh on the copy").await;
        // The client is still registered: a new sign-in starts without registering again.
        server.sign_in(client_id, user, if user == "alice" { "password123" } else { "hunter2" }).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_the_main_file_alone_holds_every_client_and_token() {
    let (dir, live, server, signed_in) = serving_with_data("mcp-ops-cold-copy").await;
    assert!(server.sigterm().await.success(), "a clean stop");

    let wal = std::fs::metadata(dir.path().join("oauth.sqlite3-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0, "the write-ahead log was folded into the main file");
    let copy_dir = TempDir::new("mcp-ops-cold-copy-restored");
    let copy = copy_dir.path().join("oauth.sqlite3");
    std::fs::copy(&live, &copy).expect("copy the main file alone");
    let server = start_on(&copy).await;
    all_present(&server, &signed_in).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_the_server_runs_has_the_data() {
    let (dir, live, server, signed_in) = serving_with_data("mcp-ops-backup").await;

    let backup = dir.path().join("backup.sqlite3");
    let out = run_command(&live, &["backup", backup.to_str().expect("a UTF-8 path")]);
    assert!(out.status.success(), "backup: {}", String::from_utf8_lossy(&out.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&backup).expect("the backup").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "owner only");
    }
    // A second backup to the same name is refused and leaves the first one alone.
    let before = std::fs::read(&backup).expect("the backup");
    let out = run_command(&live, &["backup", backup.to_str().expect("a UTF-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"), "{out:?}");
    assert_eq!(std::fs::read(&backup).expect("the backup"), before);
    // The server kept serving throughout.
    server.assert_rolls_as(&signed_in[0].1.access, None, "alice").await;
    drop(server);

    let restored = start_on(&backup).await;
    all_present(&restored, &signed_in).await;
}

/// The operator's real case: a copy restored as root (owned by root, mode 0644) into the
/// service's directory, and the server started as the service's user, who may read but not
/// write it. As root, the test runs the binary as `nobody` (`setpriv`); otherwise the file is
/// made read-only for the test's own user (mode 0400), which stops a non-root process the
/// same way. Either way the start is refused with what to do, before the server listens.
#[test]
fn a_restored_database_the_service_cannot_write_stops_the_start() {
    let dir = TempDir::new("mcp-ops-restore");
    let service_dir = dir.path().join("state");
    std::fs::create_dir(&service_dir).expect("the service's directory");
    let file = service_dir.join("oauth.sqlite3");
    let out = run_command(&file, &["revoke-all"]);
    assert!(out.status.success(), "create the database: {out:?}");

    let root = Command::new("id").arg("-u").output().expect("id -u").stdout == b"0\n";
    let mut command = if root {
        #[cfg(unix)]
        std::os::unix::fs::chown(&service_dir, Some(65534), Some(65534)).expect("the directory is the service's");
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(server_bin());
        c
    } else {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).expect("chmod 0400");
        }
        Command::new(server_bin())
    };
    let out = command
        .env("DATABASE_URL", sqlite_url(&file))
        .env("PUBLIC_URL", support::PUBLIC_URL)
        .env("PORT", "0")
        .stdin(Stdio::null())
        .output()
        .expect("start the server");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused: {stderr}");
    let expected = format!("the SQLite database {} is read-only for this process", file.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(stderr.contains("chown") && stderr.contains("docs/DEPLOY.md"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Connect an MCP client"), "it never served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_all_ends_every_grant_while_the_server_runs() {
    let (_dir, live, server, signed_in) = serving_with_data("mcp-ops-revoke-all").await;

    let out = run_command(&live, &["revoke-all"]);
    assert!(out.status.success(), "revoke-all: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Revoked every grant"), "{out:?}");
    for (client_id, tokens) in &signed_in {
        let (status, error) = oauth_error(server.refresh(client_id, &tokens.refresh).await).await;
        assert_eq!((status, error.as_str()), (StatusCode::BAD_REQUEST, "invalid_grant"));
        // Another process revoked it: this server notices once its verified-token cache (1 s)
        // lets go.
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.roll_dice_status(&tokens.access).await != StatusCode::UNAUTHORIZED {
            assert!(Instant::now() < deadline, "the access token still opens /mcp");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Clients stay registered: the user signs in again.
    let (client_id, _) = &signed_in[0];
    server.assert_rolls_as(&server.sign_in(client_id, "alice", "password123").await.access, None, "alice").await;
}
