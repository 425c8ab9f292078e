//! Random forest for binary classification, histogram based.
//!
//! Hand-written rather than taken from a crate, because the candidates fall
//! short on what this product needs: smartcore 0.7's `RandomForestClassifier`
//! has no missing-value handling (NaN breaks its sort-based splitter), no
//! sample or class weights, no balanced bootstrap and no per-node statistics
//! we could explain predictions with, and it sorts the rows at every node
//! (O(n log n) per node instead of one O(n) histogram pass). This forest:
//!
//! - bins each feature once into at most 255 quantile bins plus one missing
//!   bin; a split is "value ≤ cut" with a learned direction for NaN (the side
//!   that gives the larger impurity decrease, or the heavier side when the node
//!   saw no NaN), so missing values are handled natively, never imputed;
//! - weighs rows by class (`pos_weight`), and can draw a balanced bootstrap
//!   (Chen, Liaw & Breiman 2004: each tree sees as many positives as negatives);
//! - grows trees fully (sklearn's default: Gini, `sqrt(d)` features per node,
//!   min 1 row per leaf) in parallel with rayon, one tree per task;
//! - keeps each node's weighted cover and value, which TreeSHAP needs
//!   ([`super::treeshap`]), and the Gini decrease per feature (gain importance).

use palisade_core::Matrix;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Bin code of a missing value.
const MISSING: u8 = u8::MAX;
/// At most this many value bins (codes 0..=254), so codes fit a byte beside MISSING.
pub const MAX_BINS: usize = 255;
const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub n_trees: usize,
    /// Features tried per node; `None` = ⌈√d⌉.
    pub mtry: Option<usize>,
    /// `None` = grow until pure.
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    pub max_bins: usize,
    /// Weight of each positive row relative to a negative one.
    pub pos_weight: f64,
    /// Each tree draws as many positives as negatives (min of the two class sizes, with replacement).
    pub balanced_bootstrap: bool,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            n_trees: 100,
            mtry: None,
            max_depth: None,
            min_samples_leaf: 1,
            max_bins: MAX_BINS,
            pos_weight: 1.0,
            balanced_bootstrap: false,
            seed: 0,
        }
    }
}

/// One node. A leaf has `feature == u32::MAX`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    #[serde(rename = "f")]
    pub feature: u32,
    /// Rows with `x ≤ threshold` go left.
    #[serde(rename = "t")]
    pub threshold: f64,
    /// Where NaN goes.
    #[serde(rename = "m")]
    pub missing_left: bool,
    #[serde(rename = "l")]
    pub left: u32,
    #[serde(rename = "r")]
    pub right: u32,
    /// Weighted share of positives among the node's training rows.
    #[serde(rename = "v")]
    pub value: f64,
    /// Weighted count of the node's training rows.
    #[serde(rename = "c")]
    pub cover: f64,
}

impl Node {
    /// A leaf before the grower fills in its value and cover.
    const EMPTY_LEAF: Node = Node {
        feature: LEAF,
        threshold: 0.0,
        missing_left: false,
        left: 0,
        right: 0,
        value: 0.0,
        cover: 0.0,
    };

