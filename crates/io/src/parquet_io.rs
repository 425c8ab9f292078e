//! Parquet through the `parquet` crate's own column API, without Arrow.
//!
//! Why not Arrow: arrow + parquet's arrow layer cost ~14 minutes of clean build
//! on the 2-core machines Palisade is built and tested on; our tables are
//! plain columns of f64 / i64 / UTF-8 and need none of Arrow's machinery.

use crate::IoError;
use palisade_core::{ColumnData, ColumnRole, FeatureSchema, Table, TextColumn};
use parquet::basic::{Compression, ConvertedType, Repetition, Type as PhysicalType};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::types::Type;
use std::borrow::Cow;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One column of a row group, as Parquet stores it: made for the write
/// (event files) or borrowed from a table. Why borrowed: a table's row group
/// was cloned whole before it was written, a second copy of every value
/// (for `palisade features request` on a Zeek ssl log, about a quarter of
/// its peak memory).
pub(crate) enum PqColumn<'a> {
    /// Optional DOUBLE; NaN is written as null.
    F64(Cow<'a, [f64]>),
    /// Optional INT64.
    I64(Vec<Option<i64>>),
    /// Optional UTF-8 BYTE_ARRAY.
    Str(Cow<'a, TextColumn>),
}

impl PqColumn<'_> {
    fn field_type(&self, name: &str) -> Result<Type, parquet::errors::ParquetError> {
        let (phys, conv) = match self {
            PqColumn::F64(_) => (PhysicalType::DOUBLE, ConvertedType::NONE),
            PqColumn::I64(_) => (PhysicalType::INT64, ConvertedType::INT_64),
            PqColumn::Str(_) => (PhysicalType::BYTE_ARRAY, ConvertedType::UTF8),
        };
        Type::primitive_type_builder(name, phys)
            .with_repetition(Repetition::OPTIONAL)
            .with_converted_type(conv)
            .build()
    }
}

/// A Parquet file being written, row group by row group, atomically.
pub(crate) struct PqWriter {
    path: PathBuf,
    writer: SerializedFileWriter<BufWriter<tempfile::NamedTempFile>>,
}

