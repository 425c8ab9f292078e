//! The declarative pipeline file (TOML): sources → features → intel → models → outputs.
//!
//! ```toml
//! name = "WRCCDC quickstart"
//! seed = 42
//!
//! [[source]]
//! name = "zeek"
//! paths = ["logs/*.log.gz"]     # globs, relative to this file
//! format = "auto"               # or a reader name (zeek, squid, w3c, apache, evtx, winlogbeat, netfilter, csv, jsonl)
//! # mapping = "mapping.toml"    # for mapped CSV / JSON lines
//!
//! [intel]
//! feeds = ["feeds/**/*.txt"]    # feed files (format detected), and/or
//! # config = "feeds.toml"       # a feed config (formats, categories, allow list)
//! # verdicts = "verdicts.csv"   # analyst verdicts, override the feeds
//!
//! [[features]]
//! name = "hosts"
//! set = "entity"                # request | domain | host | flow | entity
//! config = "source-ip.toml"     # entity: a feature-set TOML (or `builtin = "host"`)
//! window = "1m"
//! sources = ["zeek"]            # default: every source
//!
//! [[model]]
//! name = "iforest"
//! features = "hosts"
//! kind = "iforest"              # iforest | pca | autoencoder | ensemble | gbt | rf
//! threshold = { contamination = 0.03 }   # or { fpr = 0.01 } or { fixed = 0.6 }
//! options = { trees = 200 }
//! # load = "models/hosts-iforest.json"   # score with a saved model instead of training
//! # train_after = "2018-03-24T17:00:00Z" # train on a time range only
//!
//! [output]
//! dir = "out/quickstart"        # relative to the current directory
//! top = 50
//! ```
//!
//! Input paths (sources, feeds, entity configs, model files to load) are
//! relative to the pipeline file; the output directory is relative to the
//! current directory, so running an example never writes into the example.
//! Unknown keys are errors, and every error names the key and its line.

use crate::PipelineError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Seed for every model (each model may override it).
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(rename = "source", default)]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub intel: Option<IntelConfig>,
    #[serde(rename = "features", default)]
    pub features: Vec<FeaturesConfig>,
    #[serde(rename = "model", default)]
    pub models: Vec<ModelConfig>,
    #[serde(default)]
    pub output: OutputConfig,
}

fn default_seed() -> u64 {
    42
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: Spanned<String>,
    /// Files or globs.
    pub paths: Vec<Spanned<String>>,
    #[serde(default = "default_format")]
    pub format: Spanned<String>,
    #[serde(default)]
    pub mapping: Option<String>,
    /// Fail the run when a source has more parse errors than this.
    #[serde(default)]
    pub max_errors: Option<u64>,
}

