//! Property tests: whatever a browser sends, no stored click field holds a raw IP, URL
//! credentials, a fragment, a control character, or more than its bound. Also checked
//! end to end against the rows the store keeps, on SQLite and PostgreSQL.

mod common;

use proptest::prelude::*;
use referral_mcp::core::click::{self, RawClick, SanitizedClick, sanitize};

fn fields(c: &SanitizedClick) -> Vec<(&'static str, &str, usize)> {
    let mut v = vec![
        ("ua_family", c.ua_family.as_str(), click::MAX_UA_FAMILY),
        ("ip_hash", c.ip_hash.as_str(), 32),
    ];
    for (name, f, max) in [
        ("landing_path", &c.landing_path, click::MAX_PATH),
        ("utm_source", &c.utm_source, click::MAX_UTM),
        ("utm_medium", &c.utm_medium, click::MAX_UTM),
        ("utm_campaign", &c.utm_campaign, click::MAX_UTM),
        ("utm_term", &c.utm_term, click::MAX_UTM),
        ("utm_content", &c.utm_content, click::MAX_UTM),
        ("referrer_host", &c.referrer_host, click::MAX_HOST),
    ] {
        if let Some(s) = f {
            v.push((name, s.as_str(), max));
        }
    }
    v
}

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,600}",
        "[a-z:/@#?=&%.\\x00-\\x1f\\u{200b}\\u{202e}]{0,200}",
        Just(
            "https://user:hunter2@evil.example:8443/p/a?utm_source=%0d%0aX&utm_medium=e#secret"
                .to_owned()
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn no_stored_field_holds_an_ip_credentials_fragment_control_char_or_too_much(
        user in "[a-z]{1,8}",
        pass in "[A-Za-z0-9]{6,12}",
        frag in "[a-z]{6,12}",
        path in "(/[a-zA-Z0-9._~%-]{0,30}){0,5}",
        utm in hostile_text(),
        referrer in hostile_text(),
        ua in hostile_text(),
        octets in proptest::array::uniform4(0u8..=255),
    ) {
        let ip = std::net::IpAddr::from(octets);
        let landing = format!("https://{user}:{pass}@app.example{path}?utm_source={}&utm_campaign={}#{frag}",
            urlencode(&utm), urlencode(&ip.to_string()));
        let raw = RawClick {
            landing_url: Some(landing),
            referrer_url: Some(format!("https://{user}:{pass}@ref.example/x#{frag}{referrer}")),
            user_agent: Some(ua),
            ip: Some(ip),
        };
        let c = sanitize(&raw, b"secret");
        for (name, value, max) in fields(&c) {
            prop_assert!(value.chars().count() <= max, "{name} longer than {max}");
            prop_assert!(!value.chars().any(char::is_control), "{name} has a control char: {value:?}");
            prop_assert!(!value.contains(&pass), "{name} leaks the URL password");
            if !name.starts_with("utm_") {
                // (a UTM value may legitimately contain an encoded '#')
                prop_assert!(!value.contains('#'), "{name} has a fragment marker");
            }
            prop_assert!(!value.contains(&format!("#{frag}")), "{name} has the fragment");
            if name != "utm_campaign" {
                // the IP is only present where the page itself put it in a UTM value
                prop_assert!(!value.contains(&ip.to_string()) || ip.to_string().len() < 8, "{name} holds the IP");
            }
        }
        prop_assert!(!c.ip_hash.contains(&ip.to_string()));
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn stored_click_rows_hold_only_sanitized_values() {
    for db in common::databases().await {
        let t = common::app(&db).await;
        let code = common::register(&t.core, "alice", "alice@example.com", "198.51.100.1").await;
        let mut req = common::click(&code, "203.0.113.77");
        req.raw.landing_url =
            Some("https://u:pw@app.example/r/x\u{202e}y?utm_source=a%0Ab#frag".into());
        req.raw.referrer_url = Some("https://u:pw@Ref.Example/path?q=1#frag".into());
        t.core.record_click(req).await.unwrap();
        let row = common::raw_click_row(&db).await;
        let joined = row.join("|");
        // (Not bare "pw" or "path": a random referral code may contain those letters.)
        for bad in [
            "203.0.113.77",
            "u:pw",
            "pw@",
            "frag",
            "\n",
            "\u{202e}",
            "/path",
            "q=1",
        ] {
            assert!(
                !joined.contains(bad),
                "[{}] stored {bad:?} in {joined:?}",
                db.label
            );
        }
        assert!(joined.contains("ref.example"), "{joined}");
    }
}
