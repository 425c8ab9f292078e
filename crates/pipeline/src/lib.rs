//! The main job: `palisade run PIPELINE.toml` — raw logs → events → feature
//! tables → threat-intel labels → models → scores → explained alerts → report.
//!
//! This crate orchestrates; the work is done by the layers it calls:
//! `palisade_ingest::read_path` (readers), `palisade_features` (request,
//! domain, host, flow and TOML-defined entity sets), `palisade_intel` (feeds,
//! matching, `label_events`), `palisade_models` (`train`, `Model::from_bytes`,
//! `score_table`, `explain`, metrics), `palisade_io` (atomic writes, tables)
//! and `palisade_report` (the HTML). What the pipeline adds itself is listed in
//! [`adapters`].
//!
//! Invariants:
//! - a run is a function of the pipeline file, its inputs and the seed: no
//!   clock or thread-count enters a score (the report's "generated at" aside);
//! - alerts are sorted by `event.risk_score` (the score's percentile among
//!   the rows its model scored, so models on different scales compare), then
//!   by raw score;
//! - every output is written atomically.

pub mod adapters;
pub mod config;

pub use config::{Pipeline, PipelineConfig};

use crate::config::{FeaturesConfig, ModelConfig, ThresholdConfig};
use palisade_core::{ColumnData, ColumnRole, Event, FeatureDef, Table};
use palisade_report as report;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Errors of a run. Each names the file, key or stage at fault.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{}{}: {message}", path.display(), if *line > 0 { format!(":{line}") } else { String::new() })]
    Config {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("source `{source_name}`: {message}")]
    Source {
        source_name: String,
        message: String,
    },
    #[error("intel: {0}")]
    Intel(#[from] palisade_intel::IntelError),
    #[error("features `{table}`: {message}")]
    Features { table: String, message: String },
    #[error("model `{model}` on `{table}`: {message}")]
    Model {
        table: String,
        model: String,
        message: String,
    },
    #[error("output: {0}")]
    Output(String),
    #[error("report: {0}")]
    Report(#[from] palisade_report::ReportError),
}

/// Command-line overrides of the pipeline's `[output]`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub out_dir: Option<PathBuf>,
    pub top: Option<usize>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub out_dir: PathBuf,
    pub alerts_path: PathBuf,
    pub report_path: PathBuf,
    pub events: usize,
    pub alerts_total: usize,
    pub alerts_written: usize,
    pub stages: Vec<report::StageSummary>,
    pub models_saved: Vec<PathBuf>,
}

/// Run the pipeline in `path`.
pub fn run(path: &Path, opts: &RunOptions) -> Result<RunSummary, PipelineError> {
    let pipeline = Pipeline::read(path)?;
    run_pipeline(&pipeline, opts)
}

struct Stages {
    list: Vec<report::StageSummary>,
}

impl Stages {
    fn done(&mut self, name: &str, detail: String, count: u64, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(stage = name, count, seconds, "{detail}");
        self.list.push(report::StageSummary {
            name: name.into(),
            detail,
            count,
            seconds,
        });
    }
}

/// One feature table and what it is made of.
struct Built {
    cfg: FeaturesConfig,
    table: Table,
    /// For every row, the events (indices into the run's events) it summarises.
    row_events: Vec<Vec<u32>>,
    labels: Option<Vec<bool>>,
    label_source: String,
    entity_desc: String,
}

struct Scored {
    table_idx: usize,
    cfg: ModelConfig,
    model: palisade_models::Model,
    provenance: String,
    scores: Vec<f64>,
    threshold: f64,
    threshold_rule: String,
}

