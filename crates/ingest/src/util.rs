//! Small allocation-aware helpers shared by the readers.
//!
//! The hot readers (Zeek TSV, Squid, Apache) reuse one `Event` per file and
//! overwrite its fields line by line; [`put`] reuses the `String` already in a
//! field so that a steady stream of lines allocates nothing per field.

use std::net::IpAddr;

/// `-` or empty (how access logs write "no value") as `None`.
pub fn dash(s: &str) -> Option<&str> {
    if s == "-" || s.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// Set a string field, reusing its allocation when it already holds one.
#[inline]
pub fn put(dst: &mut Option<String>, s: &str) {
    match dst {
        Some(d) => {
            d.clear();
            d.push_str(s);
        }
        None => *dst = Some(s.to_owned()),
    }
}

/// Set a string field, or clear it when `s` is `None`.
#[inline]
pub fn put_opt(dst: &mut Option<String>, s: Option<&str>) {
    match s {
        Some(s) => put(dst, s),
        None => *dst = None,
    }
}

/// Parse an unsigned decimal integer without going through `str::parse`'s
/// generic machinery (measurably faster on the hot path). `None` on anything
/// that is not 1..=20 ASCII digits or overflows.
#[inline]
pub fn parse_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as u64)?;
    }
    Some(v)
}

#[inline]
pub fn parse_u16(s: &str) -> Option<u16> {
    parse_u64(s).and_then(|v| u16::try_from(v).ok())
}

#[inline]
pub fn parse_u32(s: &str) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// An IP address, accepting the IPv4-mapped IPv6 form Windows writes
/// (`::ffff:10.0.0.1`) as the plain IPv4 address, and IPv6 zone ids
/// (`fe80::1%12`) without the zone.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4_fast(s.as_bytes()) {
        return Some(IpAddr::V4(v4));
    }
    let s = s.trim();
    let s = s
        .strip_prefix("::ffff:")
        .filter(|r| r.contains('.'))
        .unwrap_or(s);
    let s = s.split_once('%').map_or(s, |(a, _)| a);
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// Dotted-quad IPv4 without the generic parser (a third of the cost on the
/// hot path). Rejects leading zeros like std does (`01.2.3.4`).
#[inline]
fn parse_ipv4_fast(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
    let mut oct = [0u8; 4];
    let mut i = 0;
    for (k, o) in oct.iter_mut().enumerate() {
        let start = i;
        let mut v: u32 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            v = v * 10 + (b[i] - b'0') as u32;
            i += 1;
            if i - start > 3 {
                return None;
            }
        }
        let len = i - start;
        if len == 0 || v > 255 || (len > 1 && b[start] == b'0') {
            return None;
        }
        *o = v as u8;
        if k < 3 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    if i != b.len() {
        return None;
    }
    Some(std::net::Ipv4Addr::new(oct[0], oct[1], oct[2], oct[3]))
}

/// Position of `://` (cheaper than building a memmem finder per call).
#[inline]
pub fn find_scheme_sep(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b':', &b[from..]) {
        let at = from + i;
        if b.get(at + 1) == Some(&b'/') && b.get(at + 2) == Some(&b'/') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Epoch seconds with an optional fraction (`1521911721.608646`) to
/// microseconds: the same result as `palisade_core::event::epoch_seconds_to_us`
/// in one pass over the bytes (it is a tenth of the Zeek TSV hot path).
#[inline]
pub fn epoch_us(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut secs: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        secs = secs.checked_mul(10)?.checked_add((b[i] - b'0') as i64)?;
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut us: i64 = 0;
    if i < b.len() {
        if b[i] != b'.' {
            return None;
        }
        i += 1;
        let mut scale = 100_000;
        while i < b.len() {
            let d = b[i].wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            us += d as i64 * scale;
            scale /= 10;
            i += 1;
        }
    }
    secs.checked_mul(1_000_000)?.checked_add(us)
}

/// Decimal seconds (`0.136721`, `12`, `1e-05`) to nanoseconds. Plain decimals
/// are converted digit by digit (exact); exponent forms go through f64 and are
/// rounded to the nearest nanosecond.
pub fn seconds_to_ns(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.bytes().any(|b| b == b'e' || b == b'E') {
        let f: f64 = s.parse().ok()?;
        if !f.is_finite() || f.abs() > 9.0e9 {
            return None;
        }
        return Some((f * 1e9).round() as i64);
    }
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let whole: i64 = if int.is_empty() {
        0
    } else {
        i64::try_from(parse_u64(int)?).ok()?
    };
    let mut ns: i64 = 0;
    let mut scale = 100_000_000;
    for b in frac.bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        if scale > 0 {
            ns += d as i64 * scale;
            scale /= 10;
        }
    }
    let v = whole.checked_mul(1_000_000_000)?.checked_add(ns)?;
    Some(if neg { -v } else { v })
}

