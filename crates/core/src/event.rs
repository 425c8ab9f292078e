//! The one normalised event that every reader fills.
//!
//! Field names follow the Elastic Common Schema (ECS). The in-memory shape is a
//! plain struct of `Option`s: readers fill it row by row, features read it row by
//! row, and the table writers in `palisade-io` lay it out in columns (Parquet,
//! CSV) using [`EVENT_FIELDS`]. We chose rows over Arrow batches on purpose:
//! arrow + parquet-arrow cost ~14 minutes of clean build on the 2-core machines
//! this project is built on, and every consumer here walks events one at a time.
//!
//! Architecture invariant: adding a field means adding it to the struct *and*
//! to [`EVENT_FIELDS`] (the test `every_field_round_trips` holds this).

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A normalised security event. Timestamps are microseconds since the Unix
/// epoch, UTC. Durations are nanoseconds, as ECS says.
///
/// The fields are in memory in the order written here (`repr(C)`), the ones
/// the feature sets read together first. Why: an event is about 1 KiB, a
/// large log's events do not fit in any cache, and Rust's own order put the
/// small fields (addresses, ports, Windows ids) after all the text, so the
/// flow set read 8 of an event's 17 cache lines for its 9 fields; here they
/// share its first 4. The order is also the order of the keys in an event's
/// JSON line (a JSON object's keys have no order that means anything; the
/// columnar writers follow [`EVENT_FIELDS`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[repr(C)]
pub struct Event {
    // -- what the entity sets read most: the fixed-size fields (timestamp,
    // counters, addresses, ports, Windows ids)
    #[serde(
        rename = "@timestamp",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp_us: Option<i64>,
    #[serde(
        rename = "event.duration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_duration_ns: Option<i64>,
    #[serde(
        rename = "source.bytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_bytes: Option<u64>,
    #[serde(
        rename = "destination.bytes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_bytes: Option<u64>,
    #[serde(rename = "source.ip", default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    #[serde(
        rename = "destination.ip",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_ip: Option<IpAddr>,
    #[serde(
        rename = "source.port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_port: Option<u16>,
    #[serde(
        rename = "destination.port",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_port: Option<u16>,
    #[serde(
        rename = "http.response.status_code",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_response_status_code: Option<u16>,
    #[serde(
        rename = "winlog.event_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub winlog_event_id: Option<u32>,
    #[serde(
        rename = "winlog.logon.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub winlog_logon_type: Option<u32>,

    // -- the text fields the host and flow sets test
    /// Where the event came from, e.g. `zeek.conn`, `squid.access`, `windows.security`.
    #[serde(
        rename = "event.dataset",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_dataset: Option<String>,
    /// Connection state as the sensor reports it (Zeek `conn_state`, firewall action).
    #[serde(
        rename = "network.connection_state",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_connection_state: Option<String>,
    #[serde(
        rename = "event.outcome",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_outcome: Option<String>,
    /// `inbound`, `outbound`, `internal`, `external`, `ingress`, `egress` (ECS values).
    #[serde(
        rename = "network.direction",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_direction: Option<String>,
    #[serde(rename = "host.name", default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    #[serde(
        rename = "winlog.channel",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub winlog_channel: Option<String>,
    #[serde(
        rename = "winlog.event_data.AuthenticationPackageName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub winlog_authentication_package: Option<String>,
    /// Zeek's connection `uid` (conn_uids for files), the same in every log
    /// line of one connection (conn.log, rdp.log, ntlm.log, …): it ties them
    /// together. Named as Elastic's Zeek integration names it. Not
    /// `network.community_id`, which is a hash of the flow's 5-tuple that
    /// other tools compute and join on; palisade wrote the uid there before,
    /// and still reads that name as this field ([`canonical_field_name`]).
    #[serde(
        rename = "zeek.session_id",
        alias = "network.community_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub session_id: Option<String>,