pub fn run_pipeline(p: &Pipeline, opts: &RunOptions) -> Result<RunSummary, PipelineError> {
    let cfg = &p.config;
    let mut stages = Stages { list: Vec::new() };
    let out_dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&cfg.output.dir));
    let top = opts.top.or(cfg.output.top);
    let mut notes: Vec<String> = Vec::new();

    // ---- ingest
    let t = Instant::now();
    let mut events: Vec<Event> = Vec::new();
    let mut source_of: Vec<u16> = Vec::new();
    let mut sources: Vec<report::SourceSummary> = Vec::new();
    for (si, s) in cfg.sources.iter().enumerate() {
        let files = expand(p, &s.paths)?;
        let format = match s.format.get_ref().as_str() {
            "auto" => None,
            name => Some(
                palisade_ingest::Format::from_name(name)
                    .map_err(|e| p.err_at(s.format.span(), format!("key `source.format`: {e}")))?,
            ),
        };
        let mut iopts = palisade_ingest::IngestOptions {
            keep_original: false,
            ..Default::default()
        };
        iopts.max_errors = s.max_errors;
        if let Some(m) = &s.mapping {
            iopts.mapping = Some(read_mapping(&p.input_path(m))?);
        }
        for f in files {
            let (evs, sum) = palisade_ingest::read_path(&f, format, &iopts).map_err(|e| {
                PipelineError::Source {
                    source_name: s.name.get_ref().clone(),
                    message: e.to_string(),
                }
            })?;
            let (first, last) = time_span(&evs);
            let display = f.strip_prefix(&p.dir).unwrap_or(&f).display().to_string();
            let by_code = |counts: &std::collections::BTreeMap<palisade_ingest::Reason, u64>| {
                counts
                    .iter()
                    .map(|(r, n)| (r.code().to_string(), *n))
                    .collect()
            };
            sources.push(report::SourceSummary {
                name: s.name.get_ref().clone(),
                path: display,
                format: sum
                    .format
                    .map(|f| f.name().to_string())
                    .unwrap_or_else(|| "?".into()),
                lines: sum.lines,
                events: sum.events,
                skipped: sum.skipped_total(),
                errors_by_reason: by_code(&sum.skipped),
                flagged: sum.flagged_total(),
                flagged_by_reason: by_code(&sum.flagged),
                first_us: first,
                last_us: last,
            });
            // an empty input, a truncated .evtx file: each names the file
            notes.extend(
                sum.warnings
                    .iter()
                    .map(|w| format!("source `{}`: {w}", s.name.get_ref())),
            );
            source_of.extend(std::iter::repeat_n(si as u16, evs.len()));
            events.extend(evs);
        }
    }
    let skipped: u64 = sources.iter().map(|s| s.skipped).sum();
    let flagged: u64 = sources.iter().map(|s| s.flagged).sum();
    stages.done(
        "ingest",
        format!(
            "{} file(s) of {} source(s), {skipped} line(s) skipped{}",
            sources.len(),
            cfg.sources.len(),
            if flagged > 0 {
                format!(", {flagged} kept with a problem")
            } else {
                String::new()
            }
        ),
        events.len() as u64,
        t,
    );

    // ---- intel: one label per event
    let t = Instant::now();
    let mut feeds: Vec<report::FeedSummary> = Vec::new();
    let event_labels: Option<Vec<palisade_intel::RowLabel>> = match &cfg.intel {
        Some(ic) => {
            let paths: Vec<String> = ic
                .feeds
                .iter()
                .map(|f| p.input_path(f.get_ref()).display().to_string())
                .collect();
            let conf = ic.config.as_ref().map(|c| p.input_path(c));
            let (set, mopts) = palisade_intel::load(conf.as_deref(), &paths, ic.strict)?;
            let matcher = palisade_intel::Matcher::build(&set, &mopts);
            let verdicts = match &ic.verdicts {
                Some(v) => Some(palisade_intel::Verdicts::read(&p.input_path(v))?),
                None => None,
            };
            let labels = palisade_intel::label_events(&events, &set, &matcher, verdicts.as_ref());
            let mut matched: HashMap<&str, u64> = HashMap::new();
            for l in labels.iter().filter(|l| l.malicious) {
                if let Some(pv) = &l.provenance {
                    for f in pv.feed.split(';') {
                        *matched.entry(f).or_default() += 1;
                    }
                }
            }
            for (fi, f) in set.feeds.iter().enumerate() {
                let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
                for ind in set.feed_indicators(fi) {
                    *by_kind.entry(ind.kind.as_str()).or_default() += 1;
                }
                feeds.push(report::FeedSummary {
                    name: f.name.clone(),
                    path: Path::new(&f.path)
                        .strip_prefix(&p.dir)
                        .map(|x| x.display().to_string())
                        .unwrap_or_else(|_| f.path.clone()),
                    indicators: f.report.indicators as u64,
                    by_kind: by_kind
                        .into_iter()
                        .map(|(k, n)| (k.to_string(), n))
                        .collect(),
                    matched_events: matched.get(f.name.as_str()).copied().unwrap_or(0),
                });
                if f.report.malformed > 0 {
                    notes.push(format!(
                        "feed `{}`: {} malformed line(s) skipped",
                        f.name, f.report.malformed
                    ));
                }
            }
            let n = labels.iter().filter(|l| l.malicious).count();
            stages.done(
                "intel",
                format!(
                    "{} feed(s), {} indicators; {n} event(s) matched",
                    set.feeds.len(),
                    set.indicators.len()
                ),
                n as u64,
                t,
            );
            Some(labels)
        }
        None => None,
    };

    // ---- features
    let mut built: Vec<Built> = Vec::new();
    for fc in &cfg.features {
        let t = Instant::now();
        let b = build_features(p, fc, &events, &source_of, event_labels.as_deref())?;
        stages.done(
            "features",
            format!(
                "`{}`: {} set, {} features, {}",
                fc.name.get_ref(),
                fc.set.get_ref(),
                b.table.feature_schema().features.len(),
                b.entity_desc
            ),
            b.table.nrows() as u64,
            t,
        );
        built.push(b);
    }

    // ---- models: train or load, then score every row
    let mut scored: Vec<Scored> = Vec::new();
    let mut models_saved = Vec::new();
    for mc in &cfg.models {
        let t = Instant::now();
        let Some(ti) = built
            .iter()
            .position(|b| b.cfg.name.get_ref() == mc.features.get_ref())
        else {
            continue; // validated in config
        };
        let b = &built[ti];
        let s = train_or_load(p, mc, b, cfg.seed)?;
        stages.done(
            "model",
            format!(
                "`{}` ({}) on `{}`: {}; {} row(s) ≥ threshold",
                mc.name.get_ref(),
                s.model.body.kind,
                b.cfg.name.get_ref(),
                s.provenance,
                s.scores.iter().filter(|&&x| x >= s.threshold).count()
            ),
            s.scores.len() as u64,
            t,
        );
        scored.push(Scored { table_idx: ti, ..s });
    }

    // ---- alerts
    let t = Instant::now();
    let mut alerts: Vec<(f64, f64, Value, report::AlertRow)> = Vec::new();
    for s in &scored {
        let b = &built[s.table_idx];
        let x = s
            .model
            .matrix(&b.table)
            .map_err(|e| model_err(b, &s.cfg, e))?;
        let typical: HashMap<&str, f64> = s
            .model
            .body
            .training
            .feature_stats
            .iter()
            .map(|c| (c.name.as_str(), c.median()))
            .collect();
        let mut sorted: Vec<f64> = s.scores.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(|a, b| a.total_cmp(b));
        for (row, &score) in s.scores.iter().enumerate() {
            if score.is_nan() || score < s.threshold {
                continue;
            }
            let below = sorted.partition_point(|&v| v < score);
            let risk = 100.0 * (below as f64 + 1.0) / sorted.len().max(1) as f64;
            let contribs = s
                .model
                .detector
                .explain(&x, row, cfg.output.explain)
                .map_err(|e| model_err(b, &s.cfg, e))?;
            let intel = row_intel(b, row, event_labels.as_deref());
            let (jv, rr) = make_alert(b, s, row, score, risk, &contribs, &typical, &intel);
            alerts.push((risk, score, jv, rr));
        }
    }
    alerts.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
    let alerts_total = alerts.len();
    if let Some(n) = top {
        alerts.truncate(n);
    }
    std::fs::create_dir_all(&out_dir).map_err(|e| PipelineError::Io {
        path: out_dir.clone(),
        message: e.to_string(),
    })?;
    let alerts_path = out_dir.join(&cfg.output.alerts);
    let mut lines = String::new();
    for (_, _, v, _) in &alerts {
        lines.push_str(&v.to_string());
        lines.push('\n');
    }
    palisade_io::atomic_write(&alerts_path, lines.as_bytes())
        .map_err(|e| PipelineError::Output(e.to_string()))?;
    stages.done(
        "alerts",
        format!(
            "{alerts_total} above threshold, {} written to {}",
            alerts.len(),
            alerts_path.display()
        ),
        alerts.len() as u64,
        t,
    );

    // ---- outputs: scored tables and models
    let t = Instant::now();
    let mut outputs = vec![(
        alerts_path.display().to_string(),
        "alerts, JSON lines (ECS-style), highest risk first".to_string(),
    )];
    if cfg.output.tables {
        for (ti, b) in built.iter().enumerate() {
            let mut tab = b.table.clone();
            for s in scored.iter().filter(|s| s.table_idx == ti) {
                tab.push(
                    &format!("score.{}", s.cfg.name.get_ref()),
                    ColumnRole::Meta,
                    ColumnData::F64(s.scores.clone()),
                )
                .map_err(|e| PipelineError::Output(e.to_string()))?;
            }
            let path = out_dir
                .join("tables")
                .join(format!("{}.csv", b.cfg.name.get_ref()));
            palisade_io::write_table(&path, &tab)
                .map_err(|e| PipelineError::Output(e.to_string()))?;
            outputs.push((
                path.display().to_string(),
                format!(
                    "feature table `{}` with labels and scores",
                    b.cfg.name.get_ref()
                ),
            ));
        }
    }
    if cfg.output.models {
        for s in scored.iter().filter(|s| s.cfg.load.is_none()) {
            let b = &built[s.table_idx];
            let path = out_dir.join("models").join(format!(
                "{}-{}.model.json",
                b.cfg.name.get_ref(),
                s.cfg.name.get_ref()
            ));
            let bytes = s
                .model
                .body
                .to_bytes()
                .map_err(|e| PipelineError::Output(e.to_string()))?;
            palisade_io::atomic_write(&path, &bytes)
                .map_err(|e| PipelineError::Output(e.to_string()))?;
            outputs.push((
                path.display().to_string(),
                format!(
                    "trained model (load it with `load = \"{}\"`)",
                    path.display()
                ),
            ));
            models_saved.push(path);
        }
    }
    stages.done(
        "outputs",
        format!("{} file(s) in {}", outputs.len(), out_dir.display()),
        outputs.len() as u64,
        t,
    );

    // ---- report
    let t = Instant::now();
    let report_path = out_dir.join(&cfg.output.report);
    outputs.push((report_path.display().to_string(), "this report".into()));
    let mut analyses = Vec::new();
    let mut features: Vec<FeatureDef> = Vec::new();
    for (ti, b) in built.iter().enumerate() {
        for f in b.table.feature_schema().features {
            if !features.iter().any(|g| g.name == f.name && g.set == f.set) {
                features.push(f);
            }
        }
        let models: Vec<&Scored> = scored.iter().filter(|s| s.table_idx == ti).collect();
        analyses.push(analysis_of(b, &models, cfg.output.map_names, &mut notes));
    }
    if let Some(ic) = &cfg.intel {
        if feeds.iter().all(|f| f.matched_events == 0) && !ic.feeds.is_empty() {
            notes.push(
                "No event matched any feed: the curves need labels and are not drawn.".into(),
            );
        }
    }
    let input = report::ReportInput {
        title: cfg.name.clone().unwrap_or_else(|| "Palisade report".into()),
        generated_at: palisade_core::event::format_timestamp_us(now_us()).unwrap_or_default(),
        pipeline: p.path.display().to_string(),
        seed: Some(cfg.seed),
        sources,
        stages: Vec::new(),
        feeds,
        analyses,
        alerts: alerts.iter().map(|a| a.3.clone()).collect(),
        alerts_total,
        alerts_in_table: cfg.output.report_alerts,
        features,
        outputs,
        notes,
    };
    // The report lists the stages including its own, so it is rendered twice:
    // once to time it, once with that time in the table.
    let mut input = input;
    input.stages = stages.list.clone();
    let html = report::render_html(&input)?;
    stages.done("report", format!("{} KiB of HTML", html.len() / 1024), 1, t);
    input.stages = stages.list.clone();
    let html = report::render_html(&input)?;
    palisade_io::atomic_write(&report_path, html.as_bytes())
        .map_err(|e| PipelineError::Output(e.to_string()))?;

    Ok(RunSummary {
        out_dir,
        alerts_path,
        report_path,
        events: events.len(),
        alerts_total,
        alerts_written: alerts.len(),
        stages: stages.list,
        models_saved,
    })
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn time_span(evs: &[Event]) -> (Option<i64>, Option<i64>) {
    let ts = evs.iter().filter_map(|e| e.timestamp_us);
    let first = ts.clone().min();
    (first, ts.max())
}

