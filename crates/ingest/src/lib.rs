//! Readers for the log formats security teams really have, into the one
//! normalised [`palisade_core::Event`].
//!
//! # Formats
//! | [`Format`] | `--format` names | what |
//! |---|---|---|
//! | `ZeekTsv` | `zeek-tsv`, `zeek` | Zeek TSV logs (`#separator`/`#fields` header) |
//! | `ZeekJson` | `zeek-json` | Zeek JSON lines |
//! | `Squid` | `squid` | Squid native `access.log` |
//! | `W3c` | `w3c`, `iis`, `elff` | W3C Extended (`#Fields:` header): IIS, Blue Coat ELFF |
//! | `Apache` | `apache`, `nginx`, `combined` | Apache/nginx combined (and common) access logs |
//! | `Evtx` | `evtx` | raw Windows `.evtx` files |
//! | `WindowsJson` | `windows-json`, `winlogbeat` | Windows events as JSON lines (Winlogbeat/ECS, OTRF/NXLog, python-evtx) |
//! | `Netfilter` | `netfilter`, `iptables` | iptables/netfilter kernel log lines |
//! | `Mapped` | `mapped`, `csv`, `jsonl` | any CSV or JSON lines, through a TOML [`Mapping`] |
//!
//! Every format is detected from its first lines ([`sniff`]); gzip input is
//! decompressed transparently (detected by magic bytes, not file name).
//!
//! # API
//! - [`read_path`]: a whole file (or `-` for stdin) into `Vec<Event>` plus its
//!   [`FileSummary`]; what the features code wants for small inputs.
//! - [`ingest_path`] / [`ingest_reader`]: stream events to a callback, in flat
//!   memory, with an optional quarantine writer for rejected lines; what
//!   `palisade ingest` uses.
//!
//! ```no_run
//! use palisade_ingest::{read_path, IngestOptions};
//! let (events, summary) = read_path("conn.log".as_ref(), None, &IngestOptions::default())?;
//! eprintln!("{summary}");
//! # Ok::<(), palisade_ingest::IngestError>(())
//! ```
//!
//! # Bad input
//! A line that does not parse is counted by [`Reason`], its first few
//! occurrences are kept in the summary with line number and detail, it is
//! written verbatim to the quarantine writer if one is given, and it is
//! skipped. `IngestOptions::max_errors` turns too many into an error. A line
//! that still gives an event but with a problem (a netfilter line whose syslog
//! timestamp does not parse, a mapped CSV row whose field count differs from
//! its header's) is kept, counted in [`FileSummary::flagged`] and
//! listed among the examples. Problems with a whole input that do not stop it
//! being read are [`FileSummary::warnings`]: an empty input (read as zero
//! events), an .evtx file that ends mid-chunk or holds fewer chunks than its
//! header declares (also counted as an `evtx_record` skip). What
//! cannot be read at all (unreadable file, truncated gzip, no header before the
//! data, a format none of the first 100 lines fit, a broken .evtx header) is an
//! [`IngestError`] naming the file. Readers never panic on input: property
//! tests feed random bytes to every reader (`tests/robustness.rs`), and
//! `fuzz/` holds one cargo-fuzz target per reader.

mod apache;
mod mapped;
mod netfilter;
mod squid;
mod util;
mod w3c;
mod windows;
mod zeek;

pub use mapped::{FieldMapping, Mapping, MappingSource, ValueType};

use palisade_core::Event;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

/// A log format this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    ZeekTsv,
    ZeekJson,
    Squid,
    W3c,
    Apache,
    Evtx,
    WindowsJson,
    Netfilter,
    Mapped,
}

impl Format {
    /// Every format, in the order [`sniff`] tries them.
    pub const ALL: [Format; 9] = [
        Format::Evtx,
        Format::ZeekTsv,
        Format::W3c,
        Format::ZeekJson,
        Format::WindowsJson,
        Format::Squid,
        Format::Apache,
        Format::Netfilter,
        Format::Mapped,
    ];

