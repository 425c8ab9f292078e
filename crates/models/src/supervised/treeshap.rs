//! Exact TreeSHAP for the random forest's trees: the Shapley values of one
//! row's prediction, with the cover-weighted training distribution as the
//! background (the path-dependent TreeSHAP of Lundberg, Erion & Lee 2018). The
//! values of a row sum to its prediction minus the tree's mean value (local
//! accuracy), which the tests check. Missing values follow the node's learned
//! NaN direction, exactly as prediction does.
//!
//! Two algorithms give the same values:
//! - [`tree_shap_with`]: Linear TreeSHAP (Yu, Bifet, Read & Xu, "Linear
//!   TreeShap", NeurIPS 2022), O(nodes · depth) per row, what the forest uses.
//!   Each leaf's share of the prediction is a product game: with `p_j` (does
//!   `x` follow every edge on feature `j` to the leaf, 0/1) and `q_j` (the
//!   product of those edges' cover ratios), `v(S) = value · Π_{j ∈ S} p_j ·
//!   Π_{j ∉ S} q_j`, and its Shapley value is `φ_i = value · (p_i − q_i) ·
//!   ∫₀¹ Π_{j ≠ i} (q_j (1 − t) + p_j t) dt` (the Shapley weight
//!   `k!(n−k−1)!/n!` is the Beta integral of `t^k (1 − t)^(n−k−1)`). The
//!   integrand is a polynomial of degree < the distinct features on the
//!   leaf's path, so Gauss–Legendre quadrature at ⌈that count / 2⌉ points is
//!   exact; the values at those points are summed over leaves bottom-up, so
//!   one walk serves every feature. A feature split on twice on one path
//!   telescopes: each edge adds its subtree's sum times the change in
//!   `(p − q) / (q (1 − t) + p t)` from the feature's previous edge. Why
//!   written here: no crate does it, and the paper's own code works with the
//!   polynomials' coefficients, which overflow a double past depth ~12 (its
//!   README); values at points inside (0, 1) do not.
//! - [`tree_shap_path_with`]: Algorithm 2 of Lundberg et al., O(leaves ·
//!   depth²), kept as the published reference that the tests and
//!   `supervised_bench --shap` check the linear one against. On the
//!   full-depth PhishCrawl forest (841k nodes, depth 46) it costs ~0.3 CPU-s a
//!   row, the linear one 67–98 ms.

use super::forest::Tree;

#[derive(Clone, Copy, Default)]
struct PathElement {
    feature: i64,
    zero_fraction: f64,
    one_fraction: f64,
    pweight: f64,
}

fn extend_path(
    path: &mut [PathElement],
    unique_depth: usize,
    zero_fraction: f64,
    one_fraction: f64,
    feature: i64,
) {
    path[unique_depth] = PathElement {
        feature,
        zero_fraction,
        one_fraction,
        pweight: if unique_depth == 0 { 1.0 } else { 0.0 },
    };
    let ud = unique_depth as f64;
    for i in (0..unique_depth).rev() {
        path[i + 1].pweight += one_fraction * path[i].pweight * (i as f64 + 1.0) / (ud + 1.0);
        path[i].pweight = zero_fraction * path[i].pweight * (ud - i as f64) / (ud + 1.0);
    }
}

fn unwind_path(path: &mut [PathElement], unique_depth: usize, path_index: usize) {
    let one_fraction = path[path_index].one_fraction;
    let zero_fraction = path[path_index].zero_fraction;
    let ud = unique_depth as f64;
    let mut next_one_portion = path[unique_depth].pweight;
    for i in (0..unique_depth).rev() {
        if one_fraction != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one_portion * (ud + 1.0) / ((i as f64 + 1.0) * one_fraction);
            next_one_portion = tmp - path[i].pweight * zero_fraction * (ud - i as f64) / (ud + 1.0);
        } else {
            path[i].pweight = path[i].pweight * (ud + 1.0) / (zero_fraction * (ud - i as f64));
        }
    }
    for i in path_index..unique_depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_path_sum(path: &[PathElement], unique_depth: usize, path_index: usize) -> f64 {
    let one_fraction = path[path_index].one_fraction;
    let zero_fraction = path[path_index].zero_fraction;
    let ud = unique_depth as f64;
    let mut next_one_portion = path[unique_depth].pweight;
    let mut total = 0.0;
    for i in (0..unique_depth).rev() {
        if one_fraction != 0.0 {
            let tmp = next_one_portion * (ud + 1.0) / ((i as f64 + 1.0) * one_fraction);
            total += tmp;
            next_one_portion =
                path[i].pweight - tmp * zero_fraction * ((ud - i as f64) / (ud + 1.0));
        } else if zero_fraction != 0.0 {
            total += (path[i].pweight / zero_fraction) / ((ud - i as f64) / (ud + 1.0));
        }
    }
    total
}

