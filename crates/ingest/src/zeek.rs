//! Zeek logs, both encodings: TSV (`#separator`/`#fields` header, `-` unset,
//! `(empty)` empty, sets/vectors joined by `#set_separator`, `#close` footer)
//! and JSON lines. Both encodings resolve each Zeek field to the same
//! [`Col`] and go through the same [`apply`], so one log yields the same events
//! whichever way it was written.
//!
//! Hand-written rather than a crate: no maintained Zeek parser crate exists,
//! and this is the hot path (goal: >= 300 MB/s/core), so the TSV reader splits
//! with `memchr` and writes into a reused `Event` without per-field allocation.

use crate::util::{parse_ip, parse_u16, parse_u64, put, put_opt, seconds_to_ns};
use crate::{LineError, LineReader, Parsed, Reason};
use palisade_core::event::parse_timestamp_us;
use palisade_core::Event;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt::Write as _;

/// What one Zeek field means for the event. Resolved once per header (TSV) or
/// per key (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Col {
    Ignore,
    Ts,
    Uid,
    OrigH,
    OrigP,
    RespH,
    RespP,
    Proto,
    Service,
    Duration,
    OrigBytes,
    RespBytes,
    OrigPkts,
    RespPkts,
    ConnState,
    LocalOrig,
    LocalResp,
    Label,
    Method,
    Host,
    Uri,
    Referrer,
    UserAgent,
    StatusCode,
    RespMime,
    UserName,
    UserDomain,
    /// A client's name for itself (ntlm `hostname`, rdp `client_name`): `source.domain`.
    ClientName,
    Success,
    ServerDnsName,
    ServerName,
    TlsVersion,
    Query,
    QType,
    RCode,
    RdpResult,
    KrbRequestType,
    KrbClient,
    TxHosts,
    RxHosts,
    ConnUids,
    FileSource,
}

/// The event column a Zeek field of log `path` fills.
pub(crate) fn resolve(path: &str, field: &str) -> Col {
    use Col::*;
    match field {
        "ts" => return Ts,
        "uid" => return Uid,
        "id.orig_h" => return OrigH,
        "id.orig_p" => return OrigP,
        "id.resp_h" => return RespH,
        "id.resp_p" => return RespP,
        "proto" => return Proto,
        // Stratosphere's labelled logs add `label` (Benign/Malicious/Background).
        "label" => return Label,
        _ => {}
    }
    match (path, field) {
        ("conn", "service") => Service,
        ("conn", "duration") => Duration,
        ("conn", "orig_bytes") => OrigBytes,
        ("conn", "resp_bytes") => RespBytes,
        ("conn", "orig_pkts") => OrigPkts,
        ("conn", "resp_pkts") => RespPkts,
        ("conn", "conn_state") => ConnState,
        ("conn", "local_orig") => LocalOrig,
        ("conn", "local_resp") => LocalResp,
        ("http", "method") => Method,
        ("http", "host") => Host,
        ("http", "uri") => Uri,
        ("http", "referrer") => Referrer,
        ("http", "user_agent") => UserAgent,
        ("http", "request_body_len") => OrigBytes,
        ("http", "response_body_len") => RespBytes,
        ("http", "status_code") => StatusCode,
        ("http", "resp_mime_types") => RespMime,
        ("http", "username") => UserName,
        ("ssl", "server_name") => ServerName,
        ("ssl", "version") => TlsVersion,
        ("ssl", "established") => Success,
        ("dns", "query") => Query,
        ("dns", "qtype_name") => QType,
        ("dns", "rcode_name") => RCode,
        ("dns", "rtt") => Duration,
        ("ntlm", "username") => UserName,
        ("ntlm", "domainname") => UserDomain,
        ("ntlm", "hostname") => ClientName,
        ("ntlm", "success") => Success,
        ("ntlm", "server_dns_computer_name") => ServerDnsName,
        ("rdp", "cookie") => UserName,
        ("rdp", "result") => RdpResult,
        ("rdp", "client_name") => ClientName,
        ("kerberos", "request_type") => KrbRequestType,
        ("kerberos", "client") => KrbClient,
        ("kerberos", "success") => Success,
        ("files", "tx_hosts") => TxHosts,
        ("files", "rx_hosts") => RxHosts,
        ("files", "conn_uids") => ConnUids,
        ("files", "source") => FileSource,
        ("files", "mime_type") => RespMime,
        ("files", "seen_bytes") => RespBytes,
        ("files", "duration") => Duration,
        ("ssh", "auth_success") => Success,
        ("ssh", "client") => UserAgent,
        _ => Ignore,
    }
}