    /// The canonical `--format` name.
    pub fn name(self) -> &'static str {
        match self {
            Format::ZeekTsv => "zeek-tsv",
            Format::ZeekJson => "zeek-json",
            Format::Squid => "squid",
            Format::W3c => "w3c",
            Format::Apache => "apache",
            Format::Evtx => "evtx",
            Format::WindowsJson => "windows-json",
            Format::Netfilter => "netfilter",
            Format::Mapped => "mapped",
        }
    }

    /// Parse a `--format` name (several aliases per format).
    pub fn from_name(name: &str) -> Result<Format, IngestError> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "zeek-tsv" | "zeek" | "bro" => Format::ZeekTsv,
            "zeek-json" => Format::ZeekJson,
            "squid" => Format::Squid,
            "w3c" | "iis" | "elff" | "bluecoat" => Format::W3c,
            "apache" | "nginx" | "combined" | "clf" => Format::Apache,
            "evtx" => Format::Evtx,
            "windows-json" | "winlogbeat" | "winlog" | "sysmon-json" => Format::WindowsJson,
            "netfilter" | "iptables" => Format::Netfilter,
            "mapped" | "csv" | "jsonl" | "json" => Format::Mapped,
            _ => return Err(IngestError::UnknownFormat(name.to_string())),
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = IngestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::from_name(s)
    }
}

/// Why a line was rejected. The code ([`Reason::code`]) is what summaries print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// Not UTF-8 (binary garbage, or a log in a legacy code page).
    InvalidUtf8,
    /// Longer than `IngestOptions::max_line_bytes`.
    LineTooLong,
    /// Fewer or more fields than the header or format says.
    FieldCount,
    BadTimestamp,
    BadAddress,
    BadNumber,
    BadJson,
    /// A field the format needs is absent.
    MissingField,
    /// The line does not have the format's shape.
    Syntax,
    /// Data before the header that defines its columns (fatal).
    MissingHeader,
    /// An .evtx record that could not be decoded (corrupt chunk or record).
    EvtxRecord,
    /// A value the mapping file could not convert.
    Mapping,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::LineTooLong => "line_too_long",
            Reason::FieldCount => "field_count",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::BadAddress => "bad_address",
            Reason::BadNumber => "bad_number",
            Reason::BadJson => "bad_json",
            Reason::MissingField => "missing_field",
            Reason::Syntax => "syntax",
            Reason::MissingHeader => "missing_header",
            Reason::EvtxRecord => "evtx_record",
            Reason::Mapping => "mapping",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why one line was rejected, with a human detail (field name, value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub reason: Reason,
    pub detail: String,
}

impl LineError {
    pub fn new(reason: Reason, detail: String) -> Self {
        LineError { reason, detail }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// What a reader made of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The event was filled.
    Event,
    /// A header, comment or other line without an event.
    Skip,
}

/// One reader of a line-oriented format: fed line by line (without the line
/// terminator), it fills `ev` or says why not. Readers keep state (headers),
/// and may reuse `ev` from the previous line: every reader overwrites each
/// field it owns on every line, so nothing leaks from one line to the next.
/// `sniff` says whether the first non-empty lines look like this format.
pub trait LineReader {
    fn parse_line(&mut self, line: &str, ev: &mut Event) -> Result<Parsed, LineError>;

    /// Whether these first non-empty lines of a file look like this format.
    fn sniff(lines: &[&str]) -> bool
    where
        Self: Sized;

    /// A problem with the line just parsed that did not stop it giving an
    /// event (e.g. a timestamp that does not parse: the event is kept without
    /// it). Asked after each [`Parsed::Event`]; the event is kept and the
    /// problem counted in [`FileSummary::flagged`].
    fn take_warning(&mut self) -> Option<LineError> {
        None
    }
}

/// One rejected line, kept as an example in the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line number (record number for .evtx).
    pub line: u64,
    pub reason: Reason,
    pub detail: String,
}

/// What happened to one input.
#[derive(Debug, Clone, Default)]
pub struct FileSummary {
    pub path: String,
    pub format: Option<Format>,
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Lines (or .evtx records) seen, including headers and comments.
    pub lines: u64,
    pub events: u64,
    /// Rejected lines by reason.
    pub skipped: BTreeMap<Reason, u64>,
    /// Lines kept as events despite a problem (counted in `events`), by reason.
    pub flagged: BTreeMap<Reason, u64>,
    /// The first rejected or flagged lines (up to `IngestOptions::max_examples`).
    pub examples: Vec<Rejected>,
    /// Problems with the input as a whole that did not stop it being read
    /// (an empty input, a truncated .evtx file). Each names the input.
    pub warnings: Vec<String>,
}