    // -- what the request and domain sets read
    #[serde(rename = "url.full", default, skip_serializing_if = "Option::is_none")]
    pub url_full: Option<String>,
    #[serde(
        rename = "url.domain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub url_domain: Option<String>,
    #[serde(rename = "url.path", default, skip_serializing_if = "Option::is_none")]
    pub url_path: Option<String>,
    #[serde(rename = "url.query", default, skip_serializing_if = "Option::is_none")]
    pub url_query: Option<String>,
    #[serde(
        rename = "url.scheme",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub url_scheme: Option<String>,
    #[serde(
        rename = "http.request.method",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_request_method: Option<String>,
    #[serde(
        rename = "http.request.referrer",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_request_referrer: Option<String>,
    #[serde(
        rename = "http.response.mime_type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_response_mime_type: Option<String>,
    #[serde(
        rename = "user_agent.original",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_agent_original: Option<String>,
    #[serde(
        rename = "tls.client.server_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_server_name: Option<String>,
    #[serde(
        rename = "dns.question.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_question_name: Option<String>,

    // -- the rest
    #[serde(
        rename = "source.packets",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_packets: Option<u64>,
    #[serde(
        rename = "destination.packets",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_packets: Option<u64>,
    /// The record's EventRecordID (the same in an .evtx file and its exports).
    #[serde(
        rename = "winlog.record_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub winlog_record_id: Option<u64>,
    /// 1-based line number (or record number for EVTX) in `log_file_path`.
    #[serde(
        rename = "log.offset",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub log_line: Option<u64>,
    #[serde(
        rename = "event.kind",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_kind: Option<String>,
    #[serde(
        rename = "event.category",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_category: Option<String>,
    #[serde(
        rename = "event.action",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_action: Option<String>,
    #[serde(
        rename = "event.code",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_code: Option<String>,
    #[serde(
        rename = "destination.domain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_domain: Option<String>,
    /// The name the client gave for itself, where a protocol carries one
    /// (Zeek ntlm.log `hostname`, rdp.log `client_name`; Windows logons'
    /// `WorkstationName`, 4776's `Workstation`). Not `host.name`:
    /// that is the computer that logged the event, the entity of the host
    /// feature set, and a client's own claim (a scanner's random name) is
    /// neither.
    #[serde(
        rename = "source.domain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_domain: Option<String>,
    #[serde(
        rename = "network.transport",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_transport: Option<String>,
    #[serde(
        rename = "network.protocol",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub network_protocol: Option<String>,
    #[serde(
        rename = "dns.question.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_question_type: Option<String>,
    #[serde(
        rename = "dns.response_code",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_response_code: Option<String>,
    #[serde(
        rename = "tls.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub tls_version: Option<String>,
    #[serde(rename = "user.name", default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(
        rename = "user.domain",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_domain: Option<String>,
    #[serde(
        rename = "winlog.event_data.LogonProcessName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub winlog_logon_process: Option<String>,
    #[serde(
        rename = "winlog.event_data.Status",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub winlog_status: Option<String>,
    /// A label the source itself carries (Stratosphere `label`), kept for evaluation.
    #[serde(
        rename = "labels.source_label",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_label: Option<String>,
    /// File the event was read from.
    #[serde(
        rename = "log.file.path",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub log_file_path: Option<String>,
    /// The original line or record, verbatim, for provenance.
    #[serde(
        rename = "event.original",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub original: Option<String>,
}

/// The type of an event field as it is laid out in a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldType {
    Timestamp,
    Int,
    Str,
    Ip,
}

/// A borrowed value of one event field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Int(i64),
    Str(&'a str),
    Ip(IpAddr),
}

impl FieldValue<'_> {
    /// The value as text (for CSV and identity columns).
    pub fn to_text(&self) -> String {
        match self {
            FieldValue::Int(v) => v.to_string(),
            FieldValue::Str(s) => (*s).to_string(),
            FieldValue::Ip(ip) => ip.to_string(),
        }
    }
}