fn read_mapping(path: &Path) -> Result<palisade_ingest::Mapping, PipelineError> {
    palisade_ingest::Mapping::load(path).map_err(|e| PipelineError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Expand globs (relative to the pipeline file), sorted, duplicates removed.
fn expand(p: &Pipeline, pats: &[toml::Spanned<String>]) -> Result<Vec<PathBuf>, PipelineError> {
    let mut out = Vec::new();
    for pat in pats {
        let full = p.input_path(pat.get_ref());
        let text = full.display().to_string();
        if !text.contains(['*', '?', '[']) {
            if !full.exists() {
                return Err(p.err_at(
                    pat.span(),
                    format!("key `source.paths`: `{}` does not exist", full.display()),
                ));
            }
            out.push(full);
            continue;
        }
        let paths = glob::glob(&text)
            .map_err(|e| p.err_at(pat.span(), format!("key `source.paths`: bad glob: {e}")))?;
        let mut found: Vec<PathBuf> = paths
            .filter_map(Result::ok)
            .filter(|x| x.is_file())
            .collect();
        if found.is_empty() {
            return Err(p.err_at(
                pat.span(),
                format!("key `source.paths`: `{text}` matches no file"),
            ));
        }
        found.sort();
        out.extend(found);
    }
    out.dedup();
    Ok(out)
}

fn feat_err(fc: &FeaturesConfig, message: impl std::fmt::Display) -> PipelineError {
    PipelineError::Features {
        table: fc.name.get_ref().clone(),
        message: message.to_string(),
    }
}

fn model_err(b: &Built, mc: &ModelConfig, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Model {
        table: b.cfg.name.get_ref().clone(),
        model: mc.name.get_ref().clone(),
        message: e.to_string(),
    }
}

/// Compute one feature table, remember which events each row summarises, and label it.
fn build_features(
    p: &Pipeline,
    fc: &FeaturesConfig,
    events: &[Event],
    source_of: &[u16],
    event_labels: Option<&[palisade_intel::RowLabel]>,
) -> Result<Built, PipelineError> {
    let wanted: Vec<u16> = if fc.sources.is_empty() {
        (0..p.config.sources.len() as u16).collect()
    } else {
        fc.sources
            .iter()
            .filter_map(|s| {
                p.config
                    .sources
                    .iter()
                    .position(|c| c.name.get_ref() == s.get_ref())
                    .map(|i| i as u16)
            })
            .collect()
    };
    let picked: Vec<u32> = (0..events.len() as u32)
        .filter(|&i| wanted.contains(&source_of[i as usize]))
        .filter(|&i| {
            fc.datasets.is_empty()
                || events[i as usize]
                    .event_dataset
                    .as_deref()
                    .is_some_and(|d| fc.datasets.iter().any(|w| w.eq_ignore_ascii_case(d)))
        })
        .collect();
    let sub: Vec<Event> = picked.iter().map(|&i| events[i as usize].clone()).collect();
    let set = fc.set.get_ref().as_str();
    let (table, row_events, entity_desc) = match set {
        "request" | "domain" => {
            // One row per event, in order.
            let t = if set == "request" {
                palisade_features::request_features(&sub)
            } else {
                palisade_features::domain_features(&sub)
            };
            let rows = picked.iter().map(|&i| vec![i]).collect::<Vec<_>>();
            let desc = fc.describe.clone().unwrap_or_else(|| {
                if set == "request" {
                    "one web or TLS request".into()
                } else {
                    "one DNS query or domain".into()
                }
            });
            (t, rows, desc)
        }
        _ => {
            let mut ec = match (&fc.config, &fc.builtin) {
                (Some(c), _) => {
                    let path = p.input_path(c.get_ref());
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        p.err_at(
                            c.span(),
                            format!("key `features.config`: {}: {e}", path.display()),
                        )
                    })?;
                    palisade_features::EntityConfig::from_toml(&text)
                        .map_err(|e| feat_err(fc, format!("{}: {e}", path.display())))?
                }
                (None, Some(b)) => palisade_features::builtin_entity_set(b.get_ref())
                    .map_err(|e| p.err_at(b.span(), format!("key `features.builtin`: {e}")))?,
                (None, None) => {
                    palisade_features::builtin_entity_set(set).map_err(|e| feat_err(fc, e))?
                }
            };
            if let Some(w) = &fc.window {
                ec.window = w.get_ref().clone();
            }
            if ec.slide.is_some() {
                return Err(feat_err(fc, "sliding windows are not supported by `palisade run` yet (labels and alerts need one window per event)"));
            }
            let window_us = ec.window_secs().map_err(|e| feat_err(fc, e))? * 1_000_000;
            let (t, rep) = palisade_features::entity_features_with_report(&sub, &ec)
                .map_err(|e| feat_err(fc, e))?;
            // Which events each (entity, window) row summarises: the entity is
            // the first key field present on the event, as the engine does.
            let keys: Vec<String> = match &ec.key {
                palisade_features::entity::OneOrMany::One(k) => vec![k.clone()],
                palisade_features::entity::OneOrMany::Many(v) => v.clone(),
            };
            let mut index: HashMap<(String, String), usize> = HashMap::new();
            let ent = t
                .column("entity")
                .ok_or_else(|| feat_err(fc, "entity table has no `entity` column"))?;
            let ws = t
                .column("window_start")
                .ok_or_else(|| feat_err(fc, "entity table has no `window_start` column"))?;
            for r in 0..t.nrows() {
                index.insert((ent.data.text(r), ws.data.text(r)), r);
            }
            let mut rows: Vec<Vec<u32>> = vec![Vec::new(); t.nrows()];
            for (k, e) in sub.iter().enumerate() {
                let (Some(ts), Some(key)) = (
                    e.timestamp_us,
                    keys.iter().find_map(|f| e.get(f).map(|v| v.to_text())),
                ) else {
                    continue;
                };
                let start = ts.div_euclid(window_us) * window_us;
                let start_text = palisade_core::event::format_timestamp_us(start)
                    .unwrap_or_else(|| start.to_string());
                if let Some(&r) = index.get(&(key, start_text)) {
                    rows[r].push(picked[k]);
                }
            }
            let desc = fc.describe.clone().unwrap_or_else(|| {
                format!(
                    "{} × {} window ({})",
                    keys.join(" / "),
                    ec.window,
                    ec.description
                )
            });
            tracing::debug!(?rep, "entity features");
            (t, rows, desc)
        }
    };
    let mut b = Built {
        cfg: fc.clone(),
        table,
        row_events,
        labels: None,
        label_source: String::new(),
        entity_desc,
    };
    // Labels: intel by default when feeds are configured; or a column the table carries.
    let label_choice =
        fc.label
            .as_ref()
            .map(|l| l.get_ref().as_str())
            .unwrap_or(if event_labels.is_some() {
                "intel"
            } else {
                "none"
            });
    match label_choice {
        "none" => {}
        "intel" => {
            let el = event_labels.ok_or_else(|| {
                p.err_at(
                    fc.label.as_ref().map(|l| l.span()).unwrap_or(0..0),
                    "key `features.label`: `intel` needs an `[intel]` section",
                )
            })?;
            let labels: Vec<bool> = b
                .row_events
                .iter()
                .map(|evs| evs.iter().any(|&i| el[i as usize].malicious))
                .collect();
            let hits: Vec<f64> = b
                .row_events
                .iter()
                .map(|evs| evs.iter().filter(|&&i| el[i as usize].malicious).count() as f64)
                .collect();
            b.table
                .push(
                    "label",
                    ColumnRole::Label,
                    ColumnData::F64(labels.iter().map(|&l| if l { 1.0 } else { 0.0 }).collect()),
                )
                .map_err(|e| feat_err(fc, e))?;
            b.table
                .push("intel.event_hits", ColumnRole::Meta, ColumnData::F64(hits))
                .map_err(|e| feat_err(fc, e))?;
            b.label_source = "threat-intel match on any event of the row".into();
            b.labels = Some(labels);
        }
        col => {
            let values = palisade_models::registry::label_values(&b.table, col)
                .map_err(|e| feat_err(fc, e))?;
            b.labels = Some(values.iter().map(|v| *v > 0.5).collect());
            b.label_source = format!("column `{col}`");
        }
    }
    Ok(b)
}