/// Milliseconds (integer text) to nanoseconds.
pub fn millis_to_ns(s: &str) -> Option<i64> {
    let v = i64::try_from(parse_u64(s.trim())?).ok()?;
    v.checked_mul(1_000_000)
}

/// Fill `url.*` fields from a request target. Absolute URLs (`http://h/p?q`)
/// give scheme, domain, path and query; `host:port` (CONNECT) gives the domain;
/// an origin-form path (`/p?q`) gives path and query.
pub fn fill_url(ev: &mut palisade_core::Event, target: &str) {
    let mut rest = target;
    let mut scheme = None;
    let mut domain = None;
    if let Some(i) = find_scheme_sep(target.as_bytes()) {
        let sch = &target[..i];
        if !sch.is_empty()
            && sch
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        {
            scheme = Some(sch);
            let after = &target[i + 3..];
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            let authority = &after[..end];
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            domain = Some(strip_port(host)).filter(|h| !h.is_empty());
            rest = &after[end..];
        }
    } else if !target.starts_with('/') && !target.is_empty() && !target.contains('/') {
        // CONNECT host:port
        put_opt(&mut ev.url_scheme, None);
        put(&mut ev.url_domain, strip_port(target));
        ev.url_path = None;
        ev.url_query = None;
        return;
    }
    put_opt(&mut ev.url_scheme, scheme);
    put_opt(&mut ev.url_domain, domain);
    let rest = rest.split_once('#').map_or(rest, |(a, _)| a);
    match rest.split_once('?') {
        Some((p, q)) => {
            put_nonempty(&mut ev.url_path, p);
            put_nonempty(&mut ev.url_query, q);
        }
        None => {
            put_nonempty(&mut ev.url_path, rest);
            ev.url_query = None;
        }
    }
}

fn put_nonempty(dst: &mut Option<String>, s: &str) {
    if s.is_empty() {
        *dst = None
    } else {
        put(dst, s)
    }
}

/// `host:port` to `host` (IPv6 literals in brackets kept without brackets).
pub fn strip_port(hostport: &str) -> &str {
    if let Some(r) = hostport.strip_prefix('[') {
        return r.split_once(']').map_or(r, |(h, _)| h);
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => hostport,
    }
}

/// The port of `host:port`, if any.
pub fn port_of(hostport: &str) -> Option<u16> {
    let (h, p) = hostport.rsplit_once(':')?;
    if h.contains(':') && !h.ends_with(']') {
        return None;
    }
    parse_u16(p)
}

