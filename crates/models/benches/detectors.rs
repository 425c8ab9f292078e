//! Speed of the outlier detectors on the reference workload of
//! `../shared/bench/ref_speed.py`: 1M × 20 standard-normal rows with 1 %
//! uniform outliers; Isolation Forest with 100 trees and ψ = 256 (fit and
//! score), PCA fit. `cargo bench -p palisade-models --bench detectors`.
//! Throughput is reported by criterion in rows/s (elements/s).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use palisade_core::{ColumnData, ColumnRole, Matrix, Table};
use palisade_models::{fit_detector, TrainData, TrainOptions};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N: usize = 1_000_000;
const D: usize = 20;

fn data() -> (Table, Matrix) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut cols: Vec<Vec<f64>> = (0..D).map(|_| Vec::with_capacity(N)).collect();
    for i in 0..N {
        let outlier = i % 100 == 0;
        for c in cols.iter_mut() {
            // Box–Muller normal; outliers uniform in [-6, 6]
            let v = if outlier {
                rng.random::<f64>() * 12.0 - 6.0
            } else {
                let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
                (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            };
            c.push(v as f32 as f64);
        }
    }
    let mut t = Table::new();
    for (j, c) in cols.into_iter().enumerate() {
        t.push(&format!("f{j}"), ColumnRole::Feature, ColumnData::F64(c))
            .unwrap();
    }
    let m = t.numeric_matrix(&t.feature_schema()).unwrap();
    (t, m)
}

fn bench(c: &mut Criterion) {
    let (table, x) = data();
    let mut g = c.benchmark_group("1M x 20");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    let opts = TrainOptions::new(1);
    let names: Vec<String> = (0..D).map(|j| format!("f{j}")).collect();
    let td = TrainData {
        x: x.clone(),
        names,
        labels: None,
        validation: None,
        opts: &opts,
    };
    // fit alone (sklearn's `fit`), then the whole `train` (adds scoring the
    // training rows for the threshold and per-column statistics)
    g.bench_function("iforest fit", |b| {
        b.iter(|| fit_detector("iforest", &td).unwrap())
    });
    g.bench_function("iforest train (fit+threshold+stats)", |b| {
        b.iter(|| palisade_models::train("iforest", &table, &opts).unwrap())
    });
    let model = palisade_models::train("iforest", &table, &opts).unwrap();
    g.bench_function("iforest score", |b| {
        b.iter(|| model.detector.score(&x).unwrap())
    });
    g.bench_function("pca fit", |b| b.iter(|| fit_detector("pca", &td).unwrap()));
    let pca = palisade_models::train("pca", &table, &opts).unwrap();
    g.bench_function("pca score", |b| b.iter(|| pca.detector.score(&x).unwrap()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