/// Per-row working state of the recursion: one arena holds the path of every
/// node on the current root-to-node stack (each node's path sits right after
/// its parent's), so the walk allocates nothing per node, and the arena is
/// reused across the trees of a forest.
struct Walk<'a> {
    tree: &'a Tree,
    x: &'a [f64],
    phi: &'a mut [f64],
    arena: &'a mut Vec<PathElement>,
    /// Nodes visited (for tests: the walk is one visit per node of the tree).
    visits: usize,
}

impl Walk<'_> {
    /// `parent_start..parent_end` is the parent's path in the arena; this
    /// node's path starts at `parent_end` and copies the parent's first
    /// `unique_depth` elements (Algorithm 2's `m` copy).
    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &mut self,
        node: usize,
        mut unique_depth: usize,
        parent_start: usize,
        parent_end: usize,
        parent_zero_fraction: f64,
        parent_one_fraction: f64,
        parent_feature: i64,
    ) {
        let tree = self.tree;
        let Some(n) = tree.nodes.get(node) else {
            return;
        };
        self.visits += 1;
        let start = parent_end;
        let end = start + unique_depth + 2;
        if self.arena.len() < end {
            self.arena.resize(end, PathElement::default());
        }
        let copy = unique_depth.min(parent_end - parent_start);
        self.arena
            .copy_within(parent_start..parent_start + copy, start);
        let path = &mut self.arena[start..end];
        extend_path(
            path,
            unique_depth,
            parent_zero_fraction,
            parent_one_fraction,
            parent_feature,
        );
        if n.is_leaf() {
            // A leaf of value 0 adds exactly 0 to every feature: skip its O(depth²) sums.
            if n.value == 0.0 {
                return;
            }
            for i in 1..=unique_depth {
                let w = unwound_path_sum(path, unique_depth, i);
                let el = path[i];
                if let Some(p) = self.phi.get_mut(el.feature as usize) {
                    *p += w * (el.one_fraction - el.zero_fraction) * n.value;
                }
            }
            return;
        }
        let f = n.feature as usize;
        let xv = self.x.get(f).copied().unwrap_or(f64::NAN);
        let hot = n.child(xv) as usize;
        let cold = if hot == n.left as usize {
            n.right as usize
        } else {
            n.left as usize
        };
        let (Some(h), Some(c)) = (tree.nodes.get(hot), tree.nodes.get(cold)) else {
            return;
        };
        let w = n.cover.max(f64::MIN_POSITIVE);
        let hot_zero = h.cover / w;
        let cold_zero = c.cover / w;
        let mut incoming_zero = 1.0;
        let mut incoming_one = 1.0;
        if let Some(pi) = (0..=unique_depth).find(|&k| path[k].feature == f as i64) {
            incoming_zero = path[pi].zero_fraction;
            incoming_one = path[pi].one_fraction;
            unwind_path(path, unique_depth, pi);
            unique_depth -= 1;
        }
        self.recurse(
            hot,
            unique_depth + 1,
            start,
            end,
            hot_zero * incoming_zero,
            incoming_one,
            f as i64,
        );
        self.recurse(
            cold,
            unique_depth + 1,
            start,
            end,
            cold_zero * incoming_zero,
            0.0,
            f as i64,
        );
    }
}

