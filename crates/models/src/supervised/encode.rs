//! Categorical (text) feature columns for the tree models: frequency-rank codes.
//!
//! Each text `Feature` column is replaced by a number: the rank of its value
//! among the training values, most frequent first (0 = most common). Trees
//! split on "code ≤ k", i.e. "one of the k+1 most common values", which is
//! what matters for protocol/service/flag-like columns, and a single column
//! keeps the tree ensembles' feature sampling fair (one-hot would give a
//! 70-level column 70 chances per node). Ties in frequency are broken by
//! the text, so codes are deterministic.
//!
//! - A missing value (empty / absent) becomes NaN and takes the trees'
//!   learned missing-value direction.
//! - At most [`MAX_LEVELS`] values keep their own code; rarer values and
//!   values never seen in training share the next code ("rare/unseen"),
//!   which sorts them with the rarest training values — an unseen service is
//!   treated as a rare one, never as an error.
//! - The levels are stored in the model (`params.categories`) and applied
//!   again at scoring; the column stays a model input under its own name.

use palisade_core::{ColumnData, ColumnRole, FeatureType, Table};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Values past this many distinct ones share the "rare/unseen" code.
pub const MAX_LEVELS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryColumn {
    pub name: String,
    /// Code i is `levels[i]`; every other non-missing value has code `levels.len()`.
    pub levels: Vec<String>,
    /// Distinct training values folded into the rare code because of [`MAX_LEVELS`].
    #[serde(default)]
    pub folded: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CategoryCodes {
    pub columns: Vec<CategoryColumn>,
}

impl CategoryColumn {
    fn code(&self, index: &HashMap<&str, usize>, v: Option<&str>) -> f64 {
        match v.map(str::trim) {
            None | Some("") => f64::NAN,
            Some(s) => index.get(s).copied().unwrap_or(self.levels.len()) as f64,
        }
    }
}

impl CategoryCodes {
    /// Learn codes for every text `Feature` column of `table` other than `label_col`.
    pub fn fit(table: &Table, label_col: Option<&str>) -> CategoryCodes {
        let mut columns = Vec::new();
        for c in &table.columns {
            if c.role != ColumnRole::Feature || Some(c.name.as_str()) == label_col {
                continue;
            }
            let ColumnData::Str(v) = &c.data else {
                continue;
            };
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for s in v.iter().flatten() {
                let s = s.trim();
                if !s.is_empty() {
                    *counts.entry(s).or_default() += 1;
                }
            }
            let mut levels: Vec<(&str, usize)> = counts.into_iter().collect();
            levels.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let folded = levels.len().saturating_sub(MAX_LEVELS);
            levels.truncate(MAX_LEVELS);
            columns.push(CategoryColumn {
                name: c.name.clone(),
                levels: levels.into_iter().map(|(s, _)| s.to_string()).collect(),
                folded,
            });
        }
        CategoryCodes { columns }
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// A copy of `table` with each coded column replaced by its codes (a
    /// numeric feature). A coded column that is numeric in `table` is an
    /// error naming it; one that is absent is left for the schema check.
    pub fn apply(&self, table: &Table) -> Result<Table, String> {
        let mut out = table.clone();
        for cc in &self.columns {
            let Some(col) = out.column_mut(&cc.name) else {
                continue;
            };
            let codes = match &col.data {
                ColumnData::Str(v) => {
                    let index: HashMap<&str, usize> = cc
                        .levels
                        .iter()
                        .enumerate()
                        .map(|(i, s)| (s.as_str(), i))
                        .collect();
                    v.iter().map(|s| cc.code(&index, s)).collect()
                }
                ColumnData::F64(_) => {
                    return Err(format!(
                        "column `{}` is categorical (text) in the model, but numeric in this table",
                        cc.name
                    ))
                }
            };
            col.data = ColumnData::F64(codes);
        }
        if let Some(schema) = out.schema.as_mut() {
            for f in &mut schema.features {
                if self.columns.iter().any(|c| c.name == f.name)
                    && f.dtype == FeatureType::Categorical
                {
                    f.dtype = FeatureType::Int;
                }
            }
        }
        Ok(out)
    }

    /// One line per column for the model file's notes.
    pub fn notes(&self) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| {
                format!(
                    "categorical `{}`: {} levels coded by frequency rank, rare/unseen = {}{}, missing = NaN",
                    c.name,
                    c.levels.len(),
                    c.levels.len(),
                    if c.folded > 0 { format!(" ({} rarest training values folded in)", c.folded) } else { String::new() }
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[Option<&str>]) -> ColumnData {
        ColumnData::Str(v.iter().map(|x| x.map(|s| s.to_string())).collect())
    }

    #[test]
    fn codes_by_frequency_unseen_is_rare_missing_is_nan() {
        let mut t = Table::new();
        t.push(
            "proto",
            ColumnRole::Feature,
            s(&[Some("udp"), Some("tcp"), Some("tcp"), None, Some("icmp")]),
        )
        .unwrap();
        t.push("host", ColumnRole::Identity, s(&[Some("a"); 5]))
            .unwrap();
        t.push("label", ColumnRole::Feature, s(&[Some("1"); 5]))
            .unwrap();
        let c = CategoryCodes::fit(&t, Some("label"));
        assert_eq!(
            c.columns.len(),
            1,
            "identity and label columns are not coded"
        );
        assert_eq!(c.columns[0].levels, vec!["tcp", "icmp", "udp"]);
        let mut t2 = Table::new();
        t2.push(
            "proto",
            ColumnRole::Feature,
            s(&[Some("tcp"), Some("gre"), None, Some(" udp ")]),
        )
        .unwrap();
        let e = c.apply(&t2).unwrap();
        let ColumnData::F64(v) = &e.column("proto").unwrap().data else {
            panic!("not numeric")
        };
        assert_eq!(v[0], 0.0);
        assert_eq!(v[1], 3.0, "unseen value takes the rare code");
        assert!(v[2].is_nan());
        assert_eq!(v[3], 2.0);
        let mut t3 = Table::new();
        t3.push("proto", ColumnRole::Feature, ColumnData::F64(vec![1.0]))
            .unwrap();
        assert!(c.apply(&t3).unwrap_err().contains("proto"));
    }
}
