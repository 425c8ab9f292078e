//! Splitting a URL into the parts the features read, by byte scanning (no
//! allocation; the `url` crate normalises and allocates, and would also
//! reject the malformed URLs attackers send, which we must still measure).

/// The parts of a URL string, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// The scheme without `://` (e.g. `https`), if the string has one.
    pub scheme: Option<&'a str>,
    /// Everything after `scheme://` (the whole string when there is no scheme).
    pub rest: &'a str,
    /// The host: authority without user info and port; may be empty.
    pub host: &'a str,
    /// From the first `/` after the authority up to `?` or `#` (empty if none).
    pub path: &'a str,
    /// After the first `?` up to `#`; `None` when there is no `?`.
    pub query: Option<&'a str>,
}

/// Split `s`. A scheme is `[A-Za-z][A-Za-z0-9+.-]*` followed by `://`.
/// A string starting with `/` is a bare request target (Zeek, Apache): no
/// host, all path.
pub fn split_url(s: &str) -> UrlParts<'_> {
    let b = s.as_bytes();
    let mut scheme = None;
    let mut rest = s;
    if let Some(pos) = memchr_seq(b, b"://") {
        let cand = &b[..pos];
        if !cand.is_empty()
            && cand[0].is_ascii_alphabetic()
            && cand
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-'))
        {
            scheme = Some(&s[..pos]);
            rest = &s[pos + 3..];
        }
    }
    let rb = rest.as_bytes();
    // authority ends at the first '/', '?' or '#'
    let auth_end = rb
        .iter()
        .position(|&c| c == b'/' || c == b'?' || c == b'#')
        .unwrap_or(rb.len());
    let authority = &rest[..auth_end];
    let host = host_of_authority(authority);
    let tail = &rest[auth_end..];
    let tb = tail.as_bytes();
    let frag = tb.iter().position(|&c| c == b'#').unwrap_or(tb.len());
    let before_frag = &tail[..frag];
    let (path, query) = match before_frag.find('?') {
        Some(q) => (&before_frag[..q], Some(&before_frag[q + 1..])),
        None => (before_frag, None),
    };
    UrlParts {
        scheme,
        rest,
        host,
        path,
        query,
    }
}

/// Host of an authority: drop `user:pass@`, then `:port` (keeping `[v6]`).
pub fn host_of_authority(a: &str) -> &str {
    let a = match a.rfind('@') {
        Some(i) => &a[i + 1..],
        None => a,
    };
    if a.starts_with('[') {
        return match a.find(']') {
            Some(i) => &a[..=i],
            None => a,
        };
    }
    match a.rfind(':') {
        // only strip when what follows is a port number (not a bare IPv6)
        Some(i) if a[..i].find(':').is_none() && a[i + 1..].bytes().all(|c| c.is_ascii_digit()) => {
            &a[..i]
        }
        _ => a,
    }
}

