//! The report: plots (plotters, SVG backend) and one self-contained HTML file.
//!
//! The input is plain data ([`ReportInput`]) that the pipeline fills from the
//! other layers' results, so this crate depends only on `palisade-core` and
//! `plotters`. Nothing here computes metrics or fits models: curves, scores and
//! projections arrive computed; the report draws and explains them.
//!
//! Invariants:
//! - the HTML is self-contained: inline CSS, inline SVG, no script, no `src=` or
//!   `href=` to anything but in-page anchors (the test `no_external_references` holds this);
//! - every string that comes from data (paths, entity names, feature names, feed
//!   indicators) goes through [`escape`] before it reaches the page.

mod html;
mod plots;

pub use html::escape;
pub use plots::{histogram_svg, pca_map_svg, pr_svg, roc_svg};

use palisade_core::FeatureDef;
use serde::{Deserialize, Serialize};

/// Errors while rendering. Plotting errors carry the chart's name.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("plot `{chart}`: {message}")]
    Plot { chart: String, message: String },
}

/// Everything the report shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReportInput {
    pub title: String,
    /// RFC 3339 time the report was made.
    pub generated_at: String,
    /// The pipeline file that produced it.
    pub pipeline: String,
    pub seed: Option<u64>,
    pub sources: Vec<SourceSummary>,
    pub stages: Vec<StageSummary>,
    pub feeds: Vec<FeedSummary>,
    pub analyses: Vec<Analysis>,
    /// The top alerts, already sorted by score (highest first).
    pub alerts: Vec<AlertRow>,
    /// Total number of alerts before any `--top` limit.
    pub alerts_total: usize,
    /// How many of `alerts` the table shows (0 = all); the summary reads them all.
    pub alerts_in_table: usize,
    /// The feature catalog of every feature used.
    pub features: Vec<FeatureDef>,
    /// Output files written (path, what).
    pub outputs: Vec<(String, String)>,
    /// Caveats the reader should know (feeds that matched nothing, models skipped, …).
    pub notes: Vec<String>,
}

/// One input file or glob, as read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SourceSummary {
    pub name: String,
    pub path: String,
    pub format: String,
    pub lines: u64,
    pub events: u64,
    pub skipped: u64,
    /// Parse errors by reason, with counts.
    pub errors_by_reason: Vec<(String, u64)>,
    /// Lines kept as events despite a problem (a time that would not parse),
    /// counted in `events`.
    #[serde(default)]
    pub flagged: u64,
    /// Those lines by reason, with counts.
    #[serde(default)]
    pub flagged_by_reason: Vec<(String, u64)>,
    /// First and last event time, microseconds since the epoch.
    pub first_us: Option<i64>,
    pub last_us: Option<i64>,
}

/// A pipeline stage: what it did and how long it took.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageSummary {
    pub name: String,
    pub detail: String,
    pub count: u64,
    pub seconds: f64,
}

/// A threat-intelligence feed as loaded, and what it matched.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FeedSummary {
    pub name: String,
    pub path: String,
    pub indicators: u64,
    /// Indicators by kind (`domain`, `ipv4`, `url`, …).
    pub by_kind: Vec<(String, u64)>,
    /// Events this feed matched.
    pub matched_events: u64,
}

/// One feature table and the models run over it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Analysis {
    pub name: String,
    /// What one row is, e.g. "source IP × 1-minute window".
    pub entity: String,
    pub rows: usize,
    /// Rows labelled positive (from feeds or analysts), when labels exist.
    pub positives: Option<usize>,
    /// Per-row labels (same order as the models' scores), when labels exist.
    pub labels: Option<Vec<bool>>,
    /// Where the labels come from, e.g. "threat-intel match on any event of the row".
    pub label_source: String,
    pub map: Option<PcaMap>,
    pub models: Vec<ModelResult>,
}

/// Rows projected on the first two principal components.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PcaMap {
    pub points: Vec<MapPoint>,
    /// Share of variance explained by PC1 and PC2 (0..1).
    pub explained: [f64; 2],
    /// Name of the score the colour shows (the model's name).
    pub coloured_by: String,
    /// How many of the highest-scoring points to name on the map.
    pub name_top: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MapPoint {
    pub x: f64,
    pub y: f64,
    pub score: f64,
    pub label: Option<bool>,
    pub name: String,
}

/// A model's scores on one analysis, and its curves where labels exist.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelResult {
    pub name: String,
    pub kind: String,
    /// `trained on N rows` or `loaded from PATH`.
    pub provenance: String,
    pub params: Vec<(String, String)>,
    pub threshold: Option<f64>,
    pub threshold_rule: String,
    pub scores: Vec<f64>,
    pub alerts: usize,
    pub roc: Option<Curve>,
    pub pr: Option<Curve>,
}

/// A curve (x, y) with its area, e.g. ROC (FPR, TPR) or PR (recall, precision).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Curve {
    pub points: Vec<(f64, f64)>,
    pub auc: f64,
    /// PR only: the share of positives (the no-skill line).
    pub baseline: Option<f64>,
}

/// One alert as shown in the table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlertRow {
    pub timestamp: String,
    pub entity: String,
    pub window: String,
    pub analysis: String,
    pub model: String,
    pub score: f64,
    pub threshold: f64,
    pub top_features: Vec<Contribution>,
    pub intel: Vec<IntelHit>,
}

/// Why: a feature, its value here, and its typical (median) value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    pub value: f64,
    pub typical: f64,
    /// The model's attribution to this feature (share or raw), for ordering.
    pub weight: f64,
}

/// A threat-intelligence match, with provenance.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IntelHit {
    pub feed: String,
    pub indicator: String,
    pub field: String,
    pub category: String,
    pub count: u64,
}

/// Render the whole report as one HTML page.
pub fn render_html(input: &ReportInput) -> Result<String, ReportError> {
    html::render(input)
}
