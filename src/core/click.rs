//! Click sanitization: what a browser sends is reduced to the few fields attribution
//! analytics need, so the clicks table can never hold an IP, a URL credential, a
//! fragment, a control character or an unbounded string.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::text::clean;

pub const MAX_PATH: usize = 512;
pub const MAX_UTM: usize = 100;
pub const MAX_HOST: usize = 253;
pub const MAX_UA_FAMILY: usize = 16;
/// Inputs longer than this are refused before parsing, to bound the work per request.
pub const MAX_RAW_INPUT: usize = 4096;

/// What the caller reports about a click, before sanitizing.
#[derive(Debug, Clone, Default)]
pub struct RawClick {
    pub landing_url: Option<String>,
    pub referrer_url: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<IpAddr>,
}

/// What is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanitizedClick {
    pub landing_path: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    pub referrer_host: Option<String>,
    pub ua_family: String,
    pub is_bot: bool,
    /// HMAC-SHA256 of the IP under the server's secret, hex, truncated to 32 chars.
    pub ip_hash: String,
}

/// Keyed hash of an IP so equal visitors compare equal without the IP being kept.
pub fn hash_ip(key: &[u8], ip: Option<IpAddr>) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return "0".repeat(32),
    };
    match ip {
        // Normalize IPv4-mapped IPv6 so one visitor hashes the same either way.
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => mac.update(v4.to_string().as_bytes()),
            None => mac.update(v6.to_string().as_bytes()),
        },
        Some(ip) => mac.update(ip.to_string().as_bytes()),
        None => mac.update(b"unknown"),
    }
    let mut h = hex::encode(mac.finalize().into_bytes());
    h.truncate(32);
    h
}

fn parse_url(raw: &str) -> Option<url::Url> {
    if raw.len() > MAX_RAW_INPUT {
        return None;
    }
    match url::Url::parse(raw) {
        Ok(u) => Some(u),
        Err(url::ParseError::RelativeUrlWithoutBase) => url::Url::parse("https://landing.invalid")
            .ok()?
            .join(raw)
            .ok(),
        Err(_) => None,
    }
}

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Reduces a user agent to a family name and a bot flag.
pub fn classify_user_agent(ua: Option<&str>) -> (String, bool) {
    let Some(ua) = ua else {
        return ("unknown".into(), false);
    };
    let l = ua.to_ascii_lowercase();
    const BOT_MARKERS: &[&str] = &[
        "bot",
        "crawler",
        "spider",
        "slurp",
        "curl/",
        "wget/",
        "python-requests",
        "httpclient",
        "headless",
        "go-http-client",
        "facebookexternalhit",
        "preview",
        "scrapy",
        "java/",
    ];
    let is_bot = l.is_empty() || BOT_MARKERS.iter().any(|m| l.contains(m));
    let family = if l.contains("edg/") {
        "edge"
    } else if l.contains("opr/") || l.contains("opera") {
        "opera"
    } else if l.contains("firefox/") {
        "firefox"
    } else if l.contains("chrome/") || l.contains("crios/") {
        "chrome"
    } else if l.contains("safari/") {
        "safari"
    } else if l.contains("curl/") {
        "curl"
    } else if is_bot {
        "bot"
    } else {
        "other"
    };
    (family.to_owned(), is_bot)
}

pub fn sanitize(raw: &RawClick, ip_key: &[u8]) -> SanitizedClick {
    let landing = raw.landing_url.as_deref().and_then(parse_url);
    let mut utm: [Option<String>; 5] = Default::default();
    let mut landing_path = None;
    if let Some(u) = &landing {
        // The path only: no scheme/host (the landing site is ours), query or fragment.
        landing_path = opt(clean(u.path(), MAX_PATH));
        for (k, v) in u.query_pairs() {
            let slot = match k.as_ref() {
                "utm_source" => 0,
                "utm_medium" => 1,
                "utm_campaign" => 2,
                "utm_term" => 3,
                "utm_content" => 4,
                _ => continue,
            };
            if utm[slot].is_none() {
                utm[slot] = opt(clean(&v, MAX_UTM));
            }
        }
    }
    let referrer_host = raw
        .referrer_url
        .as_deref()
        .and_then(parse_url)
        .filter(|u| u.host_str() != Some("landing.invalid"))
        .and_then(|u| {
            u.host_str()
                .map(|h| clean(&h.to_ascii_lowercase(), MAX_HOST))
        })
        .and_then(opt);
    let (ua_family, is_bot) = classify_user_agent(raw.user_agent.as_deref());
    let [utm_source, utm_medium, utm_campaign, utm_term, utm_content] = utm;
    SanitizedClick {
        landing_path,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_term,
        utm_content,
        referrer_host,
        ua_family,
        is_bot,
        ip_hash: hash_ip(ip_key, raw.ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_path_utms_and_referrer_host_only() {
        let c = sanitize(
            &RawClick {
                landing_url: Some(
                    "https://user:pw@app.example/r/abcd?utm_source=news&utm_medium=email&x=1#frag"
                        .into(),
                ),
                referrer_url: Some("https://alice:secret@Blog.Example.org/post?id=3#top".into()),
                user_agent: Some("Mozilla/5.0 (X11) Firefox/126.0".into()),
                ip: Some("203.0.113.9".parse().unwrap()),
            },
            b"k",
        );
        assert_eq!(c.landing_path.as_deref(), Some("/r/abcd"));
        assert_eq!(c.utm_source.as_deref(), Some("news"));
        assert_eq!(c.utm_medium.as_deref(), Some("email"));
        assert_eq!(c.referrer_host.as_deref(), Some("blog.example.org"));
        assert_eq!(c.ua_family, "firefox");
        assert!(!c.is_bot);
        assert!(!c.ip_hash.contains("203"));
    }

    #[test]
    fn bots_are_flagged() {
        assert!(classify_user_agent(Some("Googlebot/2.1")).1);
        assert!(classify_user_agent(Some("curl/8.1")).1);
    }
}
