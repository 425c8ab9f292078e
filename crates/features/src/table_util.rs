//! Building feature tables: identity columns first, then features.

use palisade_core::event::format_timestamp_us;
use palisade_core::{ColumnData, ColumnRole, Event, FeatureDef, FeatureSchema, Table};

/// Text columns carried next to the features (identity, label, meta).
pub(crate) struct IdCols {
    pub cols: Vec<(String, ColumnRole, Vec<Option<String>>)>,
}

impl IdCols {
    pub fn single(name: &str, v: Vec<Option<String>>) -> Self {
        IdCols {
            cols: vec![(name.to_string(), ColumnRole::Identity, v)],
        }
    }

    pub fn request(n: usize) -> Self {
        let mk = |s: &str| (s.to_string(), ColumnRole::Identity, Vec::with_capacity(n));
        IdCols {
            cols: vec![
                mk("@timestamp"),
                mk("source.ip"),
                mk("destination.ip"),
                mk("host"),
                mk("url"),
                (
                    "labels.source_label".to_string(),
                    ColumnRole::Label,
                    Vec::with_capacity(n),
                ),
            ],
        }
    }

    pub fn push_request(&mut self, e: &Event) {
        let vals = [
            e.timestamp_rfc3339(),
            e.source_ip.map(|i| i.to_string()),
            e.destination_ip.map(|i| i.to_string()),
            e.web_host().map(str::to_string),
            e.url_full.clone().or_else(|| {
                e.url_path.as_ref().map(|p| {
                    let q = e
                        .url_query
                        .as_deref()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default();
                    format!("{}{p}{q}", e.web_host().unwrap_or(""))
                })
            }),
            e.source_label.clone(),
        ];
        for (c, v) in self.cols.iter_mut().zip(vals) {
            c.2.push(v);
        }
    }

    /// Drop label/meta columns that are empty in every row.
    fn prune(&mut self) {
        self.cols
            .retain(|(_, role, v)| *role == ColumnRole::Identity || v.iter().any(Option::is_some));
    }
}

pub(crate) fn build_table(
    set: &str,
    defs: Vec<FeatureDef>,
    cols: Vec<Vec<f64>>,
    mut ids: IdCols,
) -> Table {
    ids.prune();
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