macro_rules! event_fields {
    ($( ($name:literal, $ty:ident, $field:ident, $kind:ident) ),* $(,)?) => {
        /// Every event field: (ECS name, type). The column order of event tables.
        pub const EVENT_FIELDS: &[(&str, FieldType)] = &[ $( ($name, FieldType::$ty) ),* ];

        impl Event {
            /// The value of a field by its ECS name; `None` when unset or unknown.
            pub fn get(&self, name: &str) -> Option<FieldValue<'_>> {
                match name {
                    $( $name => event_fields!(@get self.$field, $kind), )*
                    _ => None,
                }
            }

            /// Set a field from text by its ECS name. Errors name the field.
            pub fn set_text(&mut self, name: &str, text: &str) -> Result<(), crate::CoreError> {
                match canonical_field_name(name) {
                    $( $name => { event_fields!(@set self.$field, $kind, name, text); Ok(()) } )*
                    _ => Err(crate::CoreError::UnknownField(name.to_string())),
                }
            }
        }
    };
    (@get $e:expr, string) => { $e.as_deref().map(FieldValue::Str) };
    (@get $e:expr, int) => { $e.map(|v| FieldValue::Int(v as i64)) };
    (@get $e:expr, ip) => { $e.map(FieldValue::Ip) };
    (@set $e:expr, string, $name:expr, $text:expr) => { $e = Some($text.to_string()) };
    (@set $e:expr, ip, $name:expr, $text:expr) => {
        $e = Some($text.trim().parse().map_err(|_| crate::CoreError::BadValue {
            field: $name.to_string(), value: $text.to_string(), expected: "an IP address" })?)
    };
    (@set $e:expr, int, $name:expr, $text:expr) => {
        $e = Some($text.trim().parse().map_err(|_| crate::CoreError::BadValue {
            field: $name.to_string(), value: $text.to_string(), expected: "an integer in range" })?)
    };
}

event_fields! {
    ("@timestamp", Timestamp, timestamp_us, int),
    ("event.kind", Str, event_kind, string),
    ("event.category", Str, event_category, string),
    ("event.action", Str, event_action, string),
    ("event.outcome", Str, event_outcome, string),
    ("event.code", Str, event_code, string),
    ("event.duration", Int, event_duration_ns, int),
    ("event.dataset", Str, event_dataset, string),
    ("source.ip", Ip, source_ip, ip),
    ("source.port", Int, source_port, int),
    ("source.bytes", Int, source_bytes, int),
    ("source.packets", Int, source_packets, int),
    ("source.domain", Str, source_domain, string),
    ("destination.ip", Ip, destination_ip, ip),
    ("destination.port", Int, destination_port, int),
    ("destination.bytes", Int, destination_bytes, int),
    ("destination.packets", Int, destination_packets, int),
    ("destination.domain", Str, destination_domain, string),
    ("network.transport", Str, network_transport, string),
    ("network.protocol", Str, network_protocol, string),
    ("network.direction", Str, network_direction, string),
    ("network.connection_state", Str, network_connection_state, string),
    ("zeek.session_id", Str, session_id, string),
    ("url.full", Str, url_full, string),
    ("url.domain", Str, url_domain, string),
    ("url.path", Str, url_path, string),
    ("url.query", Str, url_query, string),
    ("url.scheme", Str, url_scheme, string),
    ("http.request.method", Str, http_request_method, string),
    ("http.request.referrer", Str, http_request_referrer, string),
    ("http.response.status_code", Int, http_response_status_code, int),
    ("http.response.mime_type", Str, http_response_mime_type, string),
    ("user_agent.original", Str, user_agent_original, string),
    ("dns.question.name", Str, dns_question_name, string),
    ("dns.question.type", Str, dns_question_type, string),
    ("dns.response_code", Str, dns_response_code, string),
    ("tls.client.server_name", Str, tls_server_name, string),
    ("tls.version", Str, tls_version, string),
    ("user.name", Str, user_name, string),
    ("user.domain", Str, user_domain, string),
    ("host.name", Str, host_name, string),
    ("winlog.event_id", Int, winlog_event_id, int),
    ("winlog.channel", Str, winlog_channel, string),
    ("winlog.record_id", Int, winlog_record_id, int),
    ("winlog.logon.type", Int, winlog_logon_type, int),
    ("winlog.event_data.AuthenticationPackageName", Str, winlog_authentication_package, string),
    ("winlog.event_data.LogonProcessName", Str, winlog_logon_process, string),
    ("winlog.event_data.Status", Str, winlog_status, string),
    ("labels.source_label", Str, source_label, string),
    ("log.file.path", Str, log_file_path, string),
    ("log.offset", Int, log_line, int),
    ("event.original", Str, original, string),
}

/// The field a name read from a file or a config means: the name itself,
/// or for a name palisade used to write, the field that holds it now
/// (`network.community_id` held the Zeek uid: now `zeek.session_id`).
pub fn canonical_field_name(name: &str) -> &str {
    match name {
        "network.community_id" => "zeek.session_id",
        other => other,
    }
}

