//! Feed readers: plain lists, CSV, hosts files, netsets, STIX 2.1 bundles and
//! MISP events, all into [`Indicator`]s; format detection; per-feed load reports.

use crate::indicator::{parse_token, Indicator, Kind, Parsed, Reject};
use crate::{misp, stix, IntelError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a feed file is laid out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One indicator per line, `#` comments, trailing notes (`value # note`, `value;code`).
    List,
    /// CSV with a header; the indicator is in `column` (detected when `None`).
    Csv { column: Option<String> },
    /// `0.0.0.0 domain [domain…]` lines.
    Hosts,
    /// IPs and CIDRs, one per line (FireHOL).
    Netset,
    /// A STIX 2.1 bundle (or a single indicator object).
    Stix,
    /// A MISP event (`{"Event": …}`), a list of them, or a `{"response": […]}` search result.
    Misp,
}

impl Format {
    pub fn name(&self) -> &'static str {
        match self {
            Format::List => "list",
            Format::Csv { .. } => "csv",
            Format::Hosts => "hosts",
            Format::Netset => "netset",
            Format::Stix => "stix",
            Format::Misp => "misp",
        }
    }
}

/// What to load and how: one entry of a feed config, or one `--feed PATH`.
#[derive(Debug, Clone, Default)]
pub struct FeedSpec {
    pub name: String,
    /// A file, a directory (every `*.txt`/`*.list`/… below it), or a glob.
    pub path: String,
    /// `None`: detect per file.
    pub format: Option<Format>,
    /// Force the indicator kind (for lists of one kind, or a CSV column).
    pub kind: Option<Kind>,
    /// Overrides the category the feed gives.
    pub category: Option<String>,
    pub confidence: Option<u8>,
    /// Indicators whose last (or first) sighting is older than this are expired.
    pub expiry_us: Option<i64>,
}

impl FeedSpec {
    /// A spec for `--feed PATH`: everything detected, named after the path.
    pub fn from_path(path: &str) -> FeedSpec {
        FeedSpec {
            name: name_from_path(Path::new(path)),
            path: path.to_string(),
            ..Default::default()
        }
    }
}

/// `parent/stem` of a path (`openphish/feed`, `maltrail/static`), which tells
/// generic file names (`feed.txt`) apart.
pub fn name_from_path(p: &Path) -> String {
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = p
        .parent()
        .and_then(|q| q.file_name())
        .map(|s| s.to_string_lossy().into_owned());
    match parent {
        Some(par) if !par.is_empty() && par != "." && par != ".." => format!("{par}/{stem}"),
        _ => stem,
    }
}

/// One malformed line (or record), with where it is.
#[derive(Debug, Clone, Serialize)]
pub struct Malformed {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// What loading one feed found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedReport {
    pub files: usize,
    /// Indicators read (before de-duplication across feeds; duplicates inside the feed removed).
    pub indicators: usize,
    pub duplicates: usize,
    pub malformed: usize,
    /// The first [`MAX_SAMPLES`] malformed lines.
    pub malformed_samples: Vec<Malformed>,
    /// Well-formed entries that cannot be expressed as indicators, by reason.
    pub unsupported: BTreeMap<String, usize>,
    pub formats: BTreeMap<String, usize>,
}

/// How many malformed lines each feed keeps for the report (all are counted).
pub const MAX_SAMPLES: usize = 20;

/// A loaded feed.
#[derive(Debug, Clone, Serialize)]
pub struct FeedInfo {
    pub name: String,
    pub path: String,
    pub confidence: Option<u8>,
    pub expiry_us: Option<i64>,
    pub report: FeedReport,
}

/// Every indicator of every loaded feed.
#[derive(Debug, Clone, Default)]
pub struct FeedSet {
    pub feeds: Vec<FeedInfo>,
    pub indicators: Vec<Indicator>,
}

impl FeedSet {
    /// Load feeds in order. `strict`: the first malformed line is an error.
    pub fn load(specs: &[FeedSpec], strict: bool) -> Result<FeedSet, IntelError> {
        let mut set = FeedSet::default();
        for spec in specs {
            set.add(spec, strict)?;
        }
        Ok(set)
    }

