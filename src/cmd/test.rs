//! `irm test`: run the trace tests of policies.
//!
//! Every `.traces` file found under the given paths is loaded with its policy (the `.pol`
//! of the same name, plus its `with` files) and each trace is decided by one or two
//! judges: the reference interpreter and a woven driver module run in wasmtime
//! (`monitor_rt::judge`). A trace passes when every judge's verdict matches what the trace
//! expects and, with both judges, the two verdicts agree.
use super::input::PolicyArgs;
use crate::failure::TestsFailed;
use crate::ui::Ui;
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use policy_lang::interp::{self, Verdict};
use policy_lang::trace::{self, LoadedTraces, Trace};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("inputs").args(["policy", "paths"]).required(true).multiple(true))]
pub struct Args {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Policy directories (searched recursively), `.pol` files (their `.traces` sibling is
    /// run) or `.traces` files.
    pub paths: Vec<PathBuf>,
    /// Which judges decide each trace.
    #[arg(long, value_enum, default_value = "both")]
    pub judge: JudgeChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum JudgeChoice {
    /// The reference interpreter only.
    Interp,
    /// The woven driver module only.
    Woven,
    /// Both, and they must agree.
    Both,
}

impl JudgeChoice {
    fn interp(self) -> bool {
        self != JudgeChoice::Woven
    }
    fn woven(self) -> bool {
        self != JudgeChoice::Interp
    }
}

pub fn run(args: Args, _ui: &Ui) -> Result<()> {
    let files = collect(&args.policy.with(&args.paths))?;
    if files.is_empty() {
        bail!("no .traces files under the given paths");
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        println!("{}", file.display());
        let loaded = match trace::load_trace_file(file) {
            Ok(l) => l,
            Err(e) => {
                println!("  FAIL  the file could not be run:");
                println!("{}", indent(&e.to_string(), 8));
                failed += 1;
                continue;
            }
        };
        for t in &loaded.file.traces {
            match judge_trace(&loaded, t, args.judge) {
                None => {
                    passed += 1;
                    println!("  ok    {}", t.name);
                }
                Some(diff) => {
                    failed += 1;
                    println!("  FAIL  {} (line {})", t.name, t.line);
                    println!("{}", indent(&diff, 8));
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        return Err(TestsFailed { failed }.into());
    }
    Ok(())
}

/// `None` when the trace passes; otherwise every difference found.
fn judge_trace(loaded: &LoadedTraces, t: &Trace, choice: JudgeChoice) -> Option<String> {
    let program = &loaded.compiled.program;
    let events = t.events();
    let mut problems = Vec::new();
    let reference = choice.interp().then(|| interp::run_trace(program, &events));
    if let Some(v) = &reference {
        if let Err(d) = trace::check(program, t, v) {
            problems.push(format!("[interpreter]\n{d}"));
        }
    }
    if choice.woven() {
        match monitor_rt::judge::judge(program, &events) {
            Err(e) => problems.push(format!("[woven] could not judge the trace: {e}")),
            Ok(woven) => {
                if let Err(d) = trace::check(program, t, &woven) {
                    problems.push(format!("[woven]\n{d}"));
                }
                if let Some(r) = &reference {
                    if let Some(d) = monitor_rt::judge::disagreement(program, &events, r, &woven) {
                        problems.push(format!(
                            "[disagreement] {d}\n  interpreter: {}\n  woven:       {}",
                            summary(r),
                            summary(&woven)
                        ));
                    }
                }
            }
        }
    }
    (!problems.is_empty()).then(|| problems.join("\n"))
}

/// A one-line verdict for disagreement messages.
fn summary(v: &Verdict) -> String {
    let violation = match &v.violation {
        None => "accept".to_string(),
        Some(x) => format!(
            "deny at step {} ({:?}) by {} {:?}",
            x.step, x.phase, x.policy, x.reason
        ),
    };
    let observations: Vec<String> = v
        .observations
        .iter()
        .map(|o| match o.kind {
            interp::ObservationKind::Audit => format!("step {}: audit by {}", o.step, o.policy),
            interp::ObservationKind::Suppress(value) => {
                format!("step {}: suppress {value:?} by {}", o.step, o.policy)
            }
        })
        .collect();
    if observations.is_empty() {
        violation
    } else {
        format!("{violation}; {}", observations.join(", "))
    }
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `.traces` files named by `paths`, in a stable order, each once.
fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)
                .with_context(|| format!("cannot read directory `{}`", p.display()))?;
        } else if has_ext(p, "traces") {
            if !p.is_file() {
                bail!("no such file `{}`", p.display());
            }
            out.push(p.clone());
        } else if has_ext(p, "pol") {
            let t = p.with_extension("traces");
            if !p.is_file() {
                bail!("no such file `{}`", p.display());
            }
            if !t.is_file() {
                bail!("`{}` has no trace file `{}`", p.display(), t.display());
            }
            out.push(t);
        } else if !p.exists() {
            bail!("no such file or directory `{}`", p.display());
        } else {
            bail!(
                "`{}` is neither a directory, a .pol file nor a .traces file",
                p.display()
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    Ok(out)
}

fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension().is_some_and(|e| e == ext)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for e in entries {
        if e.is_dir() {
            walk(&e, out)?;
        } else if has_ext(&e, "traces") {
            out.push(e);
        }
    }
    Ok(())
}
