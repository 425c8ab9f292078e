//! Supervised benchmark on real data, side by side with the Python references.
//!
//! ```text
//! cargo run --release -p palisade-models --example supervised_bench -- \
//!     [--data ../shared/data] [--datasets nsl-kdd,zeek,url] [--models gbt,rf] \
//!     [--threads 1] [--dump DIR] [--shap ROWS]
//! ```
//!
//! Splits (documented so the references use the very same rows):
//! - `nsl-kdd`: `KDDTrain+_20Percent.txt` (the only staged file; no test file
//!   exists, so `ref_supervised.py` skips NSL-KDD). Row i (0-based, file
//!   order) is a test row when `i % 10 >= 7` (30 %), else a training row.
//!   Label: attack != `normal`. Difficulty dropped. protocol_type, service,
//!   flag are categorical.
//! - `zeek`: Stratosphere labelled Zeek conn logs; train on
//!   `008-zeek-mixed` (CTU-Normal-40, day 1), test on `010-zeek-mixed`
//!   (CTU-Normal-42, day 2): a split in time and capture. Benign = 0,
//!   Malicious = 1, Background rows left out. Per-flow features: responder
//!   port, proto/service/conn_state/history (categorical), duration, byte and
//!   packet counts, local_orig/local_resp. Addresses and uids are identity,
//!   never inputs.
//! - `url`: PhishCrawl train → dev, Franc et al. URL features from
//!   `palisade_features::url_features_table` (the URL itself is identity).
//!
//! Each (dataset, model) line gives the test ROC-AUC / PR-AUC / TPR at FPR
//! 1 % and 0.1 % of the trees fitted on the whole training split (no holdout,
//! no calibration: exactly what the references fit), their fit time and the
//! process's peak RSS during the fit; then the same for the product path
//! (`registry::train`: 20 % calibration holdout, Platt, threshold at FPR 1 %
//! on the holdout) with the confusion matrix on the test split.
//!
//! `--shap ROWS` (rf): after the trees-only fit, the TreeSHAP values of the
//! first ROWS test rows by Linear TreeSHAP (what `palisade score --explain`
//! uses) and by Algorithm 2 of Lundberg et al. (the published reference),
//! side by side on one thread: ms a row each, their ratio, the largest
//! difference between the two, and the forest's depth.
//!
//! `--dump DIR` writes `DIR/<dataset>_{train,test}.csv` (features after
//! category coding, label last) for `benches/ref_same_split.py`.

use palisade_core::{ColumnData, ColumnRole, Table};
use palisade_models::metrics::EvalReport;
use palisade_models::registry::{label_values, select_features};
use palisade_models::supervised::encode::CategoryCodes;
use palisade_models::supervised::FitSpec;
use palisade_models::{ThresholdRule, TrainOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const NSL_COLUMNS: [&str; 43] = [
    "duration",
    "protocol_type",
    "service",
    "flag",
    "src_bytes",
    "dst_bytes",
    "land",
    "wrong_fragment",
    "urgent",
    "hot",
    "num_failed_logins",
    "logged_in",
    "num_compromised",
    "root_shell",
    "su_attempted",
    "num_root",
    "num_file_creations",
    "num_shells",
    "num_access_files",
    "num_outbound_cmds",
    "is_host_login",
    "is_guest_login",
    "count",
    "srv_count",
    "serror_rate",
    "srv_serror_rate",
    "rerror_rate",
    "srv_rerror_rate",
    "same_srv_rate",
    "diff_srv_rate",
    "srv_diff_host_rate",
    "dst_host_count",
    "dst_host_srv_count",
    "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate",
    "dst_host_srv_serror_rate",
    "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate",
    "attack",
    "difficulty",
];
const NSL_CATEGORICAL: [&str; 3] = ["protocol_type", "service", "flag"];

fn num(s: &str) -> f64 {
    s.trim().parse().unwrap_or(f64::NAN)
}

/// NSL-KDD as (train, test) tables by the `i % 10 >= 7` rule.
fn nsl_kdd(data: &Path) -> Res<(Table, Table)> {
    let path = data.join("nsl-kdd/KDDTrain+_20Percent.txt");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim_end().split(',').collect())
        .collect();
    for (i, r) in rows.iter().enumerate() {
        if r.len() != 43 {
            return Err(format!(
                "{}: line {}: {} fields, expected 43",
                path.display(),
                i + 1,
                r.len()
            )
            .into());
        }
    }
    let split = |test: bool| -> Res<Table> {
        let sel: Vec<&Vec<&str>> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| (i % 10 >= 7) == test)
            .map(|(_, r)| r)
            .collect();
        let mut t = Table::new();
        for (j, name) in NSL_COLUMNS.iter().enumerate().take(41) {
            let data = if NSL_CATEGORICAL.contains(name) {
                ColumnData::Str(sel.iter().map(|r| Some(r[j].to_string())).collect())
            } else {
                ColumnData::F64(sel.iter().map(|r| num(r[j])).collect())
            };
            t.push(name, ColumnRole::Feature, data)?;
        }
        let y = sel
            .iter()
            .map(|r| if r[41].trim() == "normal" { 0.0 } else { 1.0 })
            .collect();
        t.push("label", ColumnRole::Label, ColumnData::F64(y))?;
        Ok(t)
    };
    Ok((split(false)?, split(true)?))
}

