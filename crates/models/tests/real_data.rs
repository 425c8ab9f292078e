//! Detectors on real data: a shuttle subsample (ODDS, the Isolation Forest
//! paper's benchmark) read from ../shared/data at test time. Floors are well
//! below the measured values (full data, 5 seeds: iForest 0.997, PCA 0.99 —
//! see the crate README) so that they catch a broken detector, not noise.

use palisade_core::{ColumnData, ColumnRole, Table};
use palisade_models::metrics::{average_precision, roc_auc};
use palisade_models::TrainOptions;

fn shuttle_every(k: usize) -> Option<(Table, Vec<bool>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/odds-shuttle/shuttle.csv");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            // CI has the data at the same place; say loudly when it is missing.
            eprintln!("SKIPPED: {} not readable: {e}", path.display());
            return None;
        }
    };
    let mut lines = text.lines();
    let header: Vec<String> = lines.next()?.split(',').map(str::to_string).collect();
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); header.len()];
    for line in lines.step_by(k) {
        for (j, v) in line.split(',').enumerate() {
            cols[j].push(v.trim().parse().expect("shuttle.csv holds numbers"));
        }
    }
    let mut t = Table::new();
    let mut labels = Vec::new();
    for (name, c) in header.iter().zip(cols) {
        if name == "label" {
            labels = c.iter().map(|&v| v > 0.5).collect();
            t.push(name, ColumnRole::Label, ColumnData::F64(c)).unwrap();
        } else {
            t.push(name, ColumnRole::Feature, ColumnData::F64(c))
                .unwrap();
        }
    }
    Some((t, labels))
}

#[test]
fn shuttle_subsample_auc_above_floor() {
    let Some((t, labels)) = shuttle_every(5) else {
        return;
    };
    assert!(t.nrows() > 9000);
    for (kind, floor) in [("iforest", 0.95), ("pca", 0.93), ("ensemble", 0.95)] {
        let m = palisade_models::train(kind, &t, &TrainOptions::new(0)).unwrap();
        let s = m.score_table(&t).unwrap();
        let auc = roc_auc(&s, &labels);
        let ap = average_precision(&s, &labels);
        eprintln!("shuttle/5 {kind}: AUC {auc:.4} AP {ap:.4}");
        assert!(auc > floor, "{kind}: AUC {auc} below {floor}");
    }
    // Default options (dropout 0.2, PyOD's budget): 0.986 ± 0.004 over 5 seeds
    // on the full data, PyOD's AutoEncoder 0.958. The floor catches a broken
    // network or a regression of the defaults, not seed noise.
    let m = palisade_models::train("autoencoder", &t, &TrainOptions::new(0)).unwrap();
    let auc = roc_auc(&m.score_table(&t).unwrap(), &labels);
    eprintln!("shuttle/5 autoencoder: AUC {auc:.4}");
    assert!(auc > 0.9, "autoencoder: AUC {auc}");
}
