//! Tables as CSV, JSON lines and Parquet.

use crate::{parquet_io, AtomicFile, IoError};
use palisade_core::{ColumnData, ColumnRole, FeatureSchema, Table};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Jsonl,
    Parquet,
}

impl TableFormat {
    pub fn from_path(path: &Path) -> Option<TableFormat> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".csv") || name.ends_with(".tsv") {
            Some(TableFormat::Csv)
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
            Some(TableFormat::Jsonl)
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            Some(TableFormat::Parquet)
        } else {
            None
        }
    }

    pub fn parse(name: &str) -> Option<TableFormat> {
        match name.to_ascii_lowercase().as_str() {
            "csv" => Some(TableFormat::Csv),
            "jsonl" | "json" | "ndjson" => Some(TableFormat::Jsonl),
            "parquet" | "pq" => Some(TableFormat::Parquet),
            _ => None,
        }
    }
}

/// Column names that are identity columns when a table carries no schema
/// (a CSV made elsewhere): they group rows and make labels, never model inputs.
pub const IDENTITY_COLUMN_NAMES: &[&str] = &[
    "entity",
    "entity_kind",
    "window_start",
    "window_end",
    "@timestamp",
    "source.ip",
    "destination.ip",
    "host.name",
    "user.name",
    "url.full",
    "url.domain",
    "domain",
    "url",
    "dns.question.name",
    "tls.client.server_name",
    "user_agent.original",
    "id",
    "uid",
    "row_id",
];

/// How to read a table that carries no schema of its own.
/// The label column when none is named.
pub const DEFAULT_LABEL_COLUMN: &str = "label";

#[derive(Debug, Clone, Default)]
pub struct ReadTableOptions {
    /// The label column: given role `Label` (never a feature). `None`: a
    /// column named [`DEFAULT_LABEL_COLUMN`], if there is one.
    pub label_col: Option<String>,
    /// More columns to treat as identity (never features).
    pub identity_cols: Vec<String>,
    /// Columns to ignore as features (kept as `Meta`).
    pub exclude_cols: Vec<String>,
}

/// Read a table; the format comes from the extension.
///
/// Roles: a Parquet file written by Palisade keeps its roles and schema. Else
/// the label column is `Label`, identity names (see [`IDENTITY_COLUMN_NAMES`]
/// and `identity_cols`) are `Identity`, columns whose every non-empty value is
/// a number are `Feature`, and the rest `Meta` (text: never a feature unless a
/// model encodes it explicitly).
pub fn read_table(path: &Path, opts: &ReadTableOptions) -> Result<Table, IoError> {
    let format = TableFormat::from_path(path).ok_or_else(|| IoError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let mut table = match format {
        TableFormat::Csv => read_csv(path)?,
        TableFormat::Jsonl => read_jsonl(path)?,
        TableFormat::Parquet => parquet_io::read_table(path)?,
    };
    assign_roles(&mut table, opts);
    // a mistyped --exclude would leave the column in the features unnoticed
    if let Some(e) = opts.exclude_cols.iter().find(|e| table.column(e).is_none()) {
        return Err(IoError::format(
            path,
            format!(
                "no column `{e}` to exclude (columns: {})",
                column_list(&table)
            ),
        ));
    }
    if let Some(label) = &opts.label_col {
        if table.column(label).is_none() {
            return Err(IoError::format(
                path,
                format!(
                    "no label column `{label}` (columns: {})",
                    column_list(&table)
                ),
            ));
        }
    }
    Ok(table)
}

fn column_list(t: &Table) -> String {
    t.columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn assign_roles(table: &mut Table, opts: &ReadTableOptions) {
    let identity: HashSet<&str> = IDENTITY_COLUMN_NAMES
        .iter()
        .copied()
        .chain(opts.identity_cols.iter().map(|s| s.as_str()))
        .collect();
    let has_schema = table.schema.is_some();
    // Without an explicit label column, one named `label` is the label: it
    // must never become a feature by accident (label leakage), and `eval`
    // looks for that name by default.
    let label = opts.label_col.as_deref().unwrap_or(DEFAULT_LABEL_COLUMN);
    for c in &mut table.columns {
        if c.name == label {
            c.role = ColumnRole::Label;
            continue;
        }
        if opts.exclude_cols.iter().any(|e| e == &c.name) {
            c.role = ColumnRole::Meta;
            continue;
        }
        if has_schema {
            continue; // roles came with the file
        }
        if identity.contains(c.name.as_str()) {
            c.role = ColumnRole::Identity;
        } else if c.role == ColumnRole::Feature && matches!(c.data, ColumnData::Str(_)) {
            c.role = ColumnRole::Meta;
        }
    }
    if let Some(s) = table.schema.as_mut() {
        // A label or excluded column can never stay in the schema's features.
        let roles: Vec<(String, ColumnRole)> = table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.role))
            .collect();
        s.features.retain(|f| {
            roles
                .iter()
                .any(|(n, r)| n == &f.name && *r == ColumnRole::Feature)
        });
    }
}

