//! The process's log, set up the way an operator expects of a server: one call at the top of
//! `main`, configured from the environment, always to stderr (stdout stays for what a person
//! needs to read at start).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `RUST_LOG` | the filter, in [`EnvFilter`] syntax; a malformed one stops the start | `info,rmcp=warn` |
//! | `LOG_FORMAT` | `text` for lines a person reads, `json` for one object a line (with the `request_id` of the request it belongs to) | `text` |
//! | `NO_COLOR` | set and not empty: no colours ([no-color.org](https://no-color.org)) | unset |
//!
//! Text is coloured only when stderr is a terminal: a log redirected to a file, a pipe or
//! journald stays plain. Needs the `logging` feature (on by default); a server with its own
//! `tracing` subscriber leaves it off and installs that instead.
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     mcp_oauth_kit::logging::init()?;
//!     tracing::info!("the log is set up");
//!     Ok(())
//! }
//! ```

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::error::ConfigError;

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
        true => log.json().try_init(),
        false => log.with_ansi(settings.colour && std::io::stderr().is_terminal()).try_init(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