/// The per-file constant part of an event of Zeek log `path`.
fn set_constants(ev: &mut Event, path: &str) {
    let (category, protocol) = match path {
        "conn" => ("network", None),
        "http" => ("web", Some("http")),
        "dns" => ("network", Some("dns")),
        "ssl" => ("network", Some("tls")),
        "ntlm" => ("authentication", Some("ntlm")),
        "rdp" => ("authentication", Some("rdp")),
        "kerberos" => ("authentication", Some("kerberos")),
        "ssh" => ("authentication", Some("ssh")),
        "files" => ("file", None),
        _ => ("network", None),
    };
    put(&mut ev.event_kind, "event");
    put(&mut ev.event_category, category);
    put_opt(&mut ev.network_protocol, protocol);
    let ds = ev.event_dataset.get_or_insert_with(String::new);
    ds.clear();
    ds.push_str("zeek.");
    ds.push_str(path);
}

/// Per-line facts that need more than one field (direction, url.full).
#[derive(Default)]
struct LineState {
    local_orig: Option<bool>,
    local_resp: Option<bool>,
}

fn zeek_bool(v: &str) -> Option<bool> {
    match v {
        "T" | "true" => Some(true),
        "F" | "false" => Some(false),
        _ => None,
    }
}

/// Zeek time: epoch seconds in TSV (and in some JSON writers), ISO 8601 in
/// Zeek's default JSON.
fn zeek_time(v: &str) -> Option<i64> {
    crate::util::epoch_us(v).or_else(|| parse_timestamp_us(v))
}

/// Zeek intervals are differences of pcap (microsecond) timestamps held in
/// doubles; JSON prints the double's noise digits (0.012166976928710938) where
/// TSV prints %.6f (0.012167). Rounding to the microsecond makes both agree.
fn zeek_interval_ns(v: &str) -> Option<i64> {
    let ns = seconds_to_ns(v)?;
    Some((ns + if ns >= 0 { 500 } else { -500 }) / 1000 * 1000)
}

fn tls_version(v: &str) -> &str {
    match v {
        "TLSv10" => "1.0",
        "TLSv11" => "1.1",
        "TLSv12" => "1.2",
        // TLS 1.3 drafts (`TLSv13-draft23`) count as 1.3
        v if v.starts_with("TLSv13") => "1.3",
        "SSLv3" => "3.0",
        "SSLv2" => "2.0",
        other => other,
    }
}

fn first_of_set(v: &str, set_sep: u8) -> &str {
    match memchr::memchr(set_sep, v.as_bytes()) {
        Some(i) => &v[..i],
        None => v,
    }
}

