//! Event files: JSON lines (sparse, ECS names), CSV and Parquet (a column per field).

use crate::parquet_io::{PqColumn, PqWriter};
use crate::{AtomicFile, IoError};
use palisade_core::{ColumnData, Event, FieldType, EVENT_FIELDS};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFormat {
    Jsonl,
    Csv,
    Parquet,
}

impl EventFormat {
    pub fn from_path(path: &Path) -> Option<EventFormat> {
        match crate::TableFormat::from_path(path)? {
            crate::TableFormat::Csv => Some(EventFormat::Csv),
            crate::TableFormat::Jsonl => Some(EventFormat::Jsonl),
            crate::TableFormat::Parquet => Some(EventFormat::Parquet),
        }
    }
    pub fn parse(name: &str) -> Option<EventFormat> {
        match name.to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Some(EventFormat::Jsonl),
            "csv" => Some(EventFormat::Csv),
            "parquet" | "pq" => Some(EventFormat::Parquet),
            _ => None,
        }
    }
}

/// Rows per Parquet row group: bounds the writer's memory whatever the input size.
const ROW_GROUP: usize = 65_536;

enum Sink {
    Jsonl(AtomicFile),
    Csv(Box<csv::Writer<AtomicFileWrite>>),
    Parquet {
        writer: Box<PqWriter>,
        buffer: Vec<Event>,
    },
}

/// `csv::Writer` needs an owned `Write`; this wraps the atomic file.
struct AtomicFileWrite(AtomicFile);
impl Write for AtomicFileWrite {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.writer().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.writer().flush()
    }
}

/// Streams events to a file; the file appears (atomically) on [`EventWriter::finish`].
pub struct EventWriter {
    path: PathBuf,
    sink: Sink,
    count: u64,
}

impl EventWriter {
    pub fn create(path: &Path, format: EventFormat) -> Result<Self, IoError> {
        let sink = match format {
            EventFormat::Jsonl => Sink::Jsonl(AtomicFile::create(path)?),
            EventFormat::Csv => {
                let mut w = csv::Writer::from_writer(AtomicFileWrite(AtomicFile::create(path)?));
                w.write_record(EVENT_FIELDS.iter().map(|(n, _)| *n))
                    .map_err(|e| IoError::format(path, e.to_string()))?;
                Sink::Csv(Box::new(w))
            }
            EventFormat::Parquet => {
                let cols: Vec<(String, PqColumn)> = EVENT_FIELDS
                    .iter()
                    .map(|(n, t)| (n.to_string(), empty_column(*t)))
                    .collect();
                let meta = vec![("palisade.kind".to_string(), "events".to_string())];
                Sink::Parquet {
                    writer: Box::new(PqWriter::create(path, &cols, meta)?),
                    buffer: Vec::new(),
                }
            }
        };
        Ok(EventWriter {
            path: path.to_path_buf(),
            sink,
            count: 0,
        })
    }