fn memchr_seq(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Whether `host` is an IPv4 or IPv6 literal (brackets allowed).
pub fn is_ip_literal(host: &str) -> bool {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if h.is_empty() {
        return false;
    }
    let b = h.as_bytes();
    // quick reject: an IP literal is digits, dots, hex and colons only
    if !b
        .iter()
        .all(|c| c.is_ascii_hexdigit() || *c == b'.' || *c == b':')
    {
        return false;
    }
    h.parse::<std::net::IpAddr>().is_ok()
}

/// Number of `/` bytes in `s`.
#[inline]
pub fn count_byte(s: &str, c: u8) -> u32 {
    s.bytes().filter(|&b| b == c).count() as u32
}

/// Number of non-empty `/`-separated segments of a path.
#[inline]
pub fn path_depth(path: &str) -> u32 {
    path.split('/').filter(|seg| !seg.is_empty()).count() as u32
}

/// TLD class codes (see the `tld_class` definition).
pub const TLD_UNKNOWN: f64 = 0.0;
pub const TLD_GENERIC: f64 = 1.0;
pub const TLD_COUNTRY: f64 = 2.0;
pub const TLD_OTHER_ICANN: f64 = 3.0;

/// Legacy generic TLDs (RFC 1591 and the 2000-era additions).
const LEGACY_GENERIC: &[&[u8]] = &[
    b"com", b"net", b"org", b"edu", b"gov", b"mil", b"int", b"info", b"biz", b"arpa",
];

/// Host facts from the public suffix list: (subdomain label count, TLD class).
/// `host` must be lower-case, without a trailing dot. NaNs for an IP literal
/// or an empty host.
pub fn psl_facts(host: &[u8]) -> (f64, f64) {
    if host.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let labels = 1 + host.iter().filter(|&&c| c == b'.').count();
    // One public-suffix lookup gives both facts: the registrable domain is the
    // suffix plus one label, and the suffix is unknown exactly when the TLD is
    // not in the list (a private suffix always sits under an ICANN TLD).
    let suffix = psl::suffix(host);
    let (suffix_labels, known) = match &suffix {
        Some(sf) => (
            1 + sf.as_bytes().iter().filter(|&&c| c == b'.').count(),
            sf.typ().is_some(),
        ),
        None => (1, false),
    };
    let sub = labels.saturating_sub(suffix_labels + 1) as f64;
    let tld = match host.iter().rposition(|&c| c == b'.') {
        Some(i) => &host[i + 1..],
        None => host,
    };
    let class = if LEGACY_GENERIC.contains(&tld) {
        TLD_GENERIC
    } else if !known {
        TLD_UNKNOWN
    } else if tld.len() == 2 && tld.iter().all(|c| c.is_ascii_lowercase()) {
        TLD_COUNTRY
    } else {
        TLD_OTHER_ICANN
    };
    (sub, class)
}

/// Lower-case `host` into `buf` and strip one trailing dot; `None` if it does
/// not fit (DNS names are at most 253 bytes, so a longer "host" is garbage
/// and its PSL facts are unknown).
#[inline]
pub fn lower_host<'b>(host: &str, buf: &'b mut [u8; 256]) -> Option<&'b [u8]> {
    let h = host.strip_suffix('.').unwrap_or(host).as_bytes();
    if h.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(h) {
        *d = s.to_ascii_lowercase();
    }
    Some(&buf[..h.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        let p = split_url("https://user:pw@www.Example.co.uk:8443/a/b/c.php?x=1&y=/2#frag");
        assert_eq!(p.scheme, Some("https"));
        assert_eq!(p.host, "www.Example.co.uk");
        assert_eq!(p.path, "/a/b/c.php");
        assert_eq!(p.query, Some("x=1&y=/2"));
        let p = split_url("/index.html?q");
        assert_eq!(
            (p.scheme, p.host, p.path, p.query),
            (None, "", "/index.html", Some("q"))
        );
        let p = split_url("example.com:443");
        assert_eq!((p.host, p.path, p.query), ("example.com", "", None));
        let p = split_url("http://[2001:db8::1]:80/x");
        assert_eq!(p.host, "[2001:db8::1]");
        let p = split_url("");
        assert_eq!((p.rest, p.host, p.path, p.query), ("", "", "", None));
        // not a scheme: contains '/'
        let p = split_url("a/b://c");
        assert_eq!(p.scheme, None);
    }

    #[test]
    fn ip_literals() {
        assert!(is_ip_literal("10.0.0.1"));
        assert!(is_ip_literal("[::1]"));
        assert!(is_ip_literal("2001:db8::1"));
        assert!(!is_ip_literal("10.0.0.1.example.com"));
        assert!(!is_ip_literal("999.1.1.1"));
        assert!(!is_ip_literal(""));
    }

    #[test]
    fn psl_classes() {
        assert_eq!(psl_facts(b"www.example.com"), (1.0, TLD_GENERIC));
        assert_eq!(psl_facts(b"a.b.example.co.uk"), (2.0, TLD_COUNTRY));
        assert_eq!(psl_facts(b"example.xyz"), (0.0, TLD_OTHER_ICANN));
        assert_eq!(psl_facts(b"printer.local"), (0.0, TLD_UNKNOWN));
        assert_eq!(psl_facts(b"localhost"), (0.0, TLD_UNKNOWN));
        assert!(psl_facts(b"").0.is_nan());
    }
}
