//! `palisade features`: events (or a raw log, or a CSV of URLs/domains) to a
//! feature table; `palisade features list` prints the catalog.

use anyhow::{bail, Context};
use palisade_core::{ColumnData, ColumnRole, Event, Table};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct FeaturesArgs {
    #[command(subcommand)]
    pub cmd: FeaturesCmd,
}

#[derive(clap::Subcommand)]
pub enum FeaturesCmd {
    /// Per-request features (Franc et al.) of web/proxy/TLS events, or of a CSV of URLs (`--column`).
    Request(InOut),
    /// Domain-name features of DNS/web events, or of a CSV of domains (`--column`).
    Domain(InOut),
    /// Per-host windowed features (Siddiqui et al.) of Windows and Zeek events.
    Host(InOut),
    /// Windowed per-entity features from a built-in set (`--set flow|host`) or a TOML definition (`--config`).
    Entity(InOut),
    /// Print the feature catalog: every feature with its definition.
    List {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Only this set (request, url, domain, host, flow).
        #[arg(long)]
        set: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct InOut {
    /// Input: events from `palisade ingest` (.jsonl/.csv/.parquet), or a raw log (any other name, or `--format`).
    #[arg(long = "in")]
    pub input: PathBuf,
    /// Output table (.parquet, .csv or .jsonl).
    #[arg(long)]
    pub out: PathBuf,
    /// Read the input as a raw log in this format (see `palisade ingest --help`), not as an event file.
    #[arg(long)]
    pub format: Option<String>,
    /// request/domain: the input is a CSV/JSONL/Parquet table; compute on this column, carry the others.
    #[arg(long)]
    pub column: Option<String>,
    /// With --column: columns carried as labels (default: a column named `label`); the rest are carried as meta.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// entity: built-in set name (flow, host).
    #[arg(long)]
    pub set: Option<String>,
    /// entity: a TOML feature-set definition.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// host/entity: window length (e.g. 1d, 12h, 15m); default: the set's own (host 1d, flow 1h).
    #[arg(long)]
    pub window: Option<String>,
}

/// Refuses the flags that `cmd` does not use (they were accepted and
/// ignored: `features request --window 1h` wrote the same table as without).
fn refuse_unused(cmd: &str, a: &InOut) -> anyhow::Result<()> {
    let per_row = matches!(cmd, "request" | "domain");
    let set_chooser = "it chooses the set of `features entity`";
    // (flag, given, not used here, why not)
    let flags = [
        ("--set", a.set.is_some(), cmd != "entity", set_chooser),
        ("--config", a.config.is_some(), cmd != "entity", set_chooser),
        (
            "--window",
            a.window.is_some(),
            per_row,
            "request and domain features are per event, without windows",
        ),
        (
            "--column",
            a.column.is_some(),
            !per_row,
            "only request and domain features read a column of a table",
        ),
        (
            "--label",
            !a.labels.is_empty(),
            a.column.is_none(),
            "it names label columns carried beside --column",
        ),
    ];
    match flags.iter().find(|f| f.1 && f.2) {
        Some((flag, _, _, why)) => bail!("`features {cmd}` takes no {flag}: {why}"),
        None => Ok(()),
    }
}

pub fn run(args: FeaturesArgs) -> anyhow::Result<()> {
    let table_cmd = match &args.cmd {
        FeaturesCmd::List { .. } => None,
        FeaturesCmd::Request(a) => Some(("request", a)),
        FeaturesCmd::Domain(a) => Some(("domain", a)),
        FeaturesCmd::Host(a) => Some(("host", a)),
        FeaturesCmd::Entity(a) => Some(("entity", a)),
    };
    if let Some((name, a)) = table_cmd {
        refuse_unused(name, a)?;
    }
    match args.cmd {
        FeaturesCmd::List { json, set } => list(json, set.as_deref()),
        FeaturesCmd::Request(a) => {
            if let Some(col) = &a.column {
                let t = column_table(&a, col, palisade_features::url_features_table)?;
                return write(&a.out, &t);
            }
            per_event_rows(&a, palisade_features::RequestTableBuilder::with_capacity)
        }
        FeaturesCmd::Domain(a) => {
            if let Some(col) = &a.column {
                let t = column_table(&a, col, palisade_features::domain_features_table)?;
                return write(&a.out, &t);
            }
            per_event_rows(&a, palisade_features::DomainTableBuilder::with_capacity)
        }
        FeaturesCmd::Host(a) => {
            let cfg = palisade_features::builtin_entity_set("host")?;
            entity(&a, cfg)
        }
        FeaturesCmd::Entity(a) => {
            let cfg = match (&a.set, &a.config) {
                (Some(s), None) => palisade_features::builtin_entity_set(s)?,
                (None, Some(p)) => {
                    let text =
                        std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
                    palisade_features::EntityConfig::from_toml(&text)
                        .with_context(|| format!("{}", p.display()))?
                }
                _ => bail!("give exactly one of --set NAME or --config FILE.toml"),
            };
            entity(&a, cfg)
        }
    }
}

fn entity(a: &InOut, mut cfg: palisade_features::EntityConfig) -> anyhow::Result<()> {
    if let Some(w) = &a.window {
        palisade_features::entity::parse_duration(w)
            .map_err(|m| anyhow::anyhow!("--window: {m}"))?;
        cfg.window = w.clone();
    }
    let mut agg = palisade_features::EntityAggregator::new(&cfg)?;
    for_each_chunk(a, EVENT_BATCH.min(chunk_events()?), |chunk| {
        agg.push(chunk);
        Ok(())
    })?;
    let (t, rep) = agg.finish();
    if rep.without_timestamp > 0 || rep.without_entity > 0 {
        tracing::warn!(
            "{} of {} events skipped without a timestamp, {} matched no entity",
            rep.without_timestamp,
            rep.events,
            rep.without_entity
        );
    }
    eprintln!(
        "{}: {} events -> {} rows ({} features, set {})",
        a.input.display(),
        rep.events,
        rep.rows,
        cfg.features.len(),
        cfg.name
    );
    write(&a.out, &t)
}

/// The extension of a file `palisade ingest` may have written (`.gz`
/// aside), `None` for any other file.
fn event_file_ext(p: &Path) -> Option<&'static str> {
    let name = p.to_string_lossy().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".jsonl", ".ndjson", ".json", ".csv", ".parquet"]
        .into_iter()
        .find(|e| name.ends_with(e))
}

