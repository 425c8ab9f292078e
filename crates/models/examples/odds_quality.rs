//! Quality of the outlier detectors on the Isolation Forest paper's benchmarks,
//! with the paper's protocol: fit on all rows without labels, score the same
//! rows, mean ± std of ROC-AUC and average precision over seeds.
//!
//! ```text
//! cargo run --release -p palisade-models --example odds_quality -- \
//!     [--data ../shared/data] [--only http,smtp,shuttle] [--methods iforest,pca,autoencoder,ensemble] [--seeds 5]
//! ```
//! http and smtp are staged as raw counts; like the paper (and the Python
//! reference) their features are ln(x + 0.1), here `--log1p all --log-offset 0.1`
//! (an affine map of ln(x + 0.1), which neither iForest nor standardisation sees).

use palisade_core::{ColumnData, ColumnRole, Table};
use palisade_models::metrics::{average_precision, roc_auc};
use palisade_models::TrainOptions;
use std::time::Instant;

fn read_csv(path: &std::path::Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty file")?.split(',').collect();
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); header.len()];
    for (i, line) in lines.enumerate() {
        for (j, v) in line.split(',').enumerate() {
            let x: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{} line {}: `{v}`", path.display(), i + 2))?;
            cols.get_mut(j).ok_or("ragged row")?.push(x);
        }
    }
    let mut t = Table::new();
    for (name, c) in header.iter().zip(cols) {
        let role = if *name == "label" {
            ColumnRole::Label
        } else {
            ColumnRole::Feature
        };
        t.push(name, role, ColumnData::F64(c))
            .map_err(|e| e.to_string())?;
    }
    Ok(t)
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str, d: &str| -> String {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| d.to_string())
    };
    let root = std::path::PathBuf::from(arg(
        "--data",
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data")
            .display()
            .to_string(),
    ));
    let only = arg("--only", "http,smtp,shuttle");
    let methods = arg("--methods", "iforest,pca,autoencoder,ensemble");
    let seeds: u64 = arg("--seeds", "5").parse()?;
    println!("| dataset | method | ROC-AUC | AP | fit s | score s | seeds |");
    println!("|---|---|---|---|---|---|---|");
    for ds in only.split(',') {
        let path = root.join(format!("odds-{ds}")).join(format!("{ds}.csv"));
        let table = read_csv(&path)?;
        let labels: Vec<bool> = match &table.column("label").ok_or("no label column")?.data {
            ColumnData::F64(v) => v.iter().map(|&x| x > 0.5).collect(),
            ColumnData::Str(_) => return Err("text labels".into()),
        };
        let ln = ds == "http" || ds == "smtp";
        for m in methods.split(',') {
            // PCA is deterministic: one run is the mean of any number of seeds.
            let n_seeds = if m == "pca" { 1 } else { seeds };
            let (mut aucs, mut aps, mut fit_s, mut score_s) = (vec![], vec![], 0.0, 0.0);
            for seed in 0..n_seeds {
                let mut o = TrainOptions::new(seed);
                if ln {
                    o.log_cols = vec!["all".into()];
                    o.log_offset = 0.1;
                }
                if m == "ensemble" {
                    o = o.with("members", "iforest,pca,autoencoder");
                }
                // --opt key=value (repeatable): model options, e.g. bottleneck=2
                for (i, a) in args.iter().enumerate() {
                    if a == "--opt" {
                        if let Some((k, v)) = args.get(i + 1).and_then(|kv| kv.split_once('=')) {
                            let v: serde_json::Value = v.parse().unwrap_or_else(|_| v.into());
                            o = o.with(k, v);
                        }
                    }
                }
                let t0 = Instant::now();
                let model = palisade_models::train(m, &table, &o)?;
                fit_s += t0.elapsed().as_secs_f64();
                let t1 = Instant::now();
                let s = model.score_table(&table)?;
                score_s += t1.elapsed().as_secs_f64();
                aucs.push(roc_auc(&s, &labels));
                aps.push(average_precision(&s, &labels));
            }
            let (a, sa) = mean_std(&aucs);
            let (p, sp) = mean_std(&aps);
            let name = if ln {
                format!("{ds} (ln(x+0.1))")
            } else {
                ds.to_string()
            };
            println!(
                "| {name} | {m} | {a:.4} ± {sa:.4} | {p:.3} ± {sp:.3} | {:.3} | {:.3} | {n_seeds} |",
                fit_s / n_seeds as f64,
                score_s / n_seeds as f64
            );
        }
    }
    Ok(())
}
