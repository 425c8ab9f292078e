//! `palisade ingest` (placeholder until its issue lands).

#[derive(clap::Args)]
pub struct IngestArgs {}

pub fn run(_args: IngestArgs) -> anyhow::Result<()> {
    anyhow::bail!("`palisade ingest` is not implemented yet")
}
