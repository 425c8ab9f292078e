//! `palisade label` and `palisade intel stats`: wiring only; the work is in palisade-intel.

use anyhow::{bail, Context, Result};
use palisade_intel::{
    feeds::parse_time, label_table, stats, FeedSet, LabelOptions, Matcher, Verdicts,
};
use std::path::PathBuf;

/// Where the feeds come from (shared by `label` and `intel stats`).
#[derive(clap::Args, Debug, Clone)]
pub struct FeedArgs {
    /// Feed config (TOML): feeds with path/glob, format, kind, category, confidence, expiry; allow list.
    #[arg(long, value_name = "FEEDS.toml")]
    pub feeds: Option<PathBuf>,
    /// A feed file, directory or glob; format and kinds detected (repeatable).
    #[arg(long = "feed", value_name = "PATH")]
    pub feed: Vec<String>,
    /// A malformed feed line is an error instead of a counted, reported skip.
    #[arg(long)]
    pub strict: bool,
    /// Keep private and reserved ranges from the feeds (excluded by default).
    #[arg(long)]
    pub include_reserved: bool,
    /// Reference time for expiry (RFC 3339 or YYYY-MM-DD); default now.
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
}

impl FeedArgs {
    fn load(&self) -> Result<(FeedSet, palisade_intel::MatchOptions)> {
        if self.feeds.is_none() && self.feed.is_empty() {
            bail!("give --feeds FEEDS.toml or at least one --feed PATH");
        }
        let (set, mut opts) = palisade_intel::load(self.feeds.as_deref(), &self.feed, self.strict)?;
        if self.include_reserved {
            opts.include_reserved = true;
        }
        if let Some(t) = &self.as_of {
            opts.as_of_us =
                Some(parse_time(t).with_context(|| format!("--as-of `{t}` is not a time"))?);
        }
        for f in &set.feeds {
            let r = &f.report;
            // malformed lines: palisade-intel's warning (with the first
            // one's file, line and reason) says it; a line here said it twice
            tracing::info!(feed = %f.name, files = r.files, indicators = r.indicators, "feed loaded");
        }
        Ok((set, opts))
    }
}

#[derive(clap::Args)]
pub struct LabelArgs {
    #[command(flatten)]
    pub feeds: FeedArgs,
    /// Event or feature table to label (CSV, JSON lines, Parquet).
    #[arg(long = "in", value_name = "TABLE")]
    pub input: PathBuf,
    /// Labelled table (format from the extension; written atomically).
    #[arg(long, value_name = "LABELED")]
    pub out: PathBuf,
    /// Analyst verdicts CSV: indicator|entity,verdict(malicious|benign),who,when,note.
    #[arg(long, value_name = "V.csv")]
    pub verdicts: Option<PathBuf>,
    /// Columns to match (repeatable); default: known identity names and identity columns.
    #[arg(long = "column", value_name = "NAME")]
    pub columns: Vec<String>,
}

#[derive(clap::Args)]
pub struct IntelArgs {
    #[command(subcommand)]
    pub command: IntelCommand,
}

#[derive(clap::Subcommand)]
pub enum IntelCommand {
    /// Per-feed size by kind, expired share, overlap (Jaccard, containment), uniqueness,
    /// novelty against a previous snapshot, hit rate over events.
    Stats(StatsArgs),
}

#[derive(clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub feeds: FeedArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Events (JSON lines, CSV, Parquet) to compute each feed's hit rate on.
    #[arg(long, value_name = "TABLE")]
    pub events: Option<PathBuf>,
    /// A previous snapshot of the feeds (file, directory or glob; repeatable) for novelty.
    #[arg(long, value_name = "SNAPSHOT")]
    pub previous: Vec<String>,
}

