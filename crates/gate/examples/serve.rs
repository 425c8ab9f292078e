//! The same service as `palisade gate serve`, as a light binary of this
//! crate (for benchmarks without building the whole CLI).
//!
//! `cargo run --release -p palisade-gate --example serve -- CONFIG [LISTEN] [THREADS]`

// As in the `palisade` binary: glibc's malloc was ~7% of the server's CPU
// time under load (perf, `bench/gate_http.sh`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(config) = args.get(1) else {
        eprintln!("usage: serve CONFIG [LISTEN] [THREADS]");
        return std::process::ExitCode::FAILURE;
    };
    let threads = args.get(3).and_then(|s| s.parse().ok());
    match palisade_gate::server::run_blocking(
        std::path::Path::new(config),
        args.get(2).map(String::as_str),
        threads,
    ) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
