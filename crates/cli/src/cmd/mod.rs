//! One module per command family; each owns its arguments and its wiring.
pub mod features;
pub mod gate;
pub mod ingest;
pub mod intel;
pub mod models;
pub mod run;