/// One labelled Zeek conn log as a per-flow table (Background rows left out).
fn zeek_conn(path: &Path) -> Res<Table> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut fields: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            fields = f.split('\t').map(|s| s.to_string()).collect();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        rows.push(line.split('\t').map(|s| s.to_string()).collect());
    }
    let idx = |n: &str| {
        fields
            .iter()
            .position(|f| f == n)
            .ok_or_else(|| format!("{}: no field `{n}`", path.display()))
    };
    let label_i = idx("label")?;
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .filter(|r| {
            r.len() == fields.len() && matches!(r[label_i].as_str(), "Benign" | "Malicious")
        })
        .collect();
    let mut t = Table::new();
    let cell = |r: &Vec<String>, i: usize| -> Option<String> {
        let v = r[i].as_str();
        (v != "-" && v != "(empty)").then(|| v.to_string())
    };
    for (name, kind) in [
        ("id.resp_p", 'n'),
        ("proto", 's'),
        ("service", 's'),
        ("duration", 'n'),
        ("orig_bytes", 'n'),
        ("resp_bytes", 'n'),
        ("conn_state", 's'),
        ("local_orig", 'b'),
        ("local_resp", 'b'),
        ("missed_bytes", 'n'),
        ("history", 's'),
        ("orig_pkts", 'n'),
        ("orig_ip_bytes", 'n'),
        ("resp_pkts", 'n'),
        ("resp_ip_bytes", 'n'),
    ] {
        let i = idx(name)?;
        let data = match kind {
            's' => ColumnData::Str(rows.iter().map(|r| cell(r, i)).collect()),
            'b' => ColumnData::F64(
                rows.iter()
                    .map(|r| match r[i].as_str() {
                        "T" => 1.0,
                        "F" => 0.0,
                        _ => f64::NAN,
                    })
                    .collect(),
            ),
            _ => ColumnData::F64(
                rows.iter()
                    .map(|r| cell(r, i).map(|v| num(&v)).unwrap_or(f64::NAN))
                    .collect(),
            ),
        };
        t.push(name, ColumnRole::Feature, data)?;
    }
    let ts = idx("ts")?;
    t.push(
        "ts",
        ColumnRole::Meta,
        ColumnData::F64(rows.iter().map(|r| num(&r[ts])).collect()),
    )?;
    for id in ["id.orig_h", "id.resp_h"] {
        let i = idx(id)?;
        t.push(
            id,
            ColumnRole::Identity,
            ColumnData::Str(rows.iter().map(|r| cell(r, i)).collect()),
        )?;
    }
    let y = rows
        .iter()
        .map(|r| if r[label_i] == "Malicious" { 1.0 } else { 0.0 })
        .collect();
    t.push("label", ColumnRole::Label, ColumnData::F64(y))?;
    Ok(t)
}

