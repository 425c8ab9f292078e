//! Ensemble of unsupervised detectors on a common scale.
//!
//! Members (`members` option, default `iforest,pca`; `autoencoder` may be
//! added) are trained on the same rows with their own defaults and options.
//! Their scores live on different scales (iForest in (0, 1], PCA a
//! chi-square-like distance, the autoencoder a squared error), so each member's
//! score is mapped through a transform fitted on its *training* scores and the
//! ensemble score is the plain mean of the mapped scores:
//!
//! - `combine=rank` (default): the member's empirical CDF on the training rows
//!   (stored as 1001 quantiles, linear in between), so a mapped score is "the
//!   fraction of training rows scoring lower". Above the training maximum the
//!   map keeps rising slowly (+10⁻³ per training range), so the most extreme
//!   rows stay ordered instead of tying at 1. Robust to every member's scale
//!   and tails; an average percentile is easy to explain.
//! - `combine=zscore`: (s − mean)/std of the member's training scores. Keeps
//!   the size of extreme deviations, but a heavy-tailed member dominates.
//!
//! Explanation: each member's top contributions, normalised to sum to 1 per
//! member, averaged over members.

use crate::options::OptionReader;
use crate::registry::TrainData;
use crate::{check_inputs, check_row, top_k, Contribution, Detector, ModelError, Result};
use palisade_core::Matrix;
use serde::{Deserialize, Serialize};

