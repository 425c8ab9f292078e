//! The one indicator model every feed reader fills, and the normalisation of
//! indicator values (IPs, networks, domains, URLs, host:port) shared by the
//! readers and by the lookups, so that a feed entry and an event value that
//! denote the same thing produce the same key.

use ipnet::IpNet;
use serde::Serialize;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

/// What an indicator denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Ipv4,
    Ipv6,
    /// A network (IPv4 or IPv6) with a prefix shorter than a host route.
    Cidr,
    Domain,
    Url,
    /// An IP address or a domain together with a port (`1.2.3.4:443`, `[::1]:53`, `evil.com:8080`).
    HostPort,
    UserAgent,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Ipv4,
        Kind::Ipv6,
        Kind::Cidr,
        Kind::Domain,
        Kind::Url,
        Kind::HostPort,
        Kind::UserAgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::Cidr => "cidr",
            Kind::Domain => "domain",
            Kind::Url => "url",
            Kind::HostPort => "host-port",
            Kind::UserAgent => "user-agent",
        }
    }

    /// Parse a kind name as written in a feed config.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(
            match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "ipv4" | "ip4" => Kind::Ipv4,
                "ipv6" | "ip6" => Kind::Ipv6,
                "cidr" | "net" | "network" | "netset" => Kind::Cidr,
                "domain" | "hostname" | "fqdn" => Kind::Domain,
                "url" | "uri" => Kind::Url,
                "host-port" | "hostport" | "ip-port" | "host:port" => Kind::HostPort,
                "user-agent" | "useragent" | "ua" => Kind::UserAgent,
                _ => return None,
            },
        )
    }
}

/// One indicator read from a feed. `value` is the normalised form (see [`parse_token`]).
#[derive(Debug, Clone)]
pub struct Indicator {
    pub kind: Kind,
    pub value: String,
    /// Index of the feed in [`crate::FeedSet::feeds`].
    pub feed: u16,
    /// Category or malware family, as the feed gives it (maltrail file name, Feodo `malware`, …).
    pub category: Option<Arc<str>>,
    /// Microseconds since the epoch, UTC.
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// 0–100.
    pub confidence: Option<u8>,
}

impl Indicator {
    /// `kind:value`, the identity of an indicator across feeds (used by the statistics).
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.value)
    }
}

/// A token classified and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub kind: Kind,
    pub value: String,
}

/// Why a token was not turned into an indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Broken input (counted as a malformed line, reported with file and line).
    Malformed(String),
    /// Well-formed but not expressible here (a regex trail, a URL path without host);
    /// counted per reason, not an error.
    Unsupported(&'static str),
}

/// Classify one feed token and normalise it. `hint` forces the kind when the
/// feed (or its config) says what the column holds.
pub fn parse_token(raw: &str, hint: Option<Kind>) -> Result<Parsed, Reject> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Reject::Malformed("empty value".into()));
    }
    // Maltrail's `.cc`, `.eu.org`: every name under a TLD or a free-subdomain
    // provider. A well-formed entry, but the matcher never matches a whole
    // public suffix, and a TLD-wide weak label would mark every name under it.
    if s.starts_with('.') && !s.contains('/') && hint != Some(Kind::UserAgent) {
        return Err(Reject::Unsupported("domain suffix (every name under it)"));
    }
    let p = |kind, value| Ok(Parsed { kind, value });
    match hint {
        Some(Kind::UserAgent) => return p(Kind::UserAgent, s.to_string()),
        Some(Kind::Url) => {
            return normalize_url(s)
                .map(|v| Parsed {
                    kind: Kind::Url,
                    value: v,
                })
                .ok_or_else(|| bad("URL", s))
        }
        Some(Kind::Domain) => {
            return normalize_domain(s)
                .map(|v| Parsed {
                    kind: Kind::Domain,
                    value: v,
                })
                .ok_or_else(|| bad("domain", s))
        }
        _ => {}
    }
    if s.contains("://") {
        return normalize_url(s)
            .map(|v| Parsed {
                kind: Kind::Url,
                value: v,
            })
            .ok_or_else(|| bad("URL", s));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        return p(
            if ip.is_ipv4() { Kind::Ipv4 } else { Kind::Ipv6 },
            ip.to_string(),
        );
    }
    if s.starts_with('/') {
        return Err(Reject::Unsupported("URL path without host"));
    }
    if s.bytes().any(|b| {
        matches!(
            b,
            b'\\' | b'(' | b'|' | b'*' | b'{' | b'^' | b'$' | b'+' | b'?'
        )
    }) && !s.contains('/')
    {
        return Err(Reject::Unsupported("regular expression"));
    }
    // `1.2.3.0/24` is a network; `1.2.3.4/path` a URL on an IP host (below).
    if s.split_once('/').is_some_and(|(a, b)| {
        a.parse::<IpAddr>().is_ok() && !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit())
    }) {
        return match s.parse::<IpNet>() {
            Ok(n) => Ok(cidr_parsed(n)),
            Err(_) => Err(bad("network", s)),
        };
    }
    if s.contains('/') {
        return normalize_url(s)
            .map(|v| Parsed {
                kind: Kind::Url,
                value: v,
            })
            .ok_or_else(|| bad("URL", s));
    }
    if s.starts_with('[') || s.bytes().filter(|&b| b == b':').count() == 1 {
        return normalize_host_port(s)
            .map(|v| Parsed {
                kind: Kind::HostPort,
                value: v,
            })
            .ok_or_else(|| bad("host:port", s));
    }
    normalize_domain(s)
        .map(|v| Parsed {
            kind: Kind::Domain,
            value: v,
        })
        .ok_or_else(|| bad("domain", s))
}