fn zeek(data: &Path) -> Res<(Table, Table)> {
    let d = data.join("zeek-stratosphere-labeled");
    Ok((
        zeek_conn(&d.join("008-zeek-mixed/data/conn.log.labeled"))?,
        zeek_conn(&d.join("010-zeek-mixed/data/conn.log.labeled"))?,
    ))
}

fn url_table(path: &Path) -> Res<Table> {
    // Quoted fields may hold line breaks: read as real CSV.
    let mut rd = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut urls = Vec::new();
    let mut y = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| format!("{}: record {}: {e}", path.display(), i + 1))?;
        let (Some(u), Some(l)) = (rec.get(0), rec.get(1)) else {
            return Err(
                format!("{}: record {}: expected input,label", path.display(), i + 1).into(),
            );
        };
        urls.push(u.trim().to_string());
        y.push(match l.trim() {
            "malicious" => 1.0,
            "legit" => 0.0,
            o => return Err(format!("{}: record {}: label `{o}`", path.display(), i + 1).into()),
        });
    }
    let refs: Vec<&str> = urls.iter().map(|s| s.as_str()).collect();
    let mut t = palisade_features::url_features_table(&refs);
    t.push("label", ColumnRole::Label, ColumnData::F64(y))?;
    Ok(t)
}

fn url(data: &Path) -> Res<(Table, Table)> {
    let d = data.join("url-phishcrawl");
    Ok((
        url_table(&d.join("train.csv"))?,
        url_table(&d.join("dev.csv"))?,
    ))
}

fn proc_kb(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn dump(dir: &Path, name: &str, names: &[String], x: &palisade_core::Matrix, y: &[f64]) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    let mut s = names.join(",") + ",label\n";
    for (i, yi) in y.iter().enumerate().take(x.rows) {
        for v in x.row(i) {
            if !v.is_nan() {
                s.push_str(&format!("{v}"));
            }
            s.push(',');
        }
        s.push_str(&format!("{yi}\n"));
    }
    std::fs::write(dir.join(name), s)?;
    Ok(())
}

