//! Isolation Forest (Liu, Ting & Zhou, ICDM 2008), as published:
//! `t` trees (default 100), each grown on a sub-sample of ψ rows drawn without
//! replacement (default 256), height limit ⌈log2 ψ⌉; a point's path length is
//! the number of edges to its leaf plus c(size) for the rows left unseparated
//! in that leaf; the score is 2^(−E[h(x)]/c(ψ)) ∈ (0, 1], higher = more anomalous.
//!
//! Hand-written (no maintained Rust crate offers a seeded, serialisable,
//! explainable iForest with a flat layout), because scoring is the hot path.
//!
//! Split rule: at each node an attribute is drawn uniformly among those that
//! are not constant on the node's rows (as scikit-learn does; the paper draws
//! among all attributes, where a constant one cannot split), and a split value
//! uniformly in [min, max); rows with `x ≤ p` go left. With at most 64
//! preprocessed features, the drawn value is then moved by at most 63 ulps
//! (127 above 32 features; staying in [min, max)) so that its low 5 (6)
//! mantissa bits are the feature index: the AVX-512 tree-parallel kernel
//! reads split and feature with one gather. Models trained before this,
//! whose splits do not carry their features, score exactly as before with
//! the row-parallel kernels.
//!
//! Flat layout: every tree is stored as a *complete* binary tree of depth
//! ⌈log2 ψ⌉ (implicit children 2i+1, 2i+2). A leaf reached above the height
//! limit is padded with "always left" nodes (split value `f64::MAX`) down to
//! the bottom level, whose slot holds the leaf's path length (depth + c(size)).
//! Scoring is then a fixed number of branch-free steps per tree, which lets
//! the CPU (and its vector units: `iforest_walk.rs`) run many rows'
//! traversals at once; rows are scored in blocks (all trees over a block of
//! rows stays in cache) and blocks in parallel (rayon).
//!
//! Explanation (in the spirit of DIFFI, Carletti et al. 2020): along the row's
//! path in each tree, each real split on feature f credits f with
//! `(1 − n_child/n_node) / h_t(x)`: splits that cut the row away from most of
//! the node's training rows, in trees where the row is isolated early, count
//! most. Credits are averaged over trees.

pub use crate::iforest_walk::Kernel;
use crate::iforest_walk::{
    carried_feature, carry_bits, FlatForest, BLOCK, FEW_ROWS, GROUP_MAX_WIDTH,
};
use crate::options::OptionReader;
use crate::preprocess::Preprocess;
use crate::registry::TrainData;
use crate::{check_inputs, check_row, top_k, Contribution, Detector, ModelError, Result};
use palisade_core::Matrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

const KIND: &str = "iforest";
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
/// Split value of a padding node: every finite value goes left.
const ALWAYS_LEFT: f64 = f64::MAX;