/// Reusable scratch space for [`tree_shap_with`] and [`tree_shap_path_with`]
/// (one per thread / row loop).
#[derive(Default)]
pub struct ShapScratch {
    /// Algorithm 2's path arena.
    arena: Vec<PathElement>,
    /// Linear: the quadratures made so far, by point count.
    quadratures: Vec<Quadrature>,
    /// Linear: per depth, `m` values each (see [`LinearWalk`]).
    levels: Vec<f64>,
    /// Linear: per feature, its deepest edge on the current path.
    feature_state: Vec<EdgeState>,
    /// Linear: per feature, how many splits on it the current path holds.
    feature_counts: Vec<u32>,
    /// Linear: per feature, its shares at the points.
    shares: Vec<f64>,
}

/// Add the tree's SHAP values for row `x` into `phi` (one slot per feature).
pub fn tree_shap(tree: &Tree, x: &[f64], phi: &mut [f64]) {
    tree_shap_with(tree, x, phi, &mut ShapScratch::default());
}

/// Algorithm 2 of Lundberg et al. (the reference): adds the tree's SHAP values
/// for row `x` into `phi`; returns the number of nodes visited.
pub fn tree_shap_path_with(
    tree: &Tree,
    x: &[f64],
    phi: &mut [f64],
    scratch: &mut ShapScratch,
) -> usize {
    let mut walk = Walk {
        tree,
        x,
        phi,
        arena: &mut scratch.arena,
        visits: 0,
    };
    walk.recurse(0, 0, 0, 0, 1.0, 1.0, -1);
    walk.visits
}

/// Gauss–Legendre points and weights on [0, 1].
#[derive(Default)]
struct Quadrature {
    t: Vec<f64>,
    w: Vec<f64>,
    /// `1 − t` and `1 / (1 − t)` at the points (all inside (0, 1)).
    one_minus_t: Vec<f64>,
    inv_one_minus_t: Vec<f64>,
}

impl Quadrature {
    /// `m` points: exact for polynomials of degree ≤ 2m − 1. Newton's method
    /// on the Legendre polynomial from the usual first guesses (Numerical
    /// Recipes' `gauleg`).
    fn new(m: usize) -> Quadrature {
        let mut t = vec![0.0; m];
        let mut w = vec![0.0; m];
        for i in 0..m.div_ceil(2) {
            let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (m as f64 + 0.5)).cos();
            let mut dp = 1.0;
            for _ in 0..100 {
                let (mut p1, mut p2) = (1.0, 0.0);
                for j in 0..m {
                    let p3 = p2;
                    p2 = p1;
                    p1 = ((2 * j + 1) as f64 * z * p2 - j as f64 * p3) / (j + 1) as f64;
                }
                dp = m as f64 * (z * p1 - p2) / (z * z - 1.0);
                let step = p1 / dp;
                z -= step;
                if step.abs() < 1e-15 {
                    break;
                }
            }
            let wi = 1.0 / ((1.0 - z * z) * dp * dp);
            // z on [-1, 1] to t on [0, 1]; the weights halve
            t[i] = (1.0 - z) / 2.0;
            t[m - 1 - i] = (1.0 + z) / 2.0;
            w[i] = wi;
            w[m - 1 - i] = wi;
        }
        let one_minus_t: Vec<f64> = t.iter().map(|t| 1.0 - t).collect();
        let inv_one_minus_t = one_minus_t.iter().map(|v| 1.0 / v).collect();
        Quadrature {
            t,
            w,
            one_minus_t,
            inv_one_minus_t,
        }
    }
}

/// The tree's depth in edges and the most distinct features on one
/// root-to-leaf path (what sizes the linear walk; see `path_shape`).
pub fn tree_shape(tree: &Tree) -> (usize, usize) {
    path_shape(tree, &mut Vec::new())
}