impl Event {
    /// The event's timestamp as RFC 3339 text (UTC, microseconds), if set.
    pub fn timestamp_rfc3339(&self) -> Option<String> {
        self.timestamp_us.and_then(format_timestamp_us)
    }

    /// The destination host name of a web or TLS event: URL domain, then SNI,
    /// then the destination domain.
    pub fn web_host(&self) -> Option<&str> {
        self.url_domain
            .as_deref()
            .or(self.tls_server_name.as_deref())
            .or(self.destination_domain.as_deref())
    }
}

/// Microseconds since the epoch to RFC 3339 (UTC), with six fraction
/// digits and `Z`: `2018-03-24T17:15:00.123456Z`, as chrono's
/// `to_rfc3339_opts(Micros, true)` writes it; `None` outside chrono's range.
///
/// Why by hand for years 0–9999: the request and domain tables write one
/// per row, and chrono's formatter (the `fmt` machinery, digit by digit)
/// was ~4% of `palisade features request` on a Zeek log (perf). The date
/// comes from the day count by Hinnant's `civil_from_days`; other years
/// (a sign, or more digits) go to chrono. The test
/// `timestamps_format_as_chrono_does` compares the two.
pub fn format_timestamp_us(us: i64) -> Option<String> {
    let mut out = String::new();
    push_timestamp_us(us, &mut out).then_some(out)
}

/// Appends [`format_timestamp_us`]'s text to `out`; false (and nothing
/// appended) outside chrono's range. For columns that hold their text in
/// one buffer ([`crate::TextColumn::push_with`]).
pub fn push_timestamp_us(us: i64, out: &mut String) -> bool {
    TimestampText::default().push(us, out)
}

/// 0000-01-01 and 10000-01-01 in µs since the epoch: the range written by
/// hand (four-digit years); chrono writes the rest.
const HAND_WRITTEN_US: std::ops::Range<i64> = -62_167_219_200_000_000..253_402_300_800_000_000;

/// Writes timestamps as [`push_timestamp_us`] does, remembering the text of
/// the last second it wrote (everything before the fraction). Why: a log's
/// events come many to a second and in time order, so a table's timestamp
/// column then costs six digits a row instead of a date computation and
/// 20 digits (perf: `push_timestamp_us` 7% of the request table's time on
/// the real request logs, `url_rows realtable`).
#[derive(Clone)]
pub struct TimestampText {
    /// The second whose text `text[..20]` holds (`i64::MIN`: none yet; no
    /// hand-written timestamp has that second).
    secs: i64,
    text: [u8; 27],
}

impl Default for TimestampText {
    fn default() -> Self {
        TimestampText {
            secs: i64::MIN,
            text: *b"0000-00-00T00:00:00.000000Z",
        }
    }
}

impl TimestampText {
    /// Appends `us`'s text (as [`format_timestamp_us`] gives it) to `out`;
    /// false (and nothing appended) outside chrono's range.
    pub fn push(&mut self, us: i64, out: &mut String) -> bool {
        if !HAND_WRITTEN_US.contains(&us) {
            return match chrono::DateTime::from_timestamp_micros(us) {
                Some(dt) => {
                    out.push_str(&dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
                    true
                }
                None => false,
            };
        }
        let secs = us.div_euclid(1_000_000);
        if secs != self.secs {
            self.write_second(secs);
        }
        let micros = us.rem_euclid(1_000_000) as u32;
        let b = &mut self.text;
        put_two(b, 20, micros / 10_000);
        put_two(b, 22, micros / 100 % 100);
        put_two(b, 24, micros % 100);
        // SAFETY: every byte of `text` is an ASCII digit or one of `-T:.Z`
        // (the template's bytes, overwritten by digits only), so it is UTF-8.
        out.push_str(unsafe { std::str::from_utf8_unchecked(b) });
        true
    }

    /// `text[..20]` for the second `secs` (in the hand-written range).
    fn write_second(&mut self, secs: i64) {
        self.secs = secs;
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400) as u32;
        let b = &mut self.text;
        // a year in the hand-written range has four digits
        let year = year as u32;
        put_two(b, 0, year / 100);
        put_two(b, 2, year % 100);
        put_two(b, 5, month);
        put_two(b, 8, day);
        put_two(b, 11, sod / 3600);
        put_two(b, 14, sod / 60 % 60);
        put_two(b, 17, sod % 60);
    }
}

