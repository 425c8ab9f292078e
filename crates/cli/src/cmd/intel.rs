//! `palisade label` and `palisade intel` (placeholder until its issue lands).

#[derive(clap::Args)]
pub struct LabelArgs {}

#[derive(clap::Args)]
pub struct IntelArgs {}

pub fn run_label(_args: LabelArgs) -> anyhow::Result<()> {
    anyhow::bail!("`palisade label` is not implemented yet")
}

pub fn run_intel(_args: IntelArgs) -> anyhow::Result<()> {
    anyhow::bail!("`palisade intel` is not implemented yet")
}
