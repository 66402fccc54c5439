//! `irm compile`: check policies and print the compiled automaton.
use anyhow::Result;

use super::input::{compile_policies, plural, PolicyFiles};
use crate::ui::Ui;
use clap::ValueEnum;

/// Policies given together are composed: a call is allowed only if every policy allows it.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policies: PolicyFiles,
    /// Print the compiled program in this format instead of a summary.
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Emit {
    /// The automaton IR as pretty-printed JSON.
    Json,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let compiled = compile_policies(&args.policies.all(), ui)?;
    match args.emit {
        Some(Emit::Json) => println!("{}", serde_json::to_string_pretty(&compiled.program)?),
        None => {
            for p in &compiled.program.policies {
                let events: std::collections::BTreeSet<u32> =
                    p.transitions.iter().map(|t| t.event).collect();
                let sets = match p.sets.len() {
                    0 => String::new(),
                    n => format!(", {n} set{}", plural(n)),
                };
                println!(
                    "policy {}: {} state{}, {} variable{}{sets}, {} transition{}, {} event{}",
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
    Ok(())
}