fn bad(what: &str, s: &str) -> Reject {
    let shown: String = s.chars().take(80).collect();
    Reject::Malformed(format!("not a valid {what}: `{shown}`"))
}

/// A network to the indicator it denotes: host routes are addresses, the rest CIDRs;
/// IPv4-mapped IPv6 networks become IPv4 networks.
pub fn cidr_parsed(n: IpNet) -> Parsed {
    let n = canonical_net(n.trunc());
    match n {
        IpNet::V4(v) if v.prefix_len() == 32 => Parsed {
            kind: Kind::Ipv4,
            value: v.addr().to_string(),
        },
        IpNet::V6(v) if v.prefix_len() == 128 => Parsed {
            kind: Kind::Ipv6,
            value: v.addr().to_string(),
        },
        _ => Parsed {
            kind: Kind::Cidr,
            value: n.to_string(),
        },
    }
}

/// `::ffff:a.b.c.d/n` (n ≥ 96) to `a.b.c.d/(n-96)`.
pub fn canonical_net(n: IpNet) -> IpNet {
    if let IpNet::V6(v) = n {
        if let (Some(v4), true) = (v.addr().to_ipv4_mapped(), v.prefix_len() >= 96) {
            if let Ok(n4) = ipnet::Ipv4Net::new(v4, v.prefix_len() - 96) {
                return IpNet::V4(n4);
            }
        }
    }
    n
}

/// Lower-case ASCII (punycode) form of a domain without trailing dot; `None` when
/// it is not a plausible DNS name (a single label, empty labels, bad characters).
pub fn normalize_domain(s: &str) -> Option<String> {
    let t = s.trim().trim_end_matches('.');
    let ascii = if t.is_ascii() {
        // Fast path: feeds are almost always lower-case ASCII already.
        if t.bytes().any(|b| b.is_ascii_uppercase()) {
            t.to_ascii_lowercase()
        } else {
            t.to_string()
        }
    } else {
        idna::domain_to_ascii(t).ok()?
    };
    valid_domain(&ascii).then_some(ascii)
}

/// A lower-case ASCII name with at least two non-empty labels of at most 63
/// characters of `[a-z0-9_-]`, at most 253 characters in all.
pub fn valid_domain(d: &str) -> bool {
    if d.is_empty() || d.len() > 253 || !d.contains('.') {
        return false;
    }
    d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    }) && !d.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// `host:port` with the host normalised (IP canonical, domain lower-case ASCII);
/// IPv6 hosts in brackets.
pub fn normalize_host_port(s: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        s.rsplit_once(':')?
    };
    let port: u16 = port.trim().parse().ok()?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(host_port_key(ip.to_canonical(), port));
    }
    let d = normalize_domain(host)?;
    Some(format!("{d}:{port}"))
}

/// The key of an IP host and port, as [`normalize_host_port`] writes it.
pub fn host_port_key(ip: IpAddr, port: u16) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// The parts of a normalised URL: the key and its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormUrl {
    /// `host[:port]/path[?query]`: see [`normalize_url`].
    pub key: String,
    pub host: UrlHost,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlHost {
    Ip(IpAddr),
    Domain(String),
}