fn default_format() -> Spanned<String> {
    Spanned::new(0..0, "auto".to_string())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelConfig {
    #[serde(default)]
    pub config: Option<String>,
    #[serde(default)]
    pub feeds: Vec<Spanned<String>>,
    #[serde(default)]
    pub verdicts: Option<String>,
    /// Malformed feed lines are fatal instead of counted.
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesConfig {
    pub name: Spanned<String>,
    pub set: Spanned<String>,
    /// Entity sets: a feature-set TOML file.
    #[serde(default)]
    pub config: Option<Spanned<String>>,
    /// Entity sets: a built-in set (`host`, `flow`) instead of a file.
    #[serde(default)]
    pub builtin: Option<Spanned<String>>,
    /// Window length for entity sets (overrides the set's own).
    #[serde(default)]
    pub window: Option<Spanned<String>>,
    /// Sources to read (by name); empty = every source.
    #[serde(default)]
    pub sources: Vec<Spanned<String>>,
    /// Keep only events of these datasets (`event.dataset`, e.g. `zeek.dns`); empty = all.
    #[serde(default)]
    pub datasets: Vec<String>,
    /// Labels: `intel` (default when feeds are configured), `none`, or a label
    /// column the table already carries (e.g. `labels.source_label`).
    #[serde(default)]
    pub label: Option<Spanned<String>>,
    /// Short text shown in the report: what one row is.
    #[serde(default)]
    pub describe: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: Spanned<String>,
    /// The `[[features]]` table it reads.
    pub features: Spanned<String>,
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// A model file to load instead of training.
    #[serde(default)]
    pub load: Option<Spanned<String>>,
    #[serde(default)]
    pub threshold: Option<Spanned<ThresholdConfig>>,
    /// Model-specific options, passed to the trainer (unknown ones are its error).
    #[serde(default)]
    pub options: toml::Table,
    /// Columns to log-transform (`*` = all).
    #[serde(default)]
    pub log: Vec<String>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Train only on rows whose window starts at or after / before these RFC 3339 times.
    #[serde(default)]
    pub train_after: Option<Spanned<String>>,
    #[serde(default)]
    pub train_before: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum ThresholdConfig {
    Contamination(f64),
    Fpr(f64),
    Fixed(f64),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    #[serde(default = "default_out_dir")]
    pub dir: String,
    #[serde(default = "default_alerts")]
    pub alerts: String,
    #[serde(default = "default_report")]
    pub report: String,
    /// Write each scored feature table (CSV) to `tables/`.
    #[serde(default = "yes")]
    pub tables: bool,
    /// Save trained models to `models/`.
    #[serde(default = "yes")]
    pub models: bool,
    /// Keep only the N highest-scoring alerts.
    #[serde(default)]
    pub top: Option<usize>,
    /// Features per alert explanation.
    #[serde(default = "default_explain")]
    pub explain: usize,
    /// Alerts shown in the report's table.
    #[serde(default = "default_report_alerts")]
    pub report_alerts: usize,
    /// Points named on the PCA map.
    #[serde(default = "default_map_names")]
    pub map_names: usize,
}

fn default_out_dir() -> String {
    "out".into()
}
fn default_alerts() -> String {
    "alerts.jsonl".into()
}
fn default_report() -> String {
    "report.html".into()
}
fn yes() -> bool {
    true
}
fn default_explain() -> usize {
    5
}
fn default_report_alerts() -> usize {
    25
}
fn default_map_names() -> usize {
    8
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            dir: default_out_dir(),
            alerts: default_alerts(),
            report: default_report(),
            tables: true,
            models: true,
            top: None,
            explain: default_explain(),
            report_alerts: default_report_alerts(),
            map_names: default_map_names(),
        }
    }
}

pub const FEATURE_SETS: &[&str] = &["request", "domain", "host", "flow", "entity"];

/// A loaded pipeline: its config, its text (for error lines) and its folder.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub text: String,
    pub config: PipelineConfig,
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

impl Pipeline {
    pub fn read(path: &Path) -> Result<Pipeline, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|e| PipelineError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Pipeline::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Pipeline, PipelineError> {
        let config: PipelineConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            PipelineError::Config {
                path: path.to_path_buf(),
                line,
                message: e.message().to_string(),
            }
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let p = Pipeline {
            path: path.to_path_buf(),
            dir,
            text: text.to_string(),
            config,
        };
        p.validate()?;
        Ok(p)
    }

    /// An error about the value at `span`.
    pub fn err_at(
        &self,
        span: std::ops::Range<usize>,
        message: impl Into<String>,
    ) -> PipelineError {
        PipelineError::Config {
            path: self.path.clone(),
            line: line_of(&self.text, span.start),
            message: message.into(),
        }
    }

    /// Resolve an input path relative to the pipeline file.
    pub fn input_path(&self, p: &str) -> PathBuf {
        let pb = PathBuf::from(p);
        if pb.is_absolute() {
            pb
        } else {
            self.dir.join(pb)
        }
    }

    /// Cross-references and enumerations the types cannot check.
    fn validate(&self) -> Result<(), PipelineError> {
        let c = &self.config;
        if c.sources.is_empty() {
            return Err(PipelineError::Config {
                path: self.path.clone(),
                line: 0,
                message: "no `[[source]]`: a pipeline needs at least one source".into(),
            });
        }
        let mut names = std::collections::HashSet::new();
        for s in &c.sources {
            if !names.insert(s.name.get_ref().as_str()) {
                return Err(self.err_at(
                    s.name.span(),
                    format!("key `source.name`: `{}` appears twice", s.name.get_ref()),
                ));
            }
            if s.paths.is_empty() {
                return Err(self.err_at(
                    s.name.span(),
                    format!("source `{}`: key `paths` is empty", s.name.get_ref()),
                ));
            }
        }
        let mut tables = std::collections::HashSet::new();
        for f in &c.features {
            if !tables.insert(f.name.get_ref().as_str()) {
                return Err(self.err_at(
                    f.name.span(),
                    format!("key `features.name`: `{}` appears twice", f.name.get_ref()),
                ));
            }
            if !FEATURE_SETS.contains(&f.set.get_ref().as_str()) {
                return Err(self.err_at(
                    f.set.span(),
                    format!(
                        "key `features.set`: unknown set `{}` (known: {})",
                        f.set.get_ref(),
                        FEATURE_SETS.join(", ")
                    ),
                ));
            }
            if f.set.get_ref() == "entity" && f.config.is_none() && f.builtin.is_none() {
                return Err(self.err_at(
                    f.set.span(),
                    format!(
                        "features `{}`: an entity set needs key `config` (a set TOML) or `builtin`",
                        f.name.get_ref()
                    ),
                ));
            }
            for s in &f.sources {
                if !names.contains(s.get_ref().as_str()) {
                    return Err(self.err_at(
                        s.span(),
                        format!("key `features.sources`: no source named `{}`", s.get_ref()),
                    ));
                }
            }
        }
        let mut models = std::collections::HashSet::new();
        for m in &c.models {
            let key = (m.features.get_ref().as_str(), m.name.get_ref().as_str());
            if !models.insert(key) {
                return Err(self.err_at(
                    m.name.span(),
                    format!(
                        "key `model.name`: `{}` appears twice for `{}`",
                        key.1, key.0
                    ),
                ));
            }
            if !tables.contains(m.features.get_ref().as_str()) {
                return Err(self.err_at(
                    m.features.span(),
                    format!(
                        "key `model.features`: no `[[features]]` named `{}`",
                        m.features.get_ref()
                    ),
                ));
            }
            match (&m.kind, &m.load) {
                (None, None) => {
                    return Err(self.err_at(
                        m.name.span(),
                        format!(
                            "model `{}`: give key `kind` (to train) or `load`",
                            m.name.get_ref()
                        ),
                    ))
                }
                (Some(k), _) if !palisade_models::KINDS.contains(&k.get_ref().as_str()) => {
                    return Err(self.err_at(
                        k.span(),
                        format!(
                            "key `model.kind`: unknown kind `{}` (known: {})",
                            k.get_ref(),
                            palisade_models::KINDS.join(", ")
                        ),
                    ))
                }
                _ => {}
            }
            if let Some(t) = &m.threshold {
                let ok = match *t.get_ref() {
                    ThresholdConfig::Contamination(c) => c > 0.0 && c < 1.0,
                    ThresholdConfig::Fpr(f) => (0.0..1.0).contains(&f),
                    ThresholdConfig::Fixed(v) => v.is_finite(),
                };
                if !ok {
                    return Err(self.err_at(t.span(), "key `model.threshold`: contamination must be in (0, 1), fpr in [0, 1), fixed finite"));
                }
            }
            for t in [&m.train_after, &m.train_before].into_iter().flatten() {
                if palisade_core::event::parse_timestamp_us(t.get_ref()).is_none() {
                    return Err(self.err_at(
                        t.span(),
                        format!("`{}` is not an RFC 3339 time", t.get_ref()),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
seed = 7
[[source]]
name = "zeek"
paths = ["logs/*.log"]

[[features]]
name = "hosts"
set = "entity"
builtin = "flow"

[[model]]
name = "if"
features = "hosts"
kind = "iforest"
threshold = { contamination = 0.05 }
"#;

    fn parse(t: &str) -> Result<Pipeline, PipelineError> {
        Pipeline::parse(t, Path::new("dir/p.toml"))
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let p = parse(GOOD).unwrap();
        assert_eq!(p.config.seed, 7);
        assert_eq!(p.config.sources[0].format.get_ref(), "auto");
        assert_eq!(p.config.output.alerts, "alerts.jsonl");
        assert!(
            matches!(p.config.models[0].threshold.as_ref().map(|t| *t.get_ref()), Some(ThresholdConfig::Contamination(c)) if c == 0.05)
        );
        assert_eq!(p.input_path("logs/x"), PathBuf::from("dir/logs/x"));
    }

    fn line_and_msg(t: &str) -> (usize, String) {
        match parse(t) {
            Err(PipelineError::Config { line, message, .. }) => (line, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let (line, msg) =
            line_and_msg(&GOOD.replace("kind = \"iforest\"", "kind = \"iforest\"\ntrees = 3"));
        assert_eq!(line, 16);
        assert!(msg.contains("trees"), "{msg}");
    }

    #[test]
    fn wrong_type_names_line() {
        let (line, msg) = line_and_msg(&GOOD.replace("seed = 7", "seed = \"seven\""));
        assert_eq!(line, 2);
        assert!(msg.contains("integer") || msg.contains("u64"), "{msg}");
    }

    #[test]
    fn bad_references_name_key_and_line() {
        let (line, msg) =
            line_and_msg(&GOOD.replace("features = \"hosts\"", "features = \"nope\""));
        assert_eq!(line, 14);
        assert!(
            msg.contains("model.features") && msg.contains("nope"),
            "{msg}"
        );
        let (line, msg) = line_and_msg(&GOOD.replace("kind = \"iforest\"", "kind = \"forest\""));
        assert_eq!(line, 15);
        assert!(msg.contains("model.kind"), "{msg}");
        let (line, msg) = line_and_msg(&GOOD.replace("set = \"entity\"", "set = \"hostz\""));
        assert_eq!(line, 9);
        assert!(msg.contains("features.set"), "{msg}");
        let (line, _) = line_and_msg(&GOOD.replace("contamination = 0.05", "contamination = 2.0"));
        assert_eq!(line, 16);
    }

    #[test]
    fn malformed_toml_names_line() {
        let (line, _) = line_and_msg("seed = 1\n[[source]\nname = 'x'\n");
        assert_eq!(line, 2);
    }
}