/// Average path length of an unsuccessful search in a binary search tree of
/// `n` points: c(n) = 2H(n−1) − 2(n−1)/n with H(i) ≈ ln i + γ; c(2) = 1, c(≤1) = 0.
pub fn c_factor(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// One tree in complete-binary-tree layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Split feature of internal slot i (index into the preprocessed row).
    pub feature: Vec<u32>,
    /// Split value of internal slot i (`f64::MAX` for padding).
    pub split: Vec<f64>,
    /// Path length h of each bottom slot (depth + c(size)).
    pub leaf: Vec<f64>,
    /// Training rows reaching each slot (internal then bottom), for explanations.
    pub count: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IForestParams {
    pub n_trees: usize,
    /// ψ actually used (min of the option and the number of rows).
    pub sample_size: usize,
    /// Depth of the complete layout (= height limit ⌈log2 ψ⌉).
    pub depth: u32,
    pub prep: Preprocess,
    pub trees: Vec<Tree>,
    #[serde(default)]
    pub notes: Vec<String>,
}

pub struct IsolationForest {
    p: IForestParams,
    /// c(ψ), the normaliser of the score.
    c_psi: f64,
    /// Features of the preprocessed input, mapped back to raw columns.
    kept: Vec<usize>,
    /// All trees in the scoring layout.
    flat: FlatForest,
}

/// Options: `trees` (100), `sample_size` (256).
pub fn fit(data: &TrainData, r: &OptionReader) -> Result<Box<dyn Detector>> {
    let opts = data.opts;
    let n_trees = r.usize("trees", 100)?;
    let sample_size = r.usize("sample_size", 256)?;
    if n_trees == 0 || sample_size < 2 {
        return Err(ModelError::BadOption {
            name: "trees/sample-size".into(),
            msg: format!("need trees ≥ 1 and sample size ≥ 2 (got {n_trees}, {sample_size})"),
        });
    }
    let (prep, notes) =
        Preprocess::fit(&data.x, &data.names, &opts.log_cols, opts.log_offset, false)?;
    let forest = IsolationForest::fit_matrix(
        &data.x,
        n_trees,
        sample_size,
        opts.seed,
        prep,
        notes,
        |done| opts.report("iforest trees", done as u64, n_trees as u64, String::new),
    )?;
    Ok(Box::new(forest))
}

pub fn load(p: &serde_json::Value) -> Result<Box<dyn Detector>> {
    let params: IForestParams = crate::from_json(KIND, p)?;
    Ok(Box::new(IsolationForest::from_params(params)?))
}

impl IsolationForest {
    /// Grow the forest on a raw matrix (only the sampled rows are
    /// preprocessed). `progress` receives the number of finished trees.
    pub fn fit_matrix(
        x: &Matrix,
        n_trees: usize,
        sample_size: usize,
        seed: u64,
        prep: Preprocess,
        notes: Vec<String>,
        progress: impl Fn(usize) + Sync,
    ) -> Result<IsolationForest> {
        let psi = sample_size.min(x.rows).max(2);
        let kept = prep.kept();
        let depth = (psi as f64).log2().ceil() as u32;
        let done = std::sync::atomic::AtomicUsize::new(0);
        // One RNG stream per tree: deterministic whatever the thread count.
        let trees: Vec<Tree> = (0..n_trees)
            .into_par_iter()
            .map(|t| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(t as u64 + 1);
                let idx: Vec<usize> = if psi >= x.rows {
                    (0..x.rows).collect()
                } else {
                    rand::seq::index::sample(&mut rng, x.rows, psi).into_vec()
                };
                // The sample, preprocessed, in f32: trees are grown and scored
                // in f32 so that both make exactly the same comparisons.
                let mut sample = Vec::with_capacity(idx.len() * kept.len());
                let mut buf = Vec::new();
                for &r in &idx {
                    prep.row_into(x.row(r), &mut buf);
                    sample.extend(buf.iter().map(|&v| v as f32));
                }
                let tree = grow(&sample, kept.len(), depth, &mut rng);
                progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
                tree
            })
            .collect();
        IsolationForest::from_params(IForestParams {
            n_trees,
            sample_size: psi,
            depth,
            prep,
            trees,
            notes,
        })
    }

    pub fn from_params(p: IForestParams) -> Result<IsolationForest> {
        let bad = |msg: String| ModelError::BadParams {
            kind: KIND.into(),
            msg,
        };
        if p.trees.is_empty() || p.depth == 0 || p.depth > 24 || p.trees.len() != p.n_trees {
            return Err(bad(format!(
                "{} trees of depth {} is not a valid forest",
                p.trees.len(),
                p.depth
            )));
        }
        let n_internal = (1usize << p.depth) - 1;
        let n_leaf = 1usize << p.depth;
        let width = p.prep.kept().len();
        for (i, t) in p.trees.iter().enumerate() {
            if t.feature.len() != n_internal
                || t.split.len() != n_internal
                || t.leaf.len() != n_leaf
                || t.count.len() != n_internal + n_leaf
            {
                return Err(bad(format!(
                    "tree {i} has the wrong number of nodes for depth {}",
                    p.depth
                )));
            }
            if t.feature.iter().any(|&f| f as usize >= width) {
                return Err(bad(format!(
                    "tree {i} splits on a feature outside 0..{width}"
                )));
            }
        }
        if width == 0 || width * BLOCK >= i32::MAX as usize {
            return Err(bad(format!("{width} input features cannot be scored")));
        }
        let kept = p.prep.kept();
        let flat = FlatForest::new(
            p.trees
                .iter()
                .flat_map(|t| t.feature.iter().copied())
                .collect(),
            // f64::MAX (padding) becomes +inf: every finite value goes left.
            p.trees
                .iter()
                .flat_map(|t| t.split.iter().map(|&s| s as f32))
                .collect(),
            p.trees
                .iter()
                .flat_map(|t| t.leaf.iter().map(|&v| v as f32))
                .collect(),
            p.depth,
            p.trees.len(),
            width,
        );
        Ok(IsolationForest {
            c_psi: c_factor(p.sample_size),
            kept,
            p,
            flat,
        })
    }

    /// Mean path length E[h(x)] of every row of a *raw* matrix (the caller
    /// has checked its width), with the fastest kernel this CPU runs.
    pub fn mean_path_lengths(&self, x: &Matrix) -> Vec<f64> {
        self.mean_path_lengths_with(Kernel::best(), x)
    }

    /// As `mean_path_lengths`, with a chosen kernel (every kernel gives the
    /// same result; benchmarks compare them).
    ///
    /// Blocks of 128 rows are preprocessed into an f32 buffer in the layout
    /// the kernel reads (10–16 KB: stays in L1), then every tree walks the
    /// whole block (see `iforest_walk`); blocks are spread over the rayon
    /// threads.
    pub fn mean_path_lengths_with(&self, kernel: Kernel, x: &Matrix) -> Vec<f64> {
        let nt = self.p.trees.len();
        if x.rows <= FEW_ROWS {
            // A request's row: no block buffer, no thread pool.
            let d = self.kept.len();
            let mut row = vec![0f32; d];
            return (0..x.rows)
                .map(|r| {
                    self.p
                        .prep
                        .columns_f32_into(x, r, 1, &self.kept, &mut row, 1, d);
                    self.flat.sum_row(kernel, &row) as f64 / nt as f64
                })
                .collect();
        }
        let mut out = vec![0.0f64; x.rows];
        let layout = self.flat.block_layout(kernel);
        out.par_chunks_mut(BLOCK).enumerate().for_each_init(
            || vec![0f32; layout.len],
            |buf, (b, acc)| {
                let n = acc.len();
                self.p.prep.columns_f32_into(
                    x,
                    b * BLOCK,
                    n,
                    &self.kept,
                    buf,
                    layout.col_stride,
                    layout.row_stride,
                );
                // A short block walks only its rows (rounded up to a vector);
                // the unused rows keep old values and their sums are ignored.
                let mut sums = [0f32; BLOCK];
                self.flat.sum_paths(kernel, buf, n, &mut sums);
                for (a, s) in acc.iter_mut().zip(sums.iter()) {
                    *a = *s as f64 / nt as f64;
                }
            },
        );
        out
    }

    /// Scores of a raw matrix (width checked by the caller).
    fn score_raw(&self, x: &Matrix) -> Vec<f64> {
        let c = self.c_psi;
        let mut h = self.mean_path_lengths(x);
        h.iter_mut().for_each(|v| *v = (2f64).powf(-*v / c));
        h
    }

    pub fn params(&self) -> &IForestParams {
        &self.p
    }
}