/// Apply one Zeek value (`None` = unset or empty) to the event. The error is
/// the reason only; callers name the field and value.
fn apply(
    col: Col,
    v: Option<&str>,
    ev: &mut Event,
    st: &mut LineState,
    set_sep: u8,
) -> Result<(), Reason> {
    use Col::*;
    macro_rules! num {
        ($dst:expr, $f:expr, $r:expr) => {
            $dst = match v {
                Some(s) => Some($f(s).ok_or($r)?),
                None => None,
            }
        };
    }
    match col {
        Ignore => {}
        Ts => num!(ev.timestamp_us, zeek_time, Reason::BadTimestamp),
        Uid => put_opt(&mut ev.session_id, v),
        OrigH => num!(ev.source_ip, parse_ip, Reason::BadAddress),
        RespH => num!(ev.destination_ip, parse_ip, Reason::BadAddress),
        OrigP => num!(ev.source_port, parse_u16, Reason::BadNumber),
        RespP => num!(ev.destination_port, parse_u16, Reason::BadNumber),
        Proto => put_opt(&mut ev.network_transport, v),
        Service => put_opt(&mut ev.network_protocol, v),
        Duration => num!(ev.event_duration_ns, zeek_interval_ns, Reason::BadNumber),
        OrigBytes => num!(ev.source_bytes, parse_u64, Reason::BadNumber),
        RespBytes => num!(ev.destination_bytes, parse_u64, Reason::BadNumber),
        OrigPkts => num!(ev.source_packets, parse_u64, Reason::BadNumber),
        RespPkts => num!(ev.destination_packets, parse_u64, Reason::BadNumber),
        ConnState => put_opt(&mut ev.network_connection_state, v),
        LocalOrig => st.local_orig = v.and_then(zeek_bool),
        LocalResp => st.local_resp = v.and_then(zeek_bool),
        Label => put_opt(&mut ev.source_label, v),
        Method => put_opt(&mut ev.http_request_method, v),
        Host => put_opt(&mut ev.url_domain, v.map(crate::util::strip_port)),
        Uri => match v {
            Some(u) if u.contains("://") => crate::util::fill_url(ev, u),
            Some(u) => {
                let (p, q) = u.split_once('?').map_or((u, None), |(p, q)| (p, Some(q)));
                put(&mut ev.url_path, p);
                put_opt(&mut ev.url_query, q);
            }
            None => {
                ev.url_path = None;
                ev.url_query = None;
            }
        },
        Referrer => put_opt(&mut ev.http_request_referrer, v),
        UserAgent => put_opt(&mut ev.user_agent_original, v),
        StatusCode => num!(ev.http_response_status_code, parse_u16, Reason::BadNumber),
        RespMime => put_opt(
            &mut ev.http_response_mime_type,
            v.map(|s| first_of_set(s, set_sep)),
        ),
        UserName => put_opt(&mut ev.user_name, v),
        UserDomain => put_opt(&mut ev.user_domain, v),
        ClientName => put_opt(&mut ev.source_domain, v),
        Success => put_opt(
            &mut ev.event_outcome,
            v.and_then(zeek_bool)
                .map(|b| if b { "success" } else { "failure" }),
        ),
        ServerDnsName => put_opt(&mut ev.destination_domain, v),
        ServerName => put_opt(&mut ev.tls_server_name, v),
        TlsVersion => put_opt(&mut ev.tls_version, v.map(tls_version)),
        Query => put_opt(&mut ev.dns_question_name, v),
        QType => put_opt(&mut ev.dns_question_type, v),
        RCode => put_opt(&mut ev.dns_response_code, v),
        RdpResult => {
            put_opt(&mut ev.event_action, v);
            put_opt(
                &mut ev.event_outcome,
                v.map(|r| match r {
                    "Success" => "success",
                    "encrypted" => "unknown",
                    _ => "failure",
                }),
            );
        }
        KrbRequestType => put_opt(&mut ev.event_action, v),
        KrbClient => {
            // `user/REALM`; Zeek writes `/REALM` when the name is missing.
            let (user, realm) = match v {
                Some(c) => c
                    .split_once('/')
                    .map_or((Some(c), None), |(u, r)| (Some(u), Some(r))),
                None => (None, None),
            };
            put_opt(&mut ev.user_name, user.filter(|u| !u.is_empty()));
            put_opt(&mut ev.user_domain, realm.filter(|r| !r.is_empty()));
        }
        TxHosts => num!(
            ev.source_ip,
            |s| parse_ip(first_of_set(s, set_sep)),
            Reason::BadAddress
        ),
        RxHosts => num!(
            ev.destination_ip,
            |s| parse_ip(first_of_set(s, set_sep)),
            Reason::BadAddress
        ),
        ConnUids => put_opt(&mut ev.session_id, v.map(|s| first_of_set(s, set_sep))),
        FileSource => match v {
            Some(s) => put(&mut ev.network_protocol, &s.to_ascii_lowercase()),
            None => ev.network_protocol = None,
        },
    }
    Ok(())
}

/// After all fields of a line: facts that combine fields.
fn finish_line(path: &str, ev: &mut Event, st: &LineState) {
    if path == "conn" {
        let dir = match (st.local_orig, st.local_resp) {
            (Some(true), Some(true)) => Some("internal"),
            (Some(true), Some(false)) => Some("outbound"),
            (Some(false), Some(true)) => Some("inbound"),
            (Some(false), Some(false)) => Some("external"),
            _ => None,
        };
        put_opt(&mut ev.network_direction, dir);
    } else if path == "http" {
        if ev.url_domain.is_some() || ev.url_path.is_some() {
            if ev.url_scheme.is_none() {
                ev.url_scheme = Some("http".to_string());
            }
            let full = ev.url_full.get_or_insert_with(String::new);
            full.clear();
            full.push_str(ev.url_scheme.as_deref().unwrap_or("http"));
            full.push_str("://");
            full.push_str(ev.url_domain.as_deref().unwrap_or(""));
            if let Some(p) = &ev.url_path {
                full.push_str(p);
            }
            if let Some(q) = &ev.url_query {
                full.push('?');
                full.push_str(q);
            }
        } else {
            ev.url_full = None;
        }
    }
}

