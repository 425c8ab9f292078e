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

#[allow(clippy::too_many_arguments)]
fn recurse(
    tree: &Tree,
    x: &[f64],
    phi: &mut [f64],
    node: usize,
    mut unique_depth: usize,
    parent_path: &[PathElement],
    parent_zero_fraction: f64,
    parent_one_fraction: f64,
    parent_feature: i64,
) {
    let Some(n) = tree.nodes.get(node) else {
        return;
    };
    let mut path = Vec::with_capacity(unique_depth + 2);
    path.extend_from_slice(&parent_path[..unique_depth.min(parent_path.len())]);
    path.resize(unique_depth + 2, PathElement::default());
    extend_path(
        &mut path,
        unique_depth,
        parent_zero_fraction,
        parent_one_fraction,
        parent_feature,
    );
    if n.is_leaf() {
        for i in 1..=unique_depth {
            let w = unwound_path_sum(&path, unique_depth, i);
            let el = path[i];
            if let Some(p) = phi.get_mut(el.feature as usize) {
                *p += w * (el.one_fraction - el.zero_fraction) * n.value;
            }
        }
        return;
    }
    let f = n.feature as usize;
    let xv = x.get(f).copied().unwrap_or(f64::NAN);
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
        unwind_path(&mut path, unique_depth, pi);
        unique_depth -= 1;
    }
    recurse(
        tree,
        x,
        phi,
        hot,
        unique_depth + 1,
        &path,
        hot_zero * incoming_zero,
        incoming_one,
        f as i64,
    );
    recurse(
        tree,
        x,
        phi,
        cold,
        unique_depth + 1,
        &path,
        cold_zero * incoming_zero,
        0.0,
        f as i64,
    );
}

/// Add the tree's SHAP values for row `x` into `phi` (one slot per feature).
pub fn tree_shap(tree: &Tree, x: &[f64], phi: &mut [f64]) {
    recurse(tree, x, phi, 0, 0, &[], 1.0, 1.0, -1);
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
}