/// The first `n` characters of `s` (on a char boundary), for error details.
pub fn excerpt(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Month abbreviation (`Jan`) to 1..=12.
pub fn month_abbrev(m: &[u8]) -> Option<u32> {
    Some(match m {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm); avoids chrono on the per-line path.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Fixed-width ASCII digits to a number.
#[inline]
pub fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u32;
    }
    Some(v)
}

/// `YYYY-MM-DD` and `HH:MM:SS[.ffffff]` (as W3C logs write them) to
/// microseconds since the epoch, UTC.
pub fn date_time_to_us(date: &str, time: &str) -> Option<i64> {
    let d = date.as_bytes();
    if d.len() != 10 || d[4] != b'-' || d[7] != b'-' {
        return None;
    }
    let days = days_from_civil(
        digits(&d[0..4])? as i64,
        digits(&d[5..7])?,
        digits(&d[8..10])?,
    )?;
    let secs = hms_to_secs(time.as_bytes())?;
    let (s, frac) = secs;
    Some((days * 86_400 + s) * 1_000_000 + frac)
}

/// `HH:MM:SS[.f+]` to (seconds of day, microseconds).
pub fn hms_to_secs(t: &[u8]) -> Option<(i64, i64)> {
    if t.len() < 8 || t[2] != b':' || t[5] != b':' {
        return None;
    }
    let h = digits(&t[0..2])?;
    let m = digits(&t[3..5])?;
    let s = digits(&t[6..8])?;
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut us = 0i64;
    if t.len() > 8 {
        if t[8] != b'.' {
            return None;
        }
        let mut scale = 100_000;
        for &c in &t[9..] {
            let dg = c.wrapping_sub(b'0');
            if dg > 9 {
                return None;
            }
            us += dg as i64 * scale;
            scale /= 10;
        }
    }
    Some(((h * 3600 + m * 60 + s) as i64, us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u16("65536"), None);
        assert_eq!(seconds_to_ns("0.136721"), Some(136_721_000));
        assert_eq!(seconds_to_ns("1e-05"), Some(10_000));
        assert_eq!(seconds_to_ns("12"), Some(12_000_000_000));
        assert_eq!(seconds_to_ns("0.012166976928710938"), Some(12_166_976));
        assert_eq!(seconds_to_ns("x"), None);
    }

    #[test]
    fn epoch_matches_core() {
        for t in [
            "1521911721.608646",
            "10.5",
            "0",
            "1.",
            "1.1234567",
            "abc",
            "",
            ".5",
            "1.2.3",
            "99999999999999999999",
        ] {
            assert_eq!(
                epoch_us(t),
                palisade_core::event::epoch_seconds_to_us(t),
                "{t}"
            );
        }
    }

    #[test]
    fn ips() {
        assert_eq!(parse_ip("::ffff:10.1.2.3"), "10.1.2.3".parse().ok());
        assert_eq!(parse_ip("fe80::1%12"), "fe80::1".parse().ok());
        assert_eq!(parse_ip("-"), None);
        assert_eq!(parse_ip("10.1.2.3"), "10.1.2.3".parse().ok());
        assert_eq!(parse_ip("255.255.255.255"), "255.255.255.255".parse().ok());
        assert_eq!(parse_ip("256.1.1.1"), None);
        assert_eq!(parse_ip("1.2.3"), None);
        assert_eq!(parse_ip("1.2.3.4.5"), None);
        assert_eq!(parse_ip("01.2.3.4"), None);
        assert_eq!(parse_ip("1.2.3.4 "), "1.2.3.4".parse().ok());
    }

    #[test]
    fn urls() {
        let mut ev = palisade_core::Event::default();
        fill_url(&mut ev, "http://user@a.example.com:8080/x/y?q=1#f");
        assert_eq!(ev.url_scheme.as_deref(), Some("http"));
        assert_eq!(ev.url_domain.as_deref(), Some("a.example.com"));
        assert_eq!(ev.url_path.as_deref(), Some("/x/y"));
        assert_eq!(ev.url_query.as_deref(), Some("q=1"));
        fill_url(&mut ev, "example.org:443");
        assert_eq!(ev.url_domain.as_deref(), Some("example.org"));
        assert_eq!(ev.url_scheme, None);
        assert_eq!(ev.url_path, None);
        fill_url(&mut ev, "/a?b");
        assert_eq!(ev.url_domain, None);
        assert_eq!(ev.url_path.as_deref(), Some("/a"));
        assert_eq!(ev.url_query.as_deref(), Some("b"));
    }

    #[test]
    fn dates() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(
            date_time_to_us("2018-03-24", "17:15:21.5"),
            Some(1_521_911_721_500_000)
        );
        assert_eq!(date_time_to_us("2018-13-24", "17:15:21"), None);
    }
}