/// Undo Zeek's `\xNN` escaping (used for the separator and non-printables).
fn unescape(v: &str, out: &mut String) {
    let b = v.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            if let (Some(h), Some(l)) =
                (b.get(i + 2).and_then(hexval), b.get(i + 3).and_then(hexval))
            {
                bytes.push(h * 16 + l);
                i += 4;
                continue;
            }
        }
        bytes.push(b[i]);
        i += 1;
    }
    out.clear();
    out.push_str(&String::from_utf8_lossy(&bytes));
}

fn hexval(c: &u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Zeek log type from a file name: `conn.log`, `conn.log.labeled`,
/// `labeled-conn.log`, `conn.json.gz`, `conn.00:00:00-01:00:00.log`.
pub(crate) fn path_from_name(name: &str) -> Option<String> {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = file.split('.').next().unwrap_or(file);
    let stem = stem.rsplit('-').next().unwrap_or(stem);
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    Some(stem.to_string())
}

/// Zeek log type from the fields of a record, when neither `_path` nor the file
/// name says.
fn path_from_fields<'a>(mut names: impl Iterator<Item = &'a str>) -> &'static str {
    let mut found = "unknown";
    for n in names.by_ref() {
        let p = match n {
            "conn_state" | "orig_bytes" | "resp_pkts" => "conn",
            "status_code" | "user_agent" | "uri" => "http",
            "qtype_name" | "rcode_name" => "dns",
            "server_name" | "cipher" => "ssl",
            "request_type" => "kerberos",
            "server_nb_computer_name" | "domainname" => "ntlm",
            "security_protocol" | "cookie" => "rdp",
            "fuid" | "seen_bytes" => "files",
            _ => continue,
        };
        found = p;
        break;
    }
    found
}

// ---------------------------------------------------------------- TSV

pub(crate) struct ZeekTsv {
    sep: u8,
    set_sep: u8,
    unset: String,
    empty: String,
    path: String,
    cols: Vec<Col>,
    names: Vec<String>,
    have_fields: bool,
    scratch: String,
    name_hint: Option<String>,
}

impl ZeekTsv {
    pub(crate) fn new(file_name: &str) -> Self {
        ZeekTsv {
            sep: b'\t',
            set_sep: b',',
            unset: "-".into(),
            empty: "(empty)".into(),
            path: String::new(),
            cols: Vec::new(),
            names: Vec::new(),
            have_fields: false,
            scratch: String::new(),
            name_hint: path_from_name(file_name),
        }
    }

    fn directive(&mut self, line: &str, ev: &mut Event) -> Result<(), LineError> {
        if let Some(rest) = line.strip_prefix("#separator ") {
            let sep = decode_sep(rest.trim()).ok_or_else(|| {
                LineError::new(Reason::Syntax, format!("unusable #separator `{rest}`"))
            })?;
            self.sep = sep;
            return Ok(());
        }
        let (key, value) = match memchr::memchr(self.sep, line.as_bytes()) {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, ""),
        };
        match key {
            "#set_separator" => {
                self.set_sep = decode_sep(value).unwrap_or(b',');
            }
            "#empty_field" => self.empty = value.to_string(),
            "#unset_field" => self.unset = value.to_string(),
            "#path" => self.path = value.to_string(),
            "#fields" => {
                if self.path.is_empty() {
                    self.path = self.name_hint.clone().unwrap_or_default();
                }
                self.names = value.split(self.sep as char).map(str::to_string).collect();
                if self.path.is_empty() {
                    self.path = path_from_fields(self.names.iter().map(String::as_str)).to_string();
                }
                self.cols = self.names.iter().map(|n| resolve(&self.path, n)).collect();
                self.have_fields = true;
                // New header: start from a clean event with this log's constants.
                crate::reset_event(ev);
                set_constants(ev, &self.path);
            }
            _ => {} // #types, #open, #close and unknown directives carry no event data
        }
        Ok(())
    }
}