impl Detector for IsolationForest {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn n_inputs(&self) -> usize {
        self.p.prep.n_inputs()
    }

    fn score(&self, x: &Matrix) -> Result<Vec<f64>> {
        check_inputs(KIND, self.n_inputs(), x)?;
        Ok(self.score_raw(x))
    }

    fn explain(&self, x: &Matrix, row: usize, k: usize) -> Result<Vec<Contribution>> {
        check_inputs(KIND, self.n_inputs(), x)?;
        check_row(x, row)?;
        let raw = x.row(row);
        let mut v = Vec::new();
        self.p.prep.row_into(raw, &mut v);
        let n_internal = (1usize << self.p.depth) - 1;
        let mut credit = vec![0.0; v.len()];
        for t in &self.p.trees {
            let mut i = 0usize;
            let mut path = Vec::with_capacity(self.p.depth as usize);
            for _ in 0..self.p.depth {
                let child =
                    2 * i + 1 + usize::from(v[t.feature[i] as usize] as f32 > t.split[i] as f32);
                if t.split[i] != ALWAYS_LEFT {
                    let n_node = t.count[i].max(1) as f64;
                    let n_child = t.count[child] as f64;
                    path.push((t.feature[i] as usize, 1.0 - n_child / n_node));
                }
                i = child;
            }
            let h = t.leaf[i - n_internal].max(1.0);
            for (f, w) in path {
                credit[f] += w / h;
            }
        }
        let nt = self.p.trees.len() as f64;
        let c = credit
            .iter()
            .enumerate()
            .map(|(j, &cr)| {
                let raw_j = self.kept[j];
                Contribution {
                    feature: self.p.prep.columns[raw_j].name.clone(),
                    value: raw[raw_j],
                    contribution: cr / nt,
                }
            })
            .collect();
        Ok(top_k(c, k))
    }

