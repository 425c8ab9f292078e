//! Feature tables: named columns with roles, and the dense matrix models read.

use crate::schema::{FeatureDef, FeatureSchema, FeatureType};
use crate::CoreError;
use serde::{Deserialize, Serialize};

/// What a column is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnRole {
    /// Groups rows and makes labels (entity key, window, IP, domain); never a model input.
    Identity,
    /// A model input.
    Feature,
    /// A label (ground truth or weak label).
    Label,
    /// Anything else carried along (provenance, scores).
    Meta,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Numbers; NaN is missing.
    F64(Vec<f64>),
    /// Text; a missing value is `None`.
    Str(TextColumn),
}

/// A column of optional texts, stored end to end in one buffer.
///
/// Why not `Vec<Option<String>>`: that is an allocation per value, and a
/// feature table has several text values per row (the request set's
/// identity columns: timestamp, two addresses, host, URL). Making,
/// dropping and copying them was most of the time a request table took
/// beyond its features (perf: `malloc`, `free` and first touches of fresh
/// pages), and 24 bytes of `String` plus the allocator's rounding per value
/// was more than the text itself.
///
/// Invariant: `ends` has one entry per row, non-decreasing once
/// `MISSING` is masked off; row i's text is
/// `text[start..end]` where `end = ends[i] & !MISSING` and `start` is the
/// previous row's end (0 for the first); a missing row has the `MISSING` bit
/// and an empty span.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TextColumn {
    text: String,
    ends: Vec<usize>,
}

impl TextColumn {
    /// The bit of an end that marks a missing row.
    const MISSING: usize = 1 << (usize::BITS - 1);

    pub fn new() -> TextColumn {
        TextColumn::default()
    }

    /// Room for `rows` rows of `bytes` bytes of text in all.
    pub fn with_capacity(rows: usize, bytes: usize) -> TextColumn {
        TextColumn {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of text of every row together.
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Row i's value (`None`: missing). Panics when i is out of range, as
    /// indexing a vector does; [`get`](Self::get) does not.
    #[inline]
    pub fn value(&self, i: usize) -> Option<&str> {
        let end = self.ends[i];
        if end & Self::MISSING != 0 {
            return None;
        }
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] & !Self::MISSING,
        };
        Some(&self.text[start..end])
    }

    /// Row i's value, or `None` when there is no row i (`Some(None)`: the
    /// row is there and its value missing), as `Vec::get`.
    pub fn get(&self, i: usize) -> Option<Option<&str>> {
        (i < self.len()).then(|| self.value(i))
    }

    /// The values in row order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| self.value(i))
    }

    /// Appends a row.
    #[inline]
    pub fn push(&mut self, v: Option<&str>) {
        match v {
            Some(t) => {
                self.text.push_str(t);
                self.ends.push(self.text.len());
            }
            None => self.push_missing(),
        }
    }

    /// Appends a missing row.
    #[inline]
    pub fn push_missing(&mut self) {
        self.ends.push(self.text.len() | Self::MISSING);
    }

    /// Appends a row that `write` writes straight into the column's text
    /// (no `String` of its own); when it returns false, the row is missing
    /// and what it wrote is dropped.
    #[inline]
    pub fn push_with(&mut self, write: impl FnOnce(&mut String) -> bool) {
        let start = self.text.len();
        if write(&mut self.text) {
            self.ends.push(self.text.len());
        } else {
            self.text.truncate(start);
            self.push_missing();
        }
    }

    /// The rows `idx`, in that order (an index may repeat).
    pub fn select(&self, idx: &[usize]) -> TextColumn {
        let mut out = TextColumn::with_capacity(idx.len(), 0);
        for &i in idx {
            out.push(self.value(i));
        }
        out
    }

    /// The rows of `range`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> TextColumn {
        let mut out = TextColumn::with_capacity(range.len(), 0);
        for i in range {
            out.push(self.value(i));
        }
        out
    }

    /// The values as owned strings.
    pub fn to_vec(&self) -> Vec<Option<String>> {
        self.iter().map(|v| v.map(str::to_string)).collect()
    }
}

impl std::fmt::Debug for TextColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<Option<S>> for TextColumn {
    fn from_iter<I: IntoIterator<Item = Option<S>>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut out = TextColumn::with_capacity(iter.size_hint().0, 0);
        for v in iter {
            out.push(v.as_ref().map(AsRef::as_ref));
        }
        out
    }
}

