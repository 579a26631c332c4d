//! CORS for the routes a browser may call from another origin: `/mcp` (web MCP clients
//! such as the Inspector's direct connection) and the public click capture.
//!
//! Origins come from allow-lists in the same notation as `--allowed-origins`
//! (`scheme://host:port`, `scheme://host:*` for any port), never a blanket `*` for `/mcp`:
//! a page that may read `/mcp` answers may drive the tools with whatever key the user
//! typed into it. The layer answers preflights itself, so it is put outside
//! authentication: a browser's `OPTIONS` carries no credentials and must not get `401`.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, request::Parts};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// One entry of an origin allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    /// `*`: any origin (accepted only where [`OriginList::parse`] is told so).
    Any,
    /// `scheme://host:port`; a missing port is the scheme's default.
    Exact {
        scheme: String,
        host: String,
        port: Option<u16>,
    },
    /// `scheme://host:*`
    AnyPort { scheme: String, host: String },
}

/// A parsed origin allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginList(Vec<Pattern>);

impl OriginList {
    /// Parses `entries`; `*` counts only when `allow_any` (a public, credential-free
    /// route), and entries that are not origins are skipped with a warning.
    pub fn parse(entries: &[String], allow_any: bool) -> Self {
        let mut out = Vec::new();
        for raw in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            match pattern(raw, allow_any) {
                Some(p) => out.push(p),
                None => tracing::warn!(
                    origin = raw,
                    "ignoring an allowed origin that is not an origin"
                ),
            }
        }
        Self(out)
    }

    /// Whether a request's `Origin` header value is on the list.
    pub fn allows(&self, origin: &str) -> bool {
        let Some((scheme, host, port)) = split(origin) else {
            return false;
        };
        self.0.iter().any(|p| match p {
            Pattern::Any => true,
            Pattern::AnyPort { scheme: s, host: h } => *s == scheme && *h == host,
            Pattern::Exact {
                scheme: s,
                host: h,
                port: p,
            } => *s == scheme && *h == host && *p == port,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn pattern(raw: &str, allow_any: bool) -> Option<Pattern> {
    if raw == "*" {
        return allow_any.then_some(Pattern::Any);
    }
    if let Some(base) = raw.strip_suffix(":*") {
        let (scheme, host, _) = split(base)?;
        return Some(Pattern::AnyPort { scheme, host });
    }
    let (scheme, host, port) = split(raw)?;
    Some(Pattern::Exact { scheme, host, port })
}

/// `(scheme, host, port or the scheme's default)` of an origin; paths are not allowed.
fn split(origin: &str) -> Option<(String, String, Option<u16>)> {
    let url = url::Url::parse(origin).ok()?;
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    Some((url.scheme().to_owned(), host, url.port_or_known_default()))
}

/// The CORS layer for one route: preflights from `origins` are answered with the
/// `methods` and `headers` a client may use, and every answer lets the page read the
/// `expose` headers. No cookies are involved (credentials are headers), so
/// `Access-Control-Allow-Credentials` is never sent.
pub fn layer(
    origins: OriginList,
    methods: &[Method],
    headers: &[&'static str],
    expose: &[&'static str],
) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, _: &Parts| origin.to_str().is_ok_and(|o| origins.allows(o)),
        ))
        .allow_methods(methods.to_vec())
        .allow_headers(
            headers
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .expose_headers(
            expose
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(e: &[&str], any: bool) -> OriginList {
        OriginList::parse(&e.iter().map(|s| s.to_string()).collect::<Vec<_>>(), any)
    }

    #[test]
    fn any_port_patterns_match_only_their_scheme_and_host() {
        let l = list(&["http://localhost:*"], false);
        assert!(l.allows("http://localhost:6274"));
        assert!(l.allows("http://LOCALHOST:80"));
        assert!(!l.allows("https://localhost:6274"));
        assert!(!l.allows("http://localhost.evil.example:6274"));
    }

    #[test]
    fn exact_origins_use_the_default_port_and_reject_the_rest() {
        let l = list(&["https://app.example"], false);
        assert!(l.allows("https://app.example"));
        assert!(l.allows("https://app.example:443"));
        assert!(!l.allows("https://app.example:8443"));
        assert!(!l.allows("null"));
    }

    #[test]
    fn a_star_counts_only_where_any_origin_is_allowed() {
        assert!(!list(&["*"], false).allows("https://x.example"));
        assert!(list(&["*"], true).allows("https://x.example"));
        assert!(list(&["/not-an-origin", "https://a.example/path"], true).is_empty());
    }
}