    /// Load one more feed.
    pub fn add(&mut self, spec: &FeedSpec, strict: bool) -> Result<(), IntelError> {
        let files = resolve(&spec.path)?;
        let mut texts = Vec::with_capacity(files.len());
        for (file, category) in files {
            let text = read_text(&file)?;
            texts.push((file, category, text));
        }
        self.add_texts(spec, texts, strict)
    }

    /// Load a feed from text already in memory (`file` names it in reports).
    pub fn add_text(
        &mut self,
        spec: &FeedSpec,
        file: &str,
        text: &str,
        strict: bool,
    ) -> Result<(), IntelError> {
        self.add_texts(
            spec,
            vec![(PathBuf::from(file), None, text.to_string())],
            strict,
        )
    }

    fn add_texts(
        &mut self,
        spec: &FeedSpec,
        files: Vec<(PathBuf, Option<String>, String)>,
        strict: bool,
    ) -> Result<(), IntelError> {
        let feed = u16::try_from(self.feeds.len()).map_err(|_| IntelError::Feed {
            path: spec.path.clone(),
            msg: "more than 65535 feeds".into(),
        })?;
        let start = self.indicators.len();
        let mut sink = Sink {
            out: &mut self.indicators,
            report: FeedReport {
                files: files.len(),
                ..Default::default()
            },
            feed,
            spec,
            strict,
            seen: ahash::AHashSet::new(),
            categories: ahash::AHashMap::new(),
        };
        for (file, category, text) in &files {
            let fmt = match &spec.format {
                Some(f) => f.clone(),
                None => detect_format(file, text),
            };
            *sink
                .report
                .formats
                .entry(fmt.name().to_string())
                .or_default() += 1;
            let file_name = file.display().to_string();
            let cat = spec.category.clone().or_else(|| category.clone());
            let text = text.as_str();
            match fmt {
                Format::List => read_list(text, &file_name, cat.as_deref(), spec.kind, &mut sink)?,
                Format::Netset => {
                    read_list(text, &file_name, cat.as_deref(), spec.kind, &mut sink)?
                }
                Format::Hosts => read_hosts(text, &file_name, cat.as_deref(), &mut sink)?,
                Format::Csv { column } => read_csv(
                    text,
                    &file_name,
                    column.as_deref(),
                    cat.as_deref(),
                    &mut sink,
                )?,
                Format::Stix => stix::read_bundle(text, &file_name, cat.as_deref(), &mut sink)?,
                Format::Misp => misp::read_events(text, &file_name, cat.as_deref(), &mut sink)?,
            }
        }
        let mut report = sink.report;
        report.indicators = self.indicators.len() - start;
        for (name, n) in &report.unsupported {
            tracing::info!(feed = %spec.name, "skipped {n} entries: {name}");
        }
        if report.malformed > 0 {
            let first = report
                .malformed_samples
                .first()
                .map(|m| format!(" (first: {}:{}: {})", m.file, m.line, m.reason));
            tracing::warn!(feed = %spec.name, "{} malformed lines skipped{}", report.malformed, first.unwrap_or_default());
        }
        self.feeds.push(FeedInfo {
            name: spec.name.clone(),
            path: spec.path.clone(),
            confidence: spec.confidence,
            expiry_us: spec.expiry_us,
            report,
        });
        Ok(())
    }

    /// Indicator indices of one feed.
    pub fn feed_indicators(&self, feed: usize) -> impl Iterator<Item = &Indicator> {
        self.indicators
            .iter()
            .filter(move |i| usize::from(i.feed) == feed)
    }

    /// Whether an indicator is expired at `as_of_us` by its feed's expiry age.
    pub fn is_expired(&self, ind: &Indicator, as_of_us: i64) -> bool {
        let Some(age) = self
            .feeds
            .get(usize::from(ind.feed))
            .and_then(|f| f.expiry_us)
        else {
            return false;
        };
        match ind.last_seen.or(ind.first_seen) {
            Some(t) => as_of_us.saturating_sub(t) > age,
            None => false,
        }
    }
}

/// Where indicators of one feed go; counts and reports on the way.
pub struct Sink<'a> {
    out: &'a mut Vec<Indicator>,
    pub report: FeedReport,
    feed: u16,
    spec: &'a FeedSpec,
    strict: bool,
    seen: ahash::AHashSet<(Kind, String)>,
    categories: ahash::AHashMap<String, Arc<str>>,
}

