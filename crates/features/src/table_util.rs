//! Building feature tables: identity columns first, then features.

use palisade_core::event::{format_timestamp_us, push_ip_text, TimestampText};
use palisade_core::{ColumnData, ColumnRole, Event, FeatureDef, FeatureSchema, Table, TextColumn};

/// Text columns carried next to the features (identity, label, meta).
pub(crate) struct IdCols {
    pub cols: Vec<(String, ColumnRole, TextColumn)>,
}

/// Bytes of text to reserve per row of a column, by the column's name:
/// about what Zeek logs hold (timestamps are 27 bytes, IPv4 addresses up to
/// 15), so that a table of typical rows grows its text once or not at all.
fn text_per_row(name: &str) -> usize {
    match name {
        "@timestamp" | "window_start" | "window_end" => 27,
        "source.ip" | "destination.ip" => 14,
        "url" => 64,
        "labels.source_label" => 0,
        _ => 24,
    }
}

/// An empty text column named `name`, with room for `rows` rows of it.
pub(crate) fn text_column_for(name: &str, rows: usize) -> TextColumn {
    TextColumn::with_capacity(rows, rows * text_per_row(name))
}

impl IdCols {
    /// Columns `names` (with roles), with room for `rows` rows.
    pub fn new(names: &[(&str, ColumnRole)], rows: usize) -> Self {
        IdCols {
            cols: names
                .iter()
                .map(|&(name, role)| (name.to_string(), role, text_column_for(name, rows)))
                .collect(),
        }
    }

    pub fn single(name: &str, v: TextColumn) -> Self {
        IdCols {
            cols: vec![(name.to_string(), ColumnRole::Identity, v)],
        }
    }

    /// Drop label/meta columns that are empty in every row.
    fn prune(&mut self) {
        self.cols
            .retain(|(_, role, v)| *role == ColumnRole::Identity || v.iter().any(|x| x.is_some()));
    }
}

/// The request set's identity and label columns, filled event by event.
/// The event fields [`RequestIds::push`] reads: the request table asks
/// the CPU for their lines with the request set's own
/// (`RequestTableBuilder::push`).
pub(crate) const REQUEST_ID_READS: [&str; 10] = [
    "@timestamp",
    "source.ip",
    "destination.ip",
    "url.domain",
    "tls.client.server_name",
    "destination.domain",
    "url.full",
    "url.path",
    "url.query",
    "labels.source_label",
];

pub(crate) struct RequestIds {
    ts: TextColumn,
    ts_text: TimestampText,
    sip: TextColumn,
    dip: TextColumn,
    host: TextColumn,
    url: TextColumn,
    label: TextColumn,
}

impl RequestIds {
    /// With room for `rows` rows.
    pub fn new(rows: usize) -> Self {
        let col = |name: &str| text_column_for(name, rows);
        RequestIds {
            ts: col("@timestamp"),
            ts_text: TimestampText::default(),
            sip: col("source.ip"),
            dip: col("destination.ip"),
            host: col("host"),
            url: col("url"),
            label: col("labels.source_label"),
        }
    }

    /// Appends `e`'s values, each written straight into its column's text.
    pub fn push(&mut self, e: &Event) {
        let ts = (&mut self.ts, &mut self.ts_text);
        push_event_ids(e, ts, &mut self.sip, &mut self.dip);
        self.host.push(e.web_host());
        match (&e.url_full, &e.url_path) {
            (Some(full), _) => self.url.push(Some(full)),
            (None, Some(p)) => self.url.push_with(|s| {
                s.push_str(e.web_host().unwrap_or(""));
                s.push_str(p);
                if let Some(q) = &e.url_query {
                    s.push('?');
                    s.push_str(q);
                }
                true
            }),
            (None, None) => self.url.push_missing(),
        }
        self.label.push(e.source_label.as_deref());
    }

    /// The columns: `@timestamp`, `source.ip`, `destination.ip`, `host`,
    /// `url` (identity), `labels.source_label` (label).
    pub fn into_cols(self) -> IdCols {
        use ColumnRole::{Identity, Label};
        let named = |name: &str, role, v| (name.to_string(), role, v);
        IdCols {
            cols: vec![
                named("@timestamp", Identity, self.ts),
                named("source.ip", Identity, self.sip),
                named("destination.ip", Identity, self.dip),
                named("host", Identity, self.host),
                named("url", Identity, self.url),
                named("labels.source_label", Label, self.label),
            ],
        }
    }
}

/// Appends `e`'s timestamp (RFC 3339) and source and destination addresses
/// to three columns.
pub(crate) fn push_event_ids(
    e: &Event,
    (ts, ts_text): (&mut TextColumn, &mut TimestampText),
    sip: &mut TextColumn,
    dip: &mut TextColumn,
) {
    match e.timestamp_us {
        Some(us) => ts.push_with(|s| ts_text.push(us, s)),
        None => ts.push_missing(),
    }
    for (ip, col) in [(e.source_ip, sip), (e.destination_ip, dip)] {
        match ip {
            Some(ip) => col.push_with(|s| {
                push_ip_text(ip, s);
                true
            }),
            None => col.push_missing(),
        }
    }
}

