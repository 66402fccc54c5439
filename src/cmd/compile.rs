//! `irm compile`: check policies and print the compiled automaton.
use anyhow::Result;
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
    let compiled = match policy_lang::compile_files(&args.policies) {
        Ok(c) => c,
        Err(diags) => {
            eprint!("{}", diags.render());
            let n = diags.errors().count();
            eprintln!(
                "irm: {n} error{} in the policies",
                if n == 1 { "" } else { "s" }
            );
            return Ok(1);
        }
    };
    if !compiled.warnings.is_empty() {
        eprintln!("{}", compiled.render_warnings());
    }
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

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
