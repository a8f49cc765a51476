//! Log lines that name their request: [`WithRequestId`] wraps a `tracing-subscriber` event
//! format and adds the id of the request being served (the response's `x-request-id`) to each
//! line written while the kit serves it.
//!
//! ```
//! use mcp_oauth_kit::logging::WithRequestId;
//! use tracing_subscriber::fmt::format;
//!
//! // Text: `… INFO mcp_oauth_kit::router: request method=POST … request_id=…`
//! let text = tracing_subscriber::fmt().event_format(WithRequestId::new(format())).finish();
//! // JSON: `{"request_id":"…","timestamp":…}`
//! let json = tracing_subscriber::fmt().json().event_format(WithRequestId::new(format().json())).finish();
//! # drop((text, json));
//! ```
//!
//! Lines written outside a request, and by tasks a request spawns (rmcp runs each MCP
//! request's handler in a task of its own), are left as the wrapped format writes them.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::request_id;

/// An event format that adds `request_id` to the lines of a request: a `request_id=…` field
/// at the end of a text line, a `"request_id"` member first in a JSON object.
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
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use http::HeaderValue;
    use tracing_subscriber::fmt::format;

    use super::WithRequestId;
    use crate::request_id;

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
