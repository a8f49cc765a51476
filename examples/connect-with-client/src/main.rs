//! `connect-with-client`: connect to an OAuth-protected MCP server the way an
//! AI platform does when a user clicks "Connect".
//!
//! ```text
//! # terminal 1: the example server
//! cargo run -p mcp-server-example
//! # terminal 2: this client (the URL defaults to http://127.0.0.1:8000/mcp)
//! cargo run -p connect-with-client -- http://127.0.0.1:8000/mcp
//! cargo run -p connect-with-client -- --no-browser http://127.0.0.1:8000/mcp   # only print the URL
//! ```
//!
//! Use the same host name the server advertises (its `PUBLIC_URL`): rmcp
//! checks that the protected-resource metadata describes the URL it was given.
//!
//! What happens:
//! 1. a loopback listener is bound on `127.0.0.1:<random port>`;
//! 2. OAuth discovery, dynamic client registration and PKCE run inside rmcp
//!    (see the `connect_with_client` library);
//! 3. the system browser opens the authorization URL (`xdg-open` with a desktop session,
//!    `open` on macOS, the URL handler on Windows), and the URL is printed too, for when
//!    there is no browser or it did not open (`--no-browser`: only print it). Sign in and
//!    click "Allow";
//! 4. the browser is redirected to `http://127.0.0.1:<port>/callback?code=…&state=…`,
//!    which this program answers with a "you can close this tab" page;
//! 5. the code is exchanged for tokens and the client talks MCP over Streamable
//!    HTTP: it lists the tools, calls `roll_dice` and `greeting_card`, and reads
//!    the `ui://acme/greeting-card` resource.
//!
//! Set `RUST_LOG=debug` to watch the OAuth requests.

use std::time::Duration;

use anyhow::Context as _;
use connect_with_client::{AuthorizationResponse, LoginDriver, McpClient, connect};
use reqwest::Url;
use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams, ResourceContents};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

const DEFAULT_MCP_URL: &str = "http://127.0.0.1:8000/mcp";
const CALLBACK_PATH: &str = "/callback";
/// How long to wait for the user to finish signing in.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let mut open_browser = true;
    let mut mcp_url = DEFAULT_MCP_URL.to_owned();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--no-browser" => open_browser = false,
            flag if flag.starts_with('-') => anyhow::bail!("unknown option {flag}; usage: [--no-browser] [MCP_URL]"),
            url => url.clone_into(&mut mcp_url),
        }
    }
    println!("Connecting to {mcp_url}");

    // Discovery, registration, login and token exchange, then `initialize`.
    let (client, session) = connect(&mcp_url, LoopbackLogin { listener: None, open_browser }).await?;
    let credentials = session.credentials().await?;
    println!(
        "Signed in. client_id={}, scope={}, token expires in {}s, refresh token: {}",
        credentials.client_id,
        credentials.scope.as_deref().unwrap_or("(not reported)"),
        credentials.expires_in.map_or("?".into(), |s| s.to_string()),
        credentials.refresh_token.is_some(),
    );
    if let Some(info) = client.peer_info()
        && let Some(server) = &info.server_info
    {
        println!("Connected to {} {}", server.name, server.version);
    }

    println!("\nTools:");
    for tool in client.list_all_tools().await? {
        println!("  - {}: {}", tool.name, tool.description.as_deref().unwrap_or(""));
    }

    let dice = call_tool(&client, "roll_dice", serde_json::json!({ "sides": 20 })).await?;
    println!("\nroll_dice(sides: 20) → {dice}");
    let message = serde_json::json!({ "message": "Hello from connect-with-client" });
    let card = call_tool(&client, "greeting_card", message).await?;
    println!("greeting_card(…) → {card}");

    let resource = client.read_resource(ReadResourceRequestParams::new("ui://acme/greeting-card")).await?;
    for contents in &resource.contents {
        let (uri, mime, size) = match contents {
            ResourceContents::TextResourceContents { uri, mime_type, text, .. } => (uri, mime_type, text.len()),
            ResourceContents::BlobResourceContents { uri, mime_type, blob, .. } => {
                (uri, mime_type, base64_decoded_len(blob))
            }
            other => {
                println!("\nResource contents of an unknown kind: {other:?}");
                continue;
            }
        };
        println!("\nResource {uri}: {}, {size} bytes", mime.as_deref().unwrap_or("(no mime type)"));
    }

    client.cancel().await?;
    Ok(())
}