/// Write a table; the format comes from the extension.
pub fn write_table(path: &Path, table: &Table) -> Result<(), IoError> {
    let format = TableFormat::from_path(path).ok_or_else(|| IoError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    write_table_as(path, table, format)
}

pub fn write_table_as(path: &Path, table: &Table, format: TableFormat) -> Result<(), IoError> {
    let mut w = TableWriter::create_as(path, format)?;
    w.write(table)?;
    w.finish()?;
    Ok(())
}

/// A table written chunk by chunk, so that a long input's rows need not all
/// be in memory: CSV and JSON lines append rows, Parquet writes one row
/// group per chunk. The first chunk fixes the columns (names, kinds, roles,
/// feature schema); every later chunk must have the same names and kinds.
/// Like every write, the file appears at its path only on [`finish`](Self::finish).
pub struct TableWriter {
    path: PathBuf,
    /// `None` only for Parquet before the first chunk (its file needs the columns).
    sink: Option<TableSink>,
    /// Names and whether numeric, from the first chunk.
    columns: Vec<(String, bool)>,
    chunks: u64,
    rows: u64,
}

enum TableSink {
    Csv(csv::Writer<AtomicFile>),
    Jsonl(AtomicFile),
    Parquet(parquet_io::PqWriter),
}

impl TableWriter {
    /// A writer for `path`; the format comes from the extension.
    pub fn create(path: &Path) -> Result<TableWriter, IoError> {
        let format = TableFormat::from_path(path).ok_or_else(|| IoError::UnknownFormat {
            path: path.to_path_buf(),
        })?;
        TableWriter::create_as(path, format)
    }

    pub fn create_as(path: &Path, format: TableFormat) -> Result<TableWriter, IoError> {
        // CSV and JSON lines open now, so that an unwritable place fails
        // before any work; Parquet needs the first chunk's columns.
        let sink = match format {
            TableFormat::Csv => Some(TableSink::Csv(csv::Writer::from_writer(
                AtomicFile::create(path)?,
            ))),
            TableFormat::Jsonl => Some(TableSink::Jsonl(AtomicFile::create(path)?)),
            TableFormat::Parquet => None,
        };
        Ok(TableWriter {
            path: path.to_path_buf(),
            sink,
            columns: Vec::new(),
            chunks: 0,
            rows: 0,
        })
    }

    /// Appends the rows of `chunk`.
    pub fn write(&mut self, chunk: &Table) -> Result<(), IoError> {
        let path = self.path.clone();
        let kinds: Vec<(String, bool)> = chunk
            .columns
            .iter()
            .map(|c| (c.name.clone(), matches!(c.data, ColumnData::F64(_))))
            .collect();
        if self.chunks == 0 {
            self.start(chunk)?;
            self.columns = kinds;
        } else if kinds != self.columns {
            return Err(IoError::format(
                &path,
                format!(
                    "chunk {} has other columns than the first ({}; first: {})",
                    self.chunks + 1,
                    describe_columns(&kinds),
                    describe_columns(&self.columns)
                ),
            ));
        }
        self.chunks += 1;
        self.rows += chunk.nrows() as u64;
        let ce = |e: csv::Error| IoError::format(&path, e.to_string());
        match &mut self.sink {
            Some(TableSink::Csv(w)) => {
                // one buffer for the row's text, cut at `ends`: no String per cell
                let mut text = String::new();
                let mut ends: Vec<usize> = Vec::with_capacity(chunk.columns.len());
                for i in 0..chunk.nrows() {
                    text.clear();
                    ends.clear();
                    for c in &chunk.columns {
                        c.data.push_text(i, &mut text);
                        ends.push(text.len());
                    }
                    let cells = ends.iter().scan(0, |start, &end| {
                        let cell = &text[*start..end];
                        *start = end;
                        Some(cell)
                    });
                    w.write_record(cells).map_err(ce)?;
                }
            }
            Some(TableSink::Jsonl(f)) => write_jsonl_rows(&path, f, chunk)?,
            Some(TableSink::Parquet(w)) => {
                if chunk.nrows() > 0 || chunk.columns.is_empty() {
                    w.write_row_group(&parquet_io::pq_columns(chunk))?;
                }
            }
            None => return Err(IoError::format(&path, "the writer failed to start")),
        }
        Ok(())
    }

    /// The header (CSV) or the file with its schema (Parquet), from the first chunk.
    fn start(&mut self, first: &Table) -> Result<(), IoError> {
        match &mut self.sink {
            Some(TableSink::Csv(w)) => {
                let names: Vec<&str> = first.columns.iter().map(|c| c.name.as_str()).collect();
                w.write_record(&names)
                    .map_err(|e| IoError::format(&self.path, e.to_string()))?;
            }
            Some(TableSink::Jsonl(_) | TableSink::Parquet(_)) => {}
            None => {
                self.sink = Some(TableSink::Parquet(parquet_io::PqWriter::for_table(
                    &self.path, first,
                )?));
            }
        }
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Completes the file and moves it to its path; returns the rows written.
    /// With no chunk written, CSV and JSON lines leave an empty file and
    /// Parquet refuses (a Parquet file needs columns).
    pub fn finish(self) -> Result<u64, IoError> {
        let path = self.path;
        match self.sink {
            Some(TableSink::Csv(w)) => {
                let f = w
                    .into_inner()
                    .map_err(|e| IoError::io(&path, e.into_error()))?;
                f.commit()?;
            }
            Some(TableSink::Jsonl(f)) => f.commit()?,
            Some(TableSink::Parquet(w)) => w.commit()?,
            None => {
                return Err(IoError::format(
                    &path,
                    "no rows or columns to write: a Parquet file needs at least its columns",
                ))
            }
        }
        Ok(self.rows)
    }
}

fn describe_columns(cols: &[(String, bool)]) -> String {
    let names: Vec<&str> = cols.iter().map(|c| c.0.as_str()).collect();
    let mut s = names.join(", ");
    if s.len() > 200 {
        s.truncate(200);
        s.push('…');
    }
    format!("{} columns: {s}", cols.len())
}

fn write_jsonl_rows(path: &Path, w: &mut dyn Write, table: &Table) -> Result<(), IoError> {
    for i in 0..table.nrows() {
        let mut obj = serde_json::Map::new();
        for c in &table.columns {
            let v = match &c.data {
                ColumnData::F64(v) => {
                    let x = v[i];
                    if x.is_nan() {
                        serde_json::Value::Null
                    } else {
                        serde_json::Number::from_f64(x)
                            .map(serde_json::Value::Number)
                            .unwrap_or(serde_json::Value::Null)
                    }
                }
                ColumnData::Str(v) => v
                    .value(i)
                    .map(|s| serde_json::Value::String(s.to_string()))
                    .unwrap_or(serde_json::Value::Null),
            };
            obj.insert(c.name.clone(), v);
        }
        serde_json::to_writer(&mut *w, &obj).map_err(|e| IoError::format(path, e.to_string()))?;
        w.write_all(b"\n").map_err(|e| IoError::io(path, e))?;
    }
    Ok(())
}

fn read_csv(path: &Path) -> Result<Table, IoError> {
    let input = crate::open_input(path)?;
    let delim = if path.to_string_lossy().to_ascii_lowercase().contains(".tsv") {
        b'\t'
    } else {
        b','
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delim)
        .flexible(false)
        .from_reader(input);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| IoError::format(path, format!("cannot read the header row: {e}")))?
        .iter()
        .map(|s| s.trim().to_string())
        .collect();
    if headers.is_empty() || headers.iter().all(|h| h.is_empty()) {
        return Err(IoError::format(
            path,
            "empty header row: a table needs named columns",
        ));
    }
    // a repeated name would replace the earlier column (`Table::push`):
    // refuse it, since it most often means the file has no header row
    for (j, h) in headers.iter().enumerate() {
        if let Some(first) = headers[..j].iter().position(|x| x == h) {
            return Err(IoError::format(
                path,
                format!(
                    "columns {} and {} of the header row are both named `{h}`; a table's \
                     columns need distinct names (if the file has no header row, its first \
                     row was read as one: add a header)",
                    first + 1,
                    j + 1
                ),
            ));
        }
    }
    let mut raw: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| IoError::Line {
            path: path.to_path_buf(),
            line: e.position().map(|p| p.line()).unwrap_or(i as u64 + 2),
            message: e.to_string(),
        })?;
        for (j, v) in rec.iter().enumerate() {
            raw[j].push(v.to_string());
        }
    }
    let mut table = Table::new();
    for (name, values) in headers.iter().zip(raw) {
        let numeric: Option<Vec<f64>> = values
            .iter()
            .map(|v| palisade_core::table::parse_cell_number(v))
            .collect();
        let data = match numeric {
            Some(v) => ColumnData::F64(v),
            None => ColumnData::Str(
                values
                    .into_iter()
                    .map(|v| if v.is_empty() { None } else { Some(v) })
                    .collect(),
            ),
        };
        table
            .push(name, ColumnRole::Feature, data)
            .map_err(|e| IoError::format(path, e.to_string()))?;
    }
    Ok(table)
}

