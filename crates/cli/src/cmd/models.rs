//! `palisade train|score|eval` (placeholder until its issue lands).

#[derive(clap::Args)]
pub struct TrainArgs {}
#[derive(clap::Args)]
pub struct ScoreArgs {}
#[derive(clap::Args)]
pub struct EvalArgs {}

pub fn run_train(_args: TrainArgs) -> anyhow::Result<()> {
    anyhow::bail!("`palisade train` is not implemented yet")
}
pub fn run_score(_args: ScoreArgs) -> anyhow::Result<()> {
    anyhow::bail!("`palisade score` is not implemented yet")
}
pub fn run_eval(_args: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`palisade eval` is not implemented yet")
}