fn decode_sep(s: &str) -> Option<u8> {
    let b = match s.strip_prefix("\\x") {
        Some(h) => u8::from_str_radix(h, 16).ok()?,
        None => match s.as_bytes() {
            [b] => *b,
            _ => return None,
        },
    };
    // Only ASCII separators: splitting UTF-8 text at a non-ASCII byte could
    // cut a character in two.
    b.is_ascii().then_some(b)
}

impl LineReader for ZeekTsv {
    fn sniff(lines: &[&str]) -> bool {
        lines
            .first()
            .is_some_and(|l| l.starts_with("#separator") || l.starts_with("#fields\t"))
    }

    fn parse_line(&mut self, line: &str, ev: &mut Event) -> Result<Parsed, LineError> {
        if line.as_bytes().first() == Some(&b'#') {
            self.directive(line, ev)?;
            return Ok(Parsed::Skip);
        }
        if !self.have_fields {
            return Err(LineError::new(
                Reason::MissingHeader,
                "Zeek TSV data line before any `#fields` header (is the header missing, or is this not Zeek TSV?)".into(),
            ));
        }
        let mut st = LineState::default();
        let mut start = 0usize;
        let mut idx = 0usize;
        let bytes = line.as_bytes();
        let ncols = self.cols.len();
        // One scan per line for escapes instead of one per field.
        let escaped = memchr::memchr(b'\\', bytes).is_some();
        let sep = self.sep;
        loop {
            // A plain byte loop: Zeek fields average a few bytes, too short
            // for a vectorised memchr call per field to pay off (measured).
            let mut end = start;
            while end < bytes.len() && bytes[end] != sep {
                end += 1;
            }
            let Some(&col) = self.cols.get(idx) else {
                return Err(LineError::new(
                    Reason::FieldCount,
                    format!("more than the {ncols} fields of the #fields header"),
                ));
            };
            if col != Col::Ignore {
                let raw = &line[start..end];
                if raw.is_empty() || self.is_null(raw.as_bytes()) {
                    apply(col, None, ev, &mut st, self.set_sep)
                        .map_err(|r| self.field_error(r, idx, raw))?;
                } else if escaped && memchr::memchr(b'\\', raw.as_bytes()).is_some() {
                    let mut s = std::mem::take(&mut self.scratch);
                    unescape(raw, &mut s);
                    let r = apply(col, Some(&s), ev, &mut st, self.set_sep);
                    self.scratch = s;
                    r.map_err(|r| self.field_error(r, idx, raw))?;
                } else {
                    apply(col, Some(raw), ev, &mut st, self.set_sep)
                        .map_err(|r| self.field_error(r, idx, raw))?;
                }
            }
            idx += 1;
            if end == bytes.len() {
                break;
            }
            start = end + 1;
        }
        if idx != ncols {
            return Err(LineError::new(
                Reason::FieldCount,
                format!("{idx} fields where the #fields header has {ncols}"),
            ));
        }
        finish_line(&self.path, ev, &st);
        Ok(Parsed::Event)
    }
}

impl ZeekTsv {
    /// The unset (`-`) or empty (`(empty)`) marker; compared by length first
    /// because almost every field is neither.
    #[inline]
    fn is_null(&self, raw: &[u8]) -> bool {
        let (u, e) = (self.unset.as_bytes(), self.empty.as_bytes());
        (raw.len() == u.len() && raw.first() == u.first() && raw == u)
            || (raw.len() == e.len() && raw.first() == e.first() && raw == e)
    }

    fn field_error(&self, r: Reason, idx: usize, raw: &str) -> LineError {
        let name = self.names.get(idx).map_or("?", String::as_str);
        LineError::new(
            r,
            format!("field `{name}`: `{}`", crate::util::excerpt(raw, 80)),
        )
    }
}

// ---------------------------------------------------------------- JSON

pub(crate) struct ZeekJson {
    name_hint: Option<String>,
    inferred: Option<String>,
}

impl ZeekJson {
    pub(crate) fn new(file_name: &str) -> Self {
        ZeekJson {
            name_hint: path_from_name(file_name),
            inferred: None,
        }
    }

    pub(crate) fn sniff_value(v: &serde_json::Value) -> bool {
        v.get("_path").is_some() || (v.get("id.orig_h").is_some() && v.get("ts").is_some())
    }
}

