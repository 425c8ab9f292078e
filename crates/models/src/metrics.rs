//! Ranking and threshold metrics. Labels are `true` = positive (attack,
//! anomaly). Ties in scores are handled the way scikit-learn does (ROC-AUC as
//! the Mann–Whitney statistic with mid-ranks; average precision stepping over
//! distinct score values), so figures are comparable with the references.

use serde::{Deserialize, Serialize};

/// Sort indices by score, descending (NaN scores last).
fn order_desc(scores: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (scores[a], scores[b]);
        match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => y.total_cmp(&x),
        }
    });
    idx
}

/// Groups of equal score, descending: (positives, negatives) per group.
fn tie_groups(scores: &[f64], labels: &[bool]) -> Vec<(usize, usize)> {
    let idx = order_desc(scores);
    let mut groups = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let s = scores[idx[i]];
        let (mut p, mut n) = (0, 0);
        while i < idx.len() && (scores[idx[i]] == s || (s.is_nan() && scores[idx[i]].is_nan())) {
            if labels[idx[i]] {
                p += 1
            } else {
                n += 1
            }
            i += 1;
        }
        groups.push((p, n));
    }
    groups
}

/// Area under the ROC curve; NaN if either class is absent.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let groups = tie_groups(scores, labels);
    let pos: usize = groups.iter().map(|g| g.0).sum();
    let neg: usize = groups.iter().map(|g| g.1).sum();
    if pos == 0 || neg == 0 {
        return f64::NAN;
    }
    // Walk from the highest score: each positive beats every negative below it,
    // and half of the negatives tied with it.
    let mut neg_above = 0usize;
    let mut wins = 0.0;
    for (p, n) in groups {
        wins += p as f64 * ((neg - neg_above - n) as f64 + 0.5 * n as f64);
        neg_above += n;
    }
    wins / (pos as f64 * neg as f64)
}

/// Average precision (area under the precision–recall curve as a step
/// function, scikit-learn's `average_precision_score`); NaN without positives.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let groups = tie_groups(scores, labels);
    let pos: usize = groups.iter().map(|g| g.0).sum();
    if pos == 0 {
        return f64::NAN;
    }
    // Σ p·precision, divided once at the end: a perfect ranking then sums
    // integers times 1.0 and gives exactly 1 (per-term division drifted above 1).
    let (mut tp, mut fp, mut weighted) = (0usize, 0usize, 0.0);
    for (p, n) in groups {
        tp += p;
        fp += n;
        if p > 0 {
            weighted += p as f64 * (tp as f64 / (tp + fp) as f64);
        }
    }
    weighted / pos as f64
}

/// Highest true-positive rate reachable with a false-positive rate ≤ `max_fpr`
/// (thresholds at distinct scores); NaN if either class is absent.
pub fn tpr_at_fpr(scores: &[f64], labels: &[bool], max_fpr: f64) -> f64 {
    let groups = tie_groups(scores, labels);
    let pos: usize = groups.iter().map(|g| g.0).sum();
    let neg: usize = groups.iter().map(|g| g.1).sum();
    if pos == 0 || neg == 0 {
        return f64::NAN;
    }
    let (mut tp, mut fp, mut best) = (0usize, 0usize, 0.0f64);
    for (p, n) in groups {
        tp += p;
        fp += n;
        if fp as f64 / neg as f64 <= max_fpr {
            best = best.max(tp as f64 / pos as f64);
        } else {
            break;
        }
    }
    best
}

/// Fraction of positives among the `k` highest-scored rows (ties broken by
/// row order); NaN when `k` is 0.
pub fn precision_at_k(scores: &[f64], labels: &[bool], k: usize) -> f64 {
    let k = k.min(scores.len());
    if k == 0 {
        return f64::NAN;
    }
    let idx = order_desc(scores);
    idx[..k].iter().filter(|&&i| labels[i]).count() as f64 / k as f64
}

/// Counts at a threshold: rows with score ≥ threshold are predicted positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Confusion {
    pub tp: usize,
    pub fp: usize,
    pub tn: usize,
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    pub fn at(scores: &[f64], labels: &[bool], threshold: f64) -> Self {
        let mut c = Confusion::default();
        for (&s, &l) in scores.iter().zip(labels) {
            match (s >= threshold, l) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }
    pub fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp) as f64
    }
    pub fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_) as f64
    }
    pub fn fpr(&self) -> f64 {
        self.fp as f64 / (self.fp + self.tn) as f64
    }
}

