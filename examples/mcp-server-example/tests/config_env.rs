//! A bad value for every environment variable the example reads (those of
//! `Config::from_env` with the store's, and `logging::init`'s `RUST_LOG` and `LOG_FORMAT`) stops the real binary at
//! start: exit status 1, before it serves, with a message naming the variable. A new
//! variable gets a row in [`BAD_VALUES`].

mod support;

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Each variable with a value it must refuse, and why the value is bad.
const BAD_VALUES: &[(&str, &str)] = &[
    ("HOST", "example.com"),
    ("PORT", "eighty"),
    ("PORT", "65536"),
    // A port the system picks, and no PUBLIC_URL to tell clients where that is.
    ("PORT", "0"),
    ("PUBLIC_URL", "ftp://mcp.example.com"),
    ("PUBLIC_URL", "https://mcp.example.com/prefix"),
    ("ACCESS_TOKEN_TTL_SECS", "0"),
    ("REFRESH_TOKEN_TTL_SECS", "a month"),
    ("GRANT_LIFETIME_SECS", "0"),
    ("SESSION_TTL_SECS", "12h"),
    ("CONSENT_TTL_SECS", "-5"),
    ("SWEEP_INTERVAL_SECS", "0"),
    ("UNUSED_CLIENT_TTL_SECS", "1.5"),
    ("ALLOWED_HOSTS", "https://mcp.example.com"),
    ("ALLOWED_ORIGINS", "app.example.com"),
    ("MCP_STATELESS", "maybe"),
    ("OAUTH_RATE_LIMIT_PER_MINUTE", "-1"),
    ("TRUST_FORWARDED_FOR", "perhaps"),
    ("DATABASE_URL", "mysql://db.example.com/mcp"),
    ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing-listens-here"),
    // The kit's own name wins over DATABASE_URL (set to `memory` for every case).
    ("MCP_OAUTH_DATABASE_URL", "mysql://db.example.com/mcp"),
    ("RUST_LOG", "info,mcp_oauth_kit=loud"),
    ("LOG_FORMAT", "yaml"),
];

/// How long a refused start may take (the unreachable database is refused at once).
const EXIT_BOUND: Duration = Duration::from_secs(15);

#[test]
fn a_bad_value_of_every_variable_stops_the_start_and_names_it() {
    for (name, value) in BAD_VALUES {
        // Everything else valid: a port the system picks, a database in memory.
        let mut command = Command::new(support::server_bin());
        command.env("PORT", "0").env("PUBLIC_URL", support::PUBLIC_URL).env("DATABASE_URL", "memory");
        command.env_remove("RUST_LOG");
        if *name == "PORT" {
            command.env_remove("PUBLIC_URL");
        }
        command.env(name, value).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("start the server");
        let deadline = Instant::now() + EXIT_BOUND;
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll the server") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name}={value:?}: the server started (still running after {EXIT_BOUND:?})");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        child.stderr.take().expect("piped stderr").read_to_string(&mut stderr).expect("read stderr");
        assert_eq!(status.code(), Some(1), "{name}={value:?}: exit status; stderr: {stderr}");
        let message = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_default();
        assert!(message.contains(name), "{name}={value:?}: the message names the variable: {stderr:?}");
    }
}

/// `.env.example` lists every variable of the README's Configuration table (each as a
/// `NAME=` line, set or commented out), so that a copy of it is a complete starting point.
#[test]
fn env_example_lists_every_variable_the_readme_documents() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let example = std::fs::read_to_string(root.join(".env.example")).expect(".env.example");
    let table = readme.split("\n## Configuration\n").nth(1).expect("a Configuration section");
    let table = table.split("\n## ").next().unwrap_or_default();
    let documented: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name))
        .collect();
    assert!(documented.len() >= 15, "the table's variables: {documented:?}");
    let listed = |name: &str| {
        example.lines().any(|l| l.trim_start_matches(['#', ' ']).strip_prefix(name).is_some_and(|r| r.starts_with('=')))
    };
    let missing: Vec<&&str> = documented.iter().filter(|name| !listed(name)).collect();
    assert!(missing.is_empty(), ".env.example lacks {missing:?}");
}
