//! The client's address behind proxies: which `X-Forwarded-For` entry to believe, and the
//! bucket an address counts in for the per-address limits and the request log.
//!
//! Each proxy appends the address it received the request from to `X-Forwarded-For`, so the
//! entries right of the client's own were written by proxies; the entries left of it are
//! whatever the client sent. Walking from the right and skipping the proxies we trust, the
//! first address that is not one of them is the client (behind a CDN and nginx: two hops).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use crate::config::Config;
use crate::error::ConfigError;

/// An address or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`): a proxy whose
/// `X-Forwarded-For` entries the kit believes (see [`Config::trusted_proxies`]).
///
/// ```
/// use mcp_oauth_kit::http::AddressRange;
///
/// let nginx: AddressRange = "10.0.0.0/8".parse()?;
/// assert!(nginx.contains("10.1.2.3".parse()?));
/// assert!(!nginx.contains("192.0.2.7".parse()?));
/// assert!("10.0.0.0/33".parse::<AddressRange>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    network: IpAddr,
    prefix: u8,
}

impl AddressRange {
    /// Whether `ip` is in the range. An IPv4-mapped IPv6 address is its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked(u32::from(ip).into(), 32, self.prefix) == u32::from(net).into(),
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked(u128::from(ip), 128, self.prefix) == u128::from(net),
            _ => false,
        }
    }
}

