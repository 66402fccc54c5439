//! `irm`: a thin command line over the `policy-lang`, `instrumenter` and `monitor-rt` crates.
//!
//! Every subcommand lives in its own module under `cmd/` and returns the process exit
//! code; errors are printed here with their full `anyhow` context chain.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "irm",
    version,
    about = "Inline reference monitors for WebAssembly"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check and compile policies to the automaton IR.
    Compile(cmd::compile::Args),
    /// Show a compiled policy (Graphviz with --dot).
    Show(cmd::show::Args),
    /// Run the trace tests of every policy under the given paths.
    Test(cmd::test::Args),
    /// Weave policies into a Wasm module.
    Weave(cmd::weave::Args),
    /// Run a (hardened) Wasm module in wasmtime with WASI preview 1.
    Run(cmd::run::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile(a) => cmd::compile::run(a),
        Command::Show(a) => cmd::show::run(a),
        Command::Test(a) => cmd::test::run(a),
        Command::Weave(a) => cmd::weave::run(a),
        Command::Run(a) => cmd::run::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("irm: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