/// Writes `v` (below 100) as two digits at `b[at..at + 2]`.
#[inline]
fn put_two(b: &mut [u8; 27], at: usize, v: u32) {
    // (every caller's value is below 100, so every byte is an ASCII digit:
    // `TimestampText::push`'s SAFETY rests on it)
    debug_assert!(v < 100);
    b[at] = b'0' + (v / 10) as u8;
    b[at + 1] = b'0' + (v % 10) as u8;
}

/// An IP address as text, as its `Display` writes it. Why by hand for
/// IPv4: tables write one or two per row, and `to_string` goes through the
/// `fmt` machinery, octet by octet (~2% of `palisade features request` on a
/// Zeek log, perf). IPv6 keeps `Display` (its zero-run compression).
pub fn ip_text(ip: IpAddr) -> String {
    let mut out = String::with_capacity(15);
    push_ip_text(ip, &mut out);
    out
}

/// Appends [`ip_text`]'s text to `out`.
pub fn push_ip_text(ip: IpAddr, out: &mut String) {
    match ip {
        IpAddr::V4(v4) => {
            // in a buffer, then one append: a `push` per character was a
            // capacity check and a length update each (perf: `push_ip_text`
            // 6% of the request table's time on the real request logs)
            let mut b = [0u8; 16];
            let mut n = 0;
            for octet in v4.octets() {
                let d = [
                    b'0' + octet / 100,
                    b'0' + octet / 10 % 10,
                    b'0' + octet % 10,
                ];
                // without leading zeros: the digits from d[skip] on (the
                // bytes past them are overwritten or cut off)
                let skip = usize::from(octet < 100) + usize::from(octet < 10);
                b[n] = d[skip];
                b[n + 1] = d[(skip + 1).min(2)];
                b[n + 2] = d[2];
                n += 3 - skip;
                b[n] = b'.';
                n += 1;
            }
            // SAFETY: `b[..n]` holds ASCII digits and dots only, so UTF-8.
            out.push_str(unsafe { std::str::from_utf8_unchecked(&b[..n - 1]) });
        }
        IpAddr::V6(_) => {
            use std::fmt::Write;
            // writing to a String cannot fail
            let _ = write!(out, "{ip}");
        }
    }
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01, in the
/// proleptic Gregorian calendar (H. Hinnant, "chrono-Compatible Low-Level
/// Date Algorithms").
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// RFC 3339 / ISO 8601 text (or epoch seconds with a fraction) to microseconds.
pub fn parse_timestamp_us(text: &str) -> Option<i64> {
    let t = text.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_micros());
    }
    if let Ok(ndt) = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(ndt.and_utc().timestamp_micros());
    }
    if let Ok(ndt) = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(ndt.and_utc().timestamp_micros());
    }
    epoch_seconds_to_us(t)
}

