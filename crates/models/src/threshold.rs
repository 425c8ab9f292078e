//! Choosing the alert threshold (rows with score ≥ threshold are alerts).

use crate::options::ThresholdRule;
use crate::{ModelError, Result};
use palisade_core::Threshold;

/// Choose the threshold by `rule`. `train_scores` are the training rows'
/// scores; `labelled` holds (score, label) pairs of labelled validation rows
/// (needed by [`ThresholdRule::TargetFpr`]).
pub fn choose(
    rule: &ThresholdRule,
    train_scores: &[f64],
    labelled: Option<(&[f64], &[bool])>,
) -> Result<Threshold> {
    match *rule {
        ThresholdRule::Fixed(v) => {
            if !v.is_finite() {
                return Err(bad(
                    "threshold",
                    format!("must be a finite number, got {v}"),
                ));
            }
            Ok(Threshold {
                value: v,
                rule: "fixed".into(),
            })
        }
        ThresholdRule::Contamination(c) => {
            if !(c > 0.0 && c < 1.0) {
                return Err(bad("contamination", format!("must be in (0, 1), got {c}")));
            }
            let mut s: Vec<f64> = train_scores
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            if s.is_empty() {
                return Err(ModelError::Data(
                    "no finite training scores to set a threshold on".into(),
                ));
            }
            s.sort_by(|a, b| b.total_cmp(a));
            // the ceil(c·n)-th highest score: at least a fraction c are alerts
            let k = ((c * s.len() as f64).ceil() as usize).clamp(1, s.len());
            Ok(Threshold {
                value: s[k - 1],
                rule: format!("contamination={c}"),
            })
        }
        ThresholdRule::TargetFpr(f) => {
            if !(0.0..1.0).contains(&f) {
                return Err(bad("target-fpr", format!("must be in [0, 1), got {f}")));
            }
            let (scores, labels) = labelled.ok_or_else(|| {
                bad(
                    "target-fpr",
                    "needs labelled rows: give a label column or a validation table".to_string(),
                )
            })?;
            let mut neg: Vec<f64> = scores
                .iter()
                .zip(labels)
                .filter(|(_, &l)| !l)
                .map(|(&s, _)| s)
                .filter(|s| s.is_finite())
                .collect();
            if neg.is_empty() {
                return Err(bad(
                    "target-fpr",
                    "the labelled rows hold no negatives (label 0)".to_string(),
                ));
            }
            neg.sort_by(|a, b| b.total_cmp(a));
            let allowed = (f * neg.len() as f64).floor() as usize;
            // Smallest value above the (allowed+1)-th highest negative, so that at
            // most `allowed` negatives score ≥ it.
            let value = if allowed >= neg.len() {
                f64::NEG_INFINITY
            } else {
                next_up(neg[allowed])
            };
            let n = neg.len();
            Ok(Threshold {
                value,
                rule: format!("fpr<={f} on {n} labelled negatives"),
            })
        }
    }
}

fn bad(name: &str, msg: String) -> ModelError {
    ModelError::BadOption {
        name: name.into(),
        msg,
    }
}

/// The next representable f64 above `x` (finite `x`).
pub fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f64::from_bits(1);
    }
    let b = x.to_bits();
    f64::from_bits(if x > 0.0 { b + 1 } else { b - 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contamination_flags_the_top_fraction() {
        let s: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let t = choose(&ThresholdRule::Contamination(0.01), &s, None).unwrap();
        assert_eq!(s.iter().filter(|&&v| v >= t.value).count(), 10);
        assert!(choose(&ThresholdRule::Contamination(1.5), &s, None).is_err());
    }

    #[test]
    fn target_fpr_holds_on_the_negatives() {
        let s: Vec<f64> = (0..1000).map(|i| (i % 500) as f64).collect();
        let l: Vec<bool> = (0..1000).map(|i| i >= 500).collect();
        let t = choose(&ThresholdRule::TargetFpr(0.01), &s, Some((&s, &l))).unwrap();
        let fp = s
            .iter()
            .zip(&l)
            .filter(|(&v, &lab)| !lab && v >= t.value)
            .count();
        assert_eq!(fp, 5);
        assert!(choose(&ThresholdRule::TargetFpr(0.01), &s, None).is_err());
    }
}
