//! What the HTTP server knows about the network in front of it: the public URL it is
//! reached at, and which TCP peers are proxies whose forwarding headers may be believed.
//!
//! Both are configuration, never taken from the request: a `Host` header or an
//! `X-Forwarded-For` from an arbitrary client is attacker-controlled, so the
//! RFC 9728 document and the `WWW-Authenticate` challenge use [`Edge::public_base`], and a
//! forwarded client address is read only when the TCP peer is a [`TrustedProxies`] member.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use axum::http::HeaderMap;

/// The default public base, the same as `--public-url`'s default and `serve --bind`'s.
pub const DEFAULT_PUBLIC_BASE: &str = "http://127.0.0.1:8080";

/// Set once by the composer (as a request extension), read by every request that needs
/// the caller's address or the server's own URL.
#[derive(Debug, Clone)]
pub struct Edge {
    public_base: Arc<str>,
    trusted_proxies: Arc<TrustedProxies>,
}

impl Default for Edge {
    fn default() -> Self {
        Self {
            public_base: DEFAULT_PUBLIC_BASE.into(),
            trusted_proxies: Arc::default(),
        }
    }
}

impl Edge {
    /// `public_base` must be an absolute `http(s)` URL without query or fragment; a
    /// trailing `/` is dropped so `{base}/mcp` is always one slash.
    pub fn new(public_base: &str, trusted_proxies: TrustedProxies) -> Result<Self, String> {
        let url = url::Url::parse(public_base)
            .map_err(|e| format!("public URL {public_base:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "public URL {public_base:?} must be an http:// or https:// URL with a host"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "public URL {public_base:?} must not have a query or fragment"
            ));
        }
        Ok(Self {
            public_base: public_base.trim_end_matches('/').into(),
            trusted_proxies: Arc::new(trusted_proxies),
        })
    }

    /// Where clients reach this server, without a trailing slash.
    pub fn public_base(&self) -> &str {
        &self.public_base
    }

    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.trusted_proxies
    }

    /// The client's address: the TCP peer, unless the peer is a trusted proxy, in which
    /// case the forwarding headers name it (see [`TrustedProxies::client_ip`]).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        self.trusted_proxies.client_ip(peer, headers)
    }
}

/// One entry of `--trusted-proxies`: an address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    addr: IpAddr,
    prefix: u8,
}

impl ProxyNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for ProxyNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = addr
            .parse::<IpAddr>()
            .map_err(|_| format!("trusted proxy {s:?} is not an IP address or CIDR block"))?
            .to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("trusted proxy {s:?}: prefix must be 0..={max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The proxies whose forwarding headers are believed; empty (the default) believes none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ProxyNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<ProxyNet>) -> Self {
        Self(nets)
    }

    /// Parses `10.0.0.0/8, 192.0.2.7` (an empty string is the empty list).
    pub fn parse(s: &str) -> Result<Self, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(ProxyNet::from_str)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address as seen through trusted proxies.
    ///
    /// A peer that is not trusted is the client, whatever headers it sent: otherwise any
    /// client could pick its own address (and rate-limit bucket). From a trusted peer,
    /// the hops are read right to left (each proxy appends the address it received the
    /// request from) and the first one that is not itself a trusted proxy is the client.
    /// An entry that is not an address (`unknown`, an obfuscated `_id`, garbage) stops the
    /// walk, and the last address known is used: it is one a trusted proxy vouched for.
    ///
    /// `X-Forwarded-For` is read first and `Forwarded` only when no `X-Forwarded-For`
    /// came: most load balancers (nginx, AWS, Google, Azure, Cloudflare) append to
    /// `X-Forwarded-For` and pass a client's own `Forwarded` through untouched, so
    /// preferring `Forwarded` would let a client behind them choose its address.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let xff: Vec<&str> = header_values(headers, "x-forwarded-for");
        let hops: Vec<&str> = if xff.is_empty() {
            header_values(headers, "forwarded")
                .into_iter()
                .filter_map(forwarded_for)
                .collect()
        } else {
            xff
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_node(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.contains(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// Every comma-separated element of every instance of header `name`, in order.
fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect()
}

/// The `for=` parameter of one `Forwarded` element (RFC 7239), quotes kept for
/// [`parse_node`]. An element without `for=` yields an unreadable hop, which stops the
/// walk instead of silently skipping a proxy.
fn forwarded_for(element: &str) -> Option<&str> {
    Some(
        element
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
            .map_or("unknown", |(_, v)| v.trim()),
    )
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, optionally in double quotes. Anything else is `None`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, _) = rest.split_once(']')?;
        return v6.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    }
    let (v4, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cidr_blocks_and_single_addresses_match_their_members_only() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7 ,2001:db8::/32").unwrap();
        assert!(t.contains(ip("10.200.3.4")));
        assert!(t.contains(ip("192.0.2.7")));
        assert!(!t.contains(ip("192.0.2.8")));
        assert!(t.contains(ip("2001:db8:1::5")));
        assert!(t.contains(ip("::ffff:10.1.1.1")), "IPv4-mapped peers match");
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }

    #[test]
    fn malformed_entries_are_refused_with_the_entry_named() {
        for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.1/x", "::1/129"] {
            let e = TrustedProxies::parse(bad).unwrap_err();
            assert!(e.contains(bad.split('/').next().unwrap()), "{e}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let t = TrustedProxies::parse("127.0.0.1").unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(t.client_ip(ip("198.51.100.4"), &h), ip("198.51.100.4"));
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.9"));
        // the proxy appended a second header line
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.10:5555"),
        ]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.10"));
        // every hop trusted: the farthest one
        let h = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("10.0.0.3"));
        // no header: the proxy itself
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn forwarded_is_read_when_no_x_forwarded_for_came() {
        let t = TrustedProxies::parse("127.0.0.1").unwrap();
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1",
        )]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_last_address_a_trusted_proxy_vouched_for() {
        let t = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        let h = headers(&[("forwarded", "for=203.0.113.1, for=unknown, for=10.0.0.5")]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("10.0.0.5"));
        let h = headers(&[("x-forwarded-for", "203.0.113.1, not-an-ip")]);
        assert_eq!(t.client_ip(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn the_public_base_must_be_an_absolute_http_url() {
        let e = Edge::new("https://mcp.example.com/", TrustedProxies::default()).unwrap();
        assert_eq!(e.public_base(), "https://mcp.example.com");
        for bad in [
            "mcp.example.com",
            "ftp://x.example",
            "https://x.example/?a=1",
        ] {
            assert!(Edge::new(bad, TrustedProxies::default()).is_err(), "{bad}");
        }
    }
}