pub fn run_label(args: LabelArgs) -> Result<()> {
    let (set, opts) = args.feeds.load()?;
    let m = Matcher::build(&set, &opts);
    let verdicts = match &args.verdicts {
        Some(p) => Some(Verdicts::read(p)?),
        None => None,
    };
    let mut table = palisade_io::read_table(&args.input, &palisade_io::ReadTableOptions::default())
        .with_context(|| format!("reading {}", args.input.display()))?;
    let lo = LabelOptions {
        columns: (!args.columns.is_empty()).then(|| args.columns.clone()),
    };
    let s = label_table(&mut table, &set, &m, verdicts.as_ref(), &lo)?;
    palisade_io::write_table(&args.out, &table)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "labelled {} rows: {} positive ({} by feeds, {} verdict overrides); matched columns: {}; indicators indexed {} (excluded: {} reserved, {} allow-listed, {} expired)",
        s.rows,
        s.positive,
        s.by_feed_hits,
        s.verdict_overrides,
        s.columns.join(","),
        m.report.indexed,
        m.report.excluded_reserved,
        m.report.excluded_allowed,
        m.report.expired
    );
    for (k, n) in &s.by_match_kind {
        eprintln!("  {k}: {n}");
    }
    Ok(())
}

pub fn run_intel(args: IntelArgs) -> Result<()> {
    match args.command {
        IntelCommand::Stats(a) => run_stats(a),
    }
}

fn run_stats(args: StatsArgs) -> Result<()> {
    let (set, opts) = args.feeds.load()?;
    let as_of = opts.as_of_us.unwrap_or_else(now_us);
    let mut report = stats::feed_stats(&set, as_of);
    if !args.previous.is_empty() {
        let (prev, _) = palisade_intel::load(None, &args.previous, args.feeds.strict)?;
        report.novelty = Some(stats::novelty(&prev, &set));
    }
    if let Some(p) = &args.events {
        let events =
            palisade_io::read_events(p).with_context(|| format!("reading {}", p.display()))?;
        report.hit_rates = Some(stats::hit_rates(&set, &events, &opts));
    }
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        render_text(&report)
    };
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // `palisade intel stats | head` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn render_text(r: &stats::StatsReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>9} {:>8} {:>8} {:>9}  by kind",
        "feed", "total", "expired", "unique", "malformed"
    );
    for f in &r.feeds {
        let kinds: Vec<String> = f.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            out,
            "{:<40} {:>9} {:>8} {:>8} {:>9}  {}",
            f.name,
            f.total,
            pct(f.expired_share),
            pct(f.unique_share),
            f.malformed,
            kinds.join(", ")
        );
        if !f.unsupported.is_empty() {
            let u: Vec<String> = f
                .unsupported
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            let _ = writeln!(out, "{:<40} skipped: {}", "", u.join("; "));
        }
    }
    let overlapping: Vec<_> = r.overlap.iter().filter(|o| o.common > 0).collect();
    let _ = writeln!(
        out,
        "\noverlap ({} of {} feed pairs share indicators)",
        overlapping.len(),
        r.overlap.len()
    );
    if !overlapping.is_empty() {
        let _ = writeln!(
            out,
            "{:<30} {:<30} {:>8} {:>8} {:>8} {:>8}",
            "a", "b", "common", "jaccard", "a in b", "b in a"
        );
        for o in overlapping {
            let _ = writeln!(
                out,
                "{:<30} {:<30} {:>8} {:>8.5} {:>8} {:>8}",
                o.a,
                o.b,
                o.common,
                o.jaccard,
                pct(o.a_in_b),
                pct(o.b_in_a)
            );
        }
    }
    if let Some(n) = &r.novelty {
        let _ = writeln!(
            out,
            "\nnovelty vs previous snapshot: previous {}, current {}, added {} ({}), removed {} ({}), kept {}",
            n.previous,
            n.current,
            n.added,
            pct(n.added_share),
            n.removed,
            pct(n.removed_share),
            n.kept
        );
    }
    if let Some(h) = &r.hit_rates {
        let _ = writeln!(
            out,
            "\nhit rate over {} events",
            h.first().map(|x| x.events).unwrap_or(0)
        );
        for x in h {
            let _ = writeln!(
                out,
                "{:<40} {:>8} hits {:>8}  ({} indicators hit)",
                x.feed,
                x.hits,
                pct(x.rate),
                x.indicators_hit
            );
        }
    }
    out
}
