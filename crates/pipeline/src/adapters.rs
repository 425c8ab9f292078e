//! Thin call-site adapters for what the other layers do not (yet) offer in the
//! shape the pipeline needs. Each says why it lives here.

use palisade_core::{ColumnData, Matrix, Table};

/// Points of a curve, (x, y).
pub type Points = Vec<(f64, f64)>;

/// ROC curve points (FPR, TPR) and precision–recall points (recall,
/// precision) of `scores` against `labels`, one point per distinct score.
///
/// Why here: `palisade_models::metrics` gives the areas (ROC-AUC, average
/// precision), which the report quotes, but not the curves the report draws.
pub fn curves(scores: &[f64], labels: &[bool]) -> (Points, Points) {
    let mut idx: Vec<usize> = (0..scores.len().min(labels.len()))
        .filter(|&i| scores[i].is_finite())
        .collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let p = idx.iter().filter(|&&i| labels[i]).count() as f64;
    let n = idx.len() as f64 - p;
    if p == 0.0 || n == 0.0 {
        return (Vec::new(), Vec::new());
    }
    let mut roc = vec![(0.0, 0.0)];
    let mut pr = Vec::new();
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut k = 0;
    while k < idx.len() {
        // a run of tied scores moves the curve once
        let s = scores[idx[k]];
        while k < idx.len() && scores[idx[k]] == s {
            if labels[idx[k]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            k += 1;
        }
        roc.push((fp / n, tp / p));
        pr.push((tp / p, tp / (tp + fp)));
    }
    if let Some(&(_, first_precision)) = pr.first() {
        pr.insert(0, (0.0, first_precision));
    }
    (roc, pr)
}

/// The rows of `table` selected by `keep`, every column and the schema kept.
///
/// Why here: training on a time range needs a row subset of a table, and
/// `palisade_core::Table` has no row selection.
pub fn select_rows(table: &Table, keep: &[usize]) -> Table {
    let mut t = Table {
        columns: Vec::with_capacity(table.columns.len()),
        schema: table.schema.clone(),
    };
    for c in &table.columns {
        let data = match &c.data {
            ColumnData::F64(v) => {
                ColumnData::F64(keep.iter().filter_map(|&i| v.get(i).copied()).collect())
            }
            ColumnData::Str(v) => ColumnData::Str(keep.iter().filter_map(|&i| v.get(i)).collect()),
        };
        t.columns.push(palisade_core::Column {
            name: c.name.clone(),
            role: c.role,
            data,
        });
    }
    t
}

/// The first two principal components of `x` for the report's map, and the
/// share of variance each explains.
///
/// Preprocessing, chosen for a picture rather than a detector: a signed
/// log1p per value (counts in security data span orders of magnitude, and
/// raw counts would put every ordinary row on one pixel), then centring and
/// scaling by each column's standard deviation, NaN → 0 after centring (the
/// column mean), constant columns dropped. The components are the top
/// eigenvectors of the d×d correlation matrix (d is tens, so this is cheap).
///
/// Why here: the models crate's PCA detector scores by reconstruction and
/// does not expose a 2-D projection; the map is a view, not a model.
pub fn pca_2d(x: &Matrix) -> Option<(Points, [f64; 2])> {
    let (n, d) = (x.rows, x.cols);
    if n < 3 || d == 0 {
        return None;
    }
    let tf = |v: f64| {
        if v.is_finite() {
            v.signum() * v.abs().ln_1p()
        } else {
            f64::NAN
        }
    };
    let mut cols: Vec<Vec<f64>> = Vec::new();
    for j in 0..d {
        let v: Vec<f64> = (0..n).map(|i| tf(x.get(i, j))).collect();
        let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if finite.len() < 2 {
            continue;
        }
        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
        let var =
            finite.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (finite.len() - 1) as f64;
        if var <= 1e-12 {
            continue;
        }
        let sd = var.sqrt();
        cols.push(
            v.iter()
                .map(|x| if x.is_finite() { (x - mean) / sd } else { 0.0 })
                .collect(),
        );
    }
    let k = cols.len();
    if k == 0 {
        return None;
    }
    let z = nalgebra::DMatrix::from_fn(n, k, |i, j| cols[j][i]);
    let cov = (z.transpose() * &z) / (n as f64 - 1.0);
    let eig = nalgebra::SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
    let comp = |c: usize| -> (Vec<f64>, f64) {
        match order.get(c) {
            Some(&j) => {
                let mut v: Vec<f64> = eig.eigenvectors.column(j).iter().copied().collect();
                // Fix the sign so the picture does not flip between runs:
                // the largest loading is positive.
                let big = v
                    .iter()
                    .copied()
                    .fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
                if big < 0.0 {
                    v.iter_mut().for_each(|x| *x = -*x);
                }
                let share = if total > 0.0 {
                    eig.eigenvalues[j].max(0.0) / total
                } else {
                    0.0
                };
                (v, share)
            }
            None => (vec![0.0; k], 0.0),
        }
    };
    let (c1, s1) = comp(0);
    let (c2, s2) = comp(1);
    let pts = (0..n)
        .map(|i| {
            let row = z.row(i);
            let a: f64 = row.iter().zip(&c1).map(|(x, w)| x * w).sum();
            let b: f64 = row.iter().zip(&c2).map(|(x, w)| x * w).sum();
            (a, b)
        })
        .collect();
    Some((pts, [s1, s2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_of_a_perfect_ranking() {
        let (roc, pr) = curves(&[0.9, 0.8, 0.2, 0.1], &[true, true, false, false]);
        assert_eq!(roc.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.last(), Some(&(1.0, 1.0)));
        assert!(roc.contains(&(0.0, 1.0)));
        assert!(pr.iter().all(|&(_, p)| p > 0.49));
        assert_eq!(pr[2], (1.0, 1.0));
    }

    #[test]
    fn curves_need_both_classes_and_handle_ties() {
        assert!(curves(&[0.1, 0.2], &[true, true]).0.is_empty());
        let (roc, _) = curves(&[0.5, 0.5, 0.5], &[true, false, false]);
        assert_eq!(roc, vec![(0.0, 0.0), (1.0, 1.0)]);
    }

    #[test]
    fn pca_finds_the_dominant_direction() {
        // points along (1, 1, 0) with small noise in the third column
        let mut data = Vec::new();
        for i in 0..50 {
            let t = i as f64;
            data.extend_from_slice(&[t, t * 2.0, (i % 3) as f64 * 0.01]);
        }
        let m = Matrix::new(50, 3, data).unwrap();
        let (pts, share) = pca_2d(&m).unwrap();
        assert_eq!(pts.len(), 50);
        assert!(share[0] > 0.6, "{share:?}");
        // PC1 is monotone in t (sign fixed by the largest loading)
        assert!(pts[49].0 > pts[0].0);
    }

    #[test]
    fn pca_of_constant_data_is_none() {
        let m = Matrix::new(5, 2, vec![1.0; 10]).unwrap();
        assert!(pca_2d(&m).is_none());
    }
}