const KIND: &str = "ensemble";
const N_QUANTILES: usize = 1001;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    Rank,
    Zscore,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberParams {
    pub kind: String,
    pub params: serde_json::Value,
    /// Quantiles of the training scores at 0, 0.001, …, 1 (rank) .
    pub quantiles: Vec<f64>,
    pub mean: f64,
    pub std: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleParams {
    pub combine: Combine,
    pub members: Vec<MemberParams>,
    #[serde(default)]
    pub notes: Vec<String>,
}

pub struct Ensemble {
    p: EnsembleParams,
    members: Vec<Box<dyn Detector>>,
    n_inputs: usize,
}

/// Options: `members` (iforest,pca), `combine` (rank|zscore), plus the members' own options.
pub fn fit(data: &TrainData, r: &OptionReader) -> Result<Box<dyn Detector>> {
    let members = r.string("members", "iforest,pca")?;
    let combine = match r.string("combine", "rank")?.as_str() {
        "rank" => Combine::Rank,
        "zscore" => Combine::Zscore,
        other => {
            return Err(ModelError::BadOption {
                name: "combine".into(),
                msg: format!("`{other}` is not rank or zscore"),
            })
        }
    };
    let mut dets: Vec<Box<dyn Detector>> = Vec::new();
    let mut params = Vec::new();
    let mut notes = Vec::new();
    for kind in members.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let det = match kind {
            "iforest" => crate::iforest::fit(data, r)?,
            "pca" => crate::pca::fit(data, r)?,
            "autoencoder" => crate::autoencoder::fit(data, r)?,
            other => {
                return Err(ModelError::BadOption {
                    name: "members".into(),
                    msg: format!(
                        "`{other}` cannot be an ensemble member (use iforest, pca, autoencoder)"
                    ),
                })
            }
        };
        let s = det.score(&data.x)?;
        params.push(member_params(kind, det.to_params()?, &s));
        for n in det.notes() {
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
        dets.push(det);
    }
    if dets.is_empty() {
        return Err(ModelError::BadOption {
            name: "members".into(),
            msg: "no members given".into(),
        });
    }
    let n_inputs = data.x.cols;
    Ok(Box::new(Ensemble {
        p: EnsembleParams {
            combine,
            members: params,
            notes,
        },
        members: dets,
        n_inputs,
    }))
}

fn member_params(kind: &str, params: serde_json::Value, scores: &[f64]) -> MemberParams {
    let mut s: Vec<f64> = scores.iter().copied().filter(|v| v.is_finite()).collect();
    s.sort_by(|a, b| a.total_cmp(b));
    let quantiles = (0..N_QUANTILES)
        .map(|i| palisade_core::stats::quantile_sorted(&s, i as f64 / (N_QUANTILES - 1) as f64))
        .collect();
    let n = s.len().max(1) as f64;
    let mean = s.iter().sum::<f64>() / n;
    let std = (s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    MemberParams {
        kind: kind.to_string(),
        params,
        quantiles,
        mean,
        std,
    }
}

pub fn load(p: &serde_json::Value) -> Result<Box<dyn Detector>> {
    let params: EnsembleParams = crate::from_json(KIND, p)?;
    let mut members = Vec::new();
    for m in &params.members {
        if m.quantiles.len() != N_QUANTILES || m.quantiles.iter().any(|q| !q.is_finite()) {
            return Err(ModelError::BadParams {
                kind: KIND.into(),
                msg: format!("member `{}` quantiles", m.kind),
            });
        }
        members.push(match m.kind.as_str() {
            "iforest" => crate::iforest::load(&m.params)?,
            "pca" => crate::pca::load(&m.params)?,
            "autoencoder" => crate::autoencoder::load(&m.params)?,
            other => {
                return Err(ModelError::BadParams {
                    kind: KIND.into(),
                    msg: format!("unknown member `{other}`"),
                })
            }
        });
    }
    let n_inputs = members.first().map(|m| m.n_inputs()).unwrap_or(0);
    if n_inputs == 0 || members.iter().any(|m| m.n_inputs() != n_inputs) {
        return Err(ModelError::BadParams {
            kind: KIND.into(),
            msg: "members disagree on the inputs".into(),
        });
    }
    Ok(Box::new(Ensemble {
        p: params,
        members,
        n_inputs,
    }))
}

/// Empirical CDF from stored quantiles, with a slowly rising tail.
pub fn rank_of(q: &[f64], s: f64) -> f64 {
    let (lo, hi) = (q[0], q[q.len() - 1]);
    let range = (hi - lo).max(f64::MIN_POSITIVE);
    if s.is_nan() {
        return 0.5;
    }
    if s >= hi {
        return 1.0 + 1e-3 * (s - hi) / range;
    }
    if s < lo {
        return -1e-3 * (lo - s) / range;
    }
    // last quantile ≤ s
    let i = q.partition_point(|&v| v <= s).saturating_sub(1);
    let step = 1.0 / (q.len() - 1) as f64;
    // Ties (flat stretches of the CDF) take their upper end: "fraction of
    // training rows scoring ≤ s".
    let (a, b) = (q[i], q[(i + 1).min(q.len() - 1)]);
    let frac = if b > a { (s - a) / (b - a) } else { 1.0 };
    (i as f64 + frac) * step
}

impl Ensemble {
    fn map(&self, m: &MemberParams, s: f64) -> f64 {
        match self.p.combine {
            Combine::Rank => rank_of(&m.quantiles, s),
            Combine::Zscore => (s - m.mean) / m.std.max(1e-12),
        }
    }
}

impl Detector for Ensemble {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    fn score(&self, x: &Matrix) -> Result<Vec<f64>> {
        check_inputs(KIND, self.n_inputs, x)?;
        let mut out = vec![0.0; x.rows];
        for (det, m) in self.members.iter().zip(&self.p.members) {
            let s = det.score(x)?;
            out.iter_mut()
                .zip(&s)
                .for_each(|(o, &v)| *o += self.map(m, v));
        }
        let k = self.members.len() as f64;
        out.iter_mut().for_each(|o| *o /= k);
        Ok(out)
    }

    fn explain(&self, x: &Matrix, row: usize, k: usize) -> Result<Vec<Contribution>> {
        check_inputs(KIND, self.n_inputs, x)?;
        check_row(x, row)?;
        let mut acc: Vec<Contribution> = Vec::new();
        for det in &self.members {
            let c = det.explain(x, row, usize::MAX)?;
            let total: f64 = c.iter().map(|c| c.contribution.max(0.0)).sum();
            for ci in c {
                let share = if total > 0.0 {
                    ci.contribution.max(0.0) / total
                } else {
                    0.0
                };
                match acc.iter_mut().find(|a| a.feature == ci.feature) {
                    Some(a) => a.contribution += share,
                    None => acc.push(Contribution {
                        contribution: share,
                        ..ci
                    }),
                }
            }
        }
        let m = self.members.len() as f64;
        acc.iter_mut().for_each(|a| a.contribution /= m);
        Ok(top_k(acc, k))
    }

    fn to_params(&self) -> Result<serde_json::Value> {
        crate::to_json(KIND, &self.p)
    }

    fn notes(&self) -> Vec<String> {
        self.p.notes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_is_monotone_and_keeps_the_tail_ordered() {
        let q: Vec<f64> = (0..N_QUANTILES).map(|i| (i as f64).sqrt()).collect();
        let pts = [-5.0, 0.0, 0.5, 3.0, 10.0, 31.0, 31.7, 40.0, 100.0];
        let r: Vec<f64> = pts.iter().map(|&s| rank_of(&q, s)).collect();
        assert!(r.windows(2).all(|w| w[0] < w[1]), "{r:?}");
        assert!((rank_of(&q, 10.0) - 0.1).abs() < 1e-9);
        assert!(r[7] > 1.0 && r[7] < 1.01);
    }
}
