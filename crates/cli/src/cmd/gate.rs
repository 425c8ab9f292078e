//! `palisade gate serve --config gate.toml [--listen ADDR]`: the gate as an
//! HTTP decision service (see `examples/gate/gate.toml`).

use anyhow::Context;
use palisade_gate::server::{serve, AppState};
use palisade_gate::{Gate, Policy, Stores};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct GateArgs {
    #[command(subcommand)]
    command: GateCommand,
}

#[derive(clap::Subcommand)]
enum GateCommand {
    /// Run the decision service: /v1/decide, forward-auth at /v1/auth,
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
        GateCommand::Serve(a) => serve_cmd(a),
    }
}

fn serve_cmd(a: ServeArgs) -> anyhow::Result<()> {
    let policy = Policy::load(&a.config)?;
    let listen = a.listen.clone().unwrap_or_else(|| policy.file.server.listen.clone());
    if policy.secret.is_none() {
        tracing::warn!("no challenge.secret: using a random per-process key (passes do not survive restarts or span a fleet)");
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(t) = a.threads {
        rt.worker_threads(t.max(1));
    }
    let rt = rt.build().context("starting the async runtime")?;
    rt.block_on(async move {
        let stores = Arc::new(Stores::default());
        let gate = Gate::new(policy, &stores).context("building the gate")?;
        let state = AppState::new(gate, stores, Some(a.config.clone()));
        let listener =
            tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on `{listen}`"))?;
        eprintln!("palisade gate: listening on http://{}", listener.local_addr()?);
        serve(state, listener, shutdown_signal()).await.context("serving")?;
        eprintln!("palisade gate: stopped");
        Ok(())
    })
}

/// Ctrl-C or SIGTERM: stop accepting, finish requests in flight, exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
