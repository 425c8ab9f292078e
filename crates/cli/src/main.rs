//! `palisade`: the command line. Argument parsing and wiring only; the work
//! happens in the library crates.

use clap::{Parser, Subcommand};

// glibc's malloc was ~7% of the gate server's CPU under load (perf,
// `bench/gate_http.sh`); mimalloc is a small C build and helps every command.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;

#[derive(Parser)]
#[command(
    name = "palisade",
    version,
    about = "Security logs in, explained detections out."
)]
struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read logs in their native formats and write normalised events.
    Ingest(cmd::ingest::IngestArgs),
    /// Turn events into feature tables; `features list` prints the catalog.
    Features(cmd::features::FeaturesArgs),
    /// Label an event or feature table by joining it with threat-intelligence feeds.
    Label(cmd::intel::LabelArgs),
    /// Threat-intelligence feed tools (`intel stats`).
    Intel(cmd::intel::IntelArgs),
    /// Train a model on a feature table.
    Train(Box<cmd::models::TrainArgs>),
    /// Score a table with a trained model.
    Score(cmd::models::ScoreArgs),
    /// Evaluate a trained model on a labelled table.
    Eval(cmd::models::EvalArgs),
    /// Run a pipeline: raw logs to explained alerts and a report.
    Run(cmd::run::RunArgs),
    /// The gate: rate limits, challenges and risk, as a service.
    Gate(cmd::gate::GateArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let result = match cli.command {
        Command::Ingest(a) => cmd::ingest::run(a),
        Command::Features(a) => cmd::features::run(a),
        Command::Label(a) => cmd::intel::run_label(a),
        Command::Intel(a) => cmd::intel::run_intel(a),
        Command::Train(a) => cmd::models::run_train(*a),
        Command::Score(a) => cmd::models::run_score(a),
        Command::Eval(a) => cmd::models::run_eval(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Gate(a) => cmd::gate::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palisade: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