/// The tree's depth in edges and the most distinct features on one
/// root-to-leaf path (children come after their parent, which
/// `Tree::validate` checks; a child out of order is not followed).
fn path_shape(tree: &Tree, counts: &mut Vec<u32>) -> (usize, usize) {
    fn walk(
        tree: &Tree,
        node: usize,
        depth: usize,
        distinct: usize,
        counts: &mut [u32],
    ) -> (usize, usize) {
        let Some(n) = tree.nodes.get(node).filter(|n| !n.is_leaf()) else {
            return (depth, distinct);
        };
        let Some(count) = counts.get_mut(n.feature as usize) else {
            return (depth, distinct);
        };
        let distinct = distinct + usize::from(*count == 0);
        *count += 1;
        let mut shape = (depth, distinct);
        for c in [n.left as usize, n.right as usize] {
            if c > node {
                let (d, k) = walk(tree, c, depth + 1, distinct, counts);
                shape = (shape.0.max(d), shape.1.max(k));
            }
        }
        counts[n.feature as usize] -= 1;
        shape
    }
    let n_features = tree
        .nodes
        .iter()
        .filter(|n| !n.is_leaf())
        .map(|n| n.feature as usize + 1)
        .max()
        .unwrap_or(0);
    counts.clear();
    counts.resize(n_features, 0);
    walk(tree, 0, 0, 0, counts)
}

/// A feature's deepest edge on the current path: `p` (0 or 1: does `x`
/// follow every edge on the feature so far), `q` (the product of their cover
/// ratios), and where `1 / g(t)` for it is kept when `p` is 1.
#[derive(Clone, Copy)]
struct EdgeState {
    p: f64,
    q: f64,
    inv_g_level: usize,
}

/// No edge yet: `p = q = 1`, so `g = 1` (level 0 of the `1 / g` values holds ones).
const NO_EDGE: EdgeState = EdgeState {
    p: 1.0,
    q: 1.0,
    inv_g_level: 0,
};

/// Linear TreeSHAP (see the module's notes): adds the tree's SHAP values for
/// row `x` into `phi` (one slot per feature; a feature past its end is
/// dropped); returns the number of nodes visited, one per node reached.
pub fn tree_shap_with(tree: &Tree, x: &[f64], phi: &mut [f64], scratch: &mut ShapScratch) -> usize {
    let (depth, distinct) = path_shape(tree, &mut scratch.feature_counts);
    // a leaf's polynomial has one factor per distinct feature on its path,
    // so each φ integrand has degree ≤ distinct − 1 ≤ 2m − 1
    let m = distinct.div_ceil(2).max(1);
    // a forest's trees differ in `m`: each count's points are made once
    if scratch.quadratures.len() <= m {
        scratch.quadratures.resize_with(m + 1, Quadrature::default);
    }
    if scratch.quadratures[m].t.len() != m {
        scratch.quadratures[m] = Quadrature::new(m);
    }
    let n_features = scratch.feature_counts.len();
    // every value the walk reads it has written first (but level 0's below)
    let needed = LEVEL_ROWS * (depth + 2) * m;
    if scratch.levels.len() < needed {
        scratch.levels.resize(needed, 0.0);
    }
    scratch.feature_state.clear();
    scratch.feature_state.resize(n_features, NO_EDGE);
    scratch.shares.clear();
    scratch.shares.resize(n_features * m, 0.0);
    let mut walk = LinearWalk {
        tree,
        x,
        m,
        q: &scratch.quadratures[m],
        levels: &mut scratch.levels,
        feature_state: &mut scratch.feature_state,
        shares: &mut scratch.shares,
        visits: 0,
    };
    // the empty path's polynomial is 1, and so is level 0's `1 / g`
    walk.levels[PATH * m..(PATH + 1) * m].fill(1.0);
    walk.levels[INV_G * m..(INV_G + 1) * m].fill(1.0);
    walk.visit(0, 0);
    let visits = walk.visits;
    // the integral: each feature's values at the points, weighted
    for (slot, shares) in phi.iter_mut().zip(scratch.shares.chunks_exact(m)) {
        *slot += shares
            .iter()
            .zip(&scratch.quadratures[m].w)
            .map(|(s, w)| s * w)
            .sum::<f64>();
    }
    visits
}

