//! Windows events: raw `.evtx` files (through the `evtx` crate) and JSON lines
//! as the common exporters write them. All shapes are reduced to one view
//! ([`WinView`]: system fields + event data) and mapped by one function, so an
//! .evtx file and its JSON export give the same events.
//!
//! JSON shapes understood:
//! - Winlogbeat / ECS: `{"@timestamp", "winlog": {"event_id", "channel",
//!   "computer_name", "record_id", "event_data": {..}}}`
//! - the `evtx` crate / evtx_dump: `{"Event": {"System": {..}, "EventData": {..}}}`
//! - python-evtx style: `{"EventID", "TimeCreated", "Channel", "Computer",
//!   "EventRecordID", "EventData": {..}}`
//! - OTRF / NXLog flat: `{"EventID", "Channel", "Hostname", "@timestamp" or
//!   "TimeCreated", <event data fields at top level>}`

use crate::util::{parse_ip, parse_u16, parse_u32};
use crate::{
    FileSummary, IngestError, IngestOptions, LineError, LineReader, Parsed, Reason, Rejected,
    SinkError,
};
use palisade_core::event::parse_timestamp_us;
use palisade_core::Event;
use serde_json::{Map, Value};
use std::io::Write;

pub(crate) struct WindowsJson;

impl WindowsJson {
    pub(crate) fn sniff_value(v: &Value) -> bool {
        v.get("winlog").is_some_and(Value::is_object)
            || v.get("Event").and_then(|e| e.get("System")).is_some()
            || v.get("EventID").is_some()
    }
}

/// A scalar JSON value as text; `None` for null, `-`, empty and containers.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() || t == "-" {
                None
            } else {
                Some(t.to_string())
            }
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        // evtx renders an element with attributes as {"#text": .., "#attributes": ..}
        Value::Object(o) => o.get("#text").and_then(text),
        _ => None,
    }
}

/// One Windows event, whatever JSON shape it came in.
struct WinView<'a> {
    event_id: Option<u32>,
    channel: Option<String>,
    computer: Option<String>,
    time_us: Option<i64>,
    record_id: Option<u64>,
    /// Where event data fields are looked up, in order.
    data: Vec<&'a Map<String, Value>>,
}

impl WinView<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.data.iter().find_map(|m| m.get(key).and_then(text))
    }
}

/// Windows time text: RFC 3339, or `2019-02-13 15:14:52.409735+00:00`
/// (python-evtx), or `2020-10-19 03:30:41.104` (NXLog, taken as UTC).
fn win_time(s: &str) -> Option<i64> {
    if let Some(t) = parse_timestamp_us(s) {
        return Some(t);
    }
    if s.len() > 10 && s.as_bytes()[10] == b' ' {
        let mut t = s.to_string();
        t.replace_range(10..11, "T");
        return parse_timestamp_us(&t);
    }
    None
}