fn threshold_rule(t: Option<ThresholdConfig>, kind: &str) -> palisade_models::ThresholdRule {
    match t {
        Some(ThresholdConfig::Contamination(c)) => palisade_models::ThresholdRule::Contamination(c),
        Some(ThresholdConfig::Fpr(f)) => palisade_models::ThresholdRule::TargetFpr(f),
        Some(ThresholdConfig::Fixed(v)) => palisade_models::ThresholdRule::Fixed(v),
        None => palisade_models::ThresholdRule::default_for(kind),
    }
}

fn train_or_load(
    p: &Pipeline,
    mc: &ModelConfig,
    b: &Built,
    seed: u64,
) -> Result<Scored, PipelineError> {
    let (model, provenance) = match &mc.load {
        Some(path) => {
            let full = p.input_path(path.get_ref());
            let bytes = std::fs::read(&full).map_err(|e| {
                p.err_at(
                    path.span(),
                    format!("key `model.load`: {}: {e}", full.display()),
                )
            })?;
            let m = palisade_models::Model::from_bytes(&bytes)
                .map_err(|e| model_err(b, mc, format!("{}: {e}", full.display())))?;
            (m, format!("loaded from {}", path.get_ref()))
        }
        None => {
            let kind = mc
                .kind
                .as_ref()
                .map(|k| k.get_ref().as_str())
                .unwrap_or("iforest");
            let mut o = palisade_models::TrainOptions::new(mc.seed.unwrap_or(seed));
            o.threshold = threshold_rule(mc.threshold.as_ref().map(|t| *t.get_ref()), kind);
            o.log_cols = mc.log.clone();
            o.command = format!(
                "palisade run {} (model `{}` on `{}`)",
                p.path.display(),
                mc.name.get_ref(),
                b.cfg.name.get_ref()
            );
            o.options = match serde_json::to_value(&mc.options) {
                Ok(Value::Object(m)) => m,
                _ => Default::default(),
            };
            if palisade_models::SUPERVISED_KINDS.contains(&kind) {
                if b.labels.is_none() {
                    return Err(model_err(
                        b,
                        mc,
                        format!(
                            "`{kind}` is supervised and `{}` has no labels",
                            b.cfg.name.get_ref()
                        ),
                    ));
                }
                o.label_col = Some(label_col_of(b));
            }
            let train_rows = train_rows(p, mc, &b.table)?;
            let m = match &train_rows {
                Some(rows) => {
                    palisade_models::train(kind, &adapters::select_rows(&b.table, rows), &o)
                }
                None => palisade_models::train(kind, &b.table, &o),
            }
            .map_err(|e| model_err(b, mc, e))?;
            let n = train_rows
                .as_ref()
                .map(|r| r.len())
                .unwrap_or(b.table.nrows());
            (m, format!("trained on {n} row(s), seed {}", o.seed))
        }
    };
    let scores = model
        .score_table(&b.table)
        .map_err(|e| model_err(b, mc, e))?;
    let (threshold, threshold_rule) = match (&mc.threshold, &model.body.threshold) {
        // A fixed threshold in the pipeline wins over a loaded model's.
        (Some(t), _) if matches!(t.get_ref(), ThresholdConfig::Fixed(_)) && mc.load.is_some() => {
            match *t.get_ref() {
                ThresholdConfig::Fixed(v) => (v, "fixed (pipeline)".to_string()),
                _ => (f64::INFINITY, String::new()),
            }
        }
        (_, Some(t)) => (t.value, t.rule.clone()),
        (_, None) => (f64::INFINITY, "none (model has no threshold)".to_string()),
    };
    Ok(Scored {
        table_idx: 0,
        cfg: mc.clone(),
        model,
        provenance,
        scores,
        threshold,
        threshold_rule,
    })
}