/// `bits` with only the first `prefix` of its `width` bits kept.
fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 { 0 } else { bits & (u128::MAX << (width - prefix)) & (u128::MAX >> (128 - width)) }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why a text is not an [`AddressRange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRangeError(String);

impl fmt::Display for AddressRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not an IP address or CIDR range (for example 10.0.0.0/8 or 2001:db8::/32)", self.0)
    }
}

impl std::error::Error for AddressRangeError {}

impl FromStr for AddressRange {
    type Err = AddressRangeError;

    /// An address (a range of one), or `address/prefix` whose address has no bits set past
    /// the prefix: `10.0.0.1/8` is refused, since it most likely means a typo.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || AddressRangeError(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let network = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u8>().map_err(|_| bad())?,
            Some(_) => return Err(bad()),
            None => width,
        };
        if prefix > width {
            return Err(bad());
        }
        let range = Self { network, prefix };
        if masked(bits(network), width, prefix) != bits(network) {
            return Err(bad());
        }
        Ok(range)
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => v6.into(),
    }
}

impl fmt::Display for AddressRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Parse a comma-separated list of ranges, as `TRUSTED_PROXIES` holds it.
pub(crate) fn parse_ranges(setting: &str, raw: &str) -> Result<Vec<AddressRange>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|e: AddressRangeError| ConfigError::new(setting, e.to_string())))
        .collect()
}

/// The bucket a request's address counts in, for the per-address limits and the log line.
///
/// Without trusted proxies it is the TCP peer's. With [`Config::trusted_proxies`], a peer in
/// that list is a proxy: its `X-Forwarded-For` is walked from the right, skipping entries in
/// the list, and the first other address is the client. With [`Config::trust_forwarded_for`],
/// the peer is trusted whatever it is (one proxy in front, as before trusted proxies existed).
/// An entry that is not an address (with an optional port) ends the walk: the nearest trusted
/// hop counts instead, never an entry the client may have written.
///
/// An IPv4 address is its own bucket; an IPv6 address counts in its /64 (a single host usually
/// holds a whole /64, so per-address buckets would let it rotate through 2⁶⁴ of them); an
/// IPv4-mapped IPv6 address counts as its IPv4 address.
pub(crate) fn client_ip(config: &Config, headers: &http::HeaderMap, peer: Option<IpAddr>) -> String {
    client_address(headers, peer, config.trust_forwarded_for, &config.trusted_proxies)
        .map_or_else(|| "unknown".to_owned(), address_bucket)
}

/// Whether the TCP peer is a proxy whose headers are believed: any peer with
/// `TRUST_FORWARDED_FOR`, else one in `TRUSTED_PROXIES`.
pub(crate) fn peer_is_trusted(config: &Config, peer: Option<IpAddr>) -> bool {
    config.trust_forwarded_for || peer.is_some_and(|ip| config.trusted_proxies.iter().any(|r| r.contains(ip)))
}

fn client_address(
    headers: &http::HeaderMap,
    peer: Option<IpAddr>,
    trust_peer: bool,
    trusted: &[AddressRange],
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    let mut nearest = peer?;
    if !trust_peer && !is_trusted(nearest) {
        return Some(nearest);
    }
    // Every header line, right-most line last, each entry right to left.
    let lines: Vec<&http::HeaderValue> = headers.get_all("x-forwarded-for").iter().collect();
    for line in lines.iter().rev() {
        let Ok(line) = line.to_str() else { return Some(nearest) };
        for entry in line.rsplit(',') {
            let Some(ip) = parse_entry(entry.trim()) else { return Some(nearest) };
            if !is_trusted(ip) {
                return Some(ip);
            }
            nearest = ip;
        }
    }
    // Every hop was a trusted proxy: the one furthest out is the best we know.
    Some(nearest)
}

/// An `X-Forwarded-For` entry: an address, with or without a port (`192.0.2.7:5678`,
/// `[2001:db8::1]:443`, `[2001:db8::1]`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
}

/// An address's rate-limit bucket (see [`client_ip`]).
fn address_bucket(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(trust_forwarded_for: bool, trusted: &str) -> Config {
        let mut config = Config::new("http://127.0.0.1:1").expect("valid");
        config.trust_forwarded_for = trust_forwarded_for;
        config.trusted_proxies = parse_ranges("TRUSTED_PROXIES", trusted).expect("ranges");
        config
    }

    fn ip_for(config: &Config, peer: &str, lines: &[&str]) -> String {
        let mut h = http::HeaderMap::new();
        for line in lines {
            h.append("x-forwarded-for", http::HeaderValue::from_str(line).expect("a header value"));
        }
        client_ip(config, &h, Some(peer.parse().expect("ip")))
    }

    #[test]
    fn forwarded_for_is_trusted_only_when_configured() {
        let off = config(false, "");
        assert_eq!(ip_for(&off, "127.0.0.1", &["1.1.1.1, 2.2.2.2"]), "127.0.0.1");
        assert_eq!(ip_for(&config(true, ""), "127.0.0.1", &["1.1.1.1, 2.2.2.2"]), "2.2.2.2");
        // A peer that is not in the list is the client, whatever it claims.
        let listed = config(false, "10.0.0.0/8");
        assert_eq!(ip_for(&listed, "192.0.2.9", &["2.2.2.2"]), "192.0.2.9");
        assert_eq!(ip_for(&listed, "10.0.0.5", &["2.2.2.2"]), "2.2.2.2");
    }

    #[test]
    fn trust_forwarded_for_alone_takes_the_right_most_entry_with_its_port_stripped() {
        let c = config(true, "");
        // (X-Forwarded-For lines, the address used)
        let rows: [(&[&str], &str); 11] = [
            (&["1.1.1.1, 2.2.2.2"], "2.2.2.2"),
            (&["1.1.1.1,2.2.2.2 "], "2.2.2.2"),
            (&["1.1.1.1, 2.2.2.2:5678"], "2.2.2.2"),
            (&["1.1.1.1, [2001:db8::1]:443"], "2001:db8::/64"),
            (&["1.1.1.1, [2001:db8::1]"], "2001:db8::/64"),
            (&["1.1.1.1, 2001:db8::1"], "2001:db8::/64"),
            (&["1.1.1.1", "3.3.3.3"], "3.3.3.3"),
            // The entry the proxy wrote is not an address: the client's claims left of it
            // must not stand in for it.
            (&["1.1.1.1, not-an-address"], "127.0.0.1"),
            (&["1.1.1.1, 2.2.2.2:port"], "127.0.0.1"),
            (&["1.1.1.1, [2001:db8::1]x"], "127.0.0.1"),
            (&["1.1.1.1, "], "127.0.0.1"),
        ];
        for (lines, want) in rows {
            assert_eq!(ip_for(&c, "127.0.0.1", lines), want, "{lines:?}");
        }
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        // A CDN (203.0.113.0/24) in front of nginx (10.0.0.2): two hops.
        let c = config(false, "10.0.0.2, 203.0.113.0/24, 2001:db8:cd::/48");
        // (peer, X-Forwarded-For lines, the address used)
        let rows: [(&str, &[&str], &str); 10] = [
            // One hop: nginx saw the client directly.
            ("10.0.0.2", &["198.51.100.7"], "198.51.100.7"),
            // Two hops: the CDN appended the client, nginx appended the CDN.
            ("10.0.0.2", &["198.51.100.7, 203.0.113.5"], "198.51.100.7"),
            // The client wrote entries of its own: they stay left of its real address.
            ("10.0.0.2", &["6.6.6.6, 10.0.0.2, 198.51.100.7, 203.0.113.5"], "198.51.100.7"),
            ("10.0.0.2", &["203.0.113.9", "198.51.100.7, 203.0.113.5"], "198.51.100.7"),
            // A malformed entry where the client's should be: the nearest trusted hop counts.
            ("10.0.0.2", &["198.51.100.7, garbage, 203.0.113.5"], "203.0.113.5"),
            ("10.0.0.2", &["198.51.100.7, 999.1.1.1"], "10.0.0.2"),
            // Every entry is a trusted proxy: the furthest one.
            ("10.0.0.2", &["203.0.113.5, 10.0.0.2"], "203.0.113.5"),
            // IPv6 clients and proxies, with and without brackets and ports.
            ("10.0.0.2", &["[2001:db8:1:2::7]:443, [2001:db8:cd::1]"], "2001:db8:1:2::/64"),
            ("::ffff:10.0.0.2", &["2001:db8:1:2::7, 2001:db8:cd::1"], "2001:db8:1:2::/64"),
            // No header: the proxy itself.
            ("10.0.0.2", &[], "10.0.0.2"),
        ];
        for (peer, lines, want) in rows {
            assert_eq!(ip_for(&c, peer, lines), want, "{peer} {lines:?}");
        }
    }

    #[test]
    fn ranges_parse_strictly() {
        for good in ["10.0.0.0/8", "192.0.2.7", "0.0.0.0/0", "2001:db8::/32", "::1", "::ffff:10.0.0.0/8"] {
            assert!(good.parse::<AddressRange>().is_ok(), "{good}");
        }
        for bad in
            ["10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "nginx", "", "2001:db8::/129"]
        {
            assert!(bad.parse::<AddressRange>().is_err(), "{bad}");
        }
        let r: AddressRange = "2001:db8::/32".parse().expect("range");
        assert!(r.contains("2001:db8:ffff::1".parse().expect("ip")));
        assert!(!r.contains("2001:db9::1".parse().expect("ip")));
        assert!(!r.contains("10.0.0.1".parse().expect("ip")));
        let all: AddressRange = "0.0.0.0/0".parse().expect("range");
        assert!(all.contains("203.0.113.1".parse().expect("ip")));
        let err = parse_ranges("TRUSTED_PROXIES", "10.0.0.0/8, nginx").expect_err("a name");
        assert_eq!(err.setting, "TRUSTED_PROXIES");
        assert!(err.to_string().contains("\"nginx\""), "{err}");
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        let c = config(false, "");
        let bucket = |ip: &str| ip_for(&c, ip, &[]);
        assert_eq!(bucket("2001:db8:1:2::1"), bucket("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert_eq!(bucket("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(bucket("2001:db8:1:2::1"), bucket("2001:db8:1:3::1"));
        assert_eq!(bucket("::ffff:192.0.2.7"), "192.0.2.7", "an IPv4-mapped address is its IPv4 address");
        assert_ne!(bucket("192.0.2.7"), bucket("192.0.2.8"));
        assert_eq!(client_ip(&c, &http::HeaderMap::new(), None), "unknown");
    }
}