fn view(v: &Value) -> Option<WinView<'_>> {
    let o = v.as_object()?;
    if let Some(w) = o.get("winlog").and_then(Value::as_object) {
        let mut data = Vec::new();
        if let Some(d) = w.get("event_data").and_then(Value::as_object) {
            data.push(d);
        }
        if let Some(d) = w.get("user_data").and_then(Value::as_object) {
            data.push(d);
        }
        let event_id = w
            .get("event_id")
            .and_then(text)
            .or_else(|| o.get("event").and_then(|e| e.get("code")).and_then(text))
            .and_then(|s| parse_u32(&s));
        let computer = w
            .get("computer_name")
            .and_then(text)
            .or_else(|| o.get("host").and_then(|h| h.get("name")).and_then(text));
        let time_us = o
            .get("@timestamp")
            .and_then(text)
            .and_then(|t| win_time(&t));
        let record_id = w
            .get("record_id")
            .and_then(text)
            .and_then(|s| s.parse().ok());
        return Some(WinView {
            event_id,
            channel: w.get("channel").and_then(text),
            computer,
            time_us,
            record_id,
            data,
        });
    }
    if let Some(e) = o.get("Event").and_then(Value::as_object) {
        let sys = e.get("System").and_then(Value::as_object)?;
        let mut data = Vec::new();
        if let Some(d) = e.get("EventData").and_then(Value::as_object) {
            data.push(d);
        }
        if let Some(ud) = e.get("UserData").and_then(Value::as_object) {
            // UserData holds one vendor element whose children are the fields.
            for inner in ud.values().filter_map(Value::as_object) {
                data.push(inner);
            }
        }
        let time_us = sys
            .get("TimeCreated")
            .and_then(|t| {
                t.get("#attributes")
                    .and_then(|a| a.get("SystemTime"))
                    .or(Some(t))
            })
            .and_then(text)
            .and_then(|t| win_time(&t));
        return Some(WinView {
            event_id: sys
                .get("EventID")
                .and_then(text)
                .and_then(|s| parse_u32(&s)),
            channel: sys.get("Channel").and_then(text),
            computer: sys.get("Computer").and_then(text),
            time_us,
            record_id: sys
                .get("EventRecordID")
                .and_then(text)
                .and_then(|s| s.parse().ok()),
            data,
        });
    }
    // python-evtx and OTRF/NXLog: system fields at top level
    let mut data = Vec::new();
    if let Some(d) = o.get("EventData").and_then(Value::as_object) {
        data.push(d);
    }
    data.push(o);
    let time_us = ["@timestamp", "TimeCreated", "EventTime"]
        .iter()
        .find_map(|k| o.get(*k).and_then(text).and_then(|t| win_time(&t)));
    Some(WinView {
        event_id: o.get("EventID").and_then(text).and_then(|s| parse_u32(&s)),
        channel: o.get("Channel").and_then(text),
        computer: o
            .get("Computer")
            .or_else(|| o.get("Hostname"))
            .and_then(text),
        time_us,
        record_id: o
            .get("EventRecordID")
            .or_else(|| o.get("RecordNumber"))
            .and_then(text)
            .and_then(|s| s.parse().ok()),
        data,
    })
}