fn label_col_of(b: &Built) -> String {
    match b.cfg.label.as_ref().map(|l| l.get_ref().as_str()) {
        Some(c) if c != "intel" && c != "none" => c.to_string(),
        _ => "label".to_string(),
    }
}

/// Rows inside the model's training time range (by `window_start` or `@timestamp`).
fn train_rows(
    p: &Pipeline,
    mc: &ModelConfig,
    t: &Table,
) -> Result<Option<Vec<usize>>, PipelineError> {
    if mc.train_after.is_none() && mc.train_before.is_none() {
        return Ok(None);
    }
    let parse = |s: &Option<toml::Spanned<String>>| {
        s.as_ref()
            .and_then(|s| palisade_core::event::parse_timestamp_us(s.get_ref()))
    };
    let (after, before) = (parse(&mc.train_after), parse(&mc.train_before));
    let col = t.column("window_start").or_else(|| t.column("@timestamp")).ok_or_else(|| {
        p.err_at(mc.name.span(), "key `model.train_after`/`train_before`: the table has no `window_start` or `@timestamp` column")
    })?;
    let rows: Vec<usize> = (0..t.nrows())
        .filter(|&r| {
            let Some(ts) = palisade_core::event::parse_timestamp_us(&col.data.text(r)) else {
                return false;
            };
            after.is_none_or(|a| ts >= a) && before.is_none_or(|b| ts < b)
        })
        .collect();
    if rows.len() < 2 {
        return Err(p.err_at(
            mc.name.span(),
            format!(
                "model `{}`: only {} row(s) in the training time range",
                mc.name.get_ref(),
                rows.len()
            ),
        ));
    }
    Ok(Some(rows))
}

