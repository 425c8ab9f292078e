//! `palisade gate serve --config gate.toml [--listen ADDR]`: the gate as an
//! HTTP decision service (see `examples/gate/gate.toml`).

use palisade_gate::Policy;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct GateArgs {
    #[command(subcommand)]
    command: GateCommand,
}

#[derive(clap::Subcommand)]
enum GateCommand {
    /// Run the decision service: POST /v1/decide, forward-auth at /v1/auth,
    /// challenges under /.palisade/, /metrics, /healthz, /admin/*.
    Serve(ServeArgs),
    /// Parse and validate a policy file, then exit.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The policy (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Address to listen on (overrides `server.listen`).
    #[arg(long)]
    listen: Option<String>,
    /// Worker threads (default: number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: GateArgs) -> anyhow::Result<()> {
    match args.command {
        GateCommand::Check { config } => {
            let p = Policy::load(&config)?;
            println!("{}: ok ({} limits)", config.display(), p.limits.len());
            Ok(())
        }
        GateCommand::Serve(a) => {
            palisade_gate::server::run_blocking(&a.config, a.listen.as_deref(), a.threads)
                .map_err(anyhow::Error::msg)
        }
    }
}
