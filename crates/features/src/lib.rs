//! Feature extraction: events in, feature tables out. Pure computation, no IO.
//!
//! - [`request`]: the 28 per-request features of Franc, Sofka, Bartos (ECML
//!   PKDD 2015) plus URL length, path depth, entropies, subdomain count and
//!   TLD class, for Zeek http/ssl/conn, Squid, W3C and Apache events; and the
//!   URL-only subset for plain URL lists.
//! - [`domain`]: domain-name features for DNS query names and domain lists.
//! - [`entity`]: a windowed per-entity engine configured in TOML; the
//!   Siddiqui et al. (ICASSP 2019) host set and a network-flow set ship built in.
//!
//! Architecture invariant: identity fields (IPs, host names, domains, URLs,
//! window bounds) are carried as `Identity` columns and never as features;
//! a value a source does not record is NaN, never a made-up zero.

mod access;
pub mod domain;
pub mod entity;
pub mod lexical;
mod prefetch;
mod psl_filter;
pub mod request;
mod scan;
mod table_util;
#[cfg(test)]
mod test_data;
pub mod urlparts;

pub use domain::{
    domain_defs, domain_features, domain_features_table, DomainFeaturizer, DomainTableBuilder,
    DOMAIN_SET,
};
pub use entity::{
    entity_features, entity_features_with_report, EntityAggregator, EntityConfig, EntityReport,
};
pub use request::{
    request_defs, request_features, request_features_fixed_columns, url_defs, url_features_table,
    RequestTableBuilder, UrlFeaturizer, REQUEST_SET, URL_SET,
};

use palisade_core::{Event, FeatureDef, Table};

/// Errors of feature extraction. Config errors name the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("feature config: {0}")]
    Config(String),
    /// An entity set name that is not built in (the per-request and domain
    /// sets are not entity sets: they have their own commands).
    #[error(
        "unknown entity feature set `{0}` (built in: host, flow; the request and domain \
         sets are `palisade features request` and `palisade features domain`)"
    )]
    UnknownSet(String),
}

/// TOML of the built-in Siddiqui et al. host set.
pub const HOST_SET_TOML: &str = include_str!("sets/host.toml");
/// TOML of the built-in network-flow set.
pub const FLOW_SET_TOML: &str = include_str!("sets/flow.toml");

/// The built-in entity sets by name: `host` (Siddiqui et al.) and `flow`.
pub fn builtin_entity_set(name: &str) -> Result<EntityConfig, FeatureError> {
    match name {
        "host" | "siddiqui" => EntityConfig::from_toml(HOST_SET_TOML),
        "flow" => EntityConfig::from_toml(FLOW_SET_TOML),
        other => Err(FeatureError::UnknownSet(other.to_string())),
    }
}

/// Siddiqui et al. host features per host per window of `window_secs`.
pub fn host_features(events: &[Event], window_secs: i64) -> Result<Table, FeatureError> {
    let mut cfg = builtin_entity_set("host")?;
    cfg.window = format!("{window_secs}s");
    entity_features(events, &cfg)
}

/// Network-flow features per source IP per window of `window_secs`.
pub fn flow_features(events: &[Event], window_secs: i64) -> Result<Table, FeatureError> {
    let mut cfg = builtin_entity_set("flow")?;
    cfg.window = format!("{window_secs}s");
    entity_features(events, &cfg)
}

/// The feature catalog: every built-in feature with its definition, in the
/// order of the sets `request`, `url`, `domain`, `host`, `flow`.
pub fn catalog() -> Vec<FeatureDef> {
    let mut v = request_defs();
    v.extend(url_defs());
    v.extend(domain_defs());
    for s in ["host", "flow"] {
        // The built-in TOML is part of the crate and covered by tests; a parse
        // failure here would be a build defect, so we degrade to leaving the set out.
        if let Ok(cfg) = builtin_entity_set(s) {
            v.extend(cfg.defs());
        }
    }
    v
}