/// Where each of a level's rows of `m` values starts (see [`Level`]).
const PATH: usize = 0;
const SUM: usize = 1;
const INV_G: usize = 2;
const LEVEL_ROWS: usize = 5;

/// One level's rows, borrowed apart: the path polynomial at the points, the
/// subtree's sum of leaf value × path polynomial, `1 / g` of the edge into the
/// level when its `p` is 1, and the node's previous-edge terms (`1 / g_prev`
/// and `(p_prev − q_prev) / g_prev`).
struct Level<'a> {
    path: &'a mut [f64],
    sum: &'a mut [f64],
    inv_g: &'a mut [f64],
    inv_g_prev: &'a mut [f64],
    m_prev: &'a mut [f64],
}

impl<'a> Level<'a> {
    #[inline(always)]
    fn split(rows: &'a mut [f64], m: usize) -> Level<'a> {
        let (path, rest) = rows.split_at_mut(m);
        let (sum, rest) = rest.split_at_mut(m);
        let (inv_g, rest) = rest.split_at_mut(m);
        let (inv_g_prev, rest) = rest.split_at_mut(m);
        Level {
            path,
            sum,
            inv_g,
            inv_g_prev,
            m_prev: &mut rest[..m],
        }
    }
}

struct LinearWalk<'a> {
    tree: &'a Tree,
    x: &'a [f64],
    /// Quadrature points.
    m: usize,
    q: &'a Quadrature,
    levels: &'a mut [f64],
    feature_state: &'a mut [EdgeState],
    /// Per feature, its shares at the points (weighted and summed at the end:
    /// element-wise here, so the loops have no chain of additions).
    shares: &'a mut [f64],
    visits: usize,
}