fn read_jsonl(path: &Path) -> Result<Table, IoError> {
    use std::io::BufRead;
    let input = crate::open_input(path)?;
    let mut rows: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| IoError::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| IoError::Line {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            message: format!("not JSON: {e}"),
        })?;
        let serde_json::Value::Object(obj) = v else {
            return Err(IoError::Line {
                path: path.to_path_buf(),
                line: i as u64 + 1,
                message: "not a JSON object".into(),
            });
        };
        for k in obj.keys() {
            if seen.insert(k.clone()) {
                names.push(k.clone());
            }
        }
        rows.push(obj);
    }
    let mut table = Table::new();
    for name in &names {
        let all_numeric = rows.iter().all(|r| {
            matches!(
                r.get(name),
                None | Some(serde_json::Value::Null)
                    | Some(serde_json::Value::Number(_))
                    | Some(serde_json::Value::Bool(_))
            )
        });
        let data = if all_numeric {
            ColumnData::F64(
                rows.iter()
                    .map(|r| match r.get(name) {
                        Some(serde_json::Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
                        Some(serde_json::Value::Bool(b)) => f64::from(u8::from(*b)),
                        _ => f64::NAN,
                    })
                    .collect(),
            )
        } else {
            ColumnData::Str(
                rows.iter()
                    .map(|r| match r.get(name) {
                        None | Some(serde_json::Value::Null) => None,
                        Some(serde_json::Value::String(s)) => Some(s.clone()),
                        Some(other) => Some(other.to_string()),
                    })
                    .collect(),
            )
        };
        table
            .push(name, ColumnRole::Feature, data)
            .map_err(|e| IoError::format(path, e.to_string()))?;
    }
    Ok(table)
}

