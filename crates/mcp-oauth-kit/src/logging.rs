//! The process's log, set up the way an operator expects of a server: one call at the top of
//! `main`, configured from the environment, always to stderr (stdout stays for what a person
//! needs to read at start).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `RUST_LOG` | the filter, in [`EnvFilter`] syntax; a malformed one stops the start | `info,rmcp=warn` |
//! | `LOG_FORMAT` | `text` for lines a person reads, `json` for one object a line | `text` |
//! | `NO_COLOR` | set and not empty: no colours ([no-color.org](https://no-color.org)) | unset |
//!
//! Every line written while the kit serves a request carries that request's id (the response's
//! `x-request-id`): `request_id=…` at the end of a text line, a `"request_id"` member first in a
//! JSON object. A server that installs its own subscriber gets the same by wrapping its event
//! format in [`WithRequestId`].
//!
//! Text is coloured only when stderr is a terminal: a log redirected to a file, a pipe or
//! journald stays plain. Needs the `logging` feature (on by default), which brings
//! tracing-subscriber, the subscriber nearly every `tracing` user installs.
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     mcp_oauth_kit::logging::init()?;
//!     tracing::info!("the log is set up");
//!     Ok(())
//! }
//! ```

use std::fmt;
use std::io::IsTerminal as _;

use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, format};
use tracing_subscriber::registry::LookupSpan;

use crate::error::ConfigError;
use crate::request_id;

/// The filter when `RUST_LOG` is unset or blank: the kit's start line and warnings, without
/// rmcp's per-session chatter.
pub const DEFAULT_FILTER: &str = "info,rmcp=warn";

/// Install the process's log from `RUST_LOG`, `LOG_FORMAT` and `NO_COLOR` (see the
/// [module](self)), writing to stderr.
///
/// # Errors
/// [`ConfigError`] naming `RUST_LOG` when it is not a filter, `LOG_FORMAT` when it is neither
/// `text` nor `json`, and `logging` when the process already has a global `tracing`
/// subscriber.
pub fn init() -> Result<(), ConfigError> {
    let settings = LogSettings::from_lookup(|name| std::env::var(name).ok())?;
    let log = tracing_subscriber::fmt().with_env_filter(settings.filter).with_writer(std::io::stderr);
    let installed = match settings.json {
        true => log.json().event_format(WithRequestId::new(format().json())).try_init(),
        false => {
            let colour = settings.colour && std::io::stderr().is_terminal();
            log.with_ansi(colour).event_format(WithRequestId::new(format().with_ansi(colour))).try_init()
        }
    };
    installed.map_err(|e| ConfigError::new("logging", format!("a global tracing subscriber is already set ({e})")))
}

/// What the environment asks of the log.
#[derive(Debug)]
struct LogSettings {
    filter: EnvFilter,
    /// `LOG_FORMAT=json`.
    json: bool,
    /// Colours allowed (no `NO_COLOR`); used only when stderr is a terminal too.
    colour: bool,
}

impl LogSettings {
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let filter = match get("RUST_LOG") {
            Some(v) => EnvFilter::try_new(&v)
                .map_err(|e| ConfigError::new("RUST_LOG", format!("{v:?} is not a log filter ({e})")))?,
            None => EnvFilter::new(DEFAULT_FILTER),
        };
        let json = match get("LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => return Err(ConfigError::new("LOG_FORMAT", format!("{other:?} is not text or json"))),
        };
        Ok(Self { filter, json, colour: get("NO_COLOR").is_none() })
    }
}

/// An event format that adds `request_id` to the lines of a request: a `request_id=…` field
/// at the end of a text line, a `"request_id"` member first in a JSON object. [`init`] uses it;
/// a server with its own subscriber wraps its format in it:
///
/// ```
/// use mcp_oauth_kit::logging::WithRequestId;
/// use tracing_subscriber::fmt::format;
///
/// // Text: `… INFO mcp_oauth_kit::router: request method=POST … request_id=…`
/// let text = tracing_subscriber::fmt().event_format(WithRequestId::new(format())).finish();
/// // JSON: `{"request_id":"…","timestamp":…}`
/// let json = tracing_subscriber::fmt().json().event_format(WithRequestId::new(format().json())).finish();
/// # drop((text, json));
/// ```
///
/// Lines written outside a request, and by tasks a request spawns (rmcp runs each MCP
/// request's handler in a task of its own), are left as the wrapped format writes them.
///
/// The wrapped format writes into a buffer, so `Writer::has_ansi_escapes` reads `false`
/// there: a format with colour says so itself (`format().with_ansi(true)`).
#[derive(Clone, Debug, Default)]
pub struct WithRequestId<F> {
    inner: F,
}

