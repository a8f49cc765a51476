//! Validation of configuration values: each parser names the setting it reads in its error.

use std::time::Duration;

use url::Url;

use crate::error::ConfigError;

pub(super) fn parse_public_url(setting: &str, raw: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(raw).map_err(|e| ConfigError::new(setting, format!("{raw:?} is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(setting, format!("{raw:?} must start with http:// or https://")));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(setting, format!("{raw:?} must have a host and no query or fragment")));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(ConfigError::new(
            setting,
            format!("{raw:?} must not have a path: serve the kit at the root of a host"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(setting, format!("{raw:?} must not carry credentials")));
    }
    Ok(url)
}

pub(super) fn parse_secs(setting: &str, raw: &str) -> Result<Duration, ConfigError> {
    match raw.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
        _ => Err(ConfigError::new(setting, format!("{raw:?} is not a positive number of seconds"))),
    }
}

pub(super) fn parse_secs_or_zero(setting: &str, raw: &str) -> Result<Duration, ConfigError> {
    raw.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| ConfigError::new(setting, format!("{raw:?} is not a whole number of seconds (0 = off)")))
}

pub(super) fn parse_count(setting: &str, raw: &str) -> Result<u32, ConfigError> {
    raw.parse().map_err(|_| ConfigError::new(setting, format!("{raw:?} is not a whole number (0 = off)")))
}

pub(super) fn parse_bool(setting: &str, raw: &str) -> Result<bool, ConfigError> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(ConfigError::new(setting, format!("{raw:?} is not true or false"))),
    }
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// `Host` values, `name` or `name:port`: a URL or a path here would never match a request and
/// silently leave the server refusing the host it was meant to accept.
pub(super) fn parse_hosts(setting: &str, raw: &str) -> Result<Vec<String>, ConfigError> {
    let hosts = split_list(raw);
    for host in &hosts {
        let bare = !host.contains(|c: char| c.is_whitespace() || "/?#@\\".contains(c));
        let parsed = Url::parse(&format!("http://{host}")).ok();
        if !bare || parsed.as_ref().and_then(Url::host_str).is_none_or(str::is_empty) {
            return Err(ConfigError::new(
                setting,
                format!("{host:?} is not a host name with an optional port (for example mcp.example.com:8443)"),
            ));
        }
    }
    Ok(hosts)
}

/// Browser origins, `scheme://host[:port]` as browsers send them in `Origin`.
pub(super) fn parse_origins(setting: &str, raw: &str) -> Result<Vec<String>, ConfigError> {
    let origins = split_list(raw);
    for origin in &origins {
        let serialized = Url::parse(origin)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| u.origin().ascii_serialization());
        if !serialized.is_some_and(|s| s.eq_ignore_ascii_case(origin.trim_end_matches('/'))) {
            return Err(ConfigError::new(
                setting,
                format!(
                    "{origin:?} is not an origin as browsers send it: scheme://host[:port], no path, no default port"
                ),
            ));
        }
    }
    Ok(origins)
}
