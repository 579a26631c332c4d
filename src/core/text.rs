//! Text that outsiders wrote (emails, reasons, click metadata) is kept as data: control and
//! invisible formatting characters are removed and lengths are bounded, so nothing stored
//! can smuggle hidden instructions or terminal escapes to an agent or an operator.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::error::Error;

/// True for characters that render as nothing or reorder text: zero-width, bidi controls,
/// soft hyphen, BOM, Unicode tag characters.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

/// Removes control and invisible characters, collapses runs of whitespace, trims, and cuts
/// to at most `max` characters (on a char boundary).
pub fn clean(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max * 4));
    let mut pending_space = false;
    let mut n = 0;
    for c in raw.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if c.is_control() || is_invisible(c) {
            continue;
        }
        let extra = usize::from(pending_space);
        if n + 1 + extra > max {
            break;
        }
        if pending_space {
            out.push(' ');
            n += 1;
            pending_space = false;
        }
        out.push(c);
        n += 1;
    }
    out
}

/// A short free-text field an operator writes (reject reason or note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeText(String);

impl SafeText {
    pub fn parse(field: &'static str, raw: &str, max: usize) -> Result<Self, Error> {
        if raw.chars().count() > max {
            return Err(Error::Invalid {
                field,
                message: format!("must be at most {max} characters"),
            });
        }
        let cleaned = clean(raw, max);
        if cleaned.is_empty() {
            return Err(Error::Invalid {
                field,
                message: "must not be empty".into(),
            });
        }
        Ok(Self(cleaned))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free mail providers: two accounts on one of these share nothing suspicious.
const PUBLIC_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "yahoo.com",
    "ymail.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.de",
    "web.de",
    "mail.com",
    "zoho.com",
    "yandex.com",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "126.com",
    "fastmail.com",
    "hey.com",
    "tutanota.com",
    "pm.me",
    "orange.fr",
    "free.fr",
    "btinternet.com",
    "comcast.net",
];

/// The shipped list of disposable mail domains (one per line, `#` comments).
///
/// Source: the community-maintained `disposable-email-domains` list
/// (<https://github.com/disposable-email-domains/disposable-email-domains>, CC0), bundled
/// from its PyPI mirror `disposable-email-domains` (MIT); the file's header names the
/// version. Regenerate with `scripts/update-disposable-domains.sh [VERSION]`.
///
/// Why this and not the `mailchecker` crate: that crate only answers for a whole address
/// (`is_valid(email)`, which also judges the address's syntax), scans its ~56k-entry slice
/// linearly for every suffix, and its list is much broader (it flags e.g. `zzz.com`,
/// `20.gov`), so it would hold more honest signups. `disposable-email-domains` is the
/// de-facto standard list (curated additions, an allowlist of real providers, released
/// on PyPI every few weeks). The npm package of the same name is a different, older
/// list (ivolo's, last released 2024), so the script reads PyPI.
const DISPOSABLE_LIST: &str = include_str!("disposable_domains.txt");

/// The list as a set, built on first use.
static DISPOSABLE_DOMAINS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    DISPOSABLE_LIST
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// True when `domain` (lower-case, as `Email::domain` gives it) or any parent domain of it
/// is on the list: `a.b.mailinator.com` matches through `mailinator.com`, while
/// `notmailinator.com` and `mailinator.com.example.org` do not. A bare label such as `com`
/// is never looked up. A trailing dot is ignored.
pub fn is_disposable_domain(domain: &str) -> bool {
    let set = &*DISPOSABLE_DOMAINS;
    let mut candidate = domain.strip_suffix('.').unwrap_or(domain);
    while let Some((_, parent)) = candidate.split_once('.') {
        if set.contains(candidate) {
            return true;
        }
        candidate = parent;
    }
    false
}

pub fn is_public_domain(domain: &str) -> bool {
    PUBLIC_DOMAINS.contains(&domain)
}

/// A syntactically plausible e-mail address, with its normalized form for duplicate
/// detection: lower-case, `+tag` removed, and for Gmail the dots removed too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    raw: String,
    normalized: String,
    domain: String,
}