impl<F> WithRequestId<F> {
    /// Add the request id to the lines `inner` formats.
    pub fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        request_id::with_current(|id| {
            let Some(id) = id else { return self.inner.format_event(ctx, writer.by_ref(), event) };
            let mut line = String::new();
            self.inner.format_event(ctx, Writer::new(&mut line), event)?;
            // The id is plain ASCII (letters, digits and `-_.:`), so it needs no escaping in
            // either format.
            if let Some(members) = line.strip_prefix('{') {
                write!(writer, "{{\"request_id\":\"{id}\",{members}")
            } else {
                let (text, end) = match line.strip_suffix('\n') {
                    Some(text) => (text, "\n"),
                    None => (line.as_str(), ""),
                };
                write!(writer, "{text} request_id={id}{end}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use http::HeaderValue;

    use crate::request_id;

    fn settings(pairs: &[(&str, &str)]) -> Result<LogSettings, ConfigError> {
        LogSettings::from_lookup(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn defaults_are_text_in_colour_with_the_default_filter() {
        let s = settings(&[]).expect("valid");
        assert!(!s.json && s.colour);
        assert_eq!(s.filter.max_level_hint(), Some(tracing::Level::INFO.into()));
        let s = settings(&[("RUST_LOG", " "), ("LOG_FORMAT", "text"), ("NO_COLOR", "")]).expect("blank is unset");
        assert!(!s.json && s.colour);
    }

    #[test]
    fn json_no_color_and_a_filter_are_taken() {
        let s =
            settings(&[("RUST_LOG", "debug,hyper=warn"), ("LOG_FORMAT", "json"), ("NO_COLOR", "1")]).expect("valid");
        assert!(s.json && !s.colour);
        assert_eq!(s.filter.max_level_hint(), Some(tracing::Level::DEBUG.into()));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [("RUST_LOG", "info,mcp_oauth_kit=loud"), ("LOG_FORMAT", "yaml"), ("LOG_FORMAT", "JSON ")] {
            let err = settings(&[(var, value)]).expect_err(value);
            assert_eq!(err.setting, var, "{value}");
        }
    }

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
        }
    }

    /// A line inside a request and one outside, through `subscriber`.
    async fn log_in_and_out(subscriber: impl tracing::Subscriber + Send + Sync + 'static) {
        let _default = tracing::subscriber::set_default(subscriber);
        let ((), _) = request_id::scope(HeaderValue::from_static("rid-7"), async {
            tokio::task::yield_now().await;
            tracing::warn!(status = 503, "inside");
        })
        .await;
        tracing::warn!("outside");
    }

    #[tokio::test]
    async fn a_text_line_of_a_request_ends_with_its_id() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .event_format(WithRequestId::new(format().with_ansi(false)))
            .finish();
        log_in_and_out(subscriber).await;
        let text = lines.text();
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got.len(), 2, "{text}");
        assert!(
            got[0].ends_with(" WARN mcp_oauth_kit::logging::tests: inside status=503 request_id=rid-7"),
            "{}",
            got[0]
        );
        assert!(got[1].ends_with(": outside") && !got[1].contains("request_id"), "{}", got[1]);
    }

    #[tokio::test]
    async fn a_json_line_of_a_request_has_its_id_as_a_member() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .event_format(WithRequestId::new(format().json()))
            .finish();
        log_in_and_out(subscriber).await;
        let text = lines.text();
        let got: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
        assert_eq!(got.len(), 2, "{text}");
        assert_eq!(got[0]["request_id"], "rid-7", "{}", got[0]);
        assert_eq!(got[0]["fields"]["message"], "inside", "{}", got[0]);
        assert_eq!(got[1].get("request_id"), None, "{}", got[1]);
    }
}