    pub fn write(&mut self, event: &Event) -> Result<(), IoError> {
        self.count += 1;
        match &mut self.sink {
            Sink::Jsonl(f) => {
                let w = f.writer();
                serde_json::to_writer(&mut *w, event)
                    .map_err(|e| IoError::format(&self.path, e.to_string()))?;
                w.write_all(b"\n").map_err(|e| IoError::io(&self.path, e))
            }
            Sink::Csv(w) => {
                let row = EVENT_FIELDS
                    .iter()
                    .map(|(n, _)| event.get(n).map(|v| v.to_text()).unwrap_or_default());
                w.write_record(row)
                    .map_err(|e| IoError::format(&self.path, e.to_string()))
            }
            Sink::Parquet { writer, buffer } => {
                buffer.push(event.clone());
                if buffer.len() >= ROW_GROUP {
                    writer.write_row_group(&event_columns(buffer))?;
                    buffer.clear();
                }
                Ok(())
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn finish(self) -> Result<(), IoError> {
        match self.sink {
            Sink::Jsonl(f) => f.commit(),
            Sink::Csv(w) => {
                let inner = w
                    .into_inner()
                    .map_err(|e| IoError::format(&self.path, e.to_string()))?;
                inner.0.commit()
            }
            Sink::Parquet { mut writer, buffer } => {
                if !buffer.is_empty() || self.count == 0 {
                    writer.write_row_group(&event_columns(&buffer))?;
                }
                writer.commit()
            }
        }
    }
}

fn empty_column(t: FieldType) -> PqColumn<'static> {
    match t {
        FieldType::Int | FieldType::Timestamp => PqColumn::I64(Vec::new()),
        FieldType::Str | FieldType::Ip => PqColumn::Str(Default::default()),
    }
}

fn event_columns(events: &[Event]) -> Vec<PqColumn<'static>> {
    EVENT_FIELDS
        .iter()
        .map(|(name, t)| match t {
            FieldType::Int | FieldType::Timestamp => PqColumn::I64(
                events
                    .iter()
                    .map(|e| match e.get(name) {
                        Some(palisade_core::FieldValue::Int(v)) => Some(v),
                        _ => None,
                    })
                    .collect(),
            ),
            FieldType::Str | FieldType::Ip => PqColumn::Str(std::borrow::Cow::Owned(
                events
                    .iter()
                    .map(|e| e.get(name).map(|v| v.to_text()))
                    .collect(),
            )),
        })
        .collect()
}

/// Read an event file written by [`EventWriter`] (or any JSON lines of ECS
/// events, or a CSV with ECS column names). Errors name the file and line.
pub fn read_events(path: &Path) -> Result<Vec<Event>, IoError> {
    let mut out = Vec::new();
    for_each_event(path, |e| {
        out.push(e);
        Ok(())
    })?;
    Ok(out)
}

/// As [`read_events`], one event at a time to `sink`, in file order, so a
/// large file's events need not all be in memory (JSON lines and CSV are
/// read line by line; Parquet's columns are read whole, its events made
/// one by one). The first error, the file's or the sink's, stops the read.
/// Returns the number of events.
pub fn for_each_event<F>(path: &Path, mut sink: F) -> Result<u64, IoError>
where
    F: FnMut(Event) -> Result<(), IoError>,
{
    let mut n = 0u64;
    let format = EventFormat::from_path(path).ok_or_else(|| IoError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    match format {
        EventFormat::Jsonl => {
            let input = crate::open_input(path)?;
            let empty = Event::default();
            for (i, line) in input.lines().enumerate() {
                let line = line.map_err(|e| IoError::io(path, e))?;
                if line.trim().is_empty() {
                    continue;
                }
                let ev: Event = serde_json::from_str(&line).map_err(|e| IoError::Line {
                    path: path.to_path_buf(),
                    line: i as u64 + 1,
                    message: format!("not an event: {e}"),
                })?;
                // Unknown keys are ignored (newer writers may add fields), so
                // a raw JSON log (Zeek, Windows) would otherwise decode to
                // empty events: all rows silently blank downstream.
                if ev == empty {
                    return Err(IoError::Line {
                        path: path.to_path_buf(),
                        line: i as u64 + 1,
                        message: "a JSON object with no event field (a raw log? \
                                  `palisade ingest` turns it into events)"
                            .to_string(),
                    });
                }
                sink(ev)?;
                n += 1;
            }
            Ok(n)
        }
        EventFormat::Csv => {
            let input = crate::open_input(path)?;
            let mut rdr = csv::Reader::from_reader(input);
            let headers = rdr
                .headers()
                .map_err(|e| IoError::format(path, e.to_string()))?
                .clone();
            for (i, rec) in rdr.records().enumerate() {
                let line = i as u64 + 2;
                let rec = rec.map_err(|e| IoError::Line {
                    path: path.to_path_buf(),
                    line,
                    message: e.to_string(),
                })?;
                let mut ev = Event::default();
                for (name, value) in headers.iter().zip(rec.iter()) {
                    if value.is_empty() {
                        continue;
                    }
                    ev.set_text(name, value).map_err(|e| IoError::Line {
                        path: path.to_path_buf(),
                        line,
                        message: e.to_string(),
                    })?;
                }
                sink(ev)?;
                n += 1;
            }
            Ok(n)
        }
        EventFormat::Parquet => {
            let pq = crate::parquet_io::read_columns(path)?;
            let rows = pq.columns.first().map(|c| c.len()).unwrap_or(0);
            let fields: Vec<(&String, &ColumnData)> = pq
                .names
                .iter()
                .zip(&pq.columns)
                .filter(|(name, _)| {
                    let canonical = palisade_core::canonical_field_name(name);
                    EVENT_FIELDS.iter().any(|(f, _)| *f == canonical)
                })
                .collect();
            for i in 0..rows {
                let mut ev = Event::default();
                for &(name, col) in &fields {
                    let text = match col {
                        ColumnData::F64(v) if !v[i].is_nan() => Some(format!("{}", v[i] as i64)),
                        ColumnData::Str(v) => v.value(i).map(str::to_string),
                        _ => None,
                    };
                    if let Some(t) = text {
                        ev.set_text(name, &t)
                            .map_err(|e| IoError::format(path, format!("row {i}: {e}")))?;
                    }
                }
                sink(ev)?;
                n += 1;
            }
            Ok(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<Event> {
        let a = Event {
            timestamp_us: Some(1_521_911_723_123_456),
            source_ip: Some("10.0.0.1".parse().unwrap()),
            destination_port: Some(3389),
            url_full: Some("http://x.test/a?b=1,2".into()),
            original: Some("raw \"line\"".into()),
            ..Default::default()
        };
        let b = Event {
            winlog_event_id: Some(4624),
            destination_ip: Some("::1".parse().unwrap()),
            ..Default::default()
        };
        vec![a, b]
    }

    #[test]
    fn every_format_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["jsonl", "csv", "parquet"] {
            let p = dir.path().join(format!("e.{ext}"));
            let mut w = EventWriter::create(&p, EventFormat::from_path(&p).unwrap()).unwrap();
            for e in events() {
                w.write(&e).unwrap();
            }
            w.finish().unwrap();
            assert_eq!(read_events(&p).unwrap(), events(), "{ext}");
        }
    }

    #[test]
    fn for_each_event_streams_in_order_and_stops_at_the_sinks_error() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["jsonl", "csv", "parquet"] {
            let p = dir.path().join(format!("e.{ext}"));
            let mut w = EventWriter::create(&p, EventFormat::from_path(&p).unwrap()).unwrap();
            for _ in 0..3 {
                for e in events() {
                    w.write(&e).unwrap();
                }
            }
            w.finish().unwrap();
            let mut got = Vec::new();
            assert_eq!(
                for_each_event(&p, |e| {
                    got.push(e);
                    Ok(())
                })
                .unwrap(),
                6
            );
            assert_eq!(got, [events(), events(), events()].concat(), "{ext}");
            let mut seen = 0;
            let err = for_each_event(&p, |_| {
                seen += 1;
                if seen == 2 {
                    Err(IoError::format(&p, "sink full"))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
            assert!(err.to_string().contains("sink full"), "{ext}: {err}");
            assert_eq!(seen, 2, "{ext}: read on after the error");
        }
    }

    #[test]
    fn bad_event_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e.jsonl");
        std::fs::write(&p, "{\"source.port\": 1}\n{\"source.port\": \"x\"}\n").unwrap();
        let err = read_events(&p).unwrap_err().to_string();
        assert!(err.contains("e.jsonl") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn a_raw_json_log_is_refused_not_read_as_blank_events() {
        // the first line of ../shared/data/zeek-wrccdc-2018/json/ssl.json.gz
        let zeek = r#"{"_path":"ssl","ts":"2018-03-24T17:15:20.615923Z","uid":"CmC9kY1X0u9nP78KZc","id.orig_h":"10.164.94.120","id.orig_p":39611,"id.resp_h":"10.47.3.200","id.resp_p":443,"version":"TLSv10","established":true}"#;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ssl.json");
        std::fs::write(&p, format!("{zeek}\n")).unwrap();
        let err = read_events(&p).unwrap_err().to_string();
        assert!(
            err.contains("ssl.json") && err.contains("line 1") && err.contains("raw log"),
            "{err}"
        );
    }
}