impl PqWriter {
    /// `columns` gives the names and the kinds (the vectors may be empty).
    pub(crate) fn create(
        path: &Path,
        columns: &[(String, PqColumn<'_>)],
        metadata: Vec<(String, String)>,
    ) -> Result<Self, IoError> {
        let pe = |e: parquet::errors::ParquetError| IoError::format(path, e.to_string());
        let mut fields = Vec::with_capacity(columns.len());
        for (name, col) in columns {
            fields.push(Arc::new(col.field_type(name).map_err(pe)?));
        }
        let schema = Type::group_type_builder("palisade")
            .with_fields(fields)
            .build()
            .map_err(pe)?;
        let kv: Vec<KeyValue> = metadata
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect();
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(if kv.is_empty() { None } else { Some(kv) })
            .build();
        let tmp = crate::temp_beside(path)?;
        let writer = SerializedFileWriter::new(
            BufWriter::with_capacity(1 << 16, tmp),
            Arc::new(schema),
            Arc::new(props),
        )
        .map_err(pe)?;
        Ok(PqWriter {
            path: path.to_path_buf(),
            writer,
        })
    }

    /// A file for tables shaped like `first`: its columns' names and kinds,
    /// and its roles and feature schema in the key-value metadata.
    pub(crate) fn for_table(path: &Path, first: &Table) -> Result<Self, IoError> {
        let cols: Vec<(String, PqColumn<'_>)> = first
            .columns
            .iter()
            .map(|c| {
                let kind = match &c.data {
                    ColumnData::F64(_) => PqColumn::F64(Cow::Borrowed(&[])),
                    ColumnData::Str(_) => PqColumn::Str(Cow::Owned(TextColumn::new())),
                };
                (c.name.clone(), kind)
            })
            .collect();
        let mut meta = vec![(
            "palisade.roles".to_string(),
            crate::tables::roles_json(first),
        )];
        if let Some(s) = crate::tables::schema_json(first) {
            meta.push(("palisade.schema".to_string(), s));
        }
        PqWriter::create(path, &cols, meta)
    }

    pub(crate) fn write_row_group(&mut self, columns: &[PqColumn<'_>]) -> Result<(), IoError> {
        let path = self.path.clone();
        let pe = |e: parquet::errors::ParquetError| IoError::format(&path, e.to_string());
        let mut rg = self.writer.next_row_group().map_err(pe)?;
        for col in columns {
            let mut cw = rg
                .next_column()
                .map_err(pe)?
                .ok_or_else(|| IoError::format(&path, "more columns than the schema"))?;
            match col {
                PqColumn::F64(v) => {
                    let def: Vec<i16> = v.iter().map(|x| i16::from(!x.is_nan())).collect();
                    let vals: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
                    cw.typed::<DoubleType>()
                        .write_batch(&vals, Some(&def), None)
                        .map_err(pe)?;
                }
                PqColumn::I64(v) => {
                    let def: Vec<i16> = v.iter().map(|x| i16::from(x.is_some())).collect();
                    let vals: Vec<i64> = v.iter().flatten().copied().collect();
                    cw.typed::<Int64Type>()
                        .write_batch(&vals, Some(&def), None)
                        .map_err(pe)?;
                }
                PqColumn::Str(v) => {
                    let def: Vec<i16> = v.iter().map(|x| i16::from(x.is_some())).collect();
                    let vals: Vec<ByteArray> = v.iter().flatten().map(ByteArray::from).collect();
                    cw.typed::<ByteArrayType>()
                        .write_batch(&vals, Some(&def), None)
                        .map_err(pe)?;
                }
            }
            cw.close().map_err(pe)?;
        }
        rg.close().map_err(pe)?;
        Ok(())
    }

    pub(crate) fn commit(self) -> Result<(), IoError> {
        let path = self.path;
        let buf = self
            .writer
            .into_inner()
            .map_err(|e| IoError::format(&path, e.to_string()))?;
        let tmp = buf
            .into_inner()
            .map_err(|e| IoError::io(&path, e.into_error()))?;
        crate::persist(tmp, &path)
    }
}

/// The columns of `table` as Parquet stores them (borrowed).
pub(crate) fn pq_columns(table: &Table) -> Vec<PqColumn<'_>> {
    table
        .columns
        .iter()
        .map(|c| match &c.data {
            ColumnData::F64(v) => PqColumn::F64(Cow::Borrowed(v)),
            ColumnData::Str(v) => PqColumn::Str(Cow::Borrowed(v)),
        })
        .collect()
}

/// A Parquet file read column-wise into text/number columns, plus its metadata.
pub(crate) struct PqRead {
    pub names: Vec<String>,
    pub columns: Vec<ColumnData>,
    pub metadata: Vec<(String, String)>,
}

pub(crate) fn read_columns(path: &Path) -> Result<PqRead, IoError> {
    let file = std::fs::File::open(path).map_err(|e| IoError::io(path, e))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| IoError::format(path, format!("not a readable Parquet file: {e}")))?;
    let fmeta = reader.metadata().file_metadata();
    let metadata: Vec<(String, String)> = fmeta
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter_map(|k| k.value.clone().map(|v| (k.key.clone(), v)))
                .collect()
        })
        .unwrap_or_default();
    let descr = fmeta.schema_descr();
    let names: Vec<String> = descr
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let numeric: Vec<bool> = descr
        .columns()
        .iter()
        .map(|c| {
            matches!(
                c.physical_type(),
                PhysicalType::DOUBLE
                    | PhysicalType::FLOAT
                    | PhysicalType::INT32
                    | PhysicalType::INT64
                    | PhysicalType::BOOLEAN
            )
        })
        .collect();
    let mut columns: Vec<ColumnData> = numeric
        .iter()
        .map(|&n| {
            if n {
                ColumnData::F64(Vec::new())
            } else {
                ColumnData::Str(TextColumn::new())
            }
        })
        .collect();
    let rows = reader
        .get_row_iter(None)
        .map_err(|e| IoError::format(path, e.to_string()))?;
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|e| IoError::format(path, format!("row {i}: {e}")))?;
        for (j, (_, field)) in row.get_column_iter().enumerate() {
            let Some(col) = columns.get_mut(j) else {
                continue;
            };
            match col {
                ColumnData::F64(v) => v.push(field_f64(field)),
                ColumnData::Str(v) => v.push(field_str(field).as_deref()),
            }
        }
    }
    Ok(PqRead {
        names,
        columns,
        metadata,
    })
}

fn field_f64(f: &Field) -> f64 {
    match f {
        Field::Double(x) => *x,
        Field::Float(x) => f64::from(*x),
        Field::Long(x) => *x as f64,
        Field::Int(x) => f64::from(*x),
        Field::Short(x) => f64::from(*x),
        Field::Byte(x) => f64::from(*x),
        Field::ULong(x) => *x as f64,
        Field::UInt(x) => f64::from(*x),
        Field::Bool(b) => f64::from(u8::from(*b)),
        _ => f64::NAN,
    }
}

fn field_str(f: &Field) -> Option<String> {
    match f {
        Field::Null => None,
        Field::Str(s) => Some(s.clone()),
        Field::Bytes(b) => Some(String::from_utf8_lossy(b.data()).into_owned()),
        other => Some(other.to_string()),
    }
}

pub(crate) fn read_table(path: &Path) -> Result<Table, IoError> {
    let PqRead {
        names,
        columns,
        metadata,
    } = read_columns(path)?;
    let get = |k: &str| {
        metadata
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let roles: Vec<(String, ColumnRole)> = get("palisade.roles")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let schema: Option<FeatureSchema> = match get("palisade.schema") {
        Some(s) => Some(serde_json::from_str(s).map_err(|e| {
            IoError::format(
                path,
                format!("palisade.schema metadata does not parse: {e}"),
            )
        })?),
        None => None,
    };
    let mut table = Table::new();
    for (name, data) in names.iter().zip(columns) {
        let role = roles
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| *r)
            .unwrap_or(ColumnRole::Feature);
        table
            .push(name, role, data)
            .map_err(|e| IoError::format(path, e.to_string()))?;
    }
    table.schema = schema;
    Ok(table)
}