/// Linear TreeSHAP against Algorithm 2 on the same rows, one thread.
fn shap_side_by_side(
    ds: &str,
    forest: &palisade_models::supervised::forest::Forest,
    x: &palisade_core::Matrix,
    rows: usize,
) {
    use palisade_models::supervised::treeshap::{
        tree_shap_path_with, tree_shap_with, tree_shape, ShapScratch,
    };
    let rows = rows.min(x.rows);
    let d = x.cols;
    let mut scratch = ShapScratch::default();
    let mut run = |linear: bool| {
        let t0 = Instant::now();
        let mut all = Vec::with_capacity(rows * d);
        for i in 0..rows {
            let mut phi = vec![0.0; d];
            for t in &forest.trees {
                if linear {
                    tree_shap_with(t, x.row(i), &mut phi, &mut scratch);
                } else {
                    tree_shap_path_with(t, x.row(i), &mut phi, &mut scratch);
                }
            }
            all.extend(phi);
        }
        (t0.elapsed().as_secs_f64() * 1e3 / rows.max(1) as f64, all)
    };
    let (lin_ms, lin) = run(true);
    let (path_ms, path) = run(false);
    let diff = lin
        .iter()
        .zip(&path)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let depth = forest
        .trees
        .iter()
        .map(|t| tree_shape(t).0)
        .max()
        .unwrap_or(0);
    println!(
        "shap {ds}: {} trees, {} nodes, depth ≤ {depth}, {rows} rows: linear {lin_ms:.3} ms/row, \
         Algorithm 2 {path_ms:.3} ms/row ({:.1}× faster), largest difference {diff:.2e}",
        forest.trees.len(),
        forest.trees.iter().map(|t| t.nodes.len()).sum::<usize>(),
        path_ms / lin_ms
    );
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str, d: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or(d.to_string())
    };
    let data = PathBuf::from(arg(
        "--data",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"),
    ));
    let threads: usize = arg("--threads", "1").parse()?;
    let dump_dir = args
        .iter()
        .position(|a| a == "--dump")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let datasets = arg("--datasets", "nsl-kdd,zeek,url");
    let models = arg("--models", "gbt,rf");
    println!("| dataset | model | path | train rows | test rows | ROC-AUC | PR-AUC | TPR@1% | TPR@0.1% | fit s | peak RSS MB | confusion (tp fp tn fn) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for ds in datasets.split(',') {
        let (train, test) = match ds {
            "nsl-kdd" => nsl_kdd(&data)?,
            "zeek" => zeek(&data)?,
            "url" => url(&data)?,
            o => return Err(format!("unknown dataset {o}").into()),
        };
        // Reference input: the same category codes (fitted on train) for everyone.
        let codes = CategoryCodes::fit(&train, Some("label"));
        let (tr, te) = (codes.apply(&train)?, codes.apply(&test)?);
        let (schema, _) = select_features(&tr, Some("label"))?;
        let names: Vec<String> = schema.features.iter().map(|f| f.name.clone()).collect();
        let (xtr, xte) = (tr.numeric_matrix(&schema)?, te.numeric_matrix(&schema)?);
        let (ytr, yte) = (label_values(&tr, "label")?, label_values(&te, "label")?);
        if let Some(d) = &dump_dir {
            dump(d, &format!("{ds}_train.csv"), &names, &xtr, &ytr)?;
            dump(d, &format!("{ds}_test.csv"), &names, &xte, &yte)?;
        }
        let lab: Vec<Option<bool>> = yte.iter().map(|&v| Some(v > 0.5)).collect();
        for m in models.split(',') {
            let kind: &'static str = if m == "gbt" { "gbt" } else { "rf" };
            // 1) trees on the whole training split (what the references fit).
            // `--opts k=v,k=v`: model options as for `palisade train` (e.g. learning_rate=0.3,grow=depth).
            let mut o = TrainOptions::new(0).with("threads", threads as u64);
            for kv in arg("--opts", "").split(',').filter(|s| !s.is_empty()) {
                let (k, v) = kv.split_once('=').ok_or("--opts takes k=v pairs")?;
                o = o.with(k, v);
            }
            let spec = FitSpec::from_options(kind, &o.reader(), 0)?;
            reset_peak();
            let t0 = Instant::now();
            let trees = spec.fit_trees(&xtr, &ytr)?;
            let fit_s = t0.elapsed().as_secs_f64();
            let peak = proc_kb("VmHWM:").unwrap_or(f64::NAN) / 1024.0;
            let r = EvalReport::compute(&trees.margin(&xte), &lab, None);
            println!(
                "| {ds} | {kind} | trees only | {} | {} | {:.5} | {:.5} | {:.3} | {:.3} | {:.2} | {:.0} | |",
                xtr.rows, xte.rows, r.roc_auc, r.pr_auc, r.tpr_at_fpr_1pct, r.tpr_at_fpr_0_1pct, fit_s, peak
            );
            if let (Some(rows), palisade_models::supervised::Trees::Rf { forest }) =
                (arg("--shap", "").parse::<usize>().ok(), &trees)
            {
                shap_side_by_side(ds, forest, &xte, rows);
            }
            if args.iter().any(|a| a == "--trees-only") {
                continue;
            }
            // 2) the product path: palisade train (holdout calibration, threshold at FPR 1 %).
            let mut opts = o.clone();
            opts.label_col = Some("label".into());
            opts.threshold = ThresholdRule::TargetFpr(0.01);
            let t0 = Instant::now();
            let model = palisade_models::train(kind, &train, &opts)?;
            let fit_s = t0.elapsed().as_secs_f64();
            let s = model.score_table(&test)?;
            let r = EvalReport::compute(&s, &lab, model.body.threshold.as_ref().map(|t| t.value));
            let c = r
                .confusion
                .as_ref()
                .map(|c| format!("{} {} {} {}", c.tp, c.fp, c.tn, c.fn_))
                .unwrap_or_default();
            println!(
                "| {ds} | {kind} | palisade train | {} | {} | {:.4} | {:.4} | {:.3} | {:.3} | {:.2} | | {c} |",
                train.nrows(),
                test.nrows(),
                r.roc_auc,
                r.pr_auc,
                r.tpr_at_fpr_1pct,
                r.tpr_at_fpr_0_1pct,
                fit_s
            );
        }
    }
    Ok(())
}