/// Extra fields a reader may know about an indicator.
#[derive(Debug, Default, Clone)]
pub struct Meta<'a> {
    pub category: Option<&'a str>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub confidence: Option<u8>,
}

impl Sink<'_> {
    /// Classify `raw` and add it; malformed values are counted (or fatal when strict).
    pub fn token(
        &mut self,
        raw: &str,
        hint: Option<Kind>,
        file: &str,
        line: u64,
        meta: &Meta,
    ) -> Result<(), IntelError> {
        match parse_token(raw, hint.or(self.spec.kind)) {
            Ok(p) => {
                self.push(p, meta);
                Ok(())
            }
            Err(Reject::Unsupported(why)) => {
                self.unsupported(why);
                Ok(())
            }
            Err(Reject::Malformed(why)) => self.malformed(file, line, why),
        }
    }

    pub fn unsupported(&mut self, why: &str) {
        *self.report.unsupported.entry(why.to_string()).or_default() += 1;
    }

    pub fn malformed(&mut self, file: &str, line: u64, reason: String) -> Result<(), IntelError> {
        if self.strict {
            return Err(IntelError::Malformed {
                file: file.to_string(),
                line,
                msg: reason,
            });
        }
        self.report.malformed += 1;
        if self.report.malformed_samples.len() < MAX_SAMPLES {
            self.report.malformed_samples.push(Malformed {
                file: file.to_string(),
                line,
                reason,
            });
        }
        Ok(())
    }

    pub fn push(&mut self, p: Parsed, meta: &Meta) {
        // De-duplicate inside a feed (maltrail lists an IP under several ports and files).
        if !self.seen.insert((p.kind, p.value.clone())) {
            self.report.duplicates += 1;
            return;
        }
        let category = match meta.category {
            Some(c) if !c.is_empty() => Some(match self.categories.get(c) {
                Some(a) => a.clone(),
                None => {
                    let a: Arc<str> = Arc::from(c);
                    self.categories.insert(c.to_string(), a.clone());
                    a
                }
            }),
            _ => None,
        };
        self.out.push(Indicator {
            kind: p.kind,
            value: p.value,
            feed: self.feed,
            category,
            first_seen: meta.first_seen,
            last_seen: meta.last_seen,
            confidence: self.spec.confidence.or(meta.confidence),
        });
    }
}

fn read_text(path: &Path) -> Result<String, IntelError> {
    let bytes = std::fs::read(path).map_err(|e| IntelError::Io {
        path: path.display().to_string(),
        err: e,
    })?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| IntelError::Io {
                path: path.display().to_string(),
                err: e,
            })?;
        out
    } else {
        bytes
    };
    // Feeds are UTF-8 in practice; a stray byte should cost one line, not the feed.
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Files of a feed path with the category their place gives (`malware/emotet` for
/// `…/static/malware/emotet.txt` under a directory), sorted for reproducibility.
pub fn resolve(path: &str) -> Result<Vec<(PathBuf, Option<String>)>, IntelError> {
    let p = Path::new(path);
    let err = |msg: String| IntelError::Feed {
        path: path.to_string(),
        msg,
    };
    if p.is_dir() {
        let mut files = Vec::new();
        walk(p, &mut files).map_err(|e| IntelError::Io {
            path: path.to_string(),
            err: e,
        })?;
        files.sort();
        let out: Vec<_> = files
            .into_iter()
            .map(|f| {
                let rel = f.strip_prefix(p).unwrap_or(&f).with_extension("");
                let cat = rel.to_string_lossy().replace('\\', "/");
                (f, Some(cat))
            })
            .collect();
        if out.is_empty() {
            return Err(err(
                "directory holds no feed files (*.txt, *.csv, *.json, *.netset, …)".into(),
            ));
        }
        return Ok(out);
    }
    if path.contains(['*', '?', '[']) {
        let base: PathBuf = p
            .components()
            .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
            .collect();
        let mut files: Vec<PathBuf> = glob::glob(path)
            .map_err(|e| err(format!("bad glob: {e}")))?
            .filter_map(|r| r.ok())
            .filter(|f| f.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(err("glob matches no files".into()));
        }
        let many = files.len() > 1;
        return Ok(files
            .into_iter()
            .map(|f| {
                let cat = many.then(|| {
                    f.strip_prefix(&base)
                        .unwrap_or(&f)
                        .with_extension("")
                        .to_string_lossy()
                        .replace('\\', "/")
                });
                (f, cat)
            })
            .collect());
    }
    if !p.exists() {
        return Err(IntelError::Io {
            path: path.to_string(),
            err: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        });
    }
    Ok(vec![(p.to_path_buf(), None)])
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            let feedlike = [
                ".txt", ".list", ".csv", ".json", ".netset", ".ipset", ".hosts", ".gz",
            ]
            .iter()
            .any(|e| name.ends_with(e));
            if feedlike
                && !name.starts_with("license")
                && !name.starts_with("readme")
                && !name.starts_with("source")
            {
                out.push(path);
            }
        }
    }
    Ok(())
}

