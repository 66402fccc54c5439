//! `irm show`: a human summary of compiled policies, or Graphviz with `--dot`.
use super::input::{compile_policies, PolicyFiles};
use crate::ui::Ui;
use anyhow::{bail, Result};
use policy_lang::display::{signature, transition_to_string};
use policy_lang::ir::Program;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policies: PolicyFiles,
    /// Print Graphviz DOT (render with `dot -Tsvg`).
    #[arg(long)]
    pub dot: bool,
    /// The policy to show when the files define several (default: all, or the only one).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let compiled = compile_policies(&args.policies.all(), ui)?;
    let program = &compiled.program;
    let names: Vec<&str> = program.policies.iter().map(|p| p.name.as_str()).collect();
    let selected: Vec<usize> = match &args.name {
        Some(name) => match names.iter().position(|n| n == name) {
            Some(i) => vec![i],
            None => bail!(
                "no policy named `{name}`; the policies are: {}",
                names.join(", ")
            ),
        },
        None if args.dot && program.policies.len() > 1 => bail!(
            "the files define {} policies ({}); pick one with --name NAME",
            names.len(),
            names.join(", ")
        ),
        None => (0..program.policies.len()).collect(),
    };
    if program.policies.is_empty() {
        bail!("the files define no policy");
    }
    for i in selected {
        if args.dot {
            print!("{}", policy_lang::dot::to_dot(program, i));
        } else {
            print!("{}", summary(program, i));
        }
    }
    Ok(())
}

fn summary(program: &Program, i: usize) -> String {
    let p = &program.policies[i];
    let mut out = format!("policy {}\n", p.name);
    let states: Vec<String> = p
        .states
        .iter()
        .enumerate()
        .map(|(s, st)| {
            if s as u32 == p.initial {
                format!("{} (initial)", st.name)
            } else {
                st.name.clone()
            }
        })
        .collect();
    out.push_str(&format!("  states: {}\n", states.join(", ")));
    for v in &p.vars {
        out.push_str(&format!(
            "  var {}: {}..{} = {}\n",
            v.name, v.min, v.max, v.init
        ));
    }
    if p.allow_shared_memory_strings {
        out.push_str("  allows string guards on shared memories\n");
    }
    out.push_str("  events:\n");
    let mut used: Vec<u32> = p.transitions.iter().map(|t| t.event).collect();
    used.sort_unstable();
    used.dedup();
    for e in used {
        let ev = &program.events[e as usize];
        out.push_str(&format!(
            "    {} = {}{}\n",
            ev.name,
            ev.import_name(),
            signature(ev)
        ));
    }
    out.push_str("  transitions (first match wins):\n");
    for t in &p.transitions {
        out.push_str(&format!(
            "    {}  // {}\n",
            transition_to_string(t, p, &program.events),
            t.origin
        ));
    }
    out
}