impl FileSummary {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub fn flagged_total(&self) -> u64 {
        self.flagged.values().sum()
    }

    /// Adds the summary of one entry of an archive (`entry`: its name in
    /// the archive) to this, the archive's: the counts add up, the format
    /// is the first entry's, the examples (up to `max_examples`) name their
    /// entry.
    fn absorb(&mut self, entry: &str, part: FileSummary, max_examples: usize) {
        self.format = self.format.or(part.format);
        self.bytes += part.bytes;
        self.lines += part.lines;
        self.events += part.events;
        for (reason, n) in part.skipped {
            *self.skipped.entry(reason).or_default() += n;
        }
        for (reason, n) in part.flagged {
            *self.flagged.entry(reason).or_default() += n;
        }
        let room = max_examples.saturating_sub(self.examples.len());
        self.examples
            .extend(part.examples.into_iter().take(room).map(|mut r| {
                r.detail = format!("{entry}: {}", r.detail);
                r
            }));
        self.warnings.extend(part.warnings);
    }
}

impl fmt::Display for FileSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({} lines, {} events, {} skipped",
            self.path,
            self.format.map_or("?", Format::name),
            self.lines,
            self.events,
            self.skipped_total()
        )?;
        // `reason count, ...`
        let by_reason = |m: &BTreeMap<Reason, u64>| {
            m.iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.skipped.is_empty() {
            write!(f, ": {}", by_reason(&self.skipped))?;
        }
        if !self.flagged.is_empty() {
            write!(
                f,
                "; {} kept with a problem: {}",
                self.flagged_total(),
                by_reason(&self.flagged)
            )?;
        }
        write!(f, ")")?;
        for e in &self.examples {
            write!(f, "\n  line {}: {}: {}", e.line, e.reason, e.detail)?;
        }
        for w in &self.warnings {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

/// How to read.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Keep the original line in `event.original` (provenance). On by default.
    pub keep_original: bool,
    /// Fail once more than this many lines of one input were rejected.
    pub max_errors: Option<u64>,
    /// Lines longer than this are rejected (`line_too_long`) without being
    /// held in memory whole.
    pub max_line_bytes: usize,
    /// The mapping for [`Format::Mapped`].
    pub mapping: Option<Mapping>,
    /// How many rejected lines to keep as examples in the summary.
    pub max_examples: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            keep_original: true,
            max_errors: None,
            max_line_bytes: 1 << 20,
            mapping: None,
            max_examples: 5,
        }
    }
}

/// A sink error (e.g. the event writer failed).
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Why an input could not be read. Each names the input.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    // The cause is part of the message (not a `source`) so that error chains
    // printed with `{:#}` do not repeat it.
    #[error("{path}: {cause}")]
    Io { path: String, cause: io::Error },
    #[error("{path}: truncated or corrupt gzip stream after {bytes} decompressed bytes ({cause})")]
    Gzip {
        path: String,
        bytes: u64,
        cause: io::Error,
    },
    #[error("unknown format `{0}`; known formats: zeek-tsv, zeek-json, squid, w3c, apache, evtx, windows-json, netfilter, mapped")]
    UnknownFormat(String),
    #[error("{path}: could not detect the log format ({why}); pass --format (and --mapping for CSV/JSON)")]
    Undetected { path: String, why: String },
    /// No reader takes packets: a network monitor turns them into the logs
    /// the readers take (telling the user to pass --format led nowhere).
    #[error("{path}: a packet capture ({kind}); palisade reads the logs a network monitor writes, not packets: run `{command}` and ingest the conn, dns, http, ssl … logs it writes")]
    PacketCapture {
        path: String,
        kind: &'static str,
        /// What to run: `zeek -C -r PATH`, with the capture taken out of
        /// its zip archive first when it is in one.
        command: String,
    },
    #[error("{path}: line {line}: {message}")]
    Header {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}: none of the first {lines} lines parse as {format} (line {line}: {example}); is --format right?{hint}")]
    WrongFormat {
        path: String,
        format: Format,
        lines: u64,
        line: u64,
        example: String,
        hint: String,
    },
    #[error("{path}: more than --max-errors {max} malformed lines (last: line {line}: {example})")]
    TooManyErrors {
        path: String,
        max: u64,
        line: u64,
        example: String,
    },
    #[error("{path}: not a readable zip archive: {message}")]
    Zip { path: String, message: String },
    #[error("{path}: not a readable .evtx file: {message}")]
    Evtx { path: String, message: String },
    #[error("mapping {path}: {message}")]
    Mapping { path: String, message: String },
    #[error("{path}: format `mapped` needs a mapping file (--mapping M.toml)")]
    NoMapping { path: String },
    #[error("{path}: writing events: {cause}")]
    Sink { path: String, cause: SinkError },
    #[error("{path}: writing the quarantine file: {cause}")]
    Quarantine { path: String, cause: io::Error },
}