/// Distinct intel matches of the events behind a row, most frequent first.
fn row_intel(
    b: &Built,
    row: usize,
    el: Option<&[palisade_intel::RowLabel]>,
) -> Vec<report::IntelHit> {
    let Some(el) = el else { return Vec::new() };
    let mut hits: Vec<report::IntelHit> = Vec::new();
    for &i in b.row_events.get(row).map(Vec::as_slice).unwrap_or(&[]) {
        let Some(pv) = el
            .get(i as usize)
            .filter(|l| l.malicious)
            .and_then(|l| l.provenance.as_ref())
        else {
            continue;
        };
        match hits
            .iter_mut()
            .find(|h| h.indicator == pv.indicator && h.field == pv.field)
        {
            Some(h) => h.count += 1,
            None => hits.push(report::IntelHit {
                feed: pv.feed.clone(),
                indicator: pv.indicator.clone(),
                field: pv.field.clone(),
                category: pv.category.clone().unwrap_or_default(),
                count: 1,
            }),
        }
    }
    hits.sort_by_key(|h| std::cmp::Reverse(h.count));
    hits
}

fn row_text(t: &Table, col: &str, row: usize) -> Option<String> {
    t.column(col)
        .map(|c| c.data.text(row))
        .filter(|s| !s.is_empty())
}