impl Email {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Error> {
        let bad = |m: &str| Error::Invalid {
            field,
            message: m.to_owned(),
        };
        let raw = raw.trim();
        if raw.len() > 254 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("must be an e-mail address of at most 254 characters"));
        }
        let (local, domain) = raw.rsplit_once('@').ok_or_else(|| bad("must contain @"))?;
        let domain = domain.to_ascii_lowercase();
        if local.is_empty()
            || local.len() > 64
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(bad("must look like name@example.com"));
        }
        let mut local_norm = local.to_lowercase();
        if let Some((base, _tag)) = local_norm.split_once('+') {
            local_norm = base.to_owned();
        }
        let domain = if domain == "googlemail.com" {
            "gmail.com".to_owned()
        } else {
            domain
        };
        if domain == "gmail.com" {
            local_norm.retain(|c| c != '.');
        }
        Ok(Self {
            raw: raw.to_owned(),
            normalized: format!("{local_norm}@{domain}"),
            domain,
        })
    }
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

/// `jane.doe@example.com` → `j***@example.com`: enough to recognise, not to contact.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_dots_tags_and_case_normalize_to_one_address() {
        let a = Email::parse("email", "Jane.Doe+promo@GoogleMail.com").unwrap();
        let b = Email::parse("email", "janedoe@gmail.com").unwrap();
        assert_eq!(a.normalized(), b.normalized());
        let c = Email::parse("email", "jane.doe+x@corp.example").unwrap();
        assert_eq!(c.normalized(), "jane.doe@corp.example");
    }

    #[test]
    fn clean_strips_controls_and_invisibles_and_bounds_length() {
        assert_eq!(clean("a\u{200B}b\u{202E}c\x1b[31m", 100), "abc[31m");
        assert_eq!(clean("  many   spaces\n here ", 100), "many spaces here");
        assert_eq!(clean("abcdef", 3), "abc");
    }

    #[test]
    fn masking_hides_the_local_part() {
        assert_eq!(mask_email("jane@example.com"), "j***@example.com");
    }

    #[test]
    fn shipped_lists_are_consulted() {
        assert!(is_disposable_domain("mailinator.com"));
        assert!(!is_disposable_domain("example.com"));
        assert!(is_public_domain("gmail.com"));
    }

    #[test]
    fn well_known_disposable_domains_match() {
        for d in [
            "mailinator.com",
            "guerrillamail.com",
            "yopmail.com",
            "10minutemail.com",
        ] {
            assert!(is_disposable_domain(d), "{d}");
        }
    }

    #[test]
    fn subdomains_of_a_disposable_domain_match() {
        assert!(is_disposable_domain("x.mailinator.com"));
        assert!(is_disposable_domain("a.b.mailinator.com"));
        assert!(is_disposable_domain("mailinator.com."));
    }

    #[test]
    fn look_alikes_and_bare_labels_do_not_match() {
        // Ends with `mailinator.com` but not at a label boundary. (`notmailinator.com` itself
        // would be a bad example: it is one of Mailinator's own domains and is listed.)
        for d in [
            "xmailinator.com",
            "mymailinator.com",
            "yopmail.com.example.org",
            "mailinator.com.example.org",
            "mailinator",
            "com",
            "",
            ".",
        ] {
            assert!(!is_disposable_domain(d), "{d}");
        }
    }

    #[test]
    fn big_free_mail_providers_are_not_disposable() {
        for d in [
            "gmail.com",
            "outlook.com",
            "hotmail.com",
            "yahoo.com",
            "proton.me",
        ] {
            assert!(!is_disposable_domain(d), "{d}");
        }
    }

    #[test]
    fn no_public_mail_provider_is_on_the_disposable_list() {
        for d in PUBLIC_DOMAINS {
            assert!(!is_disposable_domain(d), "{d}");
        }
    }

    #[test]
    fn shipped_list_is_the_large_maintained_one() {
        assert!(DISPOSABLE_LIST.contains("github.com/disposable-email-domains"));
        assert!(
            DISPOSABLE_DOMAINS.len() > 1000,
            "{}",
            DISPOSABLE_DOMAINS.len()
        );
        assert!(
            DISPOSABLE_DOMAINS
                .iter()
                .all(|d| d.contains('.') && *d == d.to_ascii_lowercase())
        );
    }
}
