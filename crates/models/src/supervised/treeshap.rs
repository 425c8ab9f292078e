//! Exact TreeSHAP (Lundberg, Erion & Lee 2018, "Consistent individualized
//! feature attribution for tree ensembles", Algorithm 2) for the random
//! forest's trees: the Shapley values of one row's prediction, with the
//! cover-weighted training distribution as the background. The values of a
//! row sum to its prediction minus the tree's mean value (local accuracy),
//! which the tests check. Missing values follow the node's learned NaN
//! direction, exactly as prediction does.

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

/// Reusable scratch space for [`tree_shap_with`] (one per thread / row loop).
#[derive(Default)]
pub struct ShapScratch {
    arena: Vec<PathElement>,
}

/// Add the tree's SHAP values for row `x` into `phi` (one slot per feature).
pub fn tree_shap(tree: &Tree, x: &[f64], phi: &mut [f64]) {
    tree_shap_with(tree, x, phi, &mut ShapScratch::default());
}

/// [`tree_shap`] with caller-held scratch space; returns the number of nodes visited.
pub fn tree_shap_with(tree: &Tree, x: &[f64], phi: &mut [f64], scratch: &mut ShapScratch) -> usize {
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

    #[test]
    fn shap_values_add_up_to_the_prediction() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n = 400;
        let d = 5;
        let mut data = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let row: Vec<f64> = (0..d)
                .map(|j| {
                    if j == 4 && rng.random::<f64>() < 0.3 {
                        f64::NAN
                    } else {
                        rng.random::<f64>()
                    }
                })
                .collect();
            let label = if row[0] + 0.5 * row[1] + if row[4].is_nan() { 0.3 } else { 0.0 } > 0.8 {
                1.0
            } else {
                0.0
            };
            y.push(label);
            data.extend(row);
        }
        let x = Matrix::new(n, d, data).unwrap();
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
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (n, d) = (300, 5);
        let mut data = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let row: Vec<f64> = (0..d)
                .map(|j| {
                    if j == 2 && rng.random::<f64>() < 0.2 {
                        f64::NAN
                    } else {
                        (rng.random::<f64>() * 8.0).floor()
                    }
                })
                .collect();
            let s = row[0] + row[1] - if row[2].is_nan() { 3.0 } else { row[2] };
            y.push(if s + rng.random::<f64>() * 4.0 > 7.0 {
                1.0
            } else {
                0.0
            });
            data.extend(row);
        }
        let x = Matrix::new(n, d, data).unwrap();
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
            }
        }
    }
}