/// Clear an event but keep the per-file provenance fields' allocations.
pub(crate) fn reset_event(ev: &mut Event) {
    let path = ev.log_file_path.take();
    let orig = ev.original.take();
    *ev = Event::default();
    ev.log_file_path = path;
    ev.original = orig;
}

/// How many lines [`sniff`] looks at.
const SNIFF_LINES: usize = 8;
/// How many leading bytes are held back to sniff the format.
const HEAD_BYTES: usize = 64 * 1024;
/// After this many rejected lines without a single event, the format is wrong.
const WRONG_FORMAT_LINES: u64 = 100;

/// Detect the format of an input from its first bytes (after gzip). `None`
/// when nothing fits.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"ElfFile\0") {
        return Some(Format::Evtx);
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // The head may end inside a multi-byte character.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = Vec::with_capacity(SNIFF_LINES);
    let complete = text.ends_with('\n') || head.len() < HEAD_BYTES;
    let mut it = text.split('\n').peekable();
    while let Some(l) = it.next() {
        if it.peek().is_none() && !complete {
            break; // a cut-off last line says nothing
        }
        let l = l.trim_end_matches('\r');
        if l.trim().is_empty() {
            continue;
        }
        lines.push(l);
        if lines.len() == SNIFF_LINES {
            break;
        }
    }
    if lines.is_empty() {
        return None;
    }
    if <zeek::ZeekTsv as LineReader>::sniff(&lines) {
        return Some(Format::ZeekTsv);
    }
    if <w3c::W3c as LineReader>::sniff(&lines) {
        return Some(Format::W3c);
    }
    if lines[0].starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(lines[0]).ok()?;
        if zeek::ZeekJson::sniff_value(&v) {
            return Some(Format::ZeekJson);
        }
        if windows::WindowsJson::sniff_value(&v) {
            return Some(Format::WindowsJson);
        }
        return None;
    }
    if <squid::Squid as LineReader>::sniff(&lines) {
        return Some(Format::Squid);
    }
    if <apache::Apache as LineReader>::sniff(&lines) {
        return Some(Format::Apache);
    }
    if <netfilter::Netfilter as LineReader>::sniff(&lines) {
        return Some(Format::Netfilter);
    }
    None
}

fn make_reader(
    format: Format,
    name: &str,
    opts: &IngestOptions,
) -> Result<Box<dyn LineReader>, IngestError> {
    Ok(match format {
        Format::ZeekTsv => Box::new(zeek::ZeekTsv::new(name)),
        Format::ZeekJson => Box::new(zeek::ZeekJson::new(name)),
        Format::Squid => Box::new(squid::Squid),
        Format::W3c => Box::new(w3c::W3c::default()),
        Format::Apache => Box::new(apache::Apache),
        Format::WindowsJson => Box::new(windows::WindowsJson),
        Format::Netfilter => Box::new(netfilter::Netfilter::new()),
        Format::Mapped => match &opts.mapping {
            Some(m) => Box::new(mapped::MappedReader::new(m.clone())),
            None => {
                return Err(IngestError::NoMapping {
                    path: name.to_string(),
                })
            }
        },
        Format::Evtx => unreachable_evtx(name)?,
    })
}

// Evtx is not line-oriented and is dispatched before `make_reader`; kept as an
// error rather than a panic in case a caller reaches it another way.
fn unreachable_evtx(name: &str) -> Result<Box<dyn LineReader>, IngestError> {
    Err(IngestError::Evtx {
        path: name.to_string(),
        message: "internal: evtx is not line-oriented".into(),
    })
}

