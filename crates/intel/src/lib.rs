//! Threat intelligence for Palisade: read feeds in their published formats
//! (plain lists, CSV, hosts files, netsets, STIX 2.1, MISP) into one
//! [`Indicator`] model, match IPs, networks, domains, URLs, host:port and user
//! agents fast ([`Matcher`]), label events and tables with provenance and
//! analyst verdicts ([`label`]), and measure the feeds ([`stats`]).

pub mod config;
pub mod feeds;
pub mod indicator;
pub mod label;
pub mod matcher;
mod misp;
pub mod stats;
pub mod stix;

pub use config::FeedConfig;
pub use feeds::{FeedInfo, FeedReport, FeedSet, FeedSpec, Format};
pub use indicator::{Indicator, Kind};
pub use label::{
    apply_group_labels, label_events, label_groups, label_table, match_event, GroupLabel,
    LabelOptions, LabelSummary, Provenance, RowLabel, Verdicts,
};
pub use matcher::{AllowList, Hit, MatchKind, MatchOptions, Matcher};

/// Errors of feed loading, config, verdicts and labelling. Each names the file
/// (and line or key) at fault.
#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    // `err`, not `source`: the message already carries it, and a `source` would
    // print it twice in `anyhow`'s chain.
    #[error("cannot read `{path}`: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("feed `{path}`: {msg}")]
    Feed { path: String, msg: String },
    #[error("{file}:{line}: malformed entry: {msg}")]
    Malformed {
        file: String,
        line: u64,
        msg: String,
    },
    #[error("feed config `{path}`: {msg}")]
    Config { path: String, msg: String },
    #[error("verdicts `{file}` line {line}: {msg}")]
    Verdicts {
        file: String,
        line: u64,
        msg: String,
    },
    #[error("table: {0}")]
    Table(String),
}

/// Feeds and match options from a config file and/or `--feed` paths.
pub fn load(
    config: Option<&std::path::Path>,
    paths: &[String],
    strict: bool,
) -> Result<(FeedSet, MatchOptions), IntelError> {
    let mut specs = Vec::new();
    let mut opts = MatchOptions::default();
    if let Some(c) = config {
        let cfg = FeedConfig::read(c)?;
        specs.extend(cfg.feeds);
        opts.allow = cfg.allow;
        opts.include_reserved = cfg.include_reserved;
    }
    let mut names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    for p in paths {
        let mut s = FeedSpec::from_path(p);
        let base = s.name.clone();
        let mut n = 2;
        while names.contains(&s.name) {
            s.name = format!("{base}#{n}");
            n += 1;
        }
        names.push(s.name.clone());
        specs.push(s);
    }
    Ok((FeedSet::load(&specs, strict)?, opts))
}