impl<S: AsRef<str>> From<Vec<Option<S>>> for TextColumn {
    fn from(v: Vec<Option<S>>) -> Self {
        v.into_iter().collect()
    }
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::F64(v) => v.len(),
            ColumnData::Str(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The value of row `i` as text (empty for missing).
    pub fn text(&self, i: usize) -> String {
        let mut s = String::new();
        self.push_text(i, &mut s);
        s
    }

    /// Appends [`text`](Self::text) of row `i` to `out`: writers of many
    /// cells reuse one buffer instead of a `String` per cell.
    pub fn push_text(&self, i: usize, out: &mut String) {
        match self {
            ColumnData::F64(v) => push_f64(v[i], out),
            ColumnData::Str(v) => out.push_str(v.value(i).unwrap_or_default()),
        }
    }
}

/// Shortest round-tripping text for a float; integers without a fraction.
pub fn format_f64(x: f64) -> String {
    let mut s = String::new();
    push_f64(x, &mut s);
    s
}

/// Appends [`format_f64`] of `x` to `out` (nothing for NaN).
pub fn push_f64(x: f64, out: &mut String) {
    use std::fmt::Write;
    if x.is_nan() {
        return;
    }
    // (writing to a String cannot fail)
    let _ = if x.fract() == 0.0 && x.abs() < 1e15 {
        write!(out, "{}", x as i64)
    } else {
        write!(out, "{x}")
    };
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub role: ColumnRole,
    pub data: ColumnData,
}

/// A table of rows: identity columns, features, labels, extra columns.
///
/// When `schema` is set, its features are exactly the `Feature` columns, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub schema: Option<FeatureSchema>,
}

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn nrows(&self) -> usize {
        self.columns.first().map(|c| c.data.len()).unwrap_or(0)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn column_mut(&mut self, name: &str) -> Option<&mut Column> {
        self.columns.iter_mut().find(|c| c.name == name)
    }

    /// Add (or replace) a column. All columns must have the same length.
    pub fn push(
        &mut self,
        name: &str,
        role: ColumnRole,
        data: ColumnData,
    ) -> Result<(), CoreError> {
        if !self.columns.is_empty() && data.len() != self.nrows() {
            return Err(CoreError::Shape(format!(
                "column `{name}` has {} rows, table has {}",
                data.len(),
                self.nrows()
            )));
        }
        let col = Column {
            name: name.to_string(),
            role,
            data,
        };
        if let Some(existing) = self.columns.iter_mut().find(|c| c.name == name) {
            *existing = col;
        } else {
            self.columns.push(col);
        }
        Ok(())
    }

    /// The schema of the table: the carried one, or one inferred from the
    /// `Feature` columns (numeric → float, text → categorical).
    pub fn feature_schema(&self) -> FeatureSchema {
        if let Some(s) = &self.schema {
            return s.clone();
        }
        FeatureSchema {
            set: "custom".to_string(),
            features: self
                .columns
                .iter()
                .filter(|c| c.role == ColumnRole::Feature)
                .map(|c| {
                    let dtype = match c.data {
                        ColumnData::F64(_) => FeatureType::Float,
                        ColumnData::Str(_) => FeatureType::Categorical,
                    };
                    FeatureDef::new(&c.name, dtype, "custom", &[], "")
                })
                .collect(),
            identity: self
                .columns
                .iter()
                .filter(|c| c.role == ColumnRole::Identity)
                .map(|c| c.name.clone())
                .collect(),
        }
    }

    /// The numeric feature matrix (row-major) in the order of `schema`.
    /// Categorical features are not included here; models that take them read
    /// the column directly. Errors name the missing or mistyped column.
    pub fn numeric_matrix(&self, schema: &FeatureSchema) -> Result<Matrix, CoreError> {
        let mut cols: Vec<&[f64]> = Vec::new();
        for f in &schema.features {
            if f.dtype == FeatureType::Categorical {
                continue;
            }
            let c = self.column(&f.name).ok_or_else(|| {
                CoreError::SchemaMismatch(format!("table has no column `{}`", f.name))
            })?;
            match &c.data {
                ColumnData::F64(v) => cols.push(v),
                ColumnData::Str(_) => {
                    return Err(CoreError::SchemaMismatch(format!(
                        "column `{}` is text, the schema says it is numeric",
                        f.name
                    )))
                }
            }
        }
        let n = self.nrows();
        let d = cols.len();
        let mut data = vec![0.0; n * d];
        for (j, col) in cols.iter().enumerate() {
            for (i, v) in col.iter().enumerate() {
                data[i * d + j] = *v;
            }
        }
        Ok(Matrix {
            rows: n,
            cols: d,
            data,
        })
    }
}