/// The entity a row is about and its window, as text.
fn entity_of(b: &Built, row: usize) -> (String, Option<String>, Option<String>) {
    let t = &b.table;
    if let Some(e) = row_text(t, "entity", row) {
        return (
            e,
            row_text(t, "window_start", row),
            row_text(t, "window_end", row),
        );
    }
    let who = ["source.ip", "host", "domain", "url"]
        .iter()
        .find_map(|c| row_text(t, c, row))
        .unwrap_or_else(|| format!("row {row}"));
    let what = ["domain", "host", "url"]
        .iter()
        .find_map(|c| row_text(t, c, row));
    let label = match what {
        Some(w) if w != who => format!("{who} → {w}"),
        _ => who,
    };
    let ts = row_text(t, "@timestamp", row);
    (label, ts.clone(), ts)
}

#[allow(clippy::too_many_arguments)]
fn make_alert(
    b: &Built,
    s: &Scored,
    row: usize,
    score: f64,
    risk: f64,
    contribs: &[palisade_models::Contribution],
    typical: &HashMap<&str, f64>,
    intel: &[report::IntelHit],
) -> (Value, report::AlertRow) {
    let (entity, start, end) = entity_of(b, row);
    let table = b.cfg.name.get_ref();
    let model = s.cfg.name.get_ref();
    let top: Vec<report::Contribution> = contribs
        .iter()
        .map(|c| report::Contribution {
            feature: c.feature.clone(),
            value: c.value,
            typical: typical.get(c.feature.as_str()).copied().unwrap_or(f64::NAN),
            weight: c.contribution,
        })
        .collect();
    let num = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    let mut v = json!({
        "@timestamp": start.clone().unwrap_or_default(),
        "event": {
            "kind": "alert",
            "module": "palisade",
            "dataset": format!("palisade.{table}"),
            "start": start,
            "end": end,
            "risk_score": (risk * 100.0).round() / 100.0,
        },
        "rule": { "name": format!("{table}/{model}"), "category": if palisade_models::SUPERVISED_KINDS.contains(&s.model.body.kind.as_str()) { "supervised" } else { "outlier" } },
        "palisade": {
            "table": table,
            "entity": entity,
            "entity_desc": b.entity_desc,
            "window": { "start": start, "end": end },
            "row": row,
            "events": b.row_events.get(row).map(Vec::len).unwrap_or(0),
            "model": { "name": model, "kind": s.model.body.kind, "score": num(score), "threshold": num(s.threshold), "threshold_rule": s.threshold_rule },
            "explanation": top.iter().map(|c| json!({"feature": c.feature, "value": num(c.value), "typical": num(c.typical), "contribution": num(c.weight)})).collect::<Vec<_>>(),
            "label": b.labels.as_ref().and_then(|l| l.get(row)).copied(),
        },
    });
    if !intel.is_empty() {
        v["threat"] = json!({
            "enrichments": intel.iter().map(|h| json!({
                "matched": { "atomic": h.indicator, "field": h.field, "type": "indicator_match_rule", "occurrences": h.count },
                "indicator": { "provider": h.feed, "description": h.category },
            })).collect::<Vec<_>>()
        });
    }
    // ECS entity fields, where the entity is an address or the row is one event.
    let t = &b.table;
    if let Some(ip) = row_text(t, "source.ip", row)
        .or_else(|| Some(entity.clone()))
        .and_then(|s| s.parse::<std::net::IpAddr>().ok())
    {
        v["source"] = json!({ "ip": ip.to_string() });
    }
    if let Some(ip) = row_text(t, "destination.ip", row) {
        v["destination"] = json!({ "ip": ip });
    }
    if let Some(d) = row_text(t, "domain", row) {
        v["dns"] = json!({ "question": { "name": d } });
    }
    if let Some(u) = row_text(t, "url", row) {
        v["url"] = json!({ "original": u });
    }
    if let Some(h) = row_text(t, "host", row) {
        v["destination"]["domain"] = json!(h);
    }
    // Times of day; the report shows the date under them.
    let hms = |t: &str| short_time(t).get(11..).unwrap_or("").to_string();
    let window = match (&start, &end) {
        (Some(a), Some(b)) if a != b => format!("{}–{}", hms(a), hms(b)),
        (Some(a), _) => hms(a),
        _ => String::new(),
    };
    let row_view = report::AlertRow {
        timestamp: start.unwrap_or_default(),
        entity,
        window,
        analysis: table.clone(),
        model: if *model == s.model.body.kind {
            model.clone()
        } else {
            format!("{model} ({})", s.model.body.kind)
        },
        score,
        threshold: s.threshold,
        top_features: top,
        intel: intel.to_vec(),
    };
    (v, row_view)
}

