//! `palisade run PIPELINE.toml [--out-dir DIR] [--top N]`: the main job.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The pipeline file (TOML): sources, features, intel, models, outputs.
    pub pipeline: PathBuf,
    /// Output directory (overrides the pipeline's `[output] dir`).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Keep only the N highest-risk alerts (overrides `[output] top`).
    #[arg(long)]
    pub top: Option<usize>,
    /// Print the stage summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let opts = palisade_pipeline::RunOptions {
        out_dir: args.out_dir,
        top: args.top,
    };
    let s = palisade_pipeline::run(&args.pipeline, &opts)?;
    if args.json {
        let stages: Vec<serde_json::Value> = s
            .stages
            .iter()
            .map(|st| serde_json::json!({"stage": st.name, "detail": st.detail, "count": st.count, "seconds": st.seconds}))
            .collect();
        let v = serde_json::json!({
            "events": s.events,
            "alerts_total": s.alerts_total,
            "alerts_written": s.alerts_written,
            "alerts": s.alerts_path,
            "report": s.report_path,
            "models": s.models_saved,
            "stages": stages,
        });
        println!("{v}");
        return Ok(());
    }
    for st in &s.stages {
        eprintln!(
            "{:<9} {:>8} {:>7.2}s  {}",
            st.name, st.count, st.seconds, st.detail
        );
    }
    eprintln!();
    eprintln!(
        "{} events read; {} alert(s) above threshold, {} written.",
        s.events, s.alerts_total, s.alerts_written
    );
    eprintln!("alerts: {}", s.alerts_path.display());
    eprintln!("report: {}", s.report_path.display());
    Ok(())
}