fn transport_of(proto: &str) -> String {
    match proto {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "58" => "ipv6-icmp".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// `DOMAIN\user` to (domain, user).
fn split_account(s: &str) -> (Option<String>, String) {
    match s.split_once('\\') {
        Some((d, u)) => (Some(d.to_string()), u.to_string()),
        None => (None, s.to_string()),
    }
}

/// Fill the event from a Windows event view. Every event id keeps its id,
/// channel, host and time; the listed security events get their meaning.
fn map_view(w: &WinView<'_>, ev: &mut Event) -> Result<(), LineError> {
    let id = w
        .event_id
        .ok_or_else(|| LineError::new(Reason::MissingField, "no EventID".into()))?;
    ev.winlog_event_id = Some(id);
    ev.event_code = Some(id.to_string());
    ev.winlog_channel = w.channel.clone();
    ev.winlog_record_id = w.record_id;
    ev.host_name = w.computer.clone();
    ev.timestamp_us = w.time_us;
    ev.event_kind = Some("event".into());
    let channel = w.channel.as_deref().unwrap_or("");
    let sysmon = channel.contains("Sysmon");
    ev.event_dataset = Some(
        if sysmon {
            "windows.sysmon"
        } else if channel.eq_ignore_ascii_case("security") {
            "windows.security"
        } else {
            "windows.event"
        }
        .into(),
    );
    let ip = |k: &str| w.get(k).and_then(|s| parse_ip(&s));
    let port = |k: &str| w.get(k).and_then(|s| parse_u16(&s)).filter(|p| *p != 0);

    let (category, action, outcome): (&str, &str, Option<&str>) = match (sysmon, id) {
        (true, 3) => ("network", "network-connection", None),
        (true, _) => ("process", "sysmon", None),
        (false, 4624) => ("authentication", "logged-in", Some("success")),
        (false, 4625) => ("authentication", "logon-failed", Some("failure")),
        (false, 4634) | (false, 4647) => ("authentication", "logged-out", Some("success")),
        (false, 4648) => ("authentication", "logged-in-explicit", Some("success")),
        (false, 4672) => ("iam", "logged-in-special", Some("success")),
        (false, 4768) => (
            "authentication",
            "kerberos-authentication-ticket-requested",
            None,
        ),
        (false, 4769) => ("authentication", "kerberos-service-ticket-requested", None),
        (false, 4771) => ("authentication", "kerberos-preauth-failed", Some("failure")),
        (false, 4776) => ("authentication", "credential-validated", None),
        (false, 4778) => ("session", "session-reconnected", Some("success")),
        (false, 4779) => ("session", "session-disconnected", Some("success")),
        (false, 5156) => ("network", "network-connection-allowed", Some("success")),
        (false, 5157) => ("network", "network-connection-blocked", Some("failure")),
        (false, 5152) => ("network", "packet-dropped", Some("failure")),
        _ => ("host", "", None),
    };
    ev.event_category = Some(category.into());
    ev.event_action = (!action.is_empty()).then(|| action.into());
    ev.event_outcome = outcome.map(str::to_string);

    match (sysmon, id) {
        (true, 3) => {
            ev.source_ip = ip("SourceIp");
            ev.source_port = port("SourcePort");
            ev.destination_ip = ip("DestinationIp");
            ev.destination_port = port("DestinationPort");
            ev.destination_domain = w.get("DestinationHostname");
            ev.network_transport = w.get("Protocol").map(|p| transport_of(&p));
            ev.network_direction = w.get("Initiated").map(|i| {
                if i.eq_ignore_ascii_case("true") {
                    "egress"
                } else {
                    "ingress"
                }
                .to_string()
            });
            sysmon_user(w, ev);
        }
        (false, 5156 | 5157 | 5152) => {
            ev.source_ip = ip("SourceAddress");
            ev.source_port = port("SourcePort");
            ev.destination_ip = ip("DestAddress");
            ev.destination_port = port("DestPort");
            ev.network_transport = w.get("Protocol").map(|p| transport_of(&p));
            // %%14592 inbound, %%14593 outbound (msobjs.dll message ids)
            ev.network_direction = w.get("Direction").and_then(|d| match d.as_str() {
                "%%14592" | "Inbound" => Some("ingress".to_string()),
                "%%14593" | "Outbound" => Some("egress".to_string()),
                _ => None,
            });
        }
        (false, 4778 | 4779) => {
            ev.user_name = w.get("AccountName");
            ev.user_domain = w.get("AccountDomain");
            ev.source_ip = ip("ClientAddress");
            ev.source_port = None;
        }
        (false, 4672) => {
            ev.user_name = w.get("SubjectUserName");
            ev.user_domain = w.get("SubjectDomainName");
        }
        (false, 4776) => {
            ev.user_name = w.get("TargetUserName");
            ev.source_domain = w.get("Workstation");
            ev.winlog_authentication_package = w.get("PackageName");
            ev.winlog_status = w.get("Status");
            ev.event_outcome = status_outcome(ev.winlog_status.as_deref());
        }
        (false, 4768 | 4769 | 4771) => {
            ev.user_name = w.get("TargetUserName");
            ev.user_domain = w.get("TargetDomainName");
            ev.source_ip = ip("IpAddress");
            ev.source_port = port("IpPort");
            ev.winlog_authentication_package = Some("Kerberos".into());
            ev.winlog_status = w.get("Status");
            if id != 4771 {
                ev.event_outcome = status_outcome(ev.winlog_status.as_deref());
            }
        }
        (false, _) => {
            // 4624, 4625, 4634, 4648 and any other event with these names
            ev.user_name = w.get("TargetUserName").or_else(|| w.get("SubjectUserName"));
            ev.user_domain = w
                .get("TargetDomainName")
                .or_else(|| w.get("SubjectDomainName"));
            ev.source_ip = ip("IpAddress");
            ev.source_port = port("IpPort");
            ev.winlog_logon_type = w.get("LogonType").and_then(|s| parse_u32(&s));
            // the client's name for itself (NTLM sends it): not `host.name`,
            // which is the computer that logged the event
            ev.source_domain = w.get("WorkstationName");
            ev.winlog_authentication_package = w.get("AuthenticationPackageName");
            ev.winlog_logon_process = w.get("LogonProcessName");
            ev.winlog_status = w.get("Status");
            if ev.destination_domain.is_none() && id == 4648 {
                ev.destination_domain = w.get("TargetServerName");
            }
        }
        // process creation (1), file (11), registry (12-14) and the rest
        // carry the account too
        (true, _) => sysmon_user(w, ev),
    }
    Ok(())
}

/// Sysmon's `User` (`DOMAIN\name`) to user.name and user.domain.
fn sysmon_user(w: &WinView<'_>, ev: &mut Event) {
    if let Some(u) = w.get("User") {
        let (d, u) = split_account(&u);
        ev.user_domain = d;
        ev.user_name = Some(u);
    }
}

/// Kerberos / NTLM status: `0x0` is success.
fn status_outcome(s: Option<&str>) -> Option<String> {
    let s = s?;
    let v = s.strip_prefix("0x").map_or_else(
        || s.parse::<u64>().ok(),
        |h| u64::from_str_radix(h, 16).ok(),
    )?;
    Some(if v == 0 { "success" } else { "failure" }.into())
}

impl LineReader for WindowsJson {
    fn sniff(lines: &[&str]) -> bool {
        lines
            .first()
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .is_some_and(|v| Self::sniff_value(&v))
    }

    fn parse_line(&mut self, line: &str, ev: &mut Event) -> Result<Parsed, LineError> {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| LineError::new(Reason::BadJson, format!("not a JSON object: {e}")))?;
        let w = view(&v).ok_or_else(|| {
            LineError::new(Reason::BadJson, "a JSON value that is not an object".into())
        })?;
        crate::reset_event(ev);
        map_view(&w, ev)?;
        Ok(Parsed::Event)
    }
}

/// Read a whole .evtx file held in memory. Records that cannot be decoded
/// (corrupt chunk, bad template) are counted as `evtx_record` and skipped; a
/// file whose header is unreadable is an error.
pub(crate) fn read_evtx<F>(
    name: &str,
    bytes: Vec<u8>,
    opts: &IngestOptions,
    quarantine: Option<&mut dyn Write>,
    mut sink: F,
    mut summary: FileSummary,
) -> Result<FileSummary, IngestError>
where
    F: FnMut(&Event) -> Result<(), SinkError>,
{
    let file_len = bytes.len() as u64;
    // The evtx crate is a binary parser of untrusted input; a panic inside it
    // must not take the whole ingest down, so it runs behind catch_unwind.
    let parsed = std::panic::catch_unwind(move || evtx::EvtxParser::from_buffer(bytes));
    let mut parser = match parsed {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            return Err(IngestError::Evtx {
                path: name.to_string(),
                message: e.to_string(),
            })
        }
        Err(_) => {
            return Err(IngestError::Evtx {
                path: name.to_string(),
                message: "the evtx decoder failed on the file header".into(),
            })
        }
    };
    let mut quarantine = quarantine;
    let truncated = truncation(file_len, parser.header().chunk_count);
    let mut ev = Event::default();
    let mut records = parser.records_json_value();
    loop {
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| records.next()));
        let item = match next {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(_) => {
                let line = summary.lines + 1;
                reject(
                    &mut summary,
                    opts,
                    &mut quarantine,
                    name,
                    line,
                    "the evtx decoder failed; rest of file skipped".into(),
                )?;
                break;
            }
        };
        summary.lines += 1;
        let line = summary.lines;
        match item {
            Ok(rec) => {
                ev = Event {
                    log_file_path: Some(name.to_string()),
                    ..Default::default()
                };
                let w = match view(&rec.data) {
                    Some(w) => w,
                    None => {
                        reject(
                            &mut summary,
                            opts,
                            &mut quarantine,
                            name,
                            line,
                            "record is not a JSON object".into(),
                        )?;
                        continue;
                    }
                };
                if let Err(e) = map_view(&w, &mut ev) {
                    reject(&mut summary, opts, &mut quarantine, name, line, e.detail)?;
                    continue;
                }
                if ev.timestamp_us.is_none() {
                    ev.timestamp_us = Some(rec.timestamp.as_microsecond());
                }
                if ev.winlog_record_id.is_none() {
                    ev.winlog_record_id = Some(rec.event_record_id);
                }
                ev.log_line = Some(line);
                if opts.keep_original {
                    ev.original = Some(rec.data.to_string());
                }
                sink(&ev).map_err(|cause| IngestError::Sink {
                    path: name.to_string(),
                    cause,
                })?;
                summary.events += 1;
            }
            Err(e) => reject(
                &mut summary,
                opts,
                &mut quarantine,
                name,
                line,
                e.to_string(),
            )?,
        }
    }
    drop(records);
    drop(ev);
    // The evtx crate reads whole chunks only and stops quietly at the end of
    // the last one: a cut-off file would otherwise look complete.
    if let Some(detail) = truncated {
        summary.warnings.push(format!(
            "{name}: truncated .evtx file, its last records are missing (counted as an evtx_record skip)"
        ));
        let line = summary.lines + 1;
        reject(&mut summary, opts, &mut quarantine, name, line, detail)?;
    }
    Ok(summary)
}