    fn to_params(&self) -> Result<serde_json::Value> {
        crate::to_json(KIND, &self.p)
    }

    fn notes(&self) -> Vec<String> {
        self.p.notes.clone()
    }
}

/// `p` moved by at most 2·2^bits − 1 ulps (63 for 5 bits, 127 for 6) so
/// that its low `bits` mantissa bits are `f`, still in [mn, mx) (so the
/// split still separates the node's rows); or `p` itself when no such value
/// is that close (a range a few ulps wide).
///
/// Why: the tree-parallel scoring kernel reads a node's split value and
/// feature with one gather (`iforest_walk::TreeGroups`). The shift is far
/// below the resolution that matters to a uniform draw over [mn, mx): it
/// is the f32 rounding the split already has, 32 or 64 times over.
pub(crate) fn carry_feature(p: f32, f: u32, mn: f32, mx: f32, bits: u32) -> f32 {
    debug_assert!(f < 1 << bits);
    let step = 1u32 << bits;
    let base = (p.to_bits() & !(step - 1)) | f;
    [base, base.wrapping_sub(step), base.wrapping_add(step)]
        .into_iter()
        .map(f32::from_bits)
        .find(|c| c.is_finite() && *c >= mn && *c < mx && carried_feature(*c, bits) == f)
        .unwrap_or(p)
}