/// Whether a JSON file is a raw log (Zeek JSON, Windows JSON) rather than
/// `palisade ingest` output: both end in `.json`, and the event reader would
/// refuse the log line by line.
fn is_raw_json_log(p: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64 * 1024);
    palisade_io::open_input(p)?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {}", p.display()))?;
    Ok(palisade_ingest::sniff(&head).is_some())
}

/// Rows per chunk of the table `palisade features request|domain` writes
/// (a Parquet row group each); also the most events read at a time. A
/// multiple of the entity engine's batch, so chunks change none of its work.
const CHUNK_EVENTS: usize = 65_536;

/// Events read at a time by `palisade features`: it holds these, not the
/// whole input. Why not a whole chunk ([`CHUNK_EVENTS`], as before): the
/// events' memory (an `Event` is about 1 KiB, plus its text) is then reused
/// batch after batch (a batch is about 4 MiB), instead of 64 MiB of fresh
/// pages per chunk. Measured (fifteenth session,
/// Zen 3 VM; `bench/features_stream.sh` with `OLD_BIN`): peak memory of
/// `request` on Zeek ssl.json ×10 200 → 102 MB, `domain` on dns.log ×10
/// 156 → 74 MB, `entity --set flow` 154 → 21 MB; time within this VM's
/// noise for CSV output, 9% less (median of 10) for Parquet.
const EVENT_BATCH: usize = 4_096;
const _: () = assert!(CHUNK_EVENTS.is_multiple_of(EVENT_BATCH));
const _: () =
    assert!(EVENT_BATCH.is_multiple_of(palisade_features::EntityAggregator::CHUNK_MULTIPLE));

/// The chunk size: [`CHUNK_EVENTS`], or `PALISADE_FEATURES_CHUNK` (tests use
/// a small one to check that chunked output equals whole output on real
/// logs); events are read at most this many at a time.
fn chunk_events() -> anyhow::Result<usize> {
    let multiple = palisade_features::EntityAggregator::CHUNK_MULTIPLE;
    match std::env::var("PALISADE_FEATURES_CHUNK") {
        Err(_) => Ok(CHUNK_EVENTS),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 && n.is_multiple_of(multiple) => Ok(n),
            _ => bail!("PALISADE_FEATURES_CHUNK={v}: must be a positive multiple of {multiple}"),
        },
    }
}

