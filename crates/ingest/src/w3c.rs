//! W3C Extended Log File Format: a `#Fields:` directive names the
//! space-separated columns. IIS writes it (spaces in values become `+`), as do
//! Blue Coat/Symantec ProxySG (ELFF, values with spaces in double quotes) and
//! many proxies that follow them.

use crate::util::{
    dash, date_time_to_us, fill_url, millis_to_ns, parse_ip, parse_u16, parse_u64, put, put_opt,
};
use crate::{LineError, LineReader, Parsed, Reason};
use palisade_core::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Ignore,
    Date,
    Time,
    ClientIp,
    ClientPort,
    ServerIp,
    ServerPort,
    Method,
    UriStem,
    UriQuery,
    Uri,
    Host,
    Scheme,
    User,
    UserAgent,
    Referrer,
    Status,
    ScBytes,
    CsBytes,
    TimeTaken,
    Action,
    ContentType,
    ServerName,
}

fn resolve(name: &str) -> Col {
    use Col::*;
    match name.to_ascii_lowercase().as_str() {
        "date" => Date,
        "time" => Time,
        "c-ip" => ClientIp,
        "c-port" => ClientPort,
        "s-ip" | "r-ip" => ServerIp,
        "s-port" | "cs-uri-port" | "r-port" => ServerPort,
        "cs-method" => Method,
        "cs-uri-stem" | "cs-uri-path" => UriStem,
        "cs-uri-query" => UriQuery,
        "cs-uri" | "c-uri" => Uri,
        "cs-host" | "cs(host)" | "cs-uri-host" | "r-host" => Host,
        "cs-uri-scheme" => Scheme,
        "cs-username" => User,
        "cs(user-agent)" => UserAgent,
        "cs(referer)" | "cs(referrer)" => Referrer,
        "sc-status" => Status,
        "sc-bytes" => ScBytes,
        "cs-bytes" => CsBytes,
        "time-taken" => TimeTaken,
        "s-action" => Action,
        "rs(content-type)" | "sc(content-type)" => ContentType,
        "s-computername" => ServerName,
        _ => Ignore,
    }
}

#[derive(Default)]
pub(crate) struct W3c {
    cols: Vec<Col>,
    names: Vec<String>,
    /// `#Date:` of the file, for logs whose fields have a time but no date.
    directive_date: Option<String>,
    fields: Vec<(usize, usize)>,
}

/// Split a W3C line into fields: separated by spaces or tabs, `"quoted"`
/// values may hold spaces. Returns byte ranges (quotes stripped).
fn split_fields(line: &str, out: &mut Vec<(usize, usize)>) -> Result<(), LineError> {
    out.clear();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] == b'"' {
            let start = i + 1;
            let end = memchr::memchr(b'"', &b[start..])
                .map(|k| start + k)
                .ok_or_else(|| {
                    LineError::new(Reason::Syntax, "unterminated quoted value".into())
                })?;
            out.push((start, end));
            i = end + 1;
        } else {
            let start = i;
            while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
            out.push((start, i));
        }
    }
    Ok(())
}

impl LineReader for W3c {
    fn sniff(lines: &[&str]) -> bool {
        let l = lines[0];
        [
            "#Software:",
            "#Version:",
            "#Fields:",
            "#Date:",
            "#Remark:",
            "#Start-Date:",
        ]
        .iter()
        .any(|p| l.starts_with(p))
            && lines.iter().any(|l| l.starts_with("#Fields:"))
    }

    fn parse_line(&mut self, line: &str, ev: &mut Event) -> Result<Parsed, LineError> {
        if let Some(d) = line.strip_prefix('#') {
            if let Some(f) = d.strip_prefix("Fields:") {
                self.names = f.split_whitespace().map(str::to_string).collect();
                self.cols = self.names.iter().map(|n| resolve(n)).collect();
            } else if let Some(date) = d.strip_prefix("Date:") {
                self.directive_date = date.split_whitespace().next().map(str::to_string);
            }
            return Ok(Parsed::Skip);
        }
        if self.cols.is_empty() {
            return Err(LineError::new(
                Reason::MissingHeader,
                "W3C data line before any `#Fields:` directive (is the header missing?)".into(),
            ));
        }
        let mut fields = std::mem::take(&mut self.fields);
        let r = self.fill(line, &mut fields, ev);
        self.fields = fields;
        r
    }
}