/// The per-input state of the line loop: counting, quarantine, the sink.
struct Run<'a, 'q, F> {
    name: &'a str,
    opts: &'a IngestOptions,
    reader: Box<dyn LineReader>,
    ev: Event,
    summary: FileSummary,
    quarantine: Option<&'q mut dyn Write>,
    sink: F,
    line_no: u64,
    /// What the input looks like, when a format was given (for the wrong-format hint).
    sniffed: Option<Format>,
}

impl<F: FnMut(&Event) -> Result<(), SinkError>> Run<'_, '_, F> {
    fn line(&mut self, raw: &[u8]) -> Result<(), IngestError> {
        self.line_no += 1;
        self.summary.lines += 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(());
        }
        let text = match std::str::from_utf8(raw) {
            Ok(t) => t,
            Err(e) => {
                let detail = format!("invalid UTF-8 at byte {}", e.valid_up_to());
                return self.reject(raw, LineError::new(Reason::InvalidUtf8, detail));
            }
        };
        match self.reader.parse_line(text, &mut self.ev) {
            Ok(Parsed::Event) => {
                self.ev.log_line = Some(self.line_no);
                if self.opts.keep_original {
                    util::put(&mut self.ev.original, text);
                } else {
                    self.ev.original = None;
                }
                (self.sink)(&self.ev).map_err(|cause| IngestError::Sink {
                    path: self.name.to_string(),
                    cause,
                })?;
                self.summary.events += 1;
                if let Some(w) = self.reader.take_warning() {
                    self.flag(w);
                }
                Ok(())
            }
            Ok(Parsed::Skip) => Ok(()),
            Err(e) if e.reason == Reason::MissingHeader => Err(IngestError::Header {
                path: self.name.to_string(),
                line: self.line_no,
                message: e.detail,
            }),
            Err(e) => self.reject(raw, e),
        }
    }

    /// A line kept as an event despite a problem: counted and listed, not an error.
    fn flag(&mut self, e: LineError) {
        tracing::debug!(
            file = self.name,
            line = self.line_no,
            reason = e.reason.code(),
            "event kept: {}",
            e.detail
        );
        *self.summary.flagged.entry(e.reason).or_insert(0) += 1;
        if self.summary.examples.len() < self.opts.max_examples {
            self.summary.examples.push(Rejected {
                line: self.line_no,
                reason: e.reason,
                detail: e.detail,
            });
        }
    }

    fn reject(&mut self, raw: &[u8], e: LineError) -> Result<(), IngestError> {
        self.count_reject(e)?;
        if let Some(q) = self.quarantine.as_mut() {
            q.write_all(raw)
                .and_then(|_| q.write_all(b"\n"))
                .map_err(|cause| IngestError::Quarantine {
                    path: self.name.to_string(),
                    cause,
                })?;
        }
        Ok(())
    }

    fn count_reject(&mut self, e: LineError) -> Result<(), IngestError> {
        tracing::debug!(
            file = self.name,
            line = self.line_no,
            reason = e.reason.code(),
            "{}",
            e.detail
        );
        *self.summary.skipped.entry(e.reason).or_insert(0) += 1;
        let total = self.summary.skipped_total();
        let example = format!("{}: {}", e.reason, e.detail);
        if self.summary.examples.len() < self.opts.max_examples {
            self.summary.examples.push(Rejected {
                line: self.line_no,
                reason: e.reason,
                detail: e.detail,
            });
        }
        if let Some(max) = self.opts.max_errors {
            if total > max {
                return Err(IngestError::TooManyErrors {
                    path: self.name.to_string(),
                    max,
                    line: self.line_no,
                    example,
                });
            }
        }
        if self.summary.events == 0 && total >= WRONG_FORMAT_LINES {
            let first = self.summary.examples.first();
            return Err(IngestError::WrongFormat {
                path: self.name.to_string(),
                format: self.summary.format.unwrap_or(Format::Mapped),
                lines: total,
                line: first.map_or(self.line_no, |r| r.line),
                example: first.map_or(example, |r| format!("{}: {}", r.reason, r.detail)),
                hint: match self.sniffed {
                    Some(f) if Some(f) != self.summary.format => format!(" (it looks like {f})"),
                    _ => String::new(),
                },
            });
        }
        Ok(())
    }

    /// An over-long line: counted, quarantined as far as it was seen.
    fn too_long(&mut self, seen: u64) -> Result<(), IngestError> {
        self.line_no += 1;
        self.summary.lines += 1;
        let detail = format!(
            "line of {seen} bytes or more exceeds the {}-byte limit",
            self.opts.max_line_bytes
        );
        self.count_reject(LineError::new(Reason::LineTooLong, detail))
    }
}