impl LinearWalk<'_> {
    /// Fills level's `SUM` with Σ over the leaves under `node` of value × path
    /// polynomial, from level's `PATH` (the node's path polynomial), adding
    /// each edge's share into `shares` on the way back up.
    ///
    /// Why the cases: with `p` 0 or 1, `g(t) = q (1 − t) + p t` is `q (1 − t)`
    /// on an edge `x` does not follow (its `(p − q) / g` is `−1 / (1 − t)`, the
    /// same for every such edge) and `q + (1 − q) t` on one it does; only the
    /// latter needs a division per point, and its `1 / g` is kept for the
    /// feature's next edge below, so a node pays at most `m` divisions.
    fn visit(&mut self, node: usize, level: usize) {
        let m = self.m;
        let rows = LEVEL_ROWS * m;
        let base = level * rows;
        let Some(n) = self.tree.nodes.get(node) else {
            self.levels[base + SUM * m..base + (SUM + 1) * m].fill(0.0);
            return;
        };
        self.visits += 1;
        let f = n.feature as usize;
        let state = if n.is_leaf() {
            None
        } else {
            self.feature_state.get(f).copied()
        };
        let Some(prev) = state else {
            // a leaf (or a split on a feature the tree does not know: nothing below counts)
            let v = if n.is_leaf() { n.value } else { 0.0 };
            let here = Level::split(&mut self.levels[base..base + rows], m);
            here.sum
                .iter_mut()
                .zip(&*here.path)
                .for_each(|(s, p)| *s = v * p);
            return;
        };
        let q = self.q;
        // this node's previous-edge terms, shared by both children
        {
            let (before, rest) = self.levels.split_at_mut(base);
            let here = Level::split(&mut rest[..rows], m);
            here.sum.fill(0.0);
            if prev.p == 0.0 {
                let inv_q = 1.0 / prev.q;
                for ((g, mp), inv_omt) in here
                    .inv_g_prev
                    .iter_mut()
                    .zip(here.m_prev.iter_mut())
                    .zip(&q.inv_one_minus_t)
                {
                    *g = inv_omt * inv_q;
                    *mp = -inv_omt;
                }
            } else {
                // p = 1: `1 / g` was kept at the previous edge's level (level 0: ones)
                let kept: &[f64] = if prev.inv_g_level == level {
                    here.inv_g
                } else {
                    let start = prev.inv_g_level * rows + INV_G * m;
                    &before[start..start + m]
                };
                let one_minus_q = 1.0 - prev.q;
                for ((g, mp), kept) in here
                    .inv_g_prev
                    .iter_mut()
                    .zip(here.m_prev.iter_mut())
                    .zip(kept)
                {
                    *g = *kept;
                    *mp = one_minus_q * kept;
                }
            }
        }
        let hot = n.child(self.x.get(f).copied().unwrap_or(f64::NAN)) as usize;
        let cover = n.cover.max(f64::MIN_POSITIVE);
        for child in [n.left as usize, n.right as usize] {
            // children come after their parent (Tree::validate); anything
            // else would not end
            let Some(c) = self.tree.nodes.get(child).filter(|_| child > node) else {
                continue;
            };
            let p = if child == hot { prev.p } else { 0.0 };
            let q_edge = prev.q * (c.cover / cover);
            if q_edge == 0.0 && p == 0.0 {
                // every leaf below is worth 0 whatever the coalition
                continue;
            }
            {
                let (here, below) = self.levels[base..base + 2 * rows].split_at_mut(rows);
                let here = Level::split(here, m);
                let below = Level::split(below, m);
                let into = here.path.iter().zip(&*here.inv_g_prev);
                if p == 0.0 {
                    for ((child_path, (path, inv_g_prev)), omt) in
                        below.path.iter_mut().zip(into).zip(&q.one_minus_t)
                    {
                        *child_path = path * (q_edge * omt) * inv_g_prev;
                    }
                } else {
                    let one_minus_q = 1.0 - q_edge;
                    for (((child_path, inv_g), (path, inv_g_prev)), t) in below
                        .path
                        .iter_mut()
                        .zip(below.inv_g.iter_mut())
                        .zip(into)
                        .zip(&q.t)
                    {
                        let g = q_edge + one_minus_q * t;
                        *child_path = path * g * inv_g_prev;
                        *inv_g = 1.0 / g;
                    }
                }
            }
            self.feature_state[f] = EdgeState {
                p,
                q: q_edge,
                inv_g_level: level + 1,
            };
            self.visit(child, level + 1);
            self.feature_state[f] = prev;
            // this edge's share: the subtree's sum times the change in
            // (p − q) / g from the feature's previous edge (0 for the first)
            let (here, below) = self.levels[base..base + 2 * rows].split_at_mut(rows);
            let here = Level::split(here, m);
            let below = Level::split(below, m);
            let shares = &mut self.shares[f * m..(f + 1) * m];
            let terms = below.sum.iter().zip(&*here.m_prev);
            if p == 0.0 {
                for (((share, sum), (s, m_prev)), inv_omt) in shares
                    .iter_mut()
                    .zip(here.sum.iter_mut())
                    .zip(terms)
                    .zip(&q.inv_one_minus_t)
                {
                    *share += s * (-inv_omt - m_prev);
                    *sum += s;
                }
            } else {
                let one_minus_q = 1.0 - q_edge;
                for (((share, sum), (s, m_prev)), inv_g) in shares
                    .iter_mut()
                    .zip(here.sum.iter_mut())
                    .zip(terms)
                    .zip(&*below.inv_g)
                {
                    *share += s * (one_minus_q * inv_g - m_prev);
                    *sum += s;
                }
            }
        }
    }
}

