//! `irm check`: certify a hardened module against policies, without trusting the weaver.
use anyhow::Result;
use clap::ValueEnum;
use std::path::{Path, PathBuf};

use super::input::{compile_policies, plural, read_module, RequiredPolicyArgs};
use crate::ui::Ui;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policy: RequiredPolicyArgs,
    /// The hardened module (`.wasm`, or `.wat` text).
    pub input: PathBuf,
    /// Print the outcome as JSON on stdout instead of text on stderr.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub report: Option<Report>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Report {
    Json,
}

/// The module does not certify; the findings have been printed.
#[derive(Debug, thiserror::Error)]
#[error("`{module}` is not certified")]
pub struct NotCertified {
    pub module: String,
}

/// The trace files of the policies (`P.traces` next to `P.pol`) whose policy set is the
/// one being checked: their traces are run on top of the generated ones. A trace file
/// that does not load is skipped: it is extra evidence, never needed.
pub fn policy_traces(
    policies: &[PathBuf],
    program: &policy_lang::ir::Program,
) -> Vec<certifier::Sample> {
    let mut out = Vec::new();
    for p in policies {
        let traces = p.with_extension("traces");
        let Ok(loaded) = policy_lang::trace::load_trace_file(&traces) else {
            continue;
        };
        if loaded.compiled.program == *program {
            out.extend(
                loaded
                    .file
                    .traces
                    .iter()
                    .map(|t| (t.world.clone(), t.events())),
            );
        }
    }
    out
}

/// Certifies `wasm` against the compiled policies, with their trace files.
pub fn certify(
    wasm: &[u8],
    policies: &[PathBuf],
    program: &policy_lang::ir::Program,
) -> Result<certifier::Certificate, Vec<certifier::Finding>> {
    certifier::certify(wasm, program, &policy_traces(policies, program))
}

/// The findings as the user reads them: the first reason, then the rest.
pub fn render_findings(module: &Path, findings: &[certifier::Finding]) -> String {
    let mut out = format!(
        "irm: `{}` is not certified: {}\n",
        module.display(),
        findings[0]
    );
    if findings.len() > 1 {
        out.push_str(&format!("  and {} more:\n", findings.len() - 1));
        for f in &findings[1..] {
            out.push_str(&format!("  - {f}\n"));
        }
    }
    out
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let compiled = compile_policies(&args.policy.files, ui)?;
    let wasm = read_module(&args.input)?;
    let outcome = certify(&wasm, &args.policy.files, &compiled.program);
    match (args.report, &outcome) {
        (Some(Report::Json), _) => {
            let json = match &outcome {
                Ok(c) => serde_json::json!({
                    "certified": true,
                    "monitored": c.monitored.iter().map(|m| serde_json::json!({
                        "import": m.import,
                        "event": compiled.program.events[m.event as usize].name,
                        "monitors": m.monitors,
                    })).collect::<Vec<_>>(),
                    "sampled": { "traces": c.sampled.traces, "calls": c.sampled.calls },
                    "behaviour": "sampled",
                }),
                Err(findings) => serde_json::json!({
                    "certified": false,
                    "findings": findings.iter().map(|f| {
                        let (function, offset) = match f.at {
                            certifier::Where::Offset(o) => (None, o),
                            certifier::Where::Function { index, offset } => (Some(index), offset),
                        };
                        serde_json::json!({ "function": function, "offset": offset, "message": f.message })
                    }).collect::<Vec<_>>(),
                }),
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        (None, Ok(c)) => eprintln!(
            "irm: `{}` is certified: {} monitored import{}, mediation and state integrity checked, behaviour sampled on {} trace{} ({} call{}), not proven",
            args.input.display(),
            c.monitored.len(),
            plural(c.monitored.len()),
            c.sampled.traces,
            plural(c.sampled.traces),
            c.sampled.calls,
            plural(c.sampled.calls),
        ),
        (None, Err(findings)) => eprint!("{}", render_findings(&args.input, findings)),
    }
    match outcome {
        Ok(_) => Ok(()),
        Err(_) => Err(NotCertified {
            module: args.input.display().to_string(),
        }
        .into()),
    }
}