fn io_error(name: &str, gz: bool, bytes: u64, source: io::Error) -> IngestError {
    if gz {
        IngestError::Gzip {
            path: name.to_string(),
            bytes,
            cause: source,
        }
    } else {
        IngestError::Io {
            path: name.to_string(),
            cause: source,
        }
    }
}

/// Read one input (any `Read`: a file, stdin, a byte slice) and call `sink`
/// with each event. `name` names the input in events (`log.file.path`),
/// summaries and errors; it also hints the Zeek log type (`conn.log`).
/// `format: None` sniffs the format. Rejected lines go verbatim to `quarantine`.
pub fn ingest_reader<R, F>(
    name: &str,
    input: R,
    format: Option<Format>,
    opts: &IngestOptions,
    quarantine: Option<&mut dyn Write>,
    sink: F,
) -> Result<FileSummary, IngestError>
where
    R: Read,
    F: FnMut(&Event) -> Result<(), SinkError>,
{
    let mut raw = BufReader::with_capacity(256 * 1024, input);
    let magic = raw.fill_buf().map_err(|e| io_error(name, false, 0, e))?;
    // a local file header, or the end of an empty archive's directory
    if magic.starts_with(b"PK\x03\x04") || magic.starts_with(b"PK\x05\x06") {
        return ingest_zip(name, raw, format, opts, quarantine, sink);
    }
    let gz = magic.starts_with(&[0x1f, 0x8b]);
    let inner: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut counted = CountingReader { inner, n: 0 };
    let mut head = Vec::with_capacity(HEAD_BYTES);
    (&mut counted)
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| io_error(name, gz, head_len(&head), e))?;

    // An input with nothing in it (or, when the format is to be detected,
    // nothing but blank lines) is zero events and a warning, not an error: one
    // empty file must not abort a multi-file ingest.
    let blank = head.len() < HEAD_BYTES && head.iter().all(u8::is_ascii_whitespace);
    if head.is_empty() || (blank && format.is_none() && opts.mapping.is_none()) {
        let why = if head.is_empty() {
            "the input is empty"
        } else {
            "the input holds only blank lines"
        };
        tracing::debug!(file = name, "{why}; read as 0 events");
        return Ok(FileSummary {
            path: name.to_string(),
            format,
            bytes: head.len() as u64,
            lines: memchr::memchr_iter(b'\n', &head).count() as u64
                + u64::from(!head.is_empty() && !head.ends_with(b"\n")),
            warnings: vec![format!("{name}: {why}; read as 0 events")],
            ..Default::default()
        });
    }

    let sniffed = if format.is_some() { sniff(&head) } else { None };
    let format = match format.or(if opts.mapping.is_some() {
        Some(Format::Mapped)
    } else {
        None
    }) {
        Some(f) => f,
        None => sniff(&head).ok_or_else(|| match capture_kind(&head) {
            Some(kind) => IngestError::PacketCapture {
                path: name.to_string(),
                kind,
                command: format!("zeek -C -r {name}"),
            },
            None => IngestError::Undetected {
                path: name.to_string(),
                why: describe_head(&head),
            },
        })?,
    };
    let mut summary = FileSummary {
        path: name.to_string(),
        format: Some(format),
        ..Default::default()
    };

    if format == Format::Evtx {
        let mut all = head;
        counted
            .read_to_end(&mut all)
            .map_err(|e| io_error(name, gz, all.len() as u64, e))?;
        summary.bytes = all.len() as u64;
        windows::read_evtx(name, all, opts, quarantine, sink, summary)
    } else {
        let reader = make_reader(format, name, opts)?;
        let ev = Event {
            log_file_path: Some(name.to_string()),
            ..Default::default()
        };
        let mut run = Run {
            name,
            opts,
            reader,
            ev,
            summary,
            quarantine,
            sink,
            line_no: 0,
            sniffed,
        };
        let mut input = BufReader::with_capacity(256 * 1024, io::Cursor::new(head).chain(counted));
        line_loop(&mut input, &mut run, gz)?;
        run.summary.bytes = input.get_ref().get_ref().1.n;
        Ok(run.summary)
    }
}