/// Normalise a URL to its matching key: host lower-case (IDNA to punycode,
/// trailing dot dropped), default port dropped, fragment dropped, `%XX` of
/// unreserved characters decoded and other escapes in upper-case hex.
///
/// The scheme is read (and its default port removed) but is not part of the
/// key: maltrail's URL trails carry no scheme and feeds list the same resource
/// under http and https, and a phishing path is malicious under both.
/// A value without `scheme://` is read as `http://`.
pub fn normalize_url(s: &str) -> Option<String> {
    normalize_url_parts(s).map(|u| u.key)
}

/// [`normalize_url`], also returning the host.
pub fn normalize_url_parts(s: &str) -> Option<NormUrl> {
    let s = s.trim();
    let with_scheme;
    let full = if s.contains("://") {
        s
    } else {
        with_scheme = format!("http://{s}");
        &with_scheme
    };
    let (parsed, kept_host) = match url::Url::parse(full) {
        Ok(u) => (u, None),
        Err(_) => {
            let (host, swapped) = swap_punycode_host(full)?;
            (url::Url::parse(&swapped).ok()?, Some(host))
        }
    };
    let host = match kept_host {
        Some(h) => UrlHost::Domain(h),
        None => url_host(&parsed)?,
    };
    let mut key = String::with_capacity(s.len() + 8);
    match &host {
        UrlHost::Domain(d) => key.push_str(d),
        UrlHost::Ip(IpAddr::V4(a)) => {
            let _ = write!(key, "{a}");
        }
        UrlHost::Ip(IpAddr::V6(a)) => {
            let _ = write!(key, "[{a}]");
        }
    }
    // `port()` is None when it is the scheme's default; also drop 80/443 for
    // schemeless entries read as http whose real scheme may have been https.
    if let Some(port) = parsed.port() {
        if port != 443 || s.contains("://") {
            let _ = write!(key, ":{port}");
        }
    }
    push_pct_normalized(&mut key, parsed.path());
    if let Some(q) = parsed.query() {
        key.push('?');
        push_pct_normalized(&mut key, q);
    }
    Some(NormUrl { key, host })
}

/// The host of a parsed URL: a name lower-case without its trailing dot, or
/// a canonical address.
fn url_host(u: &url::Url) -> Option<UrlHost> {
    Some(match u.host()? {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            if d.is_empty() {
                return None;
            }
            UrlHost::Domain(d.to_ascii_lowercase())
        }
        url::Host::Ipv4(a) => UrlHost::Ip(IpAddr::V4(a)),
        url::Host::Ipv6(a) => UrlHost::Ip(IpAddr::V6(a).to_canonical()),
    })
}

/// For a URL (with `scheme://`) whose host is an ASCII name with a
/// punycode label that the url crate's IDNA check refuses (PhishTank lists
/// `http://xn--bankofmerca-3ij68171c.vg`: its label does not decode to a
/// valid Unicode name, but browsers and resolvers take the ASCII name as
/// it is): the host, lower-case, and the URL with a placeholder host, so
/// that the rest parses as before. `None` for any other URL.
fn swap_punycode_host(full: &str) -> Option<(String, String)> {
    let (scheme, rest) = full.split_once("://")?;
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..auth_end];
    let host_at = auth.rfind('@').map_or(0, |i| i + 1);
    let host_end = auth[host_at..]
        .find(':')
        .map_or(auth.len(), |i| host_at + i);
    let host = auth[host_at..host_end]
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if !host.split('.').any(|l| l.starts_with("xn--")) || !valid_domain(&host) {
        return None;
    }
    let swapped = format!(
        "{scheme}://{}placeholder.invalid{}",
        &auth[..host_at],
        &rest[host_end..]
    );
    Some((host, swapped))
}

