//! Isolation Forest fit and scoring throughput, and PCA fit, on 1M × 20 rows (the workload of
//! `../shared/bench/ref_speed.py`), without criterion's repetitions:
//! `RAYON_NUM_THREADS=1 cargo run --release -p palisade-models --example iforest_speed [ROWS [COLUMNS]]`.

use palisade_core::Matrix;
use palisade_models::iforest::{IsolationForest, Kernel};
use palisade_models::preprocess::Preprocess;
use palisade_models::{fit_detector, TrainData, TrainOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

fn names_of(d: usize) -> Vec<String> {
    (0..d).map(|j| format!("f{j}")).collect()
}

/// A forest of `trees` trees (ψ = 256, seed 0) on `x`, as `iforest` trains.
fn fit_forest(x: &Matrix, trees: usize) -> Result<IsolationForest, Box<dyn std::error::Error>> {
    let prep = Preprocess::fit(x, &names_of(x.cols), &[], 1.0, false)?.0;
    Ok(IsolationForest::fit_matrix(
        x,
        trees,
        256,
        0,
        prep,
        Vec::new(),
        |_| {},
    )?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let d: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let data: Vec<f64> = (0..n * d)
        .map(|i| {
            if (i / d).is_multiple_of(100) {
                rng.random::<f64>() * 12.0 - 6.0
            } else {
                let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
                (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            }
        })
        .map(|v| v as f32 as f64)
        .collect();
    let x = Matrix::new(n, d, data)?;
    let opts = TrainOptions::new(1);
    let td = TrainData {
        x: x.clone(),
        names: names_of(d),
        labels: None,
        validation: None,
        opts: &opts,
    };
    let t0 = Instant::now();
    let det = fit_detector("iforest", &td)?;
    let fit = t0.elapsed().as_secs_f64();
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t1 = Instant::now();
        let s = det.score(&x)?;
        best = best.min(t1.elapsed().as_secs_f64());
        assert_eq!(s.len(), n);
    }
    // The scoring kernels side by side on the same forest (the same numbers).
    let forest = fit_forest(&x, 100)?;
    // One row at a time, as the gate scores a request.
    let singles: Vec<Matrix> = (0..20_000.min(n))
        .map(|r| Matrix::new(1, d, x.row(r).to_vec()))
        .collect::<Result<_, _>>()?;
    let mut reference: Option<Vec<f64>> = None;
    for k in Kernel::available() {
        let mut best_k = f64::INFINITY;
        let mut h = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            h = forest.mean_path_lengths_with(k, &x);
            best_k = best_k.min(t.elapsed().as_secs_f64());
        }
        match &reference {
            None => reference = Some(h),
            Some(r) => assert_eq!(r, &h, "kernel {} differs", k.name()),
        }
        let t = Instant::now();
        for m in &singles {
            std::hint::black_box(forest.mean_path_lengths_with(k, m));
        }
        let one = t.elapsed().as_secs_f64() / singles.len() as f64;
        println!(
            "iforest kernel {:>6}: score {best_k:.3}s = {:.0} rows/s; one row alone {:.2} µs",
            k.name(),
            n as f64 / best_k,
            one * 1e6
        );
    }
    // About the cost besides the walk (preprocessing into blocks in the
    // layout the kernel reads, the score vector): one tree instead of 100,
    // with the scalar kernel (column-major blocks) and the fastest one
    // (row-major blocks for the tree-parallel kernel).
    let one_tree = fit_forest(&x, 1)?;
    let mut kernels = vec![Kernel::Scalar];
    if Kernel::best() != Kernel::Scalar {
        kernels.push(Kernel::best());
    }
    for k in kernels {
        let mut best_1 = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            std::hint::black_box(one_tree.mean_path_lengths_with(k, &x));
            best_1 = best_1.min(t.elapsed().as_secs_f64());
        }
        println!(
            "iforest with 1 tree, {} kernel (about the preprocessing): {best_1:.3}s",
            k.name()
        );
    }
    let t2 = Instant::now();
    let pca = fit_detector("pca", &td)?;
    let pca_fit = t2.elapsed().as_secs_f64();
    let t3 = Instant::now();
    pca.score(&x)?;
    println!(
        "pca {n}x{d}: fit {pca_fit:.3}s, score {:.3}s",
        t3.elapsed().as_secs_f64()
    );
    println!(
        "iforest {n}x{d}: fit {fit:.3}s, score {best:.3}s = {:.0} rows/s ({} rayon threads)",
        n as f64 / best,
        rayon::current_num_threads()
    );
    // Peak resident memory of the whole run (the 1M × 20 f64 input alone is
    // 160 MB, and the example holds a second copy for the kernel comparison).
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!(
                "peak RSS (VmHWM): {}",
                l.trim_start_matches("VmHWM:").trim()
            );
        }
    }
    Ok(())
}