/// The size of an .evtx file header and of a chunk (fixed by the format).
const EVTX_HEADER: u64 = 4096;
const EVTX_CHUNK: u64 = 65536;

/// Why an .evtx file of `len` bytes whose header declares `declared` chunks
/// looks truncated, or `None`: it ends inside a chunk, or holds fewer whole
/// chunks than its header declares. (A file can hold more: a log that was not
/// closed cleanly, or past the u16 count of the header, is read on.)
fn truncation(len: u64, declared: u16) -> Option<String> {
    let data = len.saturating_sub(EVTX_HEADER);
    let whole = data / EVTX_CHUNK;
    let part = data % EVTX_CHUNK;
    let declared = u64::from(declared);
    let fewer = whole < declared && whole < u64::from(u16::MAX);
    if part == 0 && !fewer {
        return None;
    }
    let mut why = String::from("truncated .evtx file: ");
    if part > 0 {
        why.push_str(&format!(
            "it ends mid-chunk ({part} of the {EVTX_CHUNK} bytes of chunk {whole}, whose records are not read)"
        ));
        if fewer {
            why.push_str("; ");
        }
    }
    if fewer {
        why.push_str(&format!(
            "it holds {whole} whole chunk(s) of the {declared} its header declares"
        ));
    }
    Some(why)
}