/// One value of a Zeek JSON line, borrowed from the line where it can be.
///
/// Why not `serde_json::Value`: a `Value` object is a map (an `IndexMap`
/// with SipHash here, as a dependency turns on `preserve_order`) that owns a
/// copy of every key and string, and the reader only walks the fields once,
/// in order. Parsing into borrowed cells instead took the Zeek JSON reader
/// from 97–104 to 184–218 MiB/s on the Stratosphere conn log (`cargo bench -p
/// palisade-ingest --bench parse -- zeek-json`, old and new alternated).
enum Cell<'a> {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(Cow<'a, str>),
    Array(Vec<Cell<'a>>),
    /// A nested object: Zeek writes none; skipped.
    Object,
}

/// A whole line: its fields in order, or a JSON value that is not an object.
enum LineValue<'a> {
    Object(Vec<(Cow<'a, str>, Cell<'a>)>),
    NotObject,
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_none<E>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Cell<'de>, E> {
        Ok(Cell::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Cell<'de>, E> {
        Ok(Cell::Num(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Cell<'de>, E> {
        Ok(Cell::Num(n.into()))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Cell<'de>, E> {
        // JSON has no NaN or infinity, so this is always a number
        Ok(serde_json::Number::from_f64(x).map_or(Cell::Null, Cell::Num))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Cell<'de>, E> {
        Ok(Cell::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Cell<'de>, E> {
        Ok(Cell::Str(Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Cell<'de>, E> {
        Ok(Cell::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cell<'de>, A::Error> {
        let mut v = Vec::new();
        while let Some(c) = seq.next_element::<Cell<'de>>()? {
            v.push(c);
        }
        Ok(Cell::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cell<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Cell::Object)
    }
}

impl<'de> Deserialize<'de> for Cell<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CellVisitor)
    }
}

/// A key, borrowed unless it has escapes. Why its own type: read as a
/// [`Cell`] (through `deserialize_any`) the keys made the reader ~18% slower
/// (171–179 against 214–218 MiB/s, alternated three times).
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for LineValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LineVisitor;
        impl<'de> Visitor<'de> for LineVisitor {
            type Value = LineValue<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LineValue<'de>, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(24));
                while let Some((k, v)) = map.next_entry::<Key<'de>, Cell<'de>>()? {
                    // a repeated key: the last value wins, in the first one's place
                    match fields
                        .iter_mut()
                        .find(|(f, _): &&mut (Cow<str>, Cell)| *f == k.0)
                    {
                        Some(slot) => slot.1 = v,
                        None => fields.push((k.0, v)),
                    }
                }
                Ok(LineValue::Object(fields))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LineValue<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LineValue::NotObject)
            }
            fn visit_bool<E>(self, _: bool) -> Result<LineValue<'de>, E> {
                Ok(LineValue::NotObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<LineValue<'de>, E> {
                Ok(LineValue::NotObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<LineValue<'de>, E> {
                Ok(LineValue::NotObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<LineValue<'de>, E> {
                Ok(LineValue::NotObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<LineValue<'de>, E> {
                Ok(LineValue::NotObject)
            }
            fn visit_unit<E>(self) -> Result<LineValue<'de>, E> {
                Ok(LineValue::NotObject)
            }
        }
        d.deserialize_any(LineVisitor)
    }
}

/// A JSON value as Zeek's TSV would write it (`T`/`F`, sets joined by `,`).
fn json_text(v: &Cell<'_>, out: &mut String) -> bool {
    out.clear();
    match v {
        Cell::Null | Cell::Object => return false,
        Cell::Bool(b) => out.push(if *b { 'T' } else { 'F' }),
        Cell::Num(n) => {
            // (writing to a String cannot fail)
            let _ = write!(out, "{n}");
        }
        Cell::Str(s) => out.push_str(s),
        Cell::Array(a) => {
            if a.is_empty() {
                return false;
            }
            let mut tmp = String::new();
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if json_text(e, &mut tmp) {
                    out.push_str(&tmp);
                }
            }
        }
    }
    !out.is_empty()
}

impl LineReader for ZeekJson {
    fn sniff(lines: &[&str]) -> bool {
        lines
            .first()
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .is_some_and(|v| Self::sniff_value(&v))
    }

