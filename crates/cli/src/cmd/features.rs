//! `palisade features` (placeholder until its issue lands).

#[derive(clap::Args)]
pub struct FeaturesArgs {}

pub fn run(_args: FeaturesArgs) -> anyhow::Result<()> {
    anyhow::bail!("`palisade features` is not implemented yet")
}