fn head_len(h: &[u8]) -> u64 {
    h.len() as u64
}

/// A short description of an undetectable head, for the error message.
/// "pcap" or "pcapng" when `head` starts with that file format's magic
/// number (either byte order; pcap's nanosecond variant too).
fn capture_kind(head: &[u8]) -> Option<&'static str> {
    match head.get(..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d] => Some("pcap"),
        [0x0a, 0x0d, 0x0d, 0x0a] => Some("pcapng"),
        _ => None,
    }
}

fn describe_head(head: &[u8]) -> String {
    if head.is_empty() {
        return "the input is empty".into();
    }
    let printable = head
        .iter()
        .take(512)
        .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        .count();
    if printable * 10 < head.len().min(512) * 8 {
        return "the input looks binary".into();
    }
    let first = String::from_utf8_lossy(head.split(|b| *b == b'\n').next().unwrap_or(head));
    format!("first line: `{}`", util::excerpt(first.trim_end(), 120))
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        Ok(k)
    }
}

/// Split the input into lines without copying those that lie inside the read
/// buffer, and without ever holding more than `max_line_bytes` of one line.
fn line_loop<B: BufRead, F: FnMut(&Event) -> Result<(), SinkError>>(
    input: &mut B,
    run: &mut Run<'_, '_, F>,
    gz: bool,
) -> Result<(), IngestError> {
    let max = run.opts.max_line_bytes;
    let mut carry: Vec<u8> = Vec::new();
    // Bytes of the current over-long line seen so far (0 = not over-long).
    let mut overlong: u64 = 0;
    let mut total: u64 = 0;
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(run.name, gz, total, e)),
        };
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', buf) {
            let seg = &buf[start..nl];
            if overlong > 0 {
                run.quarantine_part(seg, true)?;
                run.too_long(overlong + seg.len() as u64)?;
                overlong = 0;
            } else if !carry.is_empty() {
                if carry.len() + seg.len() > max {
                    run.quarantine_part(&carry, false)?;
                    run.quarantine_part(seg, true)?;
                    run.too_long((carry.len() + seg.len()) as u64)?;
                    carry.clear();
                } else {
                    carry.extend_from_slice(seg);
                    let line = std::mem::take(&mut carry);
                    run.line(&line)?;
                    carry = line;
                    carry.clear();
                }
            } else if seg.len() > max {
                run.quarantine_part(seg, true)?;
                run.too_long(seg.len() as u64)?;
            } else {
                run.line(seg)?;
            }
            start = nl + 1;
        }
        let rest = &buf[start..];
        if overlong > 0 {
            run.quarantine_part(rest, false)?;
            overlong += rest.len() as u64;
        } else if carry.len() + rest.len() > max {
            run.quarantine_part(&carry, false)?;
            run.quarantine_part(rest, false)?;
            overlong = (carry.len() + rest.len()) as u64;
            carry.clear();
        } else {
            carry.extend_from_slice(rest);
        }
        total += n as u64;
        input.consume(n);
    }
    if overlong > 0 {
        run.quarantine_part(b"", true)?;
        run.too_long(overlong)?;
    } else if !carry.is_empty() {
        let line = std::mem::take(&mut carry);
        run.line(&line)?;
    }
    Ok(())
}

impl<F> Run<'_, '_, F> {
    /// Write part of an over-long line to the quarantine (verbatim, streamed).
    fn quarantine_part(&mut self, part: &[u8], end: bool) -> Result<(), IngestError> {
        if let Some(q) = self.quarantine.as_mut() {
            q.write_all(part)
                .and_then(|_| if end { q.write_all(b"\n") } else { Ok(()) })
                .map_err(|cause| IngestError::Quarantine {
                    path: self.name.to_string(),
                    cause,
                })?;
        }
        Ok(())
    }
}

