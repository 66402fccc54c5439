//! `irm compile`: check policies and print the compiled automaton.
use anyhow::Result;

use super::input::plural;
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Policy files, compiled together (a call is allowed only if every policy allows it).
    #[arg(required = true)]
    pub policies: Vec<PathBuf>,
    /// Print the compiled program in this format instead of a summary.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Emit {
    /// The automaton IR as pretty-printed JSON.
    Json,
}

pub fn run(args: Args) -> Result<u8> {
    let compiled = match super::input::compile_policies(&args.policies) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    match args.emit {
        Some(Emit::Json) => println!("{}", serde_json::to_string_pretty(&compiled.program)?),
        None => {
            for p in &compiled.program.policies {
                let events: std::collections::BTreeSet<u32> =
                    p.transitions.iter().map(|t| t.event).collect();
                println!(
                    "policy {}: {} state{}, {} variable{}, {} transition{}, {} event{}",
                    p.name,
                    p.states.len(),
                    plural(p.states.len()),
                    p.vars.len(),
                    plural(p.vars.len()),
                    p.transitions.len(),
                    plural(p.transitions.len()),
                    events.len(),
                    plural(events.len()),
                );
            }
        }
    }
    Ok(0)
}