/// Feature columns filled a block of rows at a time: rows are written
/// row-major into a small block, which is then appended to the columns one
/// column at a time.
///
/// Why: pushing each value of a row onto its own column vector pays a
/// capacity check and a length update per value, on as many vectors as the
/// row has features; that was 17% of the request table's time (perf). A
/// column's share of a block is instead one reserved, check-free copy loop.
/// The block (64 rows of at most a few dozen features) stays in L1.
pub(crate) struct ColumnBlocks {
    width: usize,
    block: Vec<f64>,
    filled: usize,
    cols: Vec<Vec<f64>>,
    rows: usize,
}

/// Rows per block.
const BLOCK_ROWS: usize = 64;

impl ColumnBlocks {
    /// Columns for `rows` rows of `width` features each.
    pub fn new(width: usize, rows: usize) -> ColumnBlocks {
        ColumnBlocks {
            width,
            block: vec![0.0; width * BLOCK_ROWS],
            filled: 0,
            cols: (0..width).map(|_| Vec::with_capacity(rows)).collect(),
            rows: 0,
        }
    }

    /// The rows pushed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The next row to fill; every value must be written.
    #[inline]
    pub fn next_row(&mut self) -> &mut [f64] {
        if self.filled == BLOCK_ROWS {
            self.flush();
        }
        let at = self.filled * self.width;
        self.filled += 1;
        self.rows += 1;
        &mut self.block[at..at + self.width]
    }

    /// Appends `row` (of `width` values).
    #[inline]
    pub fn push_row(&mut self, row: &[f64]) {
        self.next_row().copy_from_slice(row);
    }

    fn flush(&mut self) {
        let rows = &self.block[..self.filled * self.width];
        for (j, col) in self.cols.iter_mut().enumerate() {
            // (exact-size: one reservation, no per-value capacity check)
            col.extend(rows.chunks_exact(self.width).map(|r| r[j]));
        }
        self.filled = 0;
    }

    /// The columns, one vector per feature.
    pub fn finish(mut self) -> Vec<Vec<f64>> {
        self.flush();
        self.cols
    }
}

pub(crate) fn build_table(
    set: &str,
    defs: Vec<FeatureDef>,
    cols: Vec<Vec<f64>>,
    ids: IdCols,
) -> Table {
    build_table_with(set, defs, cols, ids, Prune::EmptyLabels)
}

/// Whether label and meta columns empty in every row are dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prune {
    EmptyLabels,
    /// Keep every column: the table's columns then do not depend on its rows.
    Nothing,
}

pub(crate) fn build_table_with(
    set: &str,
    defs: Vec<FeatureDef>,
    cols: Vec<Vec<f64>>,
    mut ids: IdCols,
    prune: Prune,
) -> Table {
    if prune == Prune::EmptyLabels {
        ids.prune();
    }
    let mut t = Table::new();
    let identity: Vec<String> = ids
        .cols
        .iter()
        .filter(|c| c.1 == ColumnRole::Identity)
        .map(|c| c.0.clone())
        .collect();
    // Columns are built to the same length here, so `push` cannot fail; we
    // assemble directly to avoid an unreachable error path.
    for (name, role, v) in ids.cols {
        t.columns.push(palisade_core::Column {
            name,
            role,
            data: ColumnData::Str(v),
        });
    }
    for (d, v) in defs.iter().zip(cols) {
        t.columns.push(palisade_core::Column {
            name: d.name.clone(),
            role: ColumnRole::Feature,
            data: ColumnData::F64(v),
        });
    }
    t.schema = Some(FeatureSchema {
        set: set.to_string(),
        features: defs,
        identity,
    });
    t
}

/// Microseconds to RFC 3339 text, falling back to the number.
pub(crate) fn ts_text(us: i64) -> String {
    format_timestamp_us(us).unwrap_or_else(|| us.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_blocks_give_the_columns_of_the_rows() {
        // 0 rows, under one block, exactly one, and across several (with a partial last)
        for n in [0usize, 5, BLOCK_ROWS, 2 * BLOCK_ROWS + 3] {
            let width = 3;
            let mut blocks = ColumnBlocks::new(width, n);
            for i in 0..n {
                if i % 2 == 0 {
                    blocks.push_row(&[i as f64, -(i as f64), f64::NAN]);
                } else {
                    let row = blocks.next_row();
                    row.copy_from_slice(&[i as f64, -(i as f64), 0.5]);
                }
            }
            let cols = blocks.finish();
            assert_eq!(cols.len(), width);
            for c in &cols {
                assert_eq!(c.len(), n);
            }
            let rows = cols[0].iter().zip(&cols[1]).zip(&cols[2]);
            for (i, ((a, b), c)) in rows.enumerate() {
                assert_eq!(*a, i as f64, "n={n} row {i}");
                assert_eq!(*b, -(i as f64));
                assert_eq!(c.is_nan(), i % 2 == 0);
            }
        }
    }
}
