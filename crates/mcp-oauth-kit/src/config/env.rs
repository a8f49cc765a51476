//! Reading a [`Config`] from the environment: one variable per setting, each malformed value
//! refused with a message that names it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::parse::{parse_bool, parse_count, parse_hosts, parse_origins, parse_secs, parse_secs_or_zero};
use super::{Config, DATABASE_URL, MCP_OAUTH_DATABASE_URL};
use crate::error::ConfigError;
use crate::upstream_tokens::UpstreamTokenKey;

impl Config {
    /// Read the configuration from the environment:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `HOST` | address to listen on | `127.0.0.1` |
    /// | `PORT` | port to listen on (`0`: one the system picks; needs `PUBLIC_URL`) | `8000` |
    /// | `PUBLIC_URL` | URL clients use (the issuer) | `http://127.0.0.1:$PORT` (or `http://$HOST:$PORT` for a specific `HOST`) |
    /// | `ACCESS_TOKEN_TTL_SECS` | access token lifetime | 3600 |
    /// | `REFRESH_TOKEN_TTL_SECS` | refresh token lifetime | 2592000 |
    /// | `GRANT_LIFETIME_SECS` | how long a sign-in lasts, rotation included ([`Config::grant_lifetime`]) | 7776000 |
    /// | `SESSION_TTL_SECS` | sign-in session lifetime at the authorization server (0 = no sessions, no remembered consent) | 43200 |
    /// | `CONSENT_TTL_SECS` | lifetime of a remembered consent (0 = never remember) | 7776000 |
    /// | `SWEEP_INTERVAL_SECS` | how often expired state is dropped ([`Config::sweep_interval`]) | 60 |
    /// | `STORE_TIMEOUT_SECS` | how long a request waits for one store operation ([`Config::store_timeout`]; 0 = no bound) | 15 |
    /// | `UNUSED_CLIENT_TTL_SECS` | how long a registration no user signed in to is kept (0 = for good) | 86400 |
    /// | `ALLOWED_HOSTS` | extra `Host` values, comma-separated | none |
    /// | `ALLOWED_ORIGINS` | extra browser origins, comma-separated | none |
    /// | `MCP_STATELESS` | `true` to serve MCP without sessions | `false` |
    /// | `MCP_SESSION_IDLE_TTL_SECS` | how long an unused MCP session is kept ([`Config::mcp_session_idle_ttl`]) | 86400 |
    /// | `OAUTH_RATE_LIMIT_PER_MINUTE` | requests per client address per minute at the OAuth endpoints (0 = off) | 600 |
    /// | `TRUST_FORWARDED_FOR` | `true` behind a proxy that sets `X-Forwarded-For` | `false` |
    /// | `TRUSTED_PROXIES` | proxies whose `X-Forwarded-For` is believed, addresses or CIDR ranges, comma-separated ([`Config::trusted_proxies`]) | none |
    /// | `TOKEN_RATE_LIMIT_PER_MINUTE` | requests per client address per minute at `/token` (0 = off) | 3000 |
    /// | `TOKEN_RATE_LIMIT_PER_CLIENT_PER_MINUTE` | requests per client per minute at `/token` (0 = off) | 1200 |
    /// | `LOGIN_FAILURES_PER_USER_AND_IP` | failed sign-ins per (username, address) per window before 429 (0 = off) | 5 |
    /// | `LOGIN_FAILURES_PER_USER` | failed sign-ins per username per window before growing delays (0 = off) | 20 |
    /// | `LOGIN_FAILURES_PER_IP` | failed sign-ins per address per window before 429 (0 = off) | 20 |
    /// | `LOGIN_FAILURE_WINDOW_SECS` | the sign-in throttles' window | 900 |
    /// | `TOKEN_CACHE_TTL_SECS` | how long a verified access token is trusted without asking again (0 = ask every time) | 1 |
    /// | `MCP_OAUTH_DATABASE_URL` | the kit's store: `memory`, `sqlite://path` or `postgres://…`; wins over `DATABASE_URL`, for an application that keeps its own data there | unset |
    /// | `DATABASE_URL` | the kit's store when `MCP_OAUTH_DATABASE_URL` is unset | unset (the application decides) |
    ///
    /// ```no_run
    /// use mcp_oauth_kit::Config;
    ///
    /// // A malformed variable stops the start with a message naming it.
    /// let config = Config::from_env().unwrap_or_else(|e| panic!("configuration: {e}"));
    /// println!("connect MCP clients to {}", config.resource());
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that is malformed.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] over any lookup function: a map, a secrets manager, a test's
    /// table.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use mcp_oauth_kit::Config;
    ///
    /// let vars = HashMap::from([("PUBLIC_URL", "https://mcp.example.com"), ("PORT", "9000")]);
    /// let config = Config::from_lookup(|name| vars.get(name).map(|v| v.to_string()))?;
    /// assert_eq!(config.listen_addr.port(), 9000);
    ///
    /// let bad = HashMap::from([("PORT", "eighty")]);
    /// let err = Config::from_lookup(|name| bad.get(name).map(|v| v.to_string())).unwrap_err();
    /// assert!(err.to_string().contains("PORT"));
    /// # Ok::<(), mcp_oauth_kit::ConfigError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable that is malformed.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let host: IpAddr = match get("HOST") {
            Some(h) => h.parse().map_err(|_| {
                ConfigError::new("HOST", format!("{h:?} is not an IP address (for example 127.0.0.1 or 0.0.0.0)"))
            })?,
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let port: u16 = match get("PORT") {
            Some(p) => {
                p.parse().map_err(|_| ConfigError::new("PORT", format!("{p:?} is not a port number (0-65535)")))?
            }
            None => 8000,
        };
        let public_url = match get("PUBLIC_URL") {
            Some(u) => u,
            None if port == 0 => {
                return Err(ConfigError::new(
                    "PORT",
                    "0 (a port the system picks at start) needs PUBLIC_URL, the address clients use".to_owned(),
                ));
            }
            None => {
                // The default is what a newcomer types into a client on this machine.
                let shown = if host.is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { host };
                match shown {
                    IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
                    IpAddr::V4(v4) => format!("http://{v4}:{port}"),
                }
            }
        };
        let mut config = Self::new(&public_url).map_err(|e| ConfigError::new("PUBLIC_URL", e.reason))?;
        config.listen_addr = SocketAddr::new(host, port);
        if let Some(v) = get("ACCESS_TOKEN_TTL_SECS") {
            config.access_token_ttl = parse_secs("ACCESS_TOKEN_TTL_SECS", &v)?;
        }
        if let Some(v) = get("REFRESH_TOKEN_TTL_SECS") {
            config.refresh_token_ttl = parse_secs("REFRESH_TOKEN_TTL_SECS", &v)?;
        }
        if let Some(v) = get("GRANT_LIFETIME_SECS") {
            config.grant_lifetime = parse_secs("GRANT_LIFETIME_SECS", &v)?;
        }
        if let Some(v) = get("SESSION_TTL_SECS") {
            config.session_ttl = parse_secs_or_zero("SESSION_TTL_SECS", &v)?;
        }
        if let Some(v) = get("CONSENT_TTL_SECS") {
            config.consent_ttl = parse_secs_or_zero("CONSENT_TTL_SECS", &v)?;
        }
        if let Some(v) = get("SWEEP_INTERVAL_SECS") {
            config.sweep_interval = parse_secs("SWEEP_INTERVAL_SECS", &v)?;
        }
        if let Some(v) = get("STORE_TIMEOUT_SECS") {
            config.store_timeout = parse_secs_or_zero("STORE_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("UNUSED_CLIENT_TTL_SECS") {
            config.unused_client_ttl = parse_secs_or_zero("UNUSED_CLIENT_TTL_SECS", &v)?;
        }
        if let Some(v) = get("ALLOWED_HOSTS") {
            config.extra_allowed_hosts = parse_hosts("ALLOWED_HOSTS", &v)?;
        }
        if let Some(v) = get("ALLOWED_ORIGINS") {
            config.extra_allowed_origins = parse_origins("ALLOWED_ORIGINS", &v)?;
        }
        if let Some(v) = get("MCP_STATELESS") {
            config.stateless = parse_bool("MCP_STATELESS", &v)?;
        }
        if let Some(v) = get("MCP_SESSION_IDLE_TTL_SECS") {
            config.mcp_session_idle_ttl = parse_secs("MCP_SESSION_IDLE_TTL_SECS", &v)?;
        }
        // The kit's own name first: an application may keep its business data in DATABASE_URL.
        let database = [MCP_OAUTH_DATABASE_URL, DATABASE_URL].into_iter().find_map(|var| get(var).map(|v| (var, v)));
        config.database_url = database.as_ref().map(|(_, url)| url.clone());
        config.database_url_from_env = database;
        if let Some(v) = get("UPSTREAM_TOKEN_KEY") {
            let key = UpstreamTokenKey::from_base64(&v).map_err(|why| ConfigError::new("UPSTREAM_TOKEN_KEY", why))?;
            config.upstream_token_key = Some(key);
        }
        if let Some(v) = get("TRUST_FORWARDED_FOR") {
            config.trust_forwarded_for = parse_bool("TRUST_FORWARDED_FOR", &v)?;
        }
        if let Some(v) = get("OAUTH_RATE_LIMIT_PER_MINUTE") {
            config.oauth_requests_per_minute = parse_count("OAUTH_RATE_LIMIT_PER_MINUTE", &v)?;
        }
        // Tuning for real traffic: proxies, the token endpoint, sign-in throttles, the cache.
        if let Some(v) = get("TRUSTED_PROXIES") {
            config.trusted_proxies = crate::client_address::parse_ranges("TRUSTED_PROXIES", &v)?;
        }
        for (var, field) in [
            ("TOKEN_RATE_LIMIT_PER_MINUTE", &mut config.token_requests_per_ip_per_minute),
            ("TOKEN_RATE_LIMIT_PER_CLIENT_PER_MINUTE", &mut config.token_requests_per_client_per_minute),
            ("LOGIN_FAILURES_PER_USER_AND_IP", &mut config.login_failures_per_user_and_ip),
            ("LOGIN_FAILURES_PER_USER", &mut config.login_failures_per_user),
            ("LOGIN_FAILURES_PER_IP", &mut config.login_failures_per_ip),
        ] {
            if let Some(v) = get(var) {
                *field = parse_count(var, &v)?;
            }
        }
        if let Some(v) = get("LOGIN_FAILURE_WINDOW_SECS") {
            config.login_failure_window = parse_secs("LOGIN_FAILURE_WINDOW_SECS", &v)?;
        }
        if let Some(v) = get("TOKEN_CACHE_TTL_SECS") {
            config.token_cache_ttl = parse_secs_or_zero("TOKEN_CACHE_TTL_SECS", &v)?;
        }
        if let Some(v) = get("METRICS_ADDR") {
            let addr = v.parse().map_err(|_| {
                ConfigError::new(
                    "METRICS_ADDR",
                    format!("{v:?} is not an address and port (for example 127.0.0.1:9464)"),
                )
            })?;
            config.metrics_addr = Some(addr);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn defaults_follow_host_and_port() {
        let c = Config::from_lookup(env(&[("PORT", "9001")])).expect("valid");
        assert_eq!(c.issuer(), "http://127.0.0.1:9001");
        assert_eq!(c.resource(), "http://127.0.0.1:9001/mcp");
        assert_eq!(c.listen_addr.to_string(), "127.0.0.1:9001");
    }

    #[test]
    fn public_url_is_normalised_and_used_for_every_url() {
        let c = Config::from_lookup(env(&[("PUBLIC_URL", "https://mcp.example.com/")])).expect("valid");
        assert_eq!(c.issuer(), "https://mcp.example.com");
        assert_eq!(c.url("/token"), "https://mcp.example.com/token");
        assert!(c.secure_cookies());
    }

    #[test]
    fn sessions_and_remembered_consent_can_be_turned_off() {
        let c = Config::from_lookup(env(&[])).expect("valid");
        assert_eq!(c.session_ttl, Duration::from_secs(12 * 3600));
        assert!(c.remembers_consent());
        let c = Config::from_lookup(env(&[("SESSION_TTL_SECS", "0")])).expect("valid");
        assert!(c.session_ttl.is_zero());
        assert!(!c.remembers_consent(), "no session, no remembered consent");
        let c = Config::from_lookup(env(&[("SESSION_TTL_SECS", "60"), ("CONSENT_TTL_SECS", "0")])).expect("valid");
        assert_eq!(c.session_ttl, Duration::from_secs(60));
        assert!(!c.remembers_consent());
    }

    #[test]
    fn grant_lifetime_comes_from_the_environment() {
        let c = Config::from_lookup(env(&[])).expect("valid");
        assert_eq!(c.grant_lifetime, Duration::from_secs(90 * 24 * 3600));
        let c = Config::from_lookup(env(&[("GRANT_LIFETIME_SECS", "3600")])).expect("valid");
        assert_eq!(c.grant_lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn sweep_interval_comes_from_the_environment() {
        let c = Config::from_lookup(env(&[])).expect("valid");
        assert_eq!(c.sweep_interval, Duration::from_secs(60));
        let c = Config::from_lookup(env(&[("SWEEP_INTERVAL_SECS", " 2 ")])).expect("valid");
        assert_eq!(c.sweep_interval, Duration::from_secs(2));
        // Zero would make `tokio::time::interval` panic in the sweeper: refused at start.
        for bad in ["0", "-1", "1.5", "2s", "soon"] {
            let err = Config::from_lookup(env(&[("SWEEP_INTERVAL_SECS", bad)])).expect_err(bad);
            assert_eq!(err.setting, "SWEEP_INTERVAL_SECS", "{bad}");
            assert!(err.to_string().contains("positive number of seconds"), "{bad}: {err}");
        }
    }

    #[test]
    fn unused_client_ttl_comes_from_the_environment() {
        let c = Config::from_lookup(env(&[])).expect("valid");
        assert_eq!(c.unused_client_ttl, Duration::from_secs(24 * 3600));
        let c = Config::from_lookup(env(&[("UNUSED_CLIENT_TTL_SECS", "3600")])).expect("valid");
        assert_eq!(c.unused_client_ttl, Duration::from_secs(3600));
        let c = Config::from_lookup(env(&[("UNUSED_CLIENT_TTL_SECS", "0")])).expect("valid");
        assert!(c.unused_client_ttl.is_zero(), "zero keeps every registration");
        let err = Config::from_lookup(env(&[("UNUSED_CLIENT_TTL_SECS", "a day")])).expect_err("not a number");
        assert_eq!(err.setting, "UNUSED_CLIENT_TTL_SECS");
    }

    #[test]
    fn tuning_comes_from_the_environment() {
        let c = Config::from_lookup(env(&[])).expect("valid");
        assert!(c.trusted_proxies.is_empty());
        assert_eq!((c.token_requests_per_ip_per_minute, c.token_requests_per_client_per_minute), (3000, 1200));
        assert_eq!((c.login_failures_per_user_and_ip, c.login_failures_per_user, c.login_failures_per_ip), (5, 20, 20));
        assert_eq!(c.store_timeout, Duration::from_secs(15));
        let c = Config::from_lookup(env(&[
            ("TRUSTED_PROXIES", "203.0.113.0/24, 10.0.0.2,2001:db8::/32"),
            ("TOKEN_RATE_LIMIT_PER_MINUTE", "6000"),
            ("TOKEN_RATE_LIMIT_PER_CLIENT_PER_MINUTE", "0"),
            ("LOGIN_FAILURES_PER_USER_AND_IP", "3"),
            ("LOGIN_FAILURES_PER_USER", "50"),
            ("LOGIN_FAILURES_PER_IP", "40"),
            ("LOGIN_FAILURE_WINDOW_SECS", "600"),
            ("TOKEN_CACHE_TTL_SECS", "0"),
            ("STORE_TIMEOUT_SECS", "4"),
        ]))
        .expect("valid");
        let shown: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["203.0.113.0/24", "10.0.0.2/32", "2001:db8::/32"]);
        assert_eq!((c.token_requests_per_ip_per_minute, c.token_requests_per_client_per_minute), (6000, 0));
        assert_eq!((c.login_failures_per_user_and_ip, c.login_failures_per_user, c.login_failures_per_ip), (3, 50, 40));
        assert_eq!(c.login_failure_window, Duration::from_secs(600));
        assert!(c.token_cache_ttl.is_zero());
        assert_eq!(c.store_timeout, Duration::from_secs(4));
        let e = Config::from_lookup(env(&[("STORE_TIMEOUT_SECS", "soon")])).expect_err("not seconds");
        assert!(e.to_string().contains("STORE_TIMEOUT_SECS"), "{e}");
    }

    #[test]
    fn allowed_hosts_and_origins_take_what_browsers_send() {
        let c = Config::from_lookup(env(&[
            ("ALLOWED_HOSTS", "mcp.example.com, 127.0.0.1:8443,[::1]:9000"),
            ("ALLOWED_ORIGINS", "https://app.example.com,http://127.0.0.1:3000/"),
        ]))
        .expect("valid");
        assert_eq!(c.extra_allowed_hosts, ["mcp.example.com", "127.0.0.1:8443", "[::1]:9000"]);
        assert_eq!(c.extra_allowed_origins, ["https://app.example.com", "http://127.0.0.1:3000/"]);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("PUBLIC_URL", "ftp://x"),
            ("PUBLIC_URL", "not a url"),
            ("PUBLIC_URL", "https://x/?q=1"),
            ("PUBLIC_URL", "https://x/prefix"),
            ("PORT", "eighty"),
            ("PORT", "0"),
            ("HOST", "example.com"),
            ("ACCESS_TOKEN_TTL_SECS", "0"),
            ("MCP_STATELESS", "maybe"),
            ("TRUST_FORWARDED_FOR", "perhaps"),
            ("OAUTH_RATE_LIMIT_PER_MINUTE", "-1"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, nginx"),
            ("TRUSTED_PROXIES", "10.0.0.1/8"),
            ("TOKEN_RATE_LIMIT_PER_MINUTE", "lots"),
            ("TOKEN_RATE_LIMIT_PER_CLIENT_PER_MINUTE", "1e3"),
            ("LOGIN_FAILURES_PER_USER_AND_IP", "-5"),
            ("LOGIN_FAILURES_PER_USER", "five"),
            ("LOGIN_FAILURES_PER_IP", "20.5"),
            ("LOGIN_FAILURE_WINDOW_SECS", "0"),
            ("TOKEN_CACHE_TTL_SECS", "1s"),
            ("SESSION_TTL_SECS", "12h"),
            ("CONSENT_TTL_SECS", "-5"),
            ("SWEEP_INTERVAL_SECS", "0"),
            ("REFRESH_TOKEN_TTL_SECS", "soon"),
            ("GRANT_LIFETIME_SECS", "0"),
            ("GRANT_LIFETIME_SECS", "90d"),
            ("UNUSED_CLIENT_TTL_SECS", "1d"),
            ("ALLOWED_HOSTS", "https://mcp.example.com"),
            ("ALLOWED_HOSTS", "mcp.example.com/mcp"),
            ("ALLOWED_HOSTS", "a.example, b example"),
            ("ALLOWED_ORIGINS", "app.example.com"),
            ("ALLOWED_ORIGINS", "https://app.example.com/path"),
            ("ALLOWED_ORIGINS", "https://app.example.com:443"),
            ("ALLOWED_ORIGINS", "ftp://app.example.com"),
        ];
        for (var, value) in cases {
            let err = Config::from_lookup(env(&[(var, value)])).expect_err(var);
            assert_eq!(err.setting, var, "{value}");
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn metrics_addr_is_off_unless_set_and_must_be_an_address() {
        assert_eq!(Config::from_lookup(env(&[])).expect("valid").metrics_addr, None);
        let c = Config::from_lookup(env(&[("METRICS_ADDR", "127.0.0.1:9464")])).expect("valid");
        assert_eq!(c.metrics_addr.map(|a| a.to_string()).as_deref(), Some("127.0.0.1:9464"));
        let err = Config::from_lookup(env(&[("METRICS_ADDR", "localhost")])).expect_err("not an address");
        assert_eq!(err.setting, "METRICS_ADDR");
    }

    #[test]
    fn the_kits_own_database_variable_wins_over_database_url() {
        let c = Config::from_lookup(env(&[("DATABASE_URL", "sqlite://app.db")])).expect("valid");
        assert_eq!(c.database_setting().expect("set"), ("DATABASE_URL", "sqlite://app.db"));
        let both = [("DATABASE_URL", "postgres://app@db/business"), ("MCP_OAUTH_DATABASE_URL", "sqlite://oauth.db")];
        let c = Config::from_lookup(env(&both)).expect("valid");
        assert_eq!(c.database_url.as_deref(), Some("sqlite://oauth.db"));
        assert_eq!(c.database_setting().expect("set"), ("MCP_OAUTH_DATABASE_URL", "sqlite://oauth.db"));
        let mut c = Config::from_lookup(env(&[])).expect("valid");
        assert_eq!(c.database_setting().expect_err("unset").setting, "DATABASE_URL");
        c.database_url = Some("memory".into());
        assert_eq!(c.database_setting().expect("set in code").0, "Config::database_url");
    }
}
