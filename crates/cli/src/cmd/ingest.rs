//! `palisade ingest`: raw logs in their native formats to one event file.

use anyhow::{bail, Context};
use palisade_ingest::{Format, IngestOptions, Mapping};
use palisade_io::{EventFormat, EventWriter};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct IngestArgs {
    /// Input files or glob patterns (`logs/*.log.gz`); `-` reads stdin. Gzip is detected and read transparently; each file in a zip archive is read as an input of its own, named ARCHIVE!/FILE.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Input format (default: detect per file): zeek-tsv, zeek-json, squid, w3c, apache, evtx, windows-json, netfilter, mapped.
    #[arg(long, short = 'f')]
    pub format: Option<String>,
    /// TOML mapping for CSV / JSON lines (implies --format mapped).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Output event file (.parquet, .jsonl or .csv).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Output format when the extension does not say: parquet, jsonl or csv.
    #[arg(long)]
    pub out_format: Option<String>,
    /// Fail when more than N lines in all (summed over inputs) are malformed.
    #[arg(long, value_name = "N")]
    pub max_errors: Option<u64>,
    /// Write every rejected line, verbatim, to this file.
    #[arg(long, value_name = "FILE")]
    pub quarantine: Option<PathBuf>,
    /// Do not keep the original line in `event.original` (smaller output).
    #[arg(long)]
    pub no_original: bool,
}

/// Expand globs; a plain path (or `-`) is kept as is so a missing file gets a
/// clear "No such file" error rather than silently matching nothing.
fn expand(inputs: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for i in inputs {
        if i != "-" && i.contains(['*', '?', '[']) {
            let mut matched: Vec<PathBuf> = glob::glob(i)
                .with_context(|| format!("bad glob pattern `{i}`"))?
                .collect::<Result<_, _>>()
                .with_context(|| format!("reading matches of `{i}`"))?;
            if matched.is_empty() {
                bail!("`{i}` matches no file");
            }
            matched.sort();
            out.extend(matched);
        } else {
            out.push(PathBuf::from(i));
        }
    }
    Ok(out)
}

/// A progress bar over the bytes read of `path`, on a terminal and for an
/// input long enough to watch (also used by `palisade features`).
pub(crate) fn progress_for(path: &Path) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() || path.as_os_str() == "-" {
        return None;
    }
    let len = std::fs::metadata(path).ok()?.len();
    // short inputs finish before a bar would be seen
    if len < 8 << 20 {
        return None;
    }
    let pb = indicatif::ProgressBar::new(len);
    let style = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "));
    if let Ok(s) = style {
        pb.set_style(s);
    }
    pb.set_message(path.display().to_string());
    Some(pb)
}

pub fn run(a: IngestArgs) -> anyhow::Result<()> {
    let format = a.format.as_deref().map(Format::from_name).transpose()?;
    let mapping = match &a.mapping {
        Some(m) => Some(Mapping::load(m)?),
        None => None,
    };
    if format == Some(Format::Mapped) && mapping.is_none() {
        bail!("--format mapped needs --mapping M.toml");
    }
    let out_format = match &a.out_format {
        Some(f) => EventFormat::parse(f).with_context(|| format!("unknown --out-format `{f}` (parquet, jsonl or csv)"))?,
        None => EventFormat::from_path(&a.out).with_context(|| {
            format!("cannot tell the output format of {}; use .parquet, .jsonl or .csv, or --out-format", a.out.display())
        })?,
    };
    let inputs = expand(&a.inputs)?;
    let mut writer = EventWriter::create(&a.out, out_format)?;
    let mut quarantine = match &a.quarantine {
        Some(q) => Some(std::io::BufWriter::new(
            std::fs::File::create(q)
                .with_context(|| format!("creating quarantine file {}", q.display()))?,
        )),
        None => None,
    };

    let mut total_events = 0u64;
    let mut total_skipped = 0u64;
    for path in &inputs {
        let opts = IngestOptions {
            keep_original: !a.no_original,
            // --max-errors counts over all inputs: each file gets what is left
            max_errors: a.max_errors.map(|m| m.saturating_sub(total_skipped)),
            mapping: mapping.clone(),
            ..Default::default()
        };
        let name = path.display().to_string();
        let input = palisade_ingest::open_path(path)?;
        let pb = progress_for(path);
        let input: Box<dyn std::io::Read> = match &pb {
            Some(pb) => Box::new(pb.wrap_read(input)),
            None => input,
        };
        let q = quarantine.as_mut().map(|q| q as &mut dyn Write);
        let result = palisade_ingest::ingest_reader(&name, input, format, &opts, q, |ev| {
            writer
                .write(ev)
                .map_err(|e| Box::new(e) as palisade_ingest::SinkError)
        });
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        let summary = result?;
        eprintln!("{summary}");
        total_events += summary.events;
        total_skipped += summary.skipped_total();
    }
    if let Some(mut q) = quarantine {
        q.flush().context("writing the quarantine file")?;
    }
    writer.finish()?;
    eprintln!(
        "wrote {total_events} events from {} input(s) to {}{}",
        inputs.len(),
        a.out.display(),
        if total_skipped > 0 {
            format!(" ({total_skipped} lines skipped)")
        } else {
            String::new()
        }
    );
    Ok(())
}