impl W3c {
    fn fill(
        &self,
        line: &str,
        fields: &mut Vec<(usize, usize)>,
        ev: &mut Event,
    ) -> Result<Parsed, LineError> {
        split_fields(line, fields)?;
        if fields.len() != self.cols.len() {
            return Err(LineError::new(
                Reason::FieldCount,
                format!(
                    "{} fields where #Fields names {}",
                    fields.len(),
                    self.cols.len()
                ),
            ));
        }
        crate::reset_event(ev);
        let mut date = self.directive_date.as_deref();
        let mut time = None;
        let mut query = None;
        for (i, &(a, b)) in fields.iter().enumerate() {
            let v = match dash(&line[a..b]) {
                Some(v) => v,
                None => continue,
            };
            let bad = |r: Reason| {
                LineError::new(
                    r,
                    format!(
                        "field `{}`: `{}`",
                        self.names[i],
                        crate::util::excerpt(v, 80)
                    ),
                )
            };
            match self.cols[i] {
                Col::Ignore => {}
                Col::Date => date = Some(v),
                Col::Time => time = Some(v),
                Col::ClientIp => {
                    ev.source_ip = Some(parse_ip(v).ok_or_else(|| bad(Reason::BadAddress))?)
                }
                Col::ServerIp => {
                    ev.destination_ip = Some(parse_ip(v).ok_or_else(|| bad(Reason::BadAddress))?)
                }
                Col::ClientPort => {
                    ev.source_port = Some(parse_u16(v).ok_or_else(|| bad(Reason::BadNumber))?)
                }
                Col::ServerPort => {
                    ev.destination_port = Some(parse_u16(v).ok_or_else(|| bad(Reason::BadNumber))?)
                }
                Col::Method => put(&mut ev.http_request_method, v),
                Col::UriStem => put(&mut ev.url_path, v),
                Col::UriQuery => {
                    query = Some(v.strip_prefix('?').unwrap_or(v)).filter(|q| !q.is_empty())
                }
                Col::Uri => {
                    fill_url(ev, v);
                    put(&mut ev.url_full, v);
                }
                Col::Host => put(&mut ev.url_domain, v),
                Col::Scheme => put(&mut ev.url_scheme, v),
                Col::User => put(&mut ev.user_name, v),
                // IIS writes spaces in values as `+`.
                Col::UserAgent => put(&mut ev.user_agent_original, &v.replace('+', " ")),
                Col::Referrer => put(&mut ev.http_request_referrer, v),
                Col::Status => {
                    ev.http_response_status_code =
                        Some(parse_u16(v).ok_or_else(|| bad(Reason::BadNumber))?)
                }
                Col::ScBytes => {
                    ev.destination_bytes = Some(parse_u64(v).ok_or_else(|| bad(Reason::BadNumber))?)
                }
                Col::CsBytes => {
                    ev.source_bytes = Some(parse_u64(v).ok_or_else(|| bad(Reason::BadNumber))?)
                }
                Col::TimeTaken => {
                    ev.event_duration_ns =
                        Some(millis_to_ns(v).ok_or_else(|| bad(Reason::BadNumber))?)
                }
                Col::Action => put(&mut ev.event_action, v),
                Col::ContentType => put(&mut ev.http_response_mime_type, v),
                Col::ServerName => put(&mut ev.host_name, v),
            }
        }
        if query.is_some() {
            put_opt(&mut ev.url_query, query);
        }
        match (date, time) {
            (Some(d), Some(t)) => {
                ev.timestamp_us = Some(date_time_to_us(d, t).ok_or_else(|| {
                    LineError::new(
                        Reason::BadTimestamp,
                        format!("date/time `{d} {}`", crate::util::excerpt(t, 30)),
                    )
                })?)
            }
            _ => {
                return Err(LineError::new(
                    Reason::MissingField,
                    "no date and time".into(),
                ))
            }
        }
        if ev.url_full.is_none() {
            if let Some(host) = ev.url_domain.as_deref() {
                let mut full = format!("{}://{host}", ev.url_scheme.as_deref().unwrap_or("http"));
                if let Some(p) = &ev.url_path {
                    full.push_str(p);
                }
                if let Some(q) = &ev.url_query {
                    full.push('?');
                    full.push_str(q);
                }
                ev.url_full = Some(full);
            }
        }
        ev.event_outcome = ev.http_response_status_code.and_then(|s| match s {
            100..=399 => Some("success".to_string()),
            400..=599 => Some("failure".to_string()),
            _ => None,
        });
        ev.event_dataset = Some("w3c.access".into());
        ev.event_kind = Some("event".into());
        ev.event_category = Some("web".into());
        ev.network_protocol = Some("http".into());
        Ok(Parsed::Event)
    }
}