/// Append `s`, decoding `%XX` that encodes an unreserved character (RFC 3986 §6.2.2.2)
/// and upper-casing the hex digits of the other escapes.
fn push_pct_normalized(out: &mut String, s: &str) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                let c = h * 16 + l;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(c as char);
                } else {
                    out.push('%');
                    out.push(b[i + 1].to_ascii_uppercase() as char);
                    out.push(b[i + 2].to_ascii_uppercase() as char);
                }
                i += 3;
                continue;
            }
        }
        // `s` comes from `url`, which percent-encodes non-ASCII, so bytes are ASCII here;
        // fall back to pushing the char when they are not.
        match s.get(i..).and_then(|r| r.chars().next()) {
            Some(ch) => {
                out.push(ch);
                i += ch.len_utf8();
            }
            None => i += 1,
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> (Kind, String) {
        let p = parse_token(s, None).unwrap_or_else(|e| panic!("{s}: {e:?}"));
        (p.kind, p.value)
    }

    #[test]
    fn classifies_tokens() {
        assert_eq!(k("1.2.3.4"), (Kind::Ipv4, "1.2.3.4".into()));
        assert_eq!(k("::ffff:1.2.3.4"), (Kind::Ipv4, "1.2.3.4".into()));
        assert_eq!(
            k("2400:6180:0:D0::1"),
            (Kind::Ipv6, "2400:6180:0:d0::1".into())
        );
        assert_eq!(k("10.1.2.3/8"), (Kind::Cidr, "10.0.0.0/8".into()));
        assert_eq!(k("1.2.3.4/32"), (Kind::Ipv4, "1.2.3.4".into()));
        assert_eq!(k("::ffff:10.0.0.0/104"), (Kind::Cidr, "10.0.0.0/8".into()));
        assert_eq!(k("Evil.COM."), (Kind::Domain, "evil.com".into()));
        assert_eq!(
            k("bücher.example"),
            (Kind::Domain, "xn--bcher-kva.example".into())
        );
        assert_eq!(k("1.2.3.4:443"), (Kind::HostPort, "1.2.3.4:443".into()));
        assert_eq!(k("[FE80::1]:135"), (Kind::HostPort, "[fe80::1]:135".into()));
        assert_eq!(
            k("bzgh.jmeu.cc:9999"),
            (Kind::HostPort, "bzgh.jmeu.cc:9999".into())
        );
        assert_eq!(k("evil.com/a/b"), (Kind::Url, "evil.com/a/b".into()));
        assert_eq!(
            k("5.8.52.136/setup.php"),
            (Kind::Url, "5.8.52.136/setup.php".into())
        );
        assert_eq!(
            k("HTTP://Evil.COM:80/a%7eb%2f?x=%4a"),
            (Kind::Url, "evil.com/a~b%2F?x=J".into())
        );
        assert_eq!(
            k("https://evil.com:443/#frag"),
            (Kind::Url, "evil.com/".into())
        );
        assert_eq!(
            k("http://evil.com:8080/"),
            (Kind::Url, "evil.com:8080/".into())
        );
        assert_eq!(
            parse_token("/w00tw00t.at.ISC.SANS.DFind:)", None),
            Err(Reject::Unsupported("URL path without host"))
        );
        assert_eq!(
            parse_token(r"vh[0-9]{6}\.eurodir\.ru", None),
            Err(Reject::Unsupported("regular expression"))
        );
        // an ASCII punycode host the IDNA check refuses (PhishTank), kept as written
        assert_eq!(
            k("http://XN--bankofmerca-3ij68171c.vg"),
            (Kind::Url, "xn--bankofmerca-3ij68171c.vg/".into())
        );
        assert_eq!(
            k("https://u@xn--bankofmerca-3ij68171c.vg:8443/a%7eb?q=1#f"),
            (
                Kind::Url,
                "xn--bankofmerca-3ij68171c.vg:8443/a~b?q=1".into()
            )
        );
        assert!(matches!(
            parse_token("http://xn--bankofmerca-3ij68171c.vg:99999/", None),
            Err(Reject::Malformed(_))
        ));
        // Maltrail's TLD and provider entries (suspicious/domain.txt)
        for suffix in [".cc", ".eu.org", " .onion"] {
            for hint in [None, Some(Kind::Domain)] {
                assert_eq!(
                    parse_token(suffix, hint),
                    Err(Reject::Unsupported("domain suffix (every name under it)")),
                    "{suffix} {hint:?}"
                );
            }
        }
        assert!(matches!(
            parse_token("161.35.41.9:53:53", None),
            Err(Reject::Malformed(_))
        ));
        assert!(matches!(
            parse_token("domain autuo.xicp.net", None),
            Err(Reject::Malformed(_))
        ));
        assert!(matches!(
            parse_token("localhost", None),
            Err(Reject::Malformed(_))
        ));
        assert!(matches!(
            parse_token("1.2.3.4/33", None),
            Err(Reject::Malformed(_))
        ));
    }
}
