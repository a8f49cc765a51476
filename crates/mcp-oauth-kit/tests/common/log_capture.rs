//! A process-wide log subscriber at `info` that writes into memory, for tests that check what
//! the server logs. The subscriber is global: a test binary that uses it shares it among its
//! tests, so each test looks only for lines it caused.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Everything logged so far, line by line.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.text().lines().map(str::to_owned).collect()
    }
}

/// The process-wide subscriber at `info`, without colour codes and with the request id on
/// the lines of a request (as the example logs), installed by the first test
/// that asks.
pub(crate) fn captured() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let log = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_ansi(false)
                .with_writer(move || writer.clone());
            let format = tracing_subscriber::fmt::format().with_ansi(false);
            #[cfg(feature = "logging")]
            log.event_format(mcp_oauth_kit::logging::WithRequestId::new(format)).init();
            #[cfg(not(feature = "logging"))]
            log.event_format(format).init();
            captured
        })
        .clone()
}