    fn parse_line(&mut self, line: &str, ev: &mut Event) -> Result<Parsed, LineError> {
        let fields = match serde_json::from_str::<LineValue<'_>>(line) {
            Ok(LineValue::Object(fields)) => fields,
            Ok(LineValue::NotObject) => {
                return Err(LineError::new(
                    Reason::BadJson,
                    "a JSON value that is not an object".into(),
                ))
            }
            Err(e) => {
                return Err(LineError::new(
                    Reason::BadJson,
                    format!("not a JSON object: {e}"),
                ))
            }
        };
        let given = fields.iter().find_map(|(k, v)| match (k.as_ref(), v) {
            ("_path", Cell::Str(p)) => Some(p.as_ref()),
            _ => None,
        });
        let path: String = match given {
            Some(p) => p.to_string(),
            None => match (&self.name_hint, &self.inferred) {
                (Some(p), _) | (None, Some(p)) => p.clone(),
                (None, None) => {
                    let p = path_from_fields(fields.iter().map(|(k, _)| k.as_ref())).to_string();
                    self.inferred = Some(p.clone());
                    p
                }
            },
        };
        crate::reset_event(ev);
        set_constants(ev, &path);
        let mut st = LineState::default();
        let mut text = String::new();
        for (k, val) in &fields {
            let col = resolve(&path, k);
            if col == Col::Ignore {
                continue;
            }
            let present = json_text(val, &mut text);
            let v = if present && text != "-" && text != "(empty)" {
                Some(text.as_str())
            } else {
                None
            };
            apply(col, v, ev, &mut st, b',').map_err(|r| {
                LineError::new(
                    r,
                    format!("field `{k}`: `{}`", crate::util::excerpt(&text, 80)),
                )
            })?;
        }
        finish_line(&path, ev, &st);
        Ok(Parsed::Event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The borrowed line parse keeps `serde_json::Value`'s reading: a
    /// repeated key's last value, escapes decoded, nested objects and empty
    /// sets absent, and the two kinds of bad line told apart.
    #[test]
    fn json_lines_edge_cases() {
        let mut r = ZeekJson::new("x.json");
        let mut ev = Event::default();
        let line = r#"{"_path":"conn","ts":1521911724.5,"id.orig_h":"10.0.0.3","id.orig_h":"10.0.0.4","id.orig_p":2,"id.resp_h":"10.0.0\u002e2","id.resp_p":80,"uid":"C2","tunnel_parents":[],"x":{"a":1},"proto":null}"#;
        assert!(matches!(r.parse_line(line, &mut ev), Ok(Parsed::Event)));
        assert_eq!(ev.source_ip, Some("10.0.0.4".parse().unwrap()));
        assert_eq!(ev.destination_ip, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(ev.source_port, Some(2));
        assert_eq!(ev.timestamp_us, Some(1_521_911_724_500_000));
        assert_eq!(ev.session_id.as_deref(), Some("C2"));
        assert_eq!(ev.network_transport, None);
        let e = r.parse_line("[1,2]", &mut ev).unwrap_err();
        assert_eq!(e.reason, Reason::BadJson);
        assert!(e.detail.contains("not an object"), "{}", e.detail);
        let e = r.parse_line("not json", &mut ev).unwrap_err();
        assert!(e.detail.starts_with("not a JSON object: "), "{}", e.detail);
        let e = r
            .parse_line(r#"{"_path":"conn","id.orig_h":"x"}"#, &mut ev)
            .unwrap_err();
        assert!(e.detail.contains("id.orig_h"), "{}", e.detail);
    }

    #[test]
    fn names_to_paths() {
        assert_eq!(path_from_name("a/b/conn.log").as_deref(), Some("conn"));
        assert_eq!(path_from_name("conn.log.labeled").as_deref(), Some("conn"));
        assert_eq!(path_from_name("labeled-conn.log").as_deref(), Some("conn"));
        assert_eq!(path_from_name("dns.json.gz").as_deref(), Some("dns"));
        assert_eq!(path_from_name("X.log"), None);
    }

    #[test]
    fn unescapes() {
        let mut s = String::new();
        unescape("a\\x09b\\x2c\\xZZ", &mut s);
        assert_eq!(s, "a\tb,\\xZZ");
    }

    #[test]
    fn intervals_round_to_microseconds() {
        assert_eq!(zeek_interval_ns("0.012166976928710938"), Some(12_167_000));
        assert_eq!(zeek_interval_ns("0.012167"), Some(12_167_000));
    }
}