/// Grow one tree on a preprocessed f32 sample (row-major, `d` columns) into
/// the complete layout.
fn grow(x: &[f32], d: usize, depth: u32, rng: &mut ChaCha8Rng) -> Tree {
    let n_internal = (1usize << depth) - 1;
    let n_leaf = 1usize << depth;
    let mut t = Tree {
        feature: vec![0; n_internal],
        split: vec![ALWAYS_LEFT; n_internal],
        leaf: vec![0.0; n_leaf],
        count: vec![0; n_internal + n_leaf],
    };
    let mut idx: Vec<usize> = (0..x.len() / d.max(1)).collect();
    let mut feats: Vec<usize> = (0..d).collect();
    // (slot, depth, range of idx)
    let len = idx.len();
    let mut stack = vec![(0usize, 0u32, 0usize, len)];
    while let Some((slot, dep, lo, hi)) = stack.pop() {
        let n = hi - lo;
        t.count[slot] = n as u32;
        if dep == depth {
            t.leaf[slot - n_internal] = dep as f64 + c_factor(n);
            continue;
        }
        let rows = &mut idx[lo..hi];
        // Choose a feature uniformly among the non-constant ones (partial
        // Fisher–Yates: draw without replacement until one can split).
        let mut chosen = None;
        if n > 1 {
            let mut remaining = feats.len();
            while remaining > 0 {
                let pick = rng.random_range(0..remaining);
                let f = feats[pick];
                feats.swap(pick, remaining - 1);
                remaining -= 1;
                let (mut mn, mut mx) = (f32::INFINITY, f32::NEG_INFINITY);
                for &r in rows.iter() {
                    let v = x[r * d + f];
                    mn = mn.min(v);
                    mx = mx.max(v);
                }
                if mx > mn {
                    chosen = Some((f, mn, mx));
                    break;
                }
            }
        }
        match chosen {
            None => {
                // External node above the height limit: pad with always-left
                // nodes down to the bottom, where the path length is stored.
                let mut s = slot;
                let mut dd = dep;
                while dd < depth {
                    t.split[s] = ALWAYS_LEFT;
                    t.count[s] = n as u32;
                    s = 2 * s + 1;
                    dd += 1;
                }
                t.count[s] = n as u32;
                t.leaf[s - n_internal] = dep as f64 + c_factor(n);
            }
            Some((f, mn, mx)) => {
                // uniform in [min, max), rounded to f32 (the scoring precision)
                let mut p = (mn as f64 + rng.random::<f64>() * (mx as f64 - mn as f64)) as f32;
                if p >= mx {
                    p = mn;
                }
                if d <= GROUP_MAX_WIDTH {
                    p = carry_feature(p, f as u32, mn, mx, carry_bits(d));
                }
                t.feature[slot] = f as u32;
                t.split[slot] = p as f64;
                // partition: x ≤ p first
                let mut mid = 0;
                for i in 0..rows.len() {
                    if x[rows[i] * d + f] <= p {
                        rows.swap(i, mid);
                        mid += 1;
                    }
                }
                stack.push((2 * slot + 2, dep + 1, lo + mid, hi));
                stack.push((2 * slot + 1, dep + 1, lo, lo + mid));
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_factor_matches_the_paper() {
        assert_eq!(c_factor(1), 0.0);
        assert_eq!(c_factor(2), 1.0);
        // c(256) = 2(ln 255 + γ) − 2·255/256 ≈ 10.2447
        assert!(
            (c_factor(256) - 10.244_770_920_408_01).abs() < 1e-9,
            "{}",
            c_factor(256)
        );
        assert!((c_factor(3) - (2.0 * (2f64.ln() + EULER_GAMMA) - 4.0 / 3.0)).abs() < 1e-12);
        // grows like 2 ln n
        assert!(c_factor(1 << 20) > c_factor(1 << 10));
    }

    fn blob(n: usize, seed: u64) -> Matrix {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // roughly Gaussian: sum of four uniforms
        let data = (0..n * 3)
            .map(|_| (0..4).map(|_| rng.random::<f64>() - 0.5).sum())
            .collect();
        Matrix::new(n, 3, data).unwrap()
    }

    fn fit_plain(x: &Matrix, seed: u64) -> IsolationForest {
        let names: Vec<String> = (0..x.cols).map(|j| format!("f{j}")).collect();
        let (prep, notes) = Preprocess::fit(x, &names, &[], 1.0, false).unwrap();
        IsolationForest::fit_matrix(x, 100, 256, seed, prep, notes, |_| {}).unwrap()
    }

    #[test]
    fn obvious_outlier_ranks_first_and_scores_are_in_range() {
        let mut x = blob(1000, 1);
        // row 17 far outside the blob in every direction
        x.data[3 * 17..3 * 17 + 3].copy_from_slice(&[8.0, 8.0, 8.0]);
        let f = fit_plain(&x, 7);
        let s = f.score(&x).unwrap();
        assert!(s.iter().all(|&v| v > 0.0 && v <= 1.0));
        let top = (0..s.len()).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
        assert_eq!(top, 17);
        assert!(s[17] > 0.7, "{}", s[17]);
        // inliers sit near 0.5 or below on average (E[h] ≈ c(ψ))
        let mean = s.iter().sum::<f64>() / s.len() as f64;
        assert!(mean < 0.5, "{mean}");
        // deterministic with a seed, different with another
        assert_eq!(fit_plain(&x, 7).score(&x).unwrap(), s);
        assert_ne!(fit_plain(&x, 8).score(&x).unwrap(), s);
    }

    #[test]
    fn explanation_names_the_isolating_feature() {
        // 256 rows: every tree sees the outlier, which is odd on feature 1 only
        let mut x = blob(256, 4);
        x.data[3 * 5..3 * 5 + 3].copy_from_slice(&[0.0, -9.0, 0.0]);
        let f = fit_plain(&x, 3);
        let s = f.score(&x).unwrap();
        let top = (0..s.len()).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
        assert_eq!(top, 5);
        let e = f.explain(&x, 5, 2).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].feature, "f1");
        assert_eq!(e[0].value, -9.0);
        assert!(e[0].contribution > 2.0 * e[1].contribution, "{e:?}");
    }

    #[test]
    fn flat_layout_matches_a_direct_path_length() {
        // every slot's path length is depth-consistent: a point equal to a
        // training point never gets a path longer than the height limit + c(ψ)
        let x = blob(500, 3);
        let f = fit_plain(&x, 1);
        let h = f.mean_path_lengths(&x);
        let max = f.p.depth as f64 + c_factor(256);
        assert!(h.iter().all(|&v| v > 0.0 && v <= max));
        let params = f.to_params().unwrap();
        let g = load(&params).unwrap();
        assert_eq!(g.score(&x).unwrap(), f.score(&x).unwrap());
    }

    #[test]
    fn splits_carry_their_feature_inside_the_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..20_000 {
            let bits = rng.random_range(5..=6u32);
            let f = rng.random_range(0..1u32 << bits);
            let scale = [1e-30f32, 1e-3, 1.0, 7.5, 1e6, 3e37][rng.random_range(0..6)];
            let a = (rng.random::<f32>() - 0.5) * scale;
            let b = (rng.random::<f32>() - 0.5) * scale;
            let (mn, mx) = (a.min(b), a.max(b));
            if mn >= mx {
                continue;
            }
            let p = (mn + rng.random::<f32>() * (mx - mn)).clamp(mn, mx);
            let p = if p >= mx { mn } else { p };
            let q = carry_feature(p, f, mn, mx, bits);
            assert!(q >= mn && q < mx, "{q} outside [{mn}, {mx})");
            // moved by at most 2·2^bits − 1 ulps (same sign: the bit patterns compare)
            assert!(
                q.to_bits().abs_diff(p.to_bits()) < 2 << bits || q == p,
                "{p} -> {q}"
            );
            // wide ranges always get the feature; only a range of a few ulps may not
            if mx.to_bits().abs_diff(mn.to_bits()) > 400 && mn.signum() == mx.signum() {
                assert_eq!(carried_feature(q, bits), f, "{p} in [{mn}, {mx})");
            }
        }
        // a range one ulp wide keeps its only value
        let mn = 1.0f32;
        let mx = f32::from_bits(mn.to_bits() + 1);
        assert_eq!(carry_feature(mn, 7, mn, mx, 5), mn);
    }

    #[test]
    fn trained_forests_use_the_tree_parallel_layout() {
        // 3 features: every split carries its feature
        let f = fit_plain(&blob(2000, 2), 5);
        assert!(f.flat.has_tree_groups());
        for t in &f.p.trees {
            for (i, (&s, &feat)) in t.split.iter().zip(&t.feature).enumerate() {
                if s != ALWAYS_LEFT {
                    assert_eq!(carried_feature(s as f32, 5), feat, "slot {i}");
                    // a real split still has training rows on both sides
                    assert!(t.count[2 * i + 1] > 0 && t.count[2 * i + 2] > 0, "slot {i}");
                }
            }
        }
        // 40 features: the splits carry 6 bits
        let wide = Matrix::new(
            600,
            40,
            (0..600 * 40)
                .map(|i| ((i * 7919) % 1013) as f64 / 97.0)
                .collect(),
        )
        .unwrap();
        let w = fit_plain(&wide, 3);
        assert!(w.flat.has_tree_groups());
        for t in &w.p.trees {
            for (&s, &feat) in t.split.iter().zip(&t.feature) {
                if s != ALWAYS_LEFT {
                    assert_eq!(carried_feature(s as f32, 6), feat);
                }
            }
        }
        let want = w.mean_path_lengths_with(Kernel::Scalar, &wide);
        for k in Kernel::available() {
            assert_eq!(w.mean_path_lengths_with(k, &wide), want, "{}", k.name());
        }
        // every kernel scores it alike
        let x = blob(300, 6);
        let want = f.mean_path_lengths_with(Kernel::Scalar, &x);
        for k in Kernel::available() {
            assert_eq!(f.mean_path_lengths_with(k, &x), want, "{}", k.name());
        }
    }
}