/// The tree's expected value over its training cover (the SHAP base value).
pub fn expected_value(tree: &Tree) -> f64 {
    tree.nodes.first().map(|n| n.value).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::super::forest::{Forest, ForestParams};
    use super::*;
    use palisade_core::Matrix;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `n` rows of `d` values from `draw`, column `nan_col` missing with
    /// probability `nan_share`, each labelled by `label` (which may draw noise).
    fn labelled_rows(
        seed: u64,
        (n, d): (usize, usize),
        (nan_col, nan_share): (usize, f64),
        draw: impl Fn(&mut ChaCha8Rng) -> f64,
        label: impl Fn(&[f64], &mut ChaCha8Rng) -> bool,
    ) -> (Matrix, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut data = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let row: Vec<f64> = (0..d)
                .map(|j| {
                    if j == nan_col && rng.random::<f64>() < nan_share {
                        f64::NAN
                    } else {
                        draw(&mut rng)
                    }
                })
                .collect();
            y.push(f64::from(u8::from(label(&row, &mut rng))));
            data.extend(row);
        }
        (Matrix::new(n, d, data).unwrap(), y)
    }

    #[test]
    fn shap_values_add_up_to_the_prediction() {
        let (n, d) = (400, 5);
        let (x, y) = labelled_rows(
            3,
            (n, d),
            (4, 0.3),
            |rng| rng.random::<f64>(),
            |row, _| row[0] + 0.5 * row[1] + if row[4].is_nan() { 0.3 } else { 0.0 } > 0.8,
        );
        let f = Forest::fit(
            &x,
            &y,
            &ForestParams {
                n_trees: 5,
                max_depth: Some(6),
                ..Default::default()
            },
        )
        .unwrap();
        for i in 0..20 {
            for t in &f.trees {
                let mut phi = vec![0.0; d];
                tree_shap(t, x.row(i), &mut phi);
                let sum: f64 = phi.iter().sum::<f64>() + expected_value(t);
                assert!(
                    (sum - t.predict_row(x.row(i))).abs() < 1e-9,
                    "row {i}: {sum} vs {}",
                    t.predict_row(x.row(i))
                );
            }
        }
        // Feature 3 carries no signal: its attribution is small next to feature 0's.
        let mut phi = vec![0.0; d];
        for i in 0..n {
            let mut p = vec![0.0; d];
            tree_shap(&f.trees[0], x.row(i), &mut p);
            phi.iter_mut().zip(&p).for_each(|(a, b)| *a += b.abs());
        }
        assert!(phi[0] > 3.0 * phi[3], "{phi:?}");
    }

    /// E[f(x) | x_S] under the cover-weighted background (the quantity TreeSHAP's
    /// Shapley values are defined over): follow `x` on features in `s`, average
    /// both children by cover on the others.
    fn cond_expectation(t: &Tree, x: &[f64], s: u32, node: usize) -> f64 {
        let n = &t.nodes[node];
        if n.is_leaf() {
            return n.value;
        }
        let f = n.feature as usize;
        if s & (1 << f) != 0 {
            return cond_expectation(t, x, s, n.child(x[f]) as usize);
        }
        let (l, r) = (n.left as usize, n.right as usize);
        let w = n.cover.max(f64::MIN_POSITIVE);
        (t.nodes[l].cover * cond_expectation(t, x, s, l)
            + t.nodes[r].cover * cond_expectation(t, x, s, r))
            / w
    }

    /// Shapley values by enumerating every coalition (exponential; reference only).
    fn brute_force_shap(t: &Tree, x: &[f64], d: usize) -> Vec<f64> {
        let fact = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
        (0..d)
            .map(|i| {
                let mut phi = 0.0;
                for s in 0u32..(1 << d) {
                    if s & (1 << i) != 0 {
                        continue;
                    }
                    let k = s.count_ones() as usize;
                    let weight = fact(k) * fact(d - k - 1) / fact(d);
                    phi += weight
                        * (cond_expectation(t, x, s | (1 << i), 0) - cond_expectation(t, x, s, 0));
                }
                phi
            })
            .collect()
    }

    #[test]
    fn shap_values_equal_brute_force_shapley_values_and_visit_each_node_once() {
        let (n, d) = (300, 5);
        let (x, y) = labelled_rows(
            11,
            (n, d),
            (2, 0.2),
            |rng| (rng.random::<f64>() * 8.0).floor(),
            |row, rng| {
                let s = row[0] + row[1] - if row[2].is_nan() { 3.0 } else { row[2] };
                s + rng.random::<f64>() * 4.0 > 7.0
            },
        );
        let f = Forest::fit(
            &x,
            &y,
            &ForestParams {
                n_trees: 4,
                max_depth: Some(7),
                mtry: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
        let mut scratch = ShapScratch::default();
        for i in 0..25 {
            for t in &f.trees {
                let mut phi = vec![0.0; d];
                let visits = tree_shap_with(t, x.row(i), &mut phi, &mut scratch);
                // One walk over the tree per row: no node is visited twice.
                assert_eq!(visits, t.nodes.len(), "row {i}");
                let want = brute_force_shap(t, x.row(i), d);
                for j in 0..d {
                    assert!(
                        (phi[j] - want[j]).abs() < 1e-12,
                        "row {i} feature {j}: {} vs brute force {}",
                        phi[j],
                        want[j]
                    );
                }
                // The one-shot entry point gives the same values as the scratch one.
                let mut again = vec![0.0; d];
                tree_shap(t, x.row(i), &mut again);
                assert_eq!(again, phi);
                // and so does the published algorithm, visiting the same nodes
                let mut path = vec![0.0; d];
                let path_visits = tree_shap_path_with(t, x.row(i), &mut path, &mut scratch);
                assert_eq!(path_visits, t.nodes.len(), "row {i}");
                for j in 0..d {
                    assert!(
                        (path[j] - want[j]).abs() < 1e-12,
                        "row {i} feature {j}: Algorithm 2 {} vs brute force {}",
                        path[j],
                        want[j]
                    );
                }
            }
        }
    }

    /// Full-depth trees on few features split on each feature many times on
    /// one path (the telescoping case) and reach depths where Algorithm 2's
    /// sums are long: both algorithms agree there, and the values add up.
    #[test]
    fn linear_and_path_algorithms_agree_on_deep_trees_with_repeated_features() {
        // an odd feature count: one quadrature point fewer than needed fails
        let (n, d) = (3000, 5);
        // a label the trees can only carve out with many splits per feature
        let (x, y) = labelled_rows(
            5,
            (n, d),
            (3, 0.25),
            |rng| rng.random::<f64>(),
            |row, rng| (row[0] * 9.0).sin() + (row[1] * 7.0).cos() + rng.random::<f64>() > 0.9,
        );
        let f = Forest::fit(
            &x,
            &y,
            &ForestParams {
                n_trees: 3,
                max_depth: None,
                ..Default::default()
            },
        )
        .unwrap();
        let mut scratch = ShapScratch::default();
        let mut deepest = 0;
        for t in &f.trees {
            let (depth, distinct) = path_shape(t, &mut scratch.feature_counts);
            assert!(
                distinct <= d,
                "{distinct} distinct features on a path of {d}"
            );
            deepest = deepest.max(depth);
            for i in (0..n).step_by(97) {
                let (mut lin, mut path) = (vec![0.0; d], vec![0.0; d]);
                tree_shap_with(t, x.row(i), &mut lin, &mut scratch);
                tree_shap_path_with(t, x.row(i), &mut path, &mut scratch);
                for j in 0..d {
                    assert!(
                        (lin[j] - path[j]).abs() < 1e-9,
                        "depth {depth}, row {i}, feature {j}: linear {} vs Algorithm 2 {}",
                        lin[j],
                        path[j]
                    );
                }
                let sum: f64 = lin.iter().sum::<f64>() + expected_value(t);
                assert!((sum - t.predict_row(x.row(i))).abs() < 1e-9, "row {i}");
            }
        }
        // deep enough that every feature repeats many times on a path
        assert!(deepest > 3 * d, "deepest tree {deepest}");
    }

    #[test]
    fn quadrature_integrates_polynomials_up_to_its_degree_exactly() {
        for m in 1..40 {
            let q = Quadrature::new(m);
            // ∫₀¹ t^k dt = 1 / (k + 1), for every k ≤ 2m − 1
            for k in 0..2 * m {
                let got: f64 =
                    q.t.iter()
                        .zip(&q.w)
                        .map(|(t, w)| w * t.powi(k as i32))
                        .sum();
                assert!(
                    (got - 1.0 / (k + 1) as f64).abs() < 1e-13,
                    "{m} points, degree {k}: {got}"
                );
            }
            assert!(q.t.iter().all(|&t| t > 0.0 && t < 1.0), "{m}: {:?}", q.t);
        }
    }
}
