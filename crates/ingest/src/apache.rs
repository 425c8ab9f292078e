//! Apache / nginx access logs, combined format
//! (`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`) and common format
//! (the same without the last two). Hand-parsed: no regex on the hot path.

use crate::util::{
    dash, days_from_civil, digits, fill_url, month_abbrev, parse_ip, parse_u16, parse_u64, put,
    put_opt,
};
use crate::{LineError, LineReader, Parsed, Reason};
use palisade_core::Event;

pub(crate) struct Apache;

fn syntax(what: &str) -> LineError {
    LineError::new(Reason::Syntax, format!("not an access-log line: {what}"))
}

fn token<'a>(s: &mut &'a str) -> Option<&'a str> {
    let t = s.trim_start_matches(' ');
    let end = memchr::memchr(b' ', t.as_bytes()).unwrap_or(t.len());
    if end == 0 {
        return None;
    }
    let (a, b) = t.split_at(end);
    *s = b;
    Some(a)
}

/// A `"quoted"` field; Apache escapes `"` inside as `\"`.
fn quoted<'a>(s: &mut &'a str) -> Option<&'a str> {
    let t = s.trim_start_matches(' ');
    let body = t.strip_prefix('"')?;
    let b = body.as_bytes();
    let mut from = 0;
    loop {
        let i = from + memchr::memchr(b'"', &b[from..])?;
        // count preceding backslashes: an even number means the quote is real
        let mut k = i;
        while k > 0 && b[k - 1] == b'\\' {
            k -= 1;
        }
        if (i - k) % 2 == 0 {
            *s = &body[i + 1..];
            return Some(&body[..i]);
        }
        from = i + 1;
    }
}

/// `17/May/2015:10:05:03 +0000` to microseconds, UTC.
pub(crate) fn clf_time(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let day = digits(&b[0..2])?;
    let mon = month_abbrev(&b[3..6])?;
    let year = digits(&b[7..11])? as i64;
    let (secs, _) = crate::util::hms_to_secs(&b[12..20])?;
    let mut off = 0i64;
    if b.len() > 20 {
        let z = t[20..].trim();
        let zb = z.as_bytes();
        if zb.len() != 5 || !(zb[0] == b'+' || zb[0] == b'-') {
            return None;
        }
        let hh = digits(&zb[1..3])? as i64;
        let mm = digits(&zb[3..5])? as i64;
        off = (hh * 3600 + mm * 60) * if zb[0] == b'-' { -1 } else { 1 };
    }
    let days = days_from_civil(year, mon, day)?;
    Some((days * 86_400 + secs - off) * 1_000_000)
}

impl LineReader for Apache {
    fn sniff(lines: &[&str]) -> bool {
        let mut ev = Event::default();
        lines
            .iter()
            .take(3)
            .all(|l| Apache.parse_line(l, &mut ev).is_ok())
    }

    fn parse_line(&mut self, line: &str, ev: &mut Event) -> Result<Parsed, LineError> {
        let mut s = line;
        let host = token(&mut s).ok_or_else(|| syntax("no client field"))?;
        let _ident = token(&mut s).ok_or_else(|| syntax("no ident field"))?;
        let user = token(&mut s).ok_or_else(|| syntax("no user field"))?;
        let t = s.trim_start_matches(' ');
        let t = t.strip_prefix('[').ok_or_else(|| syntax("no [time]"))?;
        let end =
            memchr::memchr(b']', t.as_bytes()).ok_or_else(|| syntax("unterminated [time]"))?;
        let ts = clf_time(&t[..end]).ok_or_else(|| {
            LineError::new(
                Reason::BadTimestamp,
                format!("time `{}`", crate::util::excerpt(&t[..end], 40)),
            )
        })?;
        s = &t[end + 1..];
        let request = quoted(&mut s).ok_or_else(|| syntax("no \"request\""))?;
        let status =
            token(&mut s).ok_or_else(|| LineError::new(Reason::FieldCount, "no status".into()))?;
        let status = parse_u16(status).ok_or_else(|| {
            LineError::new(
                Reason::BadNumber,
                format!("status `{}`", crate::util::excerpt(status, 20)),
            )
        })?;
        let bytes =
            token(&mut s).ok_or_else(|| LineError::new(Reason::FieldCount, "no size".into()))?;
        let bytes = match bytes {
            "-" => None,
            b => Some(parse_u64(b).ok_or_else(|| {
                LineError::new(
                    Reason::BadNumber,
                    format!("size `{}`", crate::util::excerpt(b, 20)),
                )
            })?),
        };
        let referrer = quoted(&mut s);
        let agent = quoted(&mut s);

        ev.timestamp_us = Some(ts);
        // `%h` is a host name when HostnameLookups is on.
        ev.source_ip = parse_ip(host);
        put_opt(&mut ev.user_name, dash(user));
        // "GET /x HTTP/1.1"; scanners send junk ("\x16\x03..."), which is still an event
        let mut parts = request.splitn(3, ' ');
        match (parts.next(), parts.next()) {
            (Some(m), Some(target))
                if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) =>
            {
                put(&mut ev.http_request_method, m);
                fill_url(ev, target);
                if ev.url_domain.is_some() {
                    put(&mut ev.url_full, target);
                } else {
                    ev.url_full = None;
                }
            }
            _ => {
                ev.http_request_method = None;
                ev.url_path = None;
                ev.url_query = None;
                ev.url_domain = None;
                ev.url_scheme = None;
                ev.url_full = None;
            }
        }
        ev.http_response_status_code = Some(status);
        put_opt(
            &mut ev.event_outcome,
            match status {
                100..=399 => Some("success"),
                400..=599 => Some("failure"),
                _ => None,
            },
        );
        ev.destination_bytes = bytes;
        put_opt(&mut ev.http_request_referrer, referrer.and_then(dash));
        put_opt(&mut ev.user_agent_original, agent.and_then(dash));
        if ev.event_dataset.is_none() {
            ev.event_dataset = Some("apache.access".into());
            ev.event_kind = Some("event".into());
            ev.event_category = Some("web".into());
            ev.network_protocol = Some("http".into());
        }
        Ok(Parsed::Event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_times() {
        assert_eq!(
            clf_time("17/May/2015:10:05:03 +0000"),
            Some(1_431_857_103_000_000)
        );
        // -0800 is 8 hours behind UTC
        assert_eq!(
            clf_time("18/Jan/2015:02:31:50 -0800"),
            Some(1_421_577_110_000_000)
        );
        assert_eq!(clf_time("18/Foo/2015:02:31:50 -0800"), None);
    }

    #[test]
    fn escaped_quotes() {
        let mut s = r#""a \"b\" c" rest"#;
        assert_eq!(quoted(&mut s), Some(r#"a \"b\" c"#));
    }
}