/// `1521911723.123456` (seconds with an optional fraction) to microseconds,
/// without going through f64 (which would lose the last digits).
pub fn epoch_seconds_to_us(t: &str) -> Option<i64> {
    let (secs, frac) = match t.split_once('.') {
        Some((s, f)) => (s, f),
        None => (t, ""),
    };
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let s: i64 = secs.parse().ok()?;
    let mut us: i64 = 0;
    let mut scale = 100_000;
    for b in frac.bytes().take(6) {
        us += (b - b'0') as i64 * scale;
        scale /= 10;
    }
    s.checked_mul(1_000_000)?.checked_add(us)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4 text is `Display`'s for every octet value in every place.
    #[test]
    fn ip_text_is_display() {
        for a in 0..=255u8 {
            for ip in [
                [a, 0, 9, 255],
                [1, a, 10, 99],
                [100, 200, a, 7],
                [0, 0, 0, a],
            ] {
                let ip = IpAddr::from(ip);
                assert_eq!(ip_text(ip), ip.to_string());
            }
        }
        let widest = IpAddr::from([255, 255, 255, 255]);
        assert_eq!(ip_text(widest), "255.255.255.255");
        let mut out = String::from("x");
        push_ip_text(IpAddr::from([10, 0, 0, 1]), &mut out);
        assert_eq!(out, "x10.0.0.1");
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_text(v6), "2001:db8::1");
    }

    /// The hand-written formatter writes what chrono writes: every year
    /// boundary from 1 BCE to 10001, around the epoch, leap days, the last
    /// microsecond of a day, and 200,000 random instants over ±12,000 years
    /// (the years outside 0–9999 take chrono's path).
    #[test]
    fn timestamps_format_as_chrono_does() {
        let chrono_text = |us: i64| {
            chrono::DateTime::from_timestamp_micros(us)
                .map(|dt| dt.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        };
        let mut cases: Vec<i64> = vec![0, -1, 1, 951_782_400_000_000, 951_868_799_999_999];
        for year in -1..=10_001 {
            let start = chrono::NaiveDate::from_ymd_opt(year, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_micros();
            cases.extend([start - 1, start, start + 86_399_999_999]);
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            cases.push((x % 757_000_000_000_000_000) as i64 - 378_500_000_000_000_000);
        }
        cases.extend([i64::MIN, i64::MAX]);
        for us in &cases {
            assert_eq!(format_timestamp_us(*us), chrono_text(*us), "{us}");
        }
        // one `TimestampText` for all, as a column uses it: in this order
        // (a new second almost every time), then sorted with neighbours a
        // microsecond and a second apart (mostly the second it remembers,
        // across day, year and epoch boundaries)
        let mut sorted: Vec<i64> = cases
            .iter()
            .flat_map(|&us| [us, us.saturating_add(1), us.saturating_add(1_000_000)])
            .collect();
        sorted.sort_unstable();
        let mut text = TimestampText::default();
        for us in cases.iter().chain(&sorted) {
            let mut out = String::from("x");
            let written = text.push(*us, &mut out);
            let want = chrono_text(*us);
            assert_eq!(written, want.is_some(), "{us}");
            assert_eq!(out, format!("x{}", want.unwrap_or_default()), "{us}");
        }
    }

    #[test]
    fn every_field_round_trips() {
        let mut e = Event::default();
        for (name, ty) in EVENT_FIELDS {
            let text = match ty {
                FieldType::Ip => "10.0.0.1",
                FieldType::Int | FieldType::Timestamp => "42",
                FieldType::Str => "x",
            };
            e.set_text(name, text).unwrap();
            assert_eq!(e.get(name).unwrap().to_text(), text, "{name}");
        }
        // and serde uses the same names
        let v = serde_json::to_value(&e).unwrap();
        for (name, _) in EVENT_FIELDS {
            assert!(v.get(*name).is_some(), "serde name missing for {name}");
        }
        assert_eq!(v.as_object().unwrap().len(), EVENT_FIELDS.len());
    }

    #[test]
    fn the_zeek_uid_is_a_session_id_and_its_old_name_still_reads() {
        // palisade wrote the uid as `network.community_id` before
        let old = r#"{"network.community_id":"CGLspW1BuwJH6YxjK6","source.port":1}"#;
        let e: Event = serde_json::from_str(old).unwrap();
        assert_eq!(e.session_id.as_deref(), Some("CGLspW1BuwJH6YxjK6"));
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            json.contains(r#""zeek.session_id":"CGLspW1BuwJH6YxjK6""#),
            "{json}"
        );
        assert!(!json.contains("community_id"), "{json}");
        let mut t = Event::default();
        t.set_text("network.community_id", "C1").unwrap();
        t.set_text("source.port", "2").unwrap();
        assert_eq!(t.session_id.as_deref(), Some("C1"));
        assert_eq!(canonical_field_name("source.port"), "source.port");
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut e = Event::default();
        let err = e.set_text("source.port", "70000").unwrap_err().to_string();
        assert!(err.contains("source.port"), "{err}");
        assert!(e.set_text("no.such", "1").is_err());
    }

    #[test]
    fn epoch_parsing_keeps_microseconds() {
        assert_eq!(
            epoch_seconds_to_us("1521911723.123456"),
            Some(1_521_911_723_123_456)
        );
        assert_eq!(epoch_seconds_to_us("10.5"), Some(10_500_000));
        assert_eq!(epoch_seconds_to_us("abc"), None);
        assert_eq!(
            parse_timestamp_us("2018-03-24T17:15:23.123456Z"),
            Some(1_521_911_723_123_456)
        );
    }
}