fn reject(
    summary: &mut FileSummary,
    opts: &IngestOptions,
    quarantine: &mut Option<&mut dyn Write>,
    name: &str,
    line: u64,
    detail: String,
) -> Result<(), IngestError> {
    tracing::debug!(file = name, record = line, "evtx record skipped: {detail}");
    *summary.skipped.entry(Reason::EvtxRecord).or_insert(0) += 1;
    // The raw bytes of a broken record are not recoverable; the quarantine gets
    // a JSON line that names it instead.
    if let Some(q) = quarantine.as_mut() {
        let note = serde_json::json!({"file": name, "record": line, "error": detail});
        writeln!(q, "{note}").map_err(|cause| IngestError::Quarantine {
            path: name.to_string(),
            cause,
        })?;
    }
    if summary.examples.len() < opts.max_examples {
        summary.examples.push(Rejected {
            line,
            reason: Reason::EvtxRecord,
            detail: detail.clone(),
        });
    }
    if let Some(max) = opts.max_errors {
        if summary.skipped_total() > max {
            return Err(IngestError::TooManyErrors {
                path: name.to_string(),
                max,
                line,
                example: detail,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod truncation_tests {
    use super::truncation;

    #[test]
    fn whole_files_are_not_truncated() {
        assert_eq!(truncation(4096 + 3 * 65536, 3), None);
        // more chunks than declared (a log not closed cleanly) is fine
        assert_eq!(truncation(4096 + 3 * 65536, 2), None);
    }

    #[test]
    fn cut_files_are() {
        let w = truncation(100_000, 17).expect("mid-chunk");
        assert!(
            w.contains("mid-chunk") && w.contains("1 whole chunk(s) of the 17"),
            "{w}"
        );
        let w = truncation(66_000, 17).expect("mid-chunk");
        assert!(
            w.contains("chunk 0") && w.contains("0 whole chunk(s)"),
            "{w}"
        );
        let w = truncation(4096 + 2 * 65536, 3).expect("fewer chunks");
        assert!(
            !w.contains("mid-chunk") && w.contains("2 whole chunk(s) of the 3"),
            "{w}"
        );
        let w = truncation(4096 + 65536 + 10, 1).expect("trailing bytes");
        assert!(w.contains("mid-chunk") && !w.contains("declares"), "{w}");
    }
}
