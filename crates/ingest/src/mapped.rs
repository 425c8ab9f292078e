//! Generic CSV or JSON lines, mapped to the event by a small TOML file:
//!
//! ```toml
//! source = "csv"            # or "jsonl"
//! delimiter = ","           # csv only; default ","
//! has_header = true         # csv only; without a header, columns are 1-based numbers
//! dataset = "firewall.uci"  # event.dataset
//! null_values = ["", "-"]   # values that mean "unset"
//!
//! [constants]               # fields set on every event
//! "event.category" = "network"
//!
//! [[fields]]
//! column = "Source Port"    # csv header name or number; jsonl key or dotted path
//! field = "source.port"     # ECS name of an event field
//! type = "int"              # str | int | ip | timestamp | seconds | millis
//!
//! [[fields]]
//! column = "time"
//! field = "@timestamp"
//! type = "timestamp"
//! format = "%d/%m/%Y %H:%M:%S"   # chrono format; or epoch, epoch_ms, rfc3339 (default: auto)
//! ```

use crate::util::{put, seconds_to_ns};
use crate::{LineError, LineReader, Parsed, Reason};
use palisade_core::event::{epoch_seconds_to_us, parse_timestamp_us};
use palisade_core::{Event, FieldType, EVENT_FIELDS};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What the mapped input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MappingSource {
    Csv,
    Jsonl,
}

/// How a source value is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    #[default]
    Str,
    Int,
    Ip,
    Timestamp,
    /// Decimal seconds, into a nanosecond field (event.duration).
    Seconds,
    /// Integer milliseconds, into a nanosecond field.
    Millis,
}

/// One column -> field rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    pub column: String,
    pub field: String,
    #[serde(rename = "type", default)]
    pub kind: ValueType,
    /// Timestamp format (chrono strftime) or `epoch`, `epoch_ms`, `rfc3339`.
    #[serde(default)]
    pub format: Option<String>,
}

/// A mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub source: MappingSource,
    #[serde(default)]
    pub delimiter: Option<String>,
    #[serde(default = "yes")]
    pub has_header: bool,
    #[serde(default)]
    pub dataset: Option<String>,
    #[serde(default = "default_nulls")]
    pub null_values: Vec<String>,
    #[serde(default)]
    pub constants: BTreeMap<String, String>,
    pub fields: Vec<FieldMapping>,
}

fn yes() -> bool {
    true
}

fn default_nulls() -> Vec<String> {
    vec![String::new(), "-".into()]
}

impl Mapping {
    /// Parse and check a mapping (every target is a known event field of a
    /// type the rule can fill). `name` names the mapping in errors.
    pub fn from_toml_str(text: &str, name: &str) -> Result<Mapping, crate::IngestError> {
        let err = |message: String| crate::IngestError::Mapping {
            path: name.to_string(),
            message,
        };
        let m: Mapping = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        if m.fields.is_empty() {
            return Err(err("no [[fields]] rules".into()));
        }
        if let Some(d) = &m.delimiter {
            if d.len() != 1 {
                return Err(err(format!("delimiter `{d}` must be one byte")));
            }
        }
        for f in &m.fields {
            let ty = EVENT_FIELDS
                .iter()
                .find(|(n, _)| *n == f.field)
                .map(|(_, t)| *t)
                .ok_or_else(|| {
                    err(format!(
                        "field `{}` (column `{}`) is not an event field",
                        f.field, f.column
                    ))
                })?;
            let ok = match f.kind {
                ValueType::Str => ty == FieldType::Str,
                ValueType::Int | ValueType::Seconds | ValueType::Millis => ty == FieldType::Int,
                ValueType::Ip => ty == FieldType::Ip,
                ValueType::Timestamp => ty == FieldType::Timestamp,
            };
            if !ok {
                return Err(err(format!(
                    "field `{}` is {:?}; type `{:?}` cannot fill it",
                    f.field, ty, f.kind
                )));
            }
        }
        for (k, v) in &m.constants {
            Event::default()
                .set_text(k, v)
                .map_err(|e| err(format!("constants: {e}")))?;
        }
        if m.source == MappingSource::Csv && !m.has_header {
            for f in &m.fields {
                if f.column.parse::<usize>().map_or(true, |n| n == 0) {
                    return Err(err(format!(
                        "without a header, column `{}` must be a 1-based number",
                        f.column
                    )));
                }
            }
        }
        Ok(m)
    }

    /// Read a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, crate::IngestError> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::IngestError::Mapping {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Mapping::from_toml_str(&text, &path.display().to_string())
    }
}

fn convert_time(v: &str, format: Option<&str>) -> Option<i64> {
    match format {
        None => parse_timestamp_us(v),
        Some("epoch") => epoch_seconds_to_us(v.trim()),
        Some("epoch_ms") => v.trim().parse::<i64>().ok()?.checked_mul(1000),
        Some("rfc3339") => chrono::DateTime::parse_from_rfc3339(v.trim())
            .ok()
            .map(|d| d.timestamp_micros()),
        Some(f) => chrono::DateTime::parse_from_str(v.trim(), f)
            .map(|d| d.timestamp_micros())
            .or_else(|_| {
                chrono::NaiveDateTime::parse_from_str(v.trim(), f)
                    .map(|d| d.and_utc().timestamp_micros())
            })
            .ok(),
    }
}

pub(crate) struct MappedReader {
    m: Mapping,
    /// Column index per rule (csv), resolved from the header.
    index: Option<Vec<usize>>,
    /// Fields in the CSV header (none without a header).
    header_fields: Option<usize>,
    /// A problem with the row just read that kept its event (see
    /// [`LineReader::take_warning`]).
    warning: Option<LineError>,
    delimiter: u8,
}

