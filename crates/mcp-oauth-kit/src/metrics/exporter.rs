//! The process's Prometheus recorder: installed once, rendered on every scrape, and kept small
//! between scrapes by a background upkeep.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::{ConfigError, Error};
use crate::state::AppState;

/// Histogram buckets in seconds: from a cached token check (well under a millisecond) to a
/// sign-in's argon2 run and a slow database (seconds).
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often recorded histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The installed recorder, or why it could not be installed; decided once per process.
static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// A handle on the Prometheus exposition of a server's metrics. Get it from
/// [`McpServer::metrics`](crate::McpServer::metrics); cheap to clone. The
/// [module page](crate::metrics) lists the series.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    state: Arc<AppState>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Install the process's recorder (the first call) and start recording.
    ///
    /// # Errors
    /// [`Error::Config`] when another `metrics` recorder is installed in this process.
    pub(crate) fn install(state: Arc<AppState>) -> Result<Self, Error> {
        let installed = RECORDER.get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .map_err(|e| e.to_string())?;
            let handle = builder.install_recorder().map_err(|e| e.to_string())?;
            let upkeep = handle.clone();
            // Histogram samples wait in a buffer until a scrape or an upkeep folds them in;
            // without this a server nobody scrapes would grow it for good.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                })
                .map_err(|e| e.to_string())?;
            Ok(handle)
        });
        match installed {
            Ok(handle) => {
                super::enable();
                Ok(Self { handle: handle.clone(), state })
            }
            Err(why) => {
                Err(ConfigError::new("metrics", format!("cannot install the Prometheus recorder: {why}")).into())
            }
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every series recorded so far, for a
    /// `GET /metrics` answer with `Content-Type: text/plain; version=0.0.4`.
    pub fn render(&self) -> String {
        super::mcp_sessions(self.state.sessions.len());
        self.handle.render()
    }
}