/// `2018-03-24T17:14:00.000000Z` → `2018-03-24 17:14:00`.
fn short_time(t: &str) -> String {
    let t = t.replace('T', " ");
    let t = t.trim_end_matches('Z');
    t.split('.').next().unwrap_or(t).to_string()
}

fn analysis_of(
    b: &Built,
    models: &[&Scored],
    map_names: usize,
    notes: &mut Vec<String>,
) -> report::Analysis {
    let positives = b.labels.as_ref().map(|l| l.iter().filter(|&&x| x).count());
    let both = b
        .labels
        .as_ref()
        .is_some_and(|l| l.iter().any(|&x| x) && l.iter().any(|&x| !x));
    let mut results = Vec::new();
    for s in models {
        let mut roc = None;
        let mut pr = None;
        if let (true, Some(labels)) = (both, &b.labels) {
            let supervised =
                palisade_models::SUPERVISED_KINDS.contains(&s.model.body.kind.as_str());
            // A supervised model is judged only on rows it did not train on.
            let eval: Option<(Vec<f64>, Vec<bool>)> = if supervised {
                s.model.detector.held_out()
            } else {
                Some((s.scores.clone(), labels.clone()))
            };
            match eval {
                Some((sc, lb)) if lb.iter().any(|&x| x) && lb.iter().any(|&x| !x) => {
                    if supervised {
                        notes.push(format!(
                            "`{}` on `{}` is supervised: its ROC and precision–recall curves are on its {} held-out row(s) ({} positive), not on the rows it trained on; its alerts on training rows largely repeat the labels it learned.",
                            s.cfg.name.get_ref(),
                            b.cfg.name.get_ref(),
                            lb.len(),
                            lb.iter().filter(|&&x| x).count()
                        ));
                    }
                    let (rc, pc) = adapters::curves(&sc, &lb);
                    let base = lb.iter().filter(|&&x| x).count() as f64 / lb.len() as f64;
                    roc = Some(report::Curve { points: rc, auc: palisade_models::metrics::roc_auc(&sc, &lb), baseline: None });
                    pr = Some(report::Curve { points: pc, auc: palisade_models::metrics::average_precision(&sc, &lb), baseline: Some(base) });
                }
                _ => notes.push(format!(
                    "`{}` on `{}`: supervised, and no held-out rows with both classes were available, so no curves (training-set curves would flatter it).",
                    s.cfg.name.get_ref(),
                    b.cfg.name.get_ref()
                )),
            }
        }
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in &s.cfg.options {
            params.push((k.clone(), v.to_string()));
        }
        params.push((
            "features".into(),
            s.model.body.schema.features.len().to_string(),
        ));
        params.push((
            "training rows".into(),
            s.model.body.training.rows.to_string(),
        ));
        if let Some(seed) = s.model.body.training.seed {
            params.push(("seed".into(), seed.to_string()));
        }
        for n in &s.model.body.training.notes {
            params.push(("note".into(), n.clone()));
        }
        results.push(report::ModelResult {
            name: s.cfg.name.get_ref().clone(),
            kind: s.model.body.kind.clone(),
            provenance: s.provenance.clone(),
            params,
            threshold: s.threshold.is_finite().then_some(s.threshold),
            threshold_rule: s.threshold_rule.clone(),
            scores: s.scores.clone(),
            alerts: s.scores.iter().filter(|&&x| x >= s.threshold).count(),
            roc,
            pr,
        });
    }
    let map = models.first().and_then(|s| {
        let x = s.model.matrix(&b.table).ok()?;
        let (pts, explained) = adapters::pca_2d(&x)?;
        let multi_window = b.table.column("window_start").is_some_and(|c| {
            let first = c.data.text(0);
            (1..c.data.len()).any(|i| c.data.text(i) != first)
        });
        let points = pts
            .into_iter()
            .enumerate()
            .map(|(i, (x, y))| {
                let (ent, start, _) = entity_of(b, i);
                let name = match (multi_window, start) {
                    (true, Some(st)) => {
                        format!("{ent} @{}", short_time(&st).get(11..16).unwrap_or(""))
                    }
                    _ => ent,
                };
                report::MapPoint {
                    x,
                    y,
                    score: s.scores.get(i).copied().unwrap_or(f64::NAN),
                    label: b.labels.as_ref().and_then(|l| l.get(i).copied()),
                    name,
                }
            })
            .collect();
        Some(report::PcaMap {
            points,
            explained,
            coloured_by: s.cfg.name.get_ref().clone(),
            name_top: map_names,
        })
    });
    report::Analysis {
        name: b.cfg.name.get_ref().clone(),
        entity: b.entity_desc.clone(),
        rows: b.table.nrows(),
        positives,
        labels: b.labels.clone(),
        label_source: b.label_source.clone(),
        map,
        models: results,
    }
}
