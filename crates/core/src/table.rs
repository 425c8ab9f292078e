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
    /// Text; `None` is missing.
    Str(Vec<Option<String>>),
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
            ColumnData::Str(v) => out.push_str(v[i].as_deref().unwrap_or_default()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_follows_schema_order_and_skips_identity() {
        let mut t = Table::new();
        t.push(
            "host",
            ColumnRole::Identity,
            ColumnData::Str(vec![Some("a".into()), Some("b".into())]),
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
}
