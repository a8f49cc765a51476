//! Release builds place the functions a binary runs at start-up side by side, then those it
//! runs to answer tool calls: `<bin>.link-order.txt` next to `Cargo.toml`, made by
//! `cargo run --release -p mcp-bench -- link-order`. Idle RSS is mostly the code pages start-up
//! touched, and the kernel maps code in 64 KiB runs around each fault: packed, the example idles
//! at ~6 MiB instead of ~11 (docs/PERFORMANCE.md). Only the order of functions changes.
//!
//! The same script builds `mcp-bench`, whose rmcp ceiling is laid out the same way, so that the
//! benchmark compares equally built servers.
//!
//! The option is LLD's, so it is passed only where rustc links with its own LLD: x86_64 Linux
//! from Rust 1.90 on, unless a linker is configured. Elsewhere the build is the plain one.

use std::env;
use std::path::Path;
use std::process::Command;

const SUFFIX: &str = ".link-order.txt";

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let Ok(dir) = env::var("CARGO_MANIFEST_DIR") else { return };
    let Ok(entries) = Path::new(&dir).read_dir() else { return };
    let mut lists: Vec<(String, String)> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let bin = path.file_name()?.to_str()?.strip_suffix(SUFFIX)?.to_owned();
            Some((bin, path.to_str()?.to_owned()))
        })
        .collect();
    lists.sort();
    // The whole package directory: a list added later is then picked up too.
    println!("cargo:rerun-if-changed={dir}");
    if env::var("PROFILE").as_deref() != Ok("release") || !links_with_rust_lld() {
        return;
    }
    for (bin, path) in &lists {
        println!("cargo:rustc-link-arg-bin={bin}=-Wl,--symbol-ordering-file={path}");
        // Names this build does not have (another platform's, a stale list) are skipped.
        println!("cargo:rustc-link-arg-bin={bin}=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc links with its bundled LLD: the default for x86_64-unknown-linux-gnu since
/// Rust 1.90, kept unless a linker or linker flavour is chosen in the configuration.
fn links_with_rust_lld() -> bool {
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") || env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker=", "linker-flavor", "linker-features", "link-self-contained", "fuse-ld"]
        .iter()
        .any(|f| flags.contains(f))
    {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else { return false };
    // "rustc 1.95.0 (59807616e 2026-04-14)", or "rustc 1.96.0-nightly (…)".
    let version = String::from_utf8_lossy(&out.stdout);
    let mut parts = version.split_whitespace().nth(1).unwrap_or("").split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (1, 90)
}