    pub fn is_leaf(&self) -> bool {
        self.feature == LEAF
    }
    /// The child a value goes to.
    #[inline]
    pub fn child(&self, x: f64) -> u32 {
        let left = if x.is_nan() {
            self.missing_left
        } else {
            x <= self.threshold
        };
        if left {
            self.left
        } else {
            self.right
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        let mut i = 0usize;
        // A tree from a corrupt file could loop or point outside; bound the walk.
        for _ in 0..=self.nodes.len() {
            let Some(n) = self.nodes.get(i) else {
                return f64::NAN;
            };
            if n.is_leaf() {
                return n.value;
            }
            let x = row.get(n.feature as usize).copied().unwrap_or(f64::NAN);
            i = n.child(x) as usize;
        }
        f64::NAN
    }

    /// Check the node links of a loaded tree: children in range and after their parent (no cycles).
    pub fn validate(&self, n_features: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("empty tree".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if n.is_leaf() {
                continue;
            }
            if n.feature as usize >= n_features {
                return Err(format!(
                    "node {i} splits on feature {} of {n_features}",
                    n.feature
                ));
            }
            for c in [n.left, n.right] {
                if (c as usize) <= i || c as usize >= self.nodes.len() {
                    return Err(format!("node {i} has child {c} out of order or range"));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    pub params: ForestParams,
    pub n_features: usize,
    pub trees: Vec<Tree>,
    /// Total weighted Gini decrease per feature, normalised to sum 1 (MDI).
    pub gain_importance: Vec<f64>,
}

/// Features binned once: per-feature codes (column major) and cut points.
pub struct Binned {
    pub codes: Vec<Vec<u8>>,
    pub cuts: Vec<Vec<f64>>,
}

/// Quantile cuts of one feature; `x ≤ cuts[b]` ⇔ code ≤ b.
fn feature_cuts(values: &mut Vec<f64>, max_bins: usize) -> Vec<f64> {
    values.retain(|v| !v.is_nan());
    values.sort_by(|a, b| a.total_cmp(b));
    let mut uniq = values.clone();
    uniq.dedup();
    if uniq.len() <= max_bins {
        // Few distinct values: cut half-way between neighbours (as exact split search would).
        return uniq
            .windows(2)
            .map(|w| w[0] + (w[1] - w[0]) / 2.0)
            .collect();
    }
    let n = values.len();
    let mut cuts: Vec<f64> = (1..max_bins).map(|k| values[k * n / max_bins]).collect();
    cuts.dedup();
    // The largest value never needs a cut above it.
    if cuts.last().is_some_and(|c| Some(c) == uniq.last()) {
        cuts.pop();
    }
    cuts
}

pub fn bin_matrix(x: &Matrix, max_bins: usize) -> Binned {
    let max_bins = max_bins.clamp(2, MAX_BINS);
    let per: Vec<(Vec<u8>, Vec<f64>)> = (0..x.cols)
        .into_par_iter()
        .map(|j| {
            let mut col = x.column(j);
            let raw = col.clone();
            let cuts = feature_cuts(&mut col, max_bins);
            let codes = raw
                .iter()
                .map(|&v| {
                    if v.is_nan() {
                        MISSING
                    } else {
                        cuts.partition_point(|&c| c < v) as u8
                    }
                })
                .collect();
            (codes, cuts)
        })
        .collect();
    let (codes, cuts) = per.into_iter().unzip();
    Binned { codes, cuts }
}

#[derive(Clone, Copy, Default)]
struct Acc {
    w0: f64,
    w1: f64,
    n: u32,
}

impl Acc {
    fn add(&mut self, o: &Acc) {
        self.w0 += o.w0;
        self.w1 += o.w1;
        self.n += o.n;
    }
    fn w(&self) -> f64 {
        self.w0 + self.w1
    }
    /// Σ w_c² / w: larger = purer; the weighted Gini decrease is the children's sum minus the parent's.
    fn purity(&self) -> f64 {
        let w = self.w();
        if w <= 0.0 {
            0.0
        } else {
            (self.w0 * self.w0 + self.w1 * self.w1) / w
        }
    }
}

struct Split {
    feature: usize,
    bin: usize,
    missing_left: bool,
    gain: f64,
}

struct Grower<'a> {
    binned: &'a Binned,
    y: &'a [f64],
    weight: Vec<f64>,
    p: &'a ForestParams,
    mtry: usize,
    hist: Vec<Acc>,
    gain: Vec<f64>,
}

impl Grower<'_> {
    fn node_acc(&self, rows: &[u32]) -> Acc {
        let mut a = Acc::default();
        for &r in rows {
            let w = self.weight[r as usize];
            if self.y[r as usize] > 0.5 {
                a.w1 += w;
            } else {
                a.w0 += w;
            }
            a.n += 1;
        }
        a
    }

    fn best_split(&mut self, rows: &[u32], parent: &Acc, rng: &mut ChaCha8Rng) -> Option<Split> {
        let d = self.binned.codes.len();
        let mut order: Vec<usize> = (0..d).collect();
        order.shuffle(rng);
        let parent_purity = parent.purity();
        let min_leaf = self.p.min_samples_leaf.max(1) as u32;
        let mut best: Option<Split> = None;
        let mut tried = 0;
        // Like sklearn: keep drawing features past mtry while all drawn ones were constant here.
        for &f in &order {
            if tried >= self.mtry {
                break;
            }
            let codes = &self.binned.codes[f];
            let nb = self.binned.cuts[f].len() + 1;
            self.hist[..nb].iter_mut().for_each(|a| *a = Acc::default());
            let mut miss = Acc::default();
            for &r in rows {
                let r = r as usize;
                let w = self.weight[r];
                let c = codes[r];
                let a = if c == MISSING {
                    &mut miss
                } else {
                    &mut self.hist[c as usize]
                };
                if self.y[r] > 0.5 {
                    a.w1 += w;
                } else {
                    a.w0 += w;
                }
                a.n += 1;
            }
            let nonempty =
                self.hist[..nb].iter().filter(|a| a.n > 0).count() + usize::from(miss.n > 0);
            if nonempty < 2 {
                continue;
            }
            tried += 1;
            let mut left = Acc::default();
            let total_present = {
                let mut t = *parent;
                t.w0 -= miss.w0;
                t.w1 -= miss.w1;
                t.n -= miss.n;
                t
            };
            // bin == nb-1 with all present rows left is the "missing vs present" split.
            for b in 0..nb {
                left.add(&self.hist[b]);
                if self.hist[b].n == 0 && b + 1 < nb {
                    continue;
                }
                let right = Acc {
                    w0: total_present.w0 - left.w0,
                    w1: total_present.w1 - left.w1,
                    n: total_present.n - left.n,
                };
                for miss_left in [false, true] {
                    if miss.n == 0 && miss_left {
                        continue;
                    }
                    let (mut l, mut r) = (left, right);
                    if miss_left {
                        l.add(&miss);
                    } else {
                        r.add(&miss);
                    }
                    if l.n < min_leaf || r.n < min_leaf || l.w() <= 0.0 || r.w() <= 0.0 {
                        continue;
                    }
                    let gain = l.purity() + r.purity() - parent_purity;
                    if gain > 1e-12 && best.as_ref().is_none_or(|s| gain > s.gain) {
                        // Without NaN at this node, send future NaN to the heavier side.
                        let ml = if miss.n == 0 {
                            l.w() >= r.w()
                        } else {
                            miss_left
                        };
                        best = Some(Split {
                            feature: f,
                            bin: b,
                            missing_left: ml,
                            gain,
                        });
                    }
                }
            }
        }
        best
    }

    fn grow(&mut self, mut rows: Vec<u32>, rng: &mut ChaCha8Rng) -> Tree {
        let mut nodes: Vec<Node> = Vec::new();
        // (node index, start, end, depth) over a shared row buffer partitioned in place.
        let mut stack: Vec<(usize, usize, usize, usize)> = Vec::new();
        nodes.push(Node::EMPTY_LEAF);
        stack.push((0, 0, rows.len(), 0));
        while let Some((id, s, e, depth)) = stack.pop() {
            let acc = self.node_acc(&rows[s..e]);
            let w = acc.w();
            nodes[id].value = if w > 0.0 { acc.w1 / w } else { 0.0 };
            nodes[id].cover = w;
            let pure = acc.w0 <= 0.0 || acc.w1 <= 0.0;
            let depth_ok = self.p.max_depth.is_none_or(|m| depth < m);
            if pure || !depth_ok || (acc.n as usize) < 2 * self.p.min_samples_leaf.max(1) {
                continue;
            }
            let Some(split) = self.best_split(&rows[s..e], &acc, rng) else {
                continue;
            };
            let codes = &self.binned.codes[split.feature];
            let goes_left = |r: u32| {
                let c = codes[r as usize];
                if c == MISSING {
                    split.missing_left
                } else {
                    c as usize <= split.bin
                }
            };
            // In-place partition: left rows first.
            let slice = &mut rows[s..e];
            let mut k = 0;
            for i in 0..slice.len() {
                if goes_left(slice[i]) {
                    slice.swap(i, k);
                    k += 1;
                }
            }
            self.gain[split.feature] += split.gain;
            let cuts = &self.binned.cuts[split.feature];
            // The last bin index means "all present values". Inputs are finite or NaN (the
            // encoder maps ±inf to ±f64::MAX), so f64::MAX sends every present value left;
            // JSON cannot hold an infinity.
            let threshold = cuts.get(split.bin).copied().unwrap_or(f64::MAX);
            let l = nodes.len();
            nodes.push(Node::EMPTY_LEAF);
            nodes.push(Node::EMPTY_LEAF);
            let n = &mut nodes[id];
            n.feature = split.feature as u32;
            n.threshold = threshold;
            n.missing_left = split.missing_left;
            n.left = l as u32;
            n.right = l as u32 + 1;
            stack.push((l + 1, s + k, e, depth + 1));
            stack.push((l, s, s + k, depth + 1));
        }
        Tree { nodes }
    }
}

impl Forest {
    /// Train on `x` (rows × features, NaN = missing) and labels `y` ∈ {0, 1}.
    /// Runs on the current rayon pool (callers install a pool to bound threads).
    pub fn fit(x: &Matrix, y: &[f64], p: &ForestParams) -> Result<Forest, String> {
        if y.len() != x.rows {
            return Err(format!("{} labels for {} rows", y.len(), x.rows));
        }
        if p.n_trees == 0 {
            return Err("n_trees must be at least 1".into());
        }
        if !(p.pos_weight.is_finite() && p.pos_weight > 0.0) {
            return Err(format!(
                "pos_weight must be a positive number, got {}",
                p.pos_weight
            ));
        }
        let pos: Vec<u32> = (0..x.rows as u32)
            .filter(|&i| y[i as usize] > 0.5)
            .collect();
        let neg: Vec<u32> = (0..x.rows as u32)
            .filter(|&i| y[i as usize] <= 0.5)
            .collect();
        if pos.is_empty() || neg.is_empty() {
            return Err(format!(
                "need both classes, got {} positive and {} negative rows",
                pos.len(),
                neg.len()
            ));
        }
        let binned = bin_matrix(x, p.max_bins);
        let d = x.cols;
        let mtry = p
            .mtry
            .unwrap_or_else(|| (d as f64).sqrt().ceil() as usize)
            .clamp(1, d.max(1));
        let results: Vec<(Tree, Vec<f64>)> = (0..p.n_trees)
            .into_par_iter()
            .map(|t| {
                let mut rng = ChaCha8Rng::seed_from_u64(
                    p.seed
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .wrapping_add(t as u64),
                );
                let mut counts = vec![0u32; x.rows];
                if p.balanced_bootstrap {
                    let m = pos.len().min(neg.len());
                    for class in [&pos, &neg] {
                        for _ in 0..m {
                            counts[class[rng.random_range(0..class.len())] as usize] += 1;
                        }
                    }
                } else {
                    for _ in 0..x.rows {
                        counts[rng.random_range(0..x.rows)] += 1;
                    }
                }
                let weight: Vec<f64> = counts
                    .iter()
                    .zip(y)
                    .map(|(&c, &yy)| c as f64 * if yy > 0.5 { p.pos_weight } else { 1.0 })
                    .collect();
                let rows: Vec<u32> = (0..x.rows as u32)
                    .filter(|&i| counts[i as usize] > 0)
                    .collect();
                let mut g = Grower {
                    binned: &binned,
                    y,
                    weight,
                    p,
                    mtry,
                    hist: vec![Acc::default(); MAX_BINS + 1],
                    gain: vec![0.0; d],
                };
                let tree = g.grow(rows, &mut rng);
                (tree, g.gain)
            })
            .collect();
        let mut gain = vec![0.0; d];
        let mut trees = Vec::with_capacity(results.len());
        for (t, g) in results {
            trees.push(t);
            gain.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
        }
        let total: f64 = gain.iter().sum();
        if total > 0.0 {
            gain.iter_mut().for_each(|g| *g /= total);
        }
        Ok(Forest {
            params: p.clone(),
            n_features: d,
            trees,
            gain_importance: gain,
        })
    }

    /// Mean of the trees' leaf values (a score in [0, 1]).
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        (0..x.rows)
            .into_par_iter()
            .map(|i| {
                let row = x.row(i);
                self.trees.iter().map(|t| t.predict_row(row)).sum::<f64>()
                    / self.trees.len().max(1) as f64
            })
            .collect()
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.trees.is_empty() {
            return Err("forest has no trees".into());
        }
        for (i, t) in self.trees.iter().enumerate() {
            t.validate(self.n_features)
                .map_err(|e| format!("tree {i}: {e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_and_codes_agree_with_thresholds() {
        let x = Matrix::new(6, 1, vec![1.0, 2.0, 2.0, f64::NAN, 5.0, 3.0]).unwrap();
        let b = bin_matrix(&x, 255);
        assert_eq!(b.cuts[0], vec![1.5, 2.5, 4.0]);
        assert_eq!(b.codes[0], vec![0, 1, 1, MISSING, 3, 2]);
        for (i, &c) in b.codes[0].iter().enumerate() {
            let v = x.get(i, 0);
            if c != MISSING && (c as usize) < b.cuts[0].len() {
                assert!(v <= b.cuts[0][c as usize]);
            }
        }
    }

    #[test]
    fn many_values_are_quantile_binned() {
        let v: Vec<f64> = (0..10_000).map(|i| (i % 1000) as f64).collect();
        let x = Matrix::new(v.len(), 1, v).unwrap();
        let b = bin_matrix(&x, 255);
        assert!(
            b.cuts[0].len() < 255 && b.cuts[0].len() > 200,
            "{}",
            b.cuts[0].len()
        );
        assert!(b.codes[0].iter().all(|&c| c != MISSING));
    }
}