/// Everything `palisade eval` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub rows: usize,
    /// Rows without a usable label (skipped).
    pub unlabelled: usize,
    pub positives: usize,
    pub negatives: usize,
    pub roc_auc: f64,
    /// Average precision.
    pub pr_auc: f64,
    pub tpr_at_fpr_1pct: f64,
    pub tpr_at_fpr_0_1pct: f64,
    /// (k, precision) for k = 10, 100, 1000 and k = number of positives.
    pub precision_at_k: Vec<(usize, f64)>,
    /// The model's stored threshold and the counts it gives, if it has one.
    pub threshold: Option<f64>,
    pub confusion: Option<Confusion>,
}

impl EvalReport {
    /// Evaluate scores against labels (`None` = unlabelled, skipped).
    pub fn compute(scores: &[f64], labels: &[Option<bool>], threshold: Option<f64>) -> EvalReport {
        let mut s = Vec::with_capacity(scores.len());
        let mut l = Vec::with_capacity(scores.len());
        for (&sc, &lab) in scores.iter().zip(labels) {
            if let Some(b) = lab {
                s.push(sc);
                l.push(b);
            }
        }
        let positives = l.iter().filter(|&&b| b).count();
        let mut ks = vec![10, 100, 1000];
        if positives > 0 && !ks.contains(&positives) {
            ks.push(positives);
        }
        ks.retain(|&k| k <= s.len());
        EvalReport {
            rows: scores.len(),
            unlabelled: scores.len() - s.len(),
            positives,
            negatives: l.len() - positives,
            roc_auc: roc_auc(&s, &l),
            pr_auc: average_precision(&s, &l),
            tpr_at_fpr_1pct: tpr_at_fpr(&s, &l, 0.01),
            tpr_at_fpr_0_1pct: tpr_at_fpr(&s, &l, 0.001),
            precision_at_k: ks.iter().map(|&k| (k, precision_at_k(&s, &l, k))).collect(),
            threshold,
            confusion: threshold.map(|t| Confusion::at(&s, &l, t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_computed_values() {
        // perfect, reversed, and the sklearn docs example (0.75)
        assert_eq!(roc_auc(&[0.9, 0.8, 0.1], &[true, true, false]), 1.0);
        assert_eq!(roc_auc(&[0.1, 0.2, 0.9], &[true, true, false]), 0.0);
        assert_eq!(
            roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            0.75
        );
        // all tied: 0.5
        assert_eq!(
            roc_auc(&[1.0, 1.0, 1.0, 1.0], &[false, true, false, true]),
            0.5
        );
        assert!(roc_auc(&[1.0, 2.0], &[true, true]).is_nan());
    }

    #[test]
    fn perfect_ranking_has_average_precision_exactly_one() {
        // 3,600 positives above 3,534 negatives: per-term division used to give 1.0000000000000135.
        let mut scores = vec![1.0; 3600];
        scores.extend(vec![0.0; 3534]);
        let labels: Vec<bool> = (0..scores.len()).map(|i| i < 3600).collect();
        assert_eq!(average_precision(&scores, &labels), 1.0);
        let distinct: Vec<f64> = (0..scores.len()).map(|i| -(i as f64)).collect();
        assert_eq!(average_precision(&distinct, &labels), 1.0);
    }

    #[test]
    fn average_precision_matches_sklearn_example() {
        // sklearn: average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.8333…
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        assert!((ap - 0.833_333_333_333_333_4).abs() < 1e-12, "{ap}");
    }

    #[test]
    fn tpr_at_fpr_and_precision_at_k() {
        let s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let l = [true, false, true, false, true, false];
        assert_eq!(tpr_at_fpr(&s, &l, 0.0), 1.0 / 3.0);
        assert_eq!(tpr_at_fpr(&s, &l, 0.34), 2.0 / 3.0);
        assert_eq!(precision_at_k(&s, &l, 2), 0.5);
        let c = Confusion::at(&s, &l, 0.7);
        assert_eq!((c.tp, c.fp, c.tn, c.fn_), (2, 1, 2, 1));
        let r = EvalReport::compute(
            &s,
            &[
                Some(true),
                Some(false),
                None,
                Some(false),
                Some(true),
                Some(false),
            ],
            None,
        );
        assert_eq!((r.unlabelled, r.positives, r.negatives), (1, 2, 3));
    }
}