/// Calls a tool and renders its result: the text content, plus the structured
/// content if any.
async fn call_tool(client: &McpClient, name: &'static str, arguments: serde_json::Value) -> anyhow::Result<String> {
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    let params = CallToolRequestParams::new(name).with_arguments(arguments);
    let result = client.call_tool(params).await?;
    let mut parts: Vec<String> =
        result.content.iter().filter_map(|block| block.as_text().map(|text| text.text.clone())).collect();
    if let Some(structured) = &result.structured_content {
        parts.push(format!("structured: {structured}"));
    }
    let text = parts.join(" | ");
    Ok(if result.is_error == Some(true) { format!("ERROR: {text}") } else { text })
}

fn base64_decoded_len(blob: &str) -> usize {
    let padding = blob.bytes().rev().take_while(|b| *b == b'=').count();
    (blob.len() / 4 * 3).saturating_sub(padding)
}

/// The desktop-app login: open the system browser on the URL (and print it), wait
/// for the browser's redirect on a loopback port (RFC 8252 §7.3).
struct LoopbackLogin {
    listener: Option<TcpListener>,
    /// Whether to try the system browser; the URL is printed either way.
    open_browser: bool,
}

impl LoginDriver for LoopbackLogin {
    async fn redirect_uri(&mut self) -> anyhow::Result<String> {
        // Port 0: the OS picks a free port; it is bound now, before registration.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        self.listener = Some(listener);
        Ok(format!("http://127.0.0.1:{port}{CALLBACK_PATH}"))
    }

    async fn authorize(
        &mut self,
        authorization_url: &str,
        redirect_uri: &str,
    ) -> anyhow::Result<AuthorizationResponse> {
        let listener = self.listener.take().context("redirect_uri() was not called")?;
        let command = if self.open_browser {
            browser_command(std::env::consts::OS, &|name| std::env::var_os(name))
        } else {
            None
        };
        let opened = match command {
            Some((program, args)) => match launch(program, &args, authorization_url).await {
                Ok(()) => true,
                Err(error) => {
                    println!("\nCould not open a browser ({program}: {error}).");
                    false
                }
            },
            None => false,
        };
        if opened {
            println!(
                "\nYour browser opened the sign-in page. If it did not, open this URL to sign in and approve access:\n\n  {authorization_url}\n"
            );
        } else {
            println!("\nOpen this URL in your browser to sign in and approve access:\n\n  {authorization_url}\n");
        }
        println!("Waiting for the browser to come back to {redirect_uri} …");
        let base = Url::parse(redirect_uri)?;
        // Serve each connection on its own task: browsers also open idle
        // pre-connections and ask for /favicon.ico.
        let (found, mut callbacks) = tokio::sync::mpsc::channel(1);
        let accept_loop = async move {
            loop {
                let (stream, _) = listener.accept().await?;
                let (found, base) = (found.clone(), base.clone());
                tokio::spawn(async move {
                    let served = tokio::time::timeout(Duration::from_secs(30), handle_callback(stream, &base));
                    match served.await {
                        Ok(Ok(Some(callback))) => drop(found.send(callback).await),
                        Ok(Ok(None)) => {}
                        Ok(Err(error)) => tracing::debug!(%error, "loopback connection failed"),
                        Err(_) => tracing::debug!("idle loopback connection dropped"),
                    }
                });
            }
        };
        let wait = async {
            tokio::select! {
                result = accept_loop => result,
                Some(callback) = callbacks.recv() => callback,
            }
        };
        tokio::time::timeout(LOGIN_TIMEOUT, wait).await.context("timed out waiting for the browser")?
    }
}

/// Serves one request on the loopback listener: `Some(..)` when it was the
/// OAuth callback (successful or not), `None` for anything else.
async fn handle_callback(
    mut stream: TcpStream,
    base: &Url,
) -> std::io::Result<Option<anyhow::Result<AuthorizationResponse>>> {
    // Read the request head; only the request line matters.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut request_line = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) = (request_line.next(), request_line.next().unwrap_or("/"));
    let url = match base.join(target) {
        Ok(url) if method == Some("GET") && url.path() == CALLBACK_PATH => url,
        _ => {
            respond(&mut stream, "404 Not Found", "Not found.").await?;
            return Ok(None);
        }
    };
    let callback = AuthorizationResponse::from_redirect_url(&url);
    let (status, message) = match &callback {
        Ok(_) => ("200 OK", "Signed in. You can close this tab and return to the terminal."),
        Err(_) => ("400 Bad Request", "Sign-in failed. See the terminal for details."),
    };
    respond(&mut stream, status, message).await?;
    Ok(Some(callback))
}