/// Each file of a zip archive read as an input of its own, named
/// `ARCHIVE!/ENTRY` (in its events' `log.file.path` and its errors), its
/// format detected unless `format` is given; one summary for the archive.
/// Why the archive is read into memory whole: a zip's directory is at its
/// end, and the input may be a stream (stdin, a reader that counts progress).
/// The OTRF security datasets ship their logs as one JSON file per zip of a
/// few hundred KB. `--max-errors` counts over the whole archive.
fn ingest_zip<R, F>(
    name: &str,
    mut input: BufReader<R>,
    format: Option<Format>,
    opts: &IngestOptions,
    mut quarantine: Option<&mut dyn Write>,
    mut sink: F,
) -> Result<FileSummary, IngestError>
where
    R: Read,
    F: FnMut(&Event) -> Result<(), SinkError>,
{
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(name, false, bytes.len() as u64, e))?;
    let zip_error = |e: zip::result::ZipError| IngestError::Zip {
        path: name.to_string(),
        message: e.to_string(),
    };
    let mut archive = zip::ZipArchive::new(io::Cursor::new(bytes)).map_err(zip_error)?;
    let mut total = FileSummary {
        path: name.to_string(),
        ..Default::default()
    };
    // as trait objects: an entry may be an archive itself, and with the
    // types as given each level would instantiate the next without end
    type DynSink<'s> = &'s mut dyn FnMut(&Event) -> Result<(), SinkError>;
    let sink: DynSink<'_> = &mut sink;
    let mut files = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(zip_error)?;
        if entry.is_dir() {
            continue;
        }
        files += 1;
        let inner = entry.name().map_err(zip_error)?.to_string();
        let entry_opts = IngestOptions {
            max_errors: opts
                .max_errors
                .map(|m| m.saturating_sub(total.skipped_total())),
            ..opts.clone()
        };
        let entry_name = format!("{name}!/{inner}");
        let part = ingest_reader::<Box<dyn Read + '_>, DynSink<'_>>(
            &entry_name,
            Box::new(entry),
            format,
            &entry_opts,
            quarantine.as_mut().map(|q| &mut **q as &mut dyn Write),
            &mut *sink,
        )
        .map_err(|e| match e {
            // a capture in this archive: zeek cannot read it in place
            IngestError::PacketCapture { path, kind, .. } if path == entry_name => {
                IngestError::PacketCapture {
                    path,
                    kind,
                    command: format!("unzip {name} {inner} && zeek -C -r {inner}"),
                }
            }
            other => other,
        })?;
        total.absorb(&inner, part, opts.max_examples);
    }
    if files == 0 {
        total.warnings.push(format!(
            "{name}: the zip archive holds no files; read as 0 events"
        ));
    }
    Ok(total)
}

/// Open a path (`-` = stdin) for [`ingest_reader`].
pub fn open_path(path: &Path) -> Result<Box<dyn Read>, IngestError> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin().lock()));
    }
    let f = std::fs::File::open(path).map_err(|cause| IngestError::Io {
        path: path.display().to_string(),
        cause,
    })?;
    Ok(Box::new(f))
}

/// Stream one file (`-` = stdin, gzip transparent) to `sink`.
pub fn ingest_path<F>(
    path: &Path,
    format: Option<Format>,
    opts: &IngestOptions,
    quarantine: Option<&mut dyn Write>,
    sink: F,
) -> Result<FileSummary, IngestError>
where
    F: FnMut(&Event) -> Result<(), SinkError>,
{
    let input = open_path(path)?;
    ingest_reader(
        &path.display().to_string(),
        input,
        format,
        opts,
        quarantine,
        sink,
    )
}

/// Read one file (`-` = stdin, gzip transparent) into memory: its events and
/// its summary. `format: None` detects the format.
pub fn read_path(
    path: &Path,
    format: Option<Format>,
    opts: &IngestOptions,
) -> Result<(Vec<Event>, FileSummary), IngestError> {
    let mut events = Vec::new();
    let summary = ingest_path(path, format, opts, None, |e| {
        events.push(e.clone());
        Ok(())
    })?;
    Ok((events, summary))
}

/// Parse bytes already in memory (tests, fuzzing, benchmarks).
pub fn read_bytes(
    name: &str,
    bytes: &[u8],
    format: Option<Format>,
    opts: &IngestOptions,
) -> Result<(Vec<Event>, FileSummary), IngestError> {
    let mut events = Vec::new();
    let summary = ingest_reader(name, bytes, format, opts, None, |e| {
        events.push(e.clone());
        Ok(())
    })?;
    Ok((events, summary))
}