impl MappedReader {
    pub(crate) fn new(m: Mapping) -> Self {
        let delimiter = m
            .delimiter
            .as_deref()
            .and_then(|d| d.bytes().next())
            .unwrap_or(b',');
        let index = if m.source == MappingSource::Csv && !m.has_header {
            Some(
                m.fields
                    .iter()
                    .map(|f| f.column.parse::<usize>().unwrap_or(1).saturating_sub(1))
                    .collect(),
            )
        } else {
            None
        };
        MappedReader {
            m,
            index,
            header_fields: None,
            warning: None,
            delimiter,
        }
    }

    fn csv_record(&self, line: &str) -> Result<csv::StringRecord, LineError> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(self.delimiter)
            .flexible(true)
            .from_reader(line.as_bytes());
        let mut rec = csv::StringRecord::new();
        match r.read_record(&mut rec) {
            Ok(true) => Ok(rec),
            Ok(false) => Err(LineError::new(Reason::Syntax, "empty CSV record".into())),
            Err(e) => Err(LineError::new(Reason::Syntax, format!("CSV: {e}"))),
        }
    }

    fn set(&self, ev: &mut Event, rule: &FieldMapping, v: &str) -> Result<(), LineError> {
        if self.m.null_values.iter().any(|n| n == v) {
            return Ok(());
        }
        let bad = |what: &str| {
            LineError::new(
                Reason::Mapping,
                format!(
                    "column `{}`: `{}` is not {what}",
                    rule.column,
                    crate::util::excerpt(v, 60)
                ),
            )
        };
        match rule.kind {
            ValueType::Timestamp => {
                ev.timestamp_us = Some(
                    convert_time(v, rule.format.as_deref())
                        .ok_or_else(|| bad("a timestamp in the mapped format"))?,
                )
            }
            ValueType::Seconds => {
                let ns = seconds_to_ns(v).ok_or_else(|| bad("a number of seconds"))?;
                ev.set_text(&rule.field, &ns.to_string())
                    .map_err(|e| bad(&e.to_string()))?;
            }
            ValueType::Millis => {
                let ns = seconds_to_ns(v)
                    .and_then(|s| s.checked_div(1000))
                    .ok_or_else(|| bad("a number of milliseconds"))?;
                ev.set_text(&rule.field, &ns.to_string())
                    .map_err(|e| bad(&e.to_string()))?;
            }
            ValueType::Str | ValueType::Int | ValueType::Ip => ev
                .set_text(&rule.field, v)
                .map_err(|e| LineError::new(Reason::Mapping, e.to_string()))?,
        }
        Ok(())
    }

    fn start_event(&self, ev: &mut Event) {
        crate::reset_event(ev);
        for (k, v) in &self.m.constants {
            // checked in Mapping::from_toml_str
            let _ = ev.set_text(k, v);
        }
        if let Some(d) = &self.m.dataset {
            put(&mut ev.event_dataset, d);
        }
    }
}

/// A JSON value by key, or by dotted path into nested objects.
fn json_lookup<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    if let Some(x) = v.get(key) {
        return Some(x);
    }
    let mut cur = v;
    for part in key.split('.') {
        cur = cur.get(part)?;
    }
    Some(cur)
}

impl LineReader for MappedReader {
    fn take_warning(&mut self) -> Option<LineError> {
        self.warning.take()
    }

    fn sniff(_lines: &[&str]) -> bool {
        false // only with a mapping file
    }

    fn parse_line(&mut self, line: &str, ev: &mut Event) -> Result<Parsed, LineError> {
        match self.m.source {
            MappingSource::Csv => {
                let rec = self.csv_record(line)?;
                let index = match &self.index {
                    Some(i) => i,
                    None => {
                        let mut idx = Vec::with_capacity(self.m.fields.len());
                        for f in &self.m.fields {
                            let i =
                                rec.iter()
                                    .position(|h| h.trim() == f.column)
                                    .ok_or_else(|| {
                                        LineError::new(
                                            Reason::MissingHeader,
                                            format!(
                                                "mapping column `{}` is not in the CSV header ({})",
                                                f.column,
                                                crate::util::excerpt(
                                                    &rec.iter().collect::<Vec<_>>().join(", "),
                                                    200
                                                )
                                            ),
                                        )
                                    })?;
                            idx.push(i);
                        }
                        self.index = Some(idx);
                        self.header_fields = Some(rec.len());
                        return Ok(Parsed::Skip);
                    }
                };
                self.start_event(ev);
                for (rule, &i) in self.m.fields.iter().zip(index) {
                    let v = rec.get(i).ok_or_else(|| {
                        LineError::new(
                            Reason::FieldCount,
                            format!(
                                "{} fields; column `{}` is number {}",
                                rec.len(),
                                rule.column,
                                i + 1
                            ),
                        )
                    })?;
                    self.set(ev, rule, v)?;
                }
                // every mapped column is there, but a row that does not
                // have the header's fields may have its values shifted
                // (an unquoted delimiter inside a value)
                if let Some(n) = self.header_fields.filter(|&n| n != rec.len()) {
                    self.warning = Some(LineError::new(
                        Reason::FieldCount,
                        format!("{} fields where the header has {n}", rec.len()),
                    ));
                }
            }
            MappingSource::Jsonl => {
                let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                    LineError::new(Reason::BadJson, format!("not a JSON object: {e}"))
                })?;
                if !v.is_object() {
                    return Err(LineError::new(
                        Reason::BadJson,
                        "a JSON value that is not an object".into(),
                    ));
                }
                self.start_event(ev);
                for rule in &self.m.fields {
                    let text = match json_lookup(&v, &rule.column) {
                        None | Some(serde_json::Value::Null) => continue,
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                    };
                    self.set(ev, rule, &text)?;
                }
            }
        }
        Ok(Parsed::Event)
    }
}
