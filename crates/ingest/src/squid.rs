//! Squid native `access.log`:
//! `time elapsed client code/status bytes method URL user hierarchy/peer type`
//! (optionally followed by quoted referrer and user agent, as common
//! `logformat` extensions add). Hand-split on spaces: this is a hot path.

use crate::util::{
    dash, fill_url, millis_to_ns, parse_ip, parse_u16, parse_u64, port_of, put, put_opt,
};
use crate::{LineError, LineReader, Parsed, Reason};
use palisade_core::Event;

pub(crate) struct Squid;

/// Split off the next space-separated token (runs of spaces are one separator).
#[inline]
fn next_token<'a>(s: &mut &'a str) -> Option<&'a str> {
    let t = s.trim_start_matches(' ');
    if t.is_empty() {
        *s = t;
        return None;
    }
    // byte loop, not memchr: tokens are short (measured faster)
    let b = t.as_bytes();
    let mut end = 0;
    while end < b.len() && b[end] != b' ' {
        end += 1;
    }
    let (tok, rest) = t.split_at(end);
    *s = rest;
    Some(tok)
}

/// A `"quoted"` token (Squid escapes nothing inside; we stop at the next `"`).
fn next_quoted<'a>(s: &mut &'a str) -> Option<&'a str> {
    let t = s.trim_start_matches(' ');
    let body = t.strip_prefix('"')?;
    let end = memchr::memchr(b'"', body.as_bytes())?;
    *s = &body[end + 1..];
    Some(&body[..end])
}

impl LineReader for Squid {
    fn sniff(lines: &[&str]) -> bool {
        let l = lines[0];
        let mut s = l;
        let toks: Vec<&str> = std::iter::from_fn(|| next_token(&mut s)).take(10).collect();
        toks.len() >= 9
            && crate::util::epoch_us(toks[0]).is_some()
            && parse_u64(toks[1]).is_some()
            && toks[3].contains('/')
    }

    fn parse_line(&mut self, line: &str, ev: &mut Event) -> Result<Parsed, LineError> {
        let mut s = line;
        let mut tok = |what: &str| {
            next_token(&mut s).ok_or_else(|| {
                LineError::new(
                    Reason::FieldCount,
                    format!("line ends before the {what} field"),
                )
            })
        };
        let ts = tok("time")?;
        let elapsed = tok("elapsed")?;
        let client = tok("client address")?;
        let code = tok("result code")?;
        let bytes = tok("bytes")?;
        let method = tok("method")?;
        let url = tok("URL")?;
        let user = tok("user")?;
        let hier = tok("hierarchy")?;
        let ctype = next_token(&mut s);

        ev.timestamp_us = Some(crate::util::epoch_us(ts).ok_or_else(|| {
            LineError::new(
                Reason::BadTimestamp,
                format!("time `{}`", crate::util::excerpt(ts, 40)),
            )
        })?);
        ev.event_duration_ns = Some(millis_to_ns(elapsed).ok_or_else(|| {
            LineError::new(
                Reason::BadNumber,
                format!("elapsed `{}`", crate::util::excerpt(elapsed, 40)),
            )
        })?);
        // With `log_fqdn on` the client is a host name, not an address.
        match parse_ip(client) {
            Some(ip) => {
                ev.source_ip = Some(ip);
            }
            None => {
                ev.source_ip = None;
            }
        }
        let (action, status) = code.split_once('/').ok_or_else(|| {
            LineError::new(
                Reason::Syntax,
                format!(
                    "result code `{}` is not ACTION/STATUS",
                    crate::util::excerpt(code, 40)
                ),
            )
        })?;
        put(&mut ev.event_action, action);
        let status = parse_u16(status).ok_or_else(|| {
            LineError::new(
                Reason::BadNumber,
                format!("status `{}`", crate::util::excerpt(status, 40)),
            )
        })?;
        ev.http_response_status_code = Some(status);
        put_opt(
            &mut ev.event_outcome,
            match status {
                100..=399 => Some("success"),
                400..=599 => Some("failure"),
                _ => None,
            },
        );
        ev.destination_bytes = Some(parse_u64(bytes).ok_or_else(|| {
            LineError::new(
                Reason::BadNumber,
                format!("bytes `{}`", crate::util::excerpt(bytes, 40)),
            )
        })?);
        put_opt(&mut ev.http_request_method, dash(method));
        // CONNECT carries host:port; other methods an absolute URL. Squid also
        // logs pseudo-URLs (`error:transaction-end-before-headers`): no URL fields.
        let is_connect = method == "CONNECT";
        match dash(url) {
            Some(u)
                if is_connect
                    || crate::util::find_scheme_sep(u.as_bytes()).is_some()
                    || u.starts_with('/') =>
            {
                fill_url(ev, u);
                put_opt(
                    &mut ev.url_full,
                    Some(u).filter(|u| crate::util::find_scheme_sep(u.as_bytes()).is_some()),
                );
            }
            _ => {
                ev.url_full = None;
                ev.url_domain = None;
                ev.url_path = None;
                ev.url_query = None;
                ev.url_scheme = None;
            }
        }
        ev.destination_port = if is_connect { port_of(url) } else { None };
        put_opt(&mut ev.user_name, dash(user));
        let peer = hier.split_once('/').map(|(_, p)| p).and_then(dash);
        match peer.map(|p| (p, parse_ip(p))) {
            Some((_, Some(ip))) => {
                ev.destination_ip = Some(ip);
                ev.destination_domain = None;
            }
            Some((p, None)) => {
                ev.destination_ip = None;
                put(&mut ev.destination_domain, p);
            }
            None => {
                ev.destination_ip = None;
                ev.destination_domain = None;
            }
        }
        put_opt(&mut ev.http_response_mime_type, ctype.and_then(dash));
        put_opt(
            &mut ev.http_request_referrer,
            next_quoted(&mut s).and_then(dash),
        );
        put_opt(
            &mut ev.user_agent_original,
            next_quoted(&mut s).and_then(dash),
        );
        if ev.event_dataset.is_none() {
            ev.event_dataset = Some("squid.access".into());
            ev.event_kind = Some("event".into());
            ev.event_category = Some("web".into());
            ev.network_protocol = Some("http".into());
        }
        Ok(Parsed::Event)
    }
}