/// Serialise roles for Parquet metadata.
pub(crate) fn roles_json(table: &Table) -> String {
    let roles: Vec<(String, ColumnRole)> = table
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.role))
        .collect();
    serde_json::to_string(&roles).unwrap_or_default()
}

pub(crate) fn schema_json(table: &Table) -> Option<String> {
    table
        .schema
        .as_ref()
        .and_then(|s: &FeatureSchema| serde_json::to_string(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_core::{FeatureDef, FeatureType};

    fn sample() -> Table {
        let mut t = Table::new();
        t.push(
            "entity",
            ColumnRole::Identity,
            ColumnData::Str(vec![Some("h1"), None, Some("h,3")].into()),
        )
        .unwrap();
        t.push(
            "x",
            ColumnRole::Feature,
            ColumnData::F64(vec![1.5, f64::NAN, -3.0]),
        )
        .unwrap();
        t.push(
            "label",
            ColumnRole::Label,
            ColumnData::F64(vec![0.0, 1.0, 0.0]),
        )
        .unwrap();
        t.schema = Some(FeatureSchema {
            set: "t".into(),
            features: vec![FeatureDef::new("x", FeatureType::Float, "t", &[], "an x")],
            identity: vec!["entity".into()],
        });
        t
    }

    /// Rows `range` of `t` as a table of their own.
    fn rows_of(t: &Table, range: std::ops::Range<usize>) -> Table {
        let mut out = Table::new();
        for c in &t.columns {
            let data = match &c.data {
                ColumnData::F64(v) => ColumnData::F64(v[range.clone()].to_vec()),
                ColumnData::Str(v) => ColumnData::Str(v.slice(range.clone())),
            };
            out.push(&c.name, c.role, data).unwrap();
        }
        out.schema = t.schema.clone();
        out
    }

    #[test]
    fn a_table_written_in_chunks_is_the_table_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let t = sample();
        for ext in ["csv", "jsonl", "parquet"] {
            let whole = dir.path().join(format!("whole.{ext}"));
            let parts = dir.path().join(format!("parts.{ext}"));
            write_table(&whole, &t).unwrap();
            let mut w = TableWriter::create(&parts).unwrap();
            // an empty chunk between: it adds nothing (no empty row group)
            for r in [0..1, 1..1, 1..3] {
                w.write(&rows_of(&t, r)).unwrap();
            }
            assert_eq!(w.rows(), 3);
            assert!(!parts.exists(), "{ext}: visible before finish");
            assert_eq!(w.finish().unwrap(), 3);
            let (a, b) = (
                read_table(&whole, &ReadTableOptions::default()).unwrap(),
                read_table(&parts, &ReadTableOptions::default()).unwrap(),
            );
            assert_eq!(a.schema, b.schema, "{ext}");
            assert_eq!(a.nrows(), 3, "{ext}");
            for (x, y) in a.columns.iter().zip(&b.columns) {
                assert_eq!((&x.name, x.role), (&y.name, y.role), "{ext}");
                for i in 0..a.nrows() {
                    assert_eq!(x.data.text(i), y.data.text(i), "{ext} row {i}");
                }
            }
            if ext != "parquet" {
                let (a, b) = (
                    std::fs::read(&whole).unwrap(),
                    std::fs::read(&parts).unwrap(),
                );
                assert_eq!(a, b, "{ext}: the same bytes");
            }
        }
    }

    #[test]
    fn a_chunk_with_other_columns_is_refused_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["csv", "jsonl", "parquet"] {
            let p = dir.path().join(format!("t.{ext}"));
            let mut w = TableWriter::create(&p).unwrap();
            w.write(&sample()).unwrap();
            let mut other = sample();
            other.columns.swap(1, 2);
            let e = w.write(&other).unwrap_err().to_string();
            assert!(e.contains("chunk 2 has other columns"), "{e}");
            assert!(e.contains(&p.display().to_string()), "{e}");
            drop(w);
            assert!(!p.exists(), "{ext}");
            let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert!(leftovers.is_empty(), "{ext}: {leftovers:?}");
        }
        // Parquet needs columns: finishing with no chunk is an error, CSV is empty
        let p = dir.path().join("none.parquet");
        assert!(TableWriter::create(&p).unwrap().finish().is_err());
        assert!(!p.exists());
        let p = dir.path().join("none.csv");
        assert_eq!(TableWriter::create(&p).unwrap().finish().unwrap(), 0);
        assert_eq!(std::fs::read(&p).unwrap(), b"");
    }

    #[test]
    fn parquet_round_trip_keeps_roles_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        let t = sample();
        write_table(&p, &t).unwrap();
        let back = read_table(&p, &ReadTableOptions::default()).unwrap();
        assert_eq!(back.schema, t.schema);
        assert_eq!(back.columns.len(), 3);
        for (a, b) in t.columns.iter().zip(&back.columns) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.role, b.role);
            for i in 0..t.nrows() {
                assert_eq!(a.data.text(i), b.data.text(i));
            }
        }
    }

    #[test]
    fn csv_and_jsonl_round_trip_values_and_infer_roles() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["csv", "jsonl"] {
            let p = dir.path().join(format!("t.{ext}"));
            write_table(&p, &sample()).unwrap();
            let back = read_table(
                &p,
                &ReadTableOptions {
                    label_col: Some("label".into()),
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(back.nrows(), 3);
            assert_eq!(back.column("entity").unwrap().role, ColumnRole::Identity);
            assert_eq!(back.column("x").unwrap().role, ColumnRole::Feature);
            assert_eq!(back.column("label").unwrap().role, ColumnRole::Label);
            assert_eq!(back.column("entity").unwrap().data.text(2), "h,3");
            assert!(back.column("x").unwrap().data.text(1).is_empty());
        }
    }

    #[test]
    fn bad_tables_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.csv");
        std::fs::write(&p, "a,b\n1,2\n3\n").unwrap();
        let err = read_table(&p, &ReadTableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.csv") && err.contains("line 3"), "{err}");
        let p2 = dir.path().join("t.xyz");
        std::fs::write(&p2, "x").unwrap();
        assert!(read_table(&p2, &ReadTableOptions::default()).is_err());
        let p3 = dir.path().join("ok.csv");
        std::fs::write(&p3, "a,b\n1,2\n").unwrap();
        let err = read_table(
            &p3,
            &ReadTableOptions {
                label_col: Some("label".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("label"), "{err}");
        let p4 = dir.path().join("bad.parquet");
        std::fs::write(&p4, "not parquet at all").unwrap();
        assert!(read_table(&p4, &ReadTableOptions::default())
            .unwrap_err()
            .to_string()
            .contains("bad.parquet"));
        // an --exclude naming no column is an error, as --log1p's is
        let err = read_table(
            &p3,
            &ReadTableOptions {
                exclude_cols: vec!["c".into()],
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no column `c` to exclude"), "{err}");
        // a repeated column name (a file without a header row, say) once
        // dropped the earlier column without a word
        let p5 = dir.path().join("dup.csv");
        std::fs::write(&p5, "0,tcp,0,1\n5,udp,0,2\n").unwrap();
        let err = read_table(&p5, &ReadTableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dup.csv") && err.contains("columns 1 and 3") && err.contains("`0`"),
            "{err}"
        );
    }
}
