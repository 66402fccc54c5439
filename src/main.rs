//! `irm`: a thin command line over the `policy-lang`, `instrumenter` and `monitor-rt` crates.
//!
//! Every subcommand lives in its own module under `cmd/` and returns `anyhow::Result<()>`;
//! [`failure`] is the one place that shows a failure and picks the exit code.

mod cmd;
mod failure;
mod ui;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "irm",
    version,
    about = "Inline reference monitors for WebAssembly"
)]
struct Cli {
    /// When to colour diagnostics: `auto` colours them when stderr is a terminal and
    /// `NO_COLOR` is not set.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t, global = true)]
    color: ui::ColorChoice,
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
    /// Certify that a hardened module enforces policies, without trusting the weaver.
    Check(cmd::check::Args),
    /// Run a (hardened) Wasm module in wasmtime with WASI preview 1.
    Run(cmd::run::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return failure::usage(e),
    };
    let ui = ui::Ui::new(cli.color);
    let result = match cli.command {
        Command::Compile(a) => cmd::compile::run(a, &ui),
        Command::Show(a) => cmd::show::run(a, &ui),
        Command::Test(a) => cmd::test::run(a, &ui),
        Command::Weave(a) => cmd::weave::run(a, &ui),
        Command::Run(a) => cmd::run::run(a, &ui),
        Command::Check(a) => cmd::check::run(a, &ui),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            failure::show(&e, &ui);
            ExitCode::from(failure::exit_code(&e))
        }
    }
}