/// Feeds the input's events to `each`, `chunk` at a time, in input order
/// (the last call may have fewer, or none).
fn for_each_chunk(
    a: &InOut,
    chunk: usize,
    mut each: impl FnMut(&[Event]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // reserved once: growing by doubling copied every event (1 KiB) again
    let mut buf: Vec<Event> = Vec::with_capacity(chunk);
    let mut failed: Option<anyhow::Error> = None;
    // called for each event; hands a full chunk on
    let mut take = |e: Event| -> bool {
        buf.push(e);
        if buf.len() == chunk {
            if let Err(err) = each(&buf) {
                failed = Some(err);
                return false;
            }
            buf.clear();
        }
        true
    };
    let events_file = a.format.is_none()
        && match event_file_ext(&a.input) {
            Some(".csv" | ".parquet") => true,
            Some(_) => !is_raw_json_log(&a.input)?,
            None => false,
        };
    let read = if events_file {
        palisade_io::for_each_event(&a.input, |e| {
            if take(e) {
                Ok(())
            } else {
                // the chunk's own error is kept in `failed`
                Err(palisade_io::IoError::Format {
                    path: a.input.clone(),
                    message: "stopped".into(),
                })
            }
        })
        .map(|n| tracing::info!("{}: {n} events", a.input.display()))
        .map_err(anyhow::Error::from)
    } else {
        // without --format, ingest detects the format; its summary names it
        let format = a
            .format
            .as_deref()
            .map(palisade_ingest::Format::from_name)
            .transpose()?;
        let opts = palisade_ingest::IngestOptions::default();
        let input = palisade_ingest::open_path(&a.input)?;
        let pb = super::ingest::progress_for(&a.input);
        let input: Box<dyn std::io::Read> = match &pb {
            Some(pb) => Box::new(pb.wrap_read(input)),
            None => input,
        };
        let name = a.input.display().to_string();
        let result = palisade_ingest::ingest_reader(&name, input, format, &opts, None, |e| {
            if take(e.clone()) {
                Ok(())
            } else {
                Err("stopped".into())
            }
        });
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        result
            .map(|summary| eprintln!("{summary}"))
            .map_err(anyhow::Error::from)
    };
    if let Some(err) = failed {
        return Err(err);
    }
    read?;
    each(&buf)
}

/// A per-event feature table built a batch of events at a time.
trait PerEventTable {
    fn push(&mut self, events: &[Event]);
    fn rows(&self) -> usize;
    /// The table of the rows so far; `whole`: they are the whole input's
    /// (else the columns must not depend on the rows: more tables follow).
    fn finish(self, whole: bool) -> Table;
}

impl PerEventTable for palisade_features::RequestTableBuilder {
    fn push(&mut self, events: &[Event]) {
        self.push(events)
    }
    fn rows(&self) -> usize {
        self.rows()
    }
    fn finish(self, whole: bool) -> Table {
        if whole {
            self.finish()
        } else {
            self.finish_fixed_columns()
        }
    }
}

impl PerEventTable for palisade_features::DomainTableBuilder {
    fn push(&mut self, events: &[Event]) {
        self.push(events)
    }
    fn rows(&self) -> usize {
        self.rows()
    }
    fn finish(self, _whole: bool) -> Table {
        self.finish()
    }
}

/// A per-event feature set (request, domain): the events read
/// [`EVENT_BATCH`] at a time, the table written [`chunk_events`] rows at a
/// time; `new(rows)` makes an empty table with room for that many rows.
fn per_event_rows<B: PerEventTable>(a: &InOut, new: impl Fn(usize) -> B) -> anyhow::Result<()> {
    let group = chunk_events()?;
    let mut w = palisade_io::TableWriter::create(&a.out)?;
    let mut columns = 0;
    let mut rows = new(group);
    let mut written = false;
    let mut empty = 0;
    for_each_chunk(a, EVENT_BATCH.min(group), |mut events| {
        // (cut at the chunk's end: `group` need not be a multiple of the batch)
        while !events.is_empty() {
            let (now, later) = events.split_at((group - rows.rows()).min(events.len()));
            rows.push(now);
            events = later;
            if rows.rows() == group {
                let t = std::mem::replace(&mut rows, new(group)).finish(false);
                columns = t.columns.len();
                empty += rows_without_features(&t);
                w.write(&t)?;
                written = true;
            }
        }
        Ok(())
    })?;
    if !written || rows.rows() > 0 {
        let t = rows.finish(!written);
        columns = t.columns.len();
        empty += rows_without_features(&t);
        w.write(&t)?;
    }
    let n = w.finish()?;
    eprintln!("wrote {} ({n} rows, {columns} columns)", a.out.display());
    if empty > 0 {
        // say so: a log without the fields a set reads (a web access log
        // given to `features domain`, say) gave rows of missing values
        eprintln!(
            "palisade: warning: {empty} of {n} rows have no value in any feature column \
             (their events lack the fields this set reads: see `palisade features list`)"
        );
    }
    Ok(())
}

/// Rows of `t` whose every feature column is missing.
fn rows_without_features(t: &Table) -> usize {
    let features: Vec<&ColumnData> = t
        .columns
        .iter()
        .filter(|c| c.role == ColumnRole::Feature)
        .map(|c| &c.data)
        .collect();
    if features.is_empty() {
        return 0;
    }
    (0..t.nrows())
        .filter(|&i| {
            features.iter().all(|d| match d {
                ColumnData::F64(v) => v[i].is_nan(),
                ColumnData::Str(v) => v.value(i).is_none(),
            })
        })
        .count()
}

/// Features of one text column of a table, with the other columns carried.
fn column_table(a: &InOut, col: &str, f: impl Fn(&[&str]) -> Table) -> anyhow::Result<Table> {
    let input = palisade_io::read_table(&a.input, &palisade_io::ReadTableOptions::default())?;
    let c = input.column(col).with_context(|| {
        let names: Vec<&str> = input.columns.iter().map(|c| c.name.as_str()).collect();
        format!(
            "{}: no column `{col}` (columns: {})",
            a.input.display(),
            names.join(", ")
        )
    })?;
    let texts: Vec<String> = (0..c.data.len()).map(|i| c.data.text(i)).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut t = f(&refs);
    let labels: Vec<String> = if a.labels.is_empty() {
        vec!["label".to_string()]
    } else {
        a.labels.clone()
    };
    for l in &a.labels {
        if input.column(l).is_none() {
            bail!("{}: no label column `{l}`", a.input.display());
        }
    }
    for other in &input.columns {
        if other.name == col {
            continue;
        }
        let role = if labels.contains(&other.name) {
            ColumnRole::Label
        } else {
            ColumnRole::Meta
        };
        let name = if t.column(&other.name).is_some() {
            format!("input.{}", other.name)
        } else {
            other.name.clone()
        };
        let data = match &other.data {
            ColumnData::F64(v) => ColumnData::F64(v.clone()),
            ColumnData::Str(v) => ColumnData::Str(v.clone()),
        };
        t.push(&name, role, data)?;
    }
    eprintln!("{}: {} rows", a.input.display(), t.nrows());
    Ok(t)
}

fn write(out: &Path, t: &Table) -> anyhow::Result<()> {
    palisade_io::write_table(out, t)?;
    eprintln!(
        "wrote {} ({} rows, {} columns)",
        out.display(),
        t.nrows(),
        t.columns.len()
    );
    Ok(())
}

fn list(json: bool, set: Option<&str>) -> anyhow::Result<()> {
    let cat: Vec<_> = palisade_features::catalog()
        .into_iter()
        .filter(|d| set.is_none_or(|s| d.set == s))
        .collect();
    if cat.is_empty() {
        bail!("no features in set `{}`", set.unwrap_or(""));
    }
    // Write through a handle and stop quietly when the reader goes away
    // (`palisade features list | head`), instead of panicking in println!.
    let mut out = std::io::stdout().lock();
    match print_catalog(&mut out, &cat, json) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing the catalog"),
    }
}

fn print_catalog(
    out: &mut impl std::io::Write,
    cat: &[palisade_core::FeatureDef],
    json: bool,
) -> std::io::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, cat)?;
        return writeln!(out);
    }
    let mut last = "";
    for d in cat {
        if d.set != last {
            writeln!(out, "\n## {}\n", d.set)?;
            last = &d.set;
        }
        writeln!(
            out,
            "{} ({:?}; reads {})\n    {}",
            d.name,
            d.dtype,
            d.reads.join(", "),
            d.description
        )?;
    }
    Ok(())
}