/// A dense row-major matrix of f64.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self, CoreError> {
        if rows * cols != data.len() {
            return Err(CoreError::Shape(format!(
                "{rows}×{cols} matrix needs {} values, got {}",
                rows * cols,
                data.len()
            )));
        }
        Ok(Matrix { rows, cols, data })
    }
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }
    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }
    /// A new matrix of the chosen rows.
    pub fn select_rows(&self, idx: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(idx.len() * self.cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Matrix {
            rows: idx.len(),
            cols: self.cols,
            data,
        }
    }
    pub fn column(&self, j: usize) -> Vec<f64> {
        (0..self.rows).map(|i| self.get(i, j)).collect()
    }
}

/// A table cell as a number, as the table readers take it: empty, `NaN`,
/// `NA` and `-` are missing (NaN), `true`/`false` are 1/0, else a float;
/// `None` for text. One definition, so that a column's type and the
/// trainer's note on a stray text cell agree on what a number is.
pub fn parse_cell_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return Some(f64::NAN);
    }
    match t {
        "NaN" | "nan" | "NA" | "-" => Some(f64::NAN),
        "true" | "True" | "TRUE" => Some(1.0),
        "false" | "False" | "FALSE" => Some(0.0),
        _ => t.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_follows_schema_order_and_skips_identity() {
        let mut t = Table::new();
        t.push(
            "host",
            ColumnRole::Identity,
            ColumnData::Str(vec![Some("a"), Some("b")].into()),
        )
        .unwrap();
        t.push("x", ColumnRole::Feature, ColumnData::F64(vec![1.0, 2.0]))
            .unwrap();
        t.push(
            "y",
            ColumnRole::Feature,
            ColumnData::F64(vec![3.0, f64::NAN]),
        )
        .unwrap();
        let s = t.feature_schema();
        assert_eq!(s.feature_names(), vec!["x", "y"]);
        assert_eq!(s.identity, vec!["host"]);
        let m = t.numeric_matrix(&s).unwrap();
        assert_eq!((m.rows, m.cols), (2, 2));
        assert_eq!(m.row(0), &[1.0, 3.0]);
        assert!(m.get(1, 1).is_nan());
        assert!(t
            .push("z", ColumnRole::Feature, ColumnData::F64(vec![1.0]))
            .is_err());
    }

    #[test]
    fn text_column_keeps_values_and_missing_rows_apart() {
        let want = [
            Some("ab"),
            None,
            Some(""),
            Some("é x"),
            None,
            None,
            Some("z"),
        ];
        let mut c = TextColumn::new();
        for (i, v) in want.iter().enumerate() {
            match i % 3 {
                0 => c.push(*v),
                1 => c.push_with(|s| match v {
                    Some(t) => {
                        s.push_str(t);
                        true
                    }
                    None => {
                        s.push_str("dropped");
                        false
                    }
                }),
                _ => match v {
                    Some(t) => c.push(Some(t)),
                    None => c.push_missing(),
                },
            }
        }
        assert_eq!(c.len(), want.len());
        assert_eq!(c.iter().collect::<Vec<_>>(), want);
        assert_eq!(c.text_len(), "abé xz".len());
        for (i, v) in want.iter().enumerate() {
            assert_eq!(c.value(i), *v);
            assert_eq!(c.get(i), Some(*v));
        }
        assert_eq!(c.get(want.len()), None);
        assert_eq!(
            c.select(&[6, 0, 1, 0]).iter().collect::<Vec<_>>(),
            [Some("z"), Some("ab"), None, Some("ab")]
        );
        assert_eq!(
            c.slice(2..4).iter().collect::<Vec<_>>(),
            [Some(""), Some("é x")]
        );
        let owned: Vec<Option<String>> = want.iter().map(|v| v.map(String::from)).collect();
        assert_eq!(c.to_vec(), owned);
        assert_eq!(TextColumn::from(owned), c);
        assert_eq!(format!("{c:?}"), format!("{want:?}"));
        // a missing row and an empty one are different values
        assert_ne!(
            TextColumn::from(vec![None::<&str>]),
            TextColumn::from(vec![Some("")])
        );
    }
}
