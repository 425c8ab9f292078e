//! Summary statistics of a numeric column, kept in model files for drift checks
//! and used by alerts for "typical value" comparisons.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    pub name: String,
    pub count: usize,
    pub missing: usize,
    // A column with no values has NaN statistics; JSON writes NaN as null, so
    // null must read back as NaN (else such a model file could not be loaded).
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub std: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub min: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub max: f64,
    /// Quantiles at 1, 5, 25, 50, 75, 95, 99 %.
    #[serde(deserialize_with = "vec_f64_or_nan")]
    pub quantiles: Vec<f64>,
}

/// Deserialize a number, reading `null` (how JSON writes NaN) as NaN.
pub fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// As [`f64_or_nan`], for a list.
pub fn vec_f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|x| x.unwrap_or(f64::NAN))
        .collect())
}

pub const STAT_QUANTILES: [f64; 7] = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99];

impl ColumnStats {
    /// Statistics over the non-NaN values.
    pub fn compute(name: &str, values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = Vec::new();
        let mut missing = 0;
        for x in values {
            if x.is_nan() {
                missing += 1;
            } else {
                v.push(x);
            }
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let mean = if n > 0 {
            v.iter().sum::<f64>() / n as f64
        } else {
            f64::NAN
        };
        let var = if n > 1 {
            v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        ColumnStats {
            name: name.to_string(),
            count: n,
            missing,
            mean,
            std: var.sqrt(),
            min: v.first().copied().unwrap_or(f64::NAN),
            max: v.last().copied().unwrap_or(f64::NAN),
            quantiles: STAT_QUANTILES
                .iter()
                .map(|&q| quantile_sorted(&v, q))
                .collect(),
        }
    }

    pub fn median(&self) -> f64 {
        self.quantiles.get(3).copied().unwrap_or(f64::NAN)
    }
}

/// Linear-interpolated quantile of sorted data; NaN when empty.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] * (1.0 - frac) + sorted[hi] * frac
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn all_missing_column_round_trips_through_json() {
        let s = ColumnStats::compute("x", [f64::NAN, f64::NAN]);
        let text = serde_json::to_string(&s).unwrap();
        let back: ColumnStats = serde_json::from_str(&text).unwrap();
        assert_eq!(back.missing, 2);
        assert!(back.mean.is_nan() && back.min.is_nan() && back.median().is_nan());
    }

    #[test]
    fn stats_skip_nan() {
        let s = ColumnStats::compute("x", [1.0, 2.0, f64::NAN, 3.0]);
        assert_eq!(s.count, 3);
        assert_eq!(s.missing, 1);
        assert_eq!(s.mean, 2.0);
        assert_eq!(s.median(), 2.0);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 3.0);
    }
}