/// Detect the format of one file from its name and first lines.
pub fn detect_format(path: &Path, text: &str) -> Format {
    let name = path.to_string_lossy().to_ascii_lowercase();
    let name = name.trim_end_matches(".gz");
    if name.ends_with(".json")
        || text.trim_start().starts_with('{')
        || text.trim_start().starts_with('[')
    {
        let head: String = text.chars().take(4096).collect();
        if head.contains("\"Event\"")
            || head.contains("\"Attribute\"")
            || head.contains("\"response\"")
        {
            return Format::Misp;
        }
        return Format::Stix;
    }
    if name.ends_with(".csv") {
        return Format::Csv { column: None };
    }
    if name.ends_with(".netset") || name.ends_with(".ipset") {
        return Format::Netset;
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .take(50)
        .collect();
    let hosts = lines
        .iter()
        .filter(|l| {
            let mut it = l.split_whitespace();
            matches!((it.next(), it.next()), (Some(a), Some(b)) if a.parse::<std::net::IpAddr>().is_ok() && !b.starts_with('#'))
        })
        .count();
    if !lines.is_empty() && hosts * 10 >= lines.len() * 8 {
        return Format::Hosts;
    }
    Format::List
}

/// One indicator per line; `#` starts a comment at the line start or after
/// whitespace (a `#` inside a URL is its fragment); `value;note` carries a
/// category code (joewein: `;1` spam, `;419` advance-fee fraud).
fn read_list(
    text: &str,
    file: &str,
    category: Option<&str>,
    kind: Option<Kind>,
    sink: &mut Sink,
) -> Result<(), IntelError> {
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let mut token = line.split_whitespace().next().unwrap_or(line);
        let mut note: Option<&str> = None;
        if let Some((v, n)) = token.rsplit_once(';') {
            if !n.is_empty() && n.len() <= 8 && n.bytes().all(|b| b.is_ascii_alphanumeric()) {
                token = v;
                note = Some(n);
            }
        }
        let cat_owned;
        let cat = match (category, note) {
            (Some(c), Some(n)) => {
                cat_owned = format!("{c};{n}");
                Some(cat_owned.as_str())
            }
            (Some(c), None) => Some(c),
            (None, n) => n,
        };
        sink.token(
            token,
            kind,
            file,
            i as u64 + 1,
            &Meta {
                category: cat,
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

fn strip_comment(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with("//") || t.starts_with(';') {
        return "";
    }
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'#' && i > 0 && b[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

fn read_hosts(
    text: &str,
    file: &str,
    category: Option<&str>,
    sink: &mut Sink,
) -> Result<(), IntelError> {
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let mut it = line.split_whitespace();
        let addr = it.next().unwrap_or_default();
        if addr.parse::<std::net::IpAddr>().is_err() {
            sink.malformed(
                file,
                i as u64 + 1,
                format!("hosts line does not start with an address: `{addr}`"),
            )?;
            continue;
        }
        let mut any = false;
        for name in it {
            any = true;
            // The sink-hole address maps local names too; those are not indicators.
            if matches!(
                name,
                "localhost"
                    | "localhost.localdomain"
                    | "local"
                    | "broadcasthost"
                    | "ip6-localhost"
                    | "ip6-loopback"
            ) {
                continue;
            }
            sink.token(
                name,
                Some(Kind::Domain),
                file,
                i as u64 + 1,
                &Meta {
                    category,
                    ..Default::default()
                },
            )?;
        }
        if !any {
            sink.malformed(file, i as u64 + 1, "hosts line has no name".into())?;
        }
    }
    Ok(())
}

/// Columns, in order of preference, that hold the indicator of a CSV feed.
const INDICATOR_COLUMNS: &[&str] = &[
    "url",
    "dst_ip",
    "ip",
    "ip_address",
    "ipaddress",
    "domain",
    "hostname",
    "host",
    "indicator",
    "ioc",
    "value",
];
const FIRST_SEEN_COLUMNS: &[&str] = &[
    "first_seen_utc",
    "first_seen",
    "firstseen",
    "dateadded",
    "date_added",
    "submission_time",
];
const LAST_SEEN_COLUMNS: &[&str] = &["last_online", "last_seen", "lastseen", "verification_time"];
const CATEGORY_COLUMNS: &[&str] = &["malware", "family", "threat", "target", "category", "tags"];

fn read_csv(
    text: &str,
    file: &str,
    column: Option<&str>,
    category: Option<&str>,
    sink: &mut Sink,
) -> Result<(), IntelError> {
    let mut rdr = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| IntelError::Feed {
            path: file.to_string(),
            msg: format!("CSV header: {e}"),
        })?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| headers.iter().position(|h| h == n))
    };
    let col = match column {
        Some(c) => headers.iter().position(|h| h.eq_ignore_ascii_case(c)).ok_or_else(|| IntelError::Feed {
            path: file.to_string(),
            msg: format!("column `{c}` not in header ({})", headers.join(",")),
        })?,
        None => find(INDICATOR_COLUMNS).ok_or_else(|| IntelError::Feed {
            path: file.to_string(),
            msg: format!(
                "no indicator column found in header ({}); name one with `column` in the feed config",
                headers.join(",")
            ),
        })?,
    };
    let hint = match headers.get(col).map(String::as_str) {
        Some("url") => Some(Kind::Url),
        Some("domain" | "hostname") => Some(Kind::Domain),
        _ => None,
    };
    let (fs, ls, cc) = (
        find(FIRST_SEEN_COLUMNS),
        find(LAST_SEEN_COLUMNS),
        find(CATEGORY_COLUMNS),
    );
    let mut rec = csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(line);
                sink.malformed(file, line, format!("CSV: {e}"))?;
                continue;
            }
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(line);
        // The csv crate misses a comment on a last line without newline (Feodo's `# END 28 entries`).
        if rec.get(0).is_some_and(|f| f.trim_start().starts_with('#'))
            || rec.iter().all(|f| f.trim().is_empty())
        {
            continue;
        }
        let Some(value) = rec.get(col).filter(|v| !v.trim().is_empty()) else {
            sink.malformed(
                file,
                line,
                format!(
                    "no value in column `{}`",
                    headers.get(col).map(String::as_str).unwrap_or("?")
                ),
            )?;
            continue;
        };
        // PhishTank's dump HTML-escapes `&` inside URLs.
        let value = if value.contains("&amp;") {
            value.replace("&amp;", "&")
        } else {
            value.to_string()
        };
        let cat = category.or_else(|| cc.and_then(|c| rec.get(c)).filter(|s| !s.is_empty()));
        let meta = Meta {
            category: cat,
            first_seen: fs.and_then(|c| rec.get(c)).and_then(parse_time),
            last_seen: ls.and_then(|c| rec.get(c)).and_then(parse_time),
            confidence: None,
        };
        sink.token(&value, hint, file, line, &meta)?;
    }
    Ok(())
}

/// RFC 3339, `YYYY-MM-DD hh:mm:ss`, a bare date, or epoch seconds, to microseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    palisade_core::event::parse_timestamp_us(s).or_else(|| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| dt.and_utc().timestamp_micros())
    })
}

/// 1-based line of the first occurrence of `needle` in `text` (0 when absent),
/// so that records of JSON feeds can be reported by line too.
pub fn line_of(text: &str, needle: &str) -> u64 {
    match text.find(needle) {
        Some(pos) => {
            text.as_bytes()[..pos]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64
                + 1
        }
        None => 0,
    }
}