async fn respond(stream: &mut TcpStream, status: &str, message: &str) -> std::io::Result<()> {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>connect-with-client</title></head>\
         <body style=\"font-family:sans-serif;text-align:center;margin-top:4em\"><p>{message}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}

/// A program and the arguments that go before the URL.
type Opener = (&'static str, Vec<&'static str>);

/// The program (and its leading arguments) that opens a URL in the system browser on `os`, or
/// `None` where there is none to use: on Linux and the BSDs only inside a desktop session
/// (`DISPLAY` or `WAYLAND_DISPLAY`), since `xdg-open` over SSH would start a text browser in
/// this very terminal.
fn browser_command(os: &str, env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Option<Opener> {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|name| env(name).is_some_and(|v| !v.is_empty()));
    match os {
        "macos" => Some(("open", Vec::new())),
        // Not `cmd /C start`: cmd would split the URL at each `&` of its query.
        "windows" => Some(("rundll32", vec!["url.dll,FileProtocolHandler"])),
        "linux" | "freebsd" | "openbsd" | "netbsd" | "dragonfly" if desktop => Some(("xdg-open", Vec::new())),
        _ => None,
    }
}

/// How long the opener may take to say it failed; one still running after that is taken to
/// have handed the URL to a browser (and is left to finish on its own).
const OPENER_GRACE: Duration = Duration::from_secs(3);

/// Run the opener on `url`: `Ok` once it succeeded or is still running after
/// [`OPENER_GRACE`], the reason otherwise.
async fn launch(program: &str, args: &[&str], url: &str) -> anyhow::Result<()> {
    let mut child = std::process::Command::new(program)
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = tokio::time::Instant::now() + OPENER_GRACE;
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::ensure!(status.success(), "exited with {status}");
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            // Reaped when it exits, so that it does not linger as a zombie.
            std::thread::spawn(move || child.wait());
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    #[test]
    fn the_browser_opener_fits_the_platform_and_needs_a_desktop_on_linux() {
        let desktop = |name: &str| (name == "DISPLAY").then(|| OsString::from(":0"));
        let wayland = |name: &str| (name == "WAYLAND_DISPLAY").then(|| OsString::from("wayland-0"));
        let ssh = |_: &str| None;
        let empty = |_: &str| Some(OsString::new());
        type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;
        let cases: [(&str, Env<'_>, Option<Opener>); 8] = [
            ("linux", &desktop, Some(("xdg-open", vec![]))),
            ("linux", &wayland, Some(("xdg-open", vec![]))),
            ("linux", &ssh, None),
            ("linux", &empty, None),
            ("freebsd", &desktop, Some(("xdg-open", vec![]))),
            ("macos", &ssh, Some(("open", vec![]))),
            ("windows", &ssh, Some(("rundll32", vec!["url.dll,FileProtocolHandler"]))),
            ("android", &desktop, None),
        ];
        for (os, env, want) in cases {
            assert_eq!(browser_command(os, env), want, "{os}");
        }
    }

    #[tokio::test]
    async fn a_failing_or_missing_opener_is_reported_and_a_working_one_is_not() {
        let missing = launch("/nonexistent/xdg-open", &[], "http://127.0.0.1/").await.expect_err("no such program");
        assert_eq!(
            missing.downcast_ref::<std::io::Error>().map(std::io::Error::kind),
            Some(std::io::ErrorKind::NotFound)
        );
        let failed = launch("false", &[], "http://127.0.0.1/").await.expect_err("exit status 1");
        assert_eq!(failed.to_string(), "exited with exit status: 1");
        launch("true", &[], "http://127.0.0.1/").await.expect("exit status 0");
        // Still running after the grace period: taken as opened, without waiting for it
        // (`sleep 5 0` ends on its own two seconds later).
        let started = std::time::Instant::now();
        launch("sleep", &["5"], "0").await.expect("still running");
        let waited = started.elapsed();
        assert!(waited >= OPENER_GRACE && waited < Duration::from_secs(5), "{waited:?}");
    }
}
