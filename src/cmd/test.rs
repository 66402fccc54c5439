//! `irm test`: run the trace tests of policies.
//!
//! Every `.traces` file found under the given paths is loaded with its policy (the `.pol`
//! of the same name, plus its `with` files) and each trace is decided by the judges
//! chosen (`policy_lang::trace::Judge`): the reference interpreter, the woven driver
//! module, the driver under host enforcement (`monitor_rt::judge`). A trace passes when
//! every judge's verdict matches what the trace expects and equals the first judge's.
use super::input::PolicyArgs;
use crate::failure::TestsFailed;
use crate::ui::Ui;
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use monitor_rt::judge::{Host, HostComponent, Woven, WovenComponent};
use policy_lang::trace::{self, Interpreter, Judge, Report};
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
    /// The driver under host enforcement only.
    Host,
    /// The interpreter and the woven module, which must agree.
    Both,
    /// The interpreter and, for policies on WASI 0.2 functions, a driver component woven
    /// and under host enforcement, which must agree.
    Components,
    /// Every judge (the component ones for policies on WASI 0.2 functions), which must
    /// agree.
    All,
}

impl JudgeChoice {
    /// The judges in order; the first is the reference the others must agree with.
    fn judges(self) -> Vec<&'static dyn Judge> {
        match self {
            JudgeChoice::Interp => vec![&Interpreter],
            JudgeChoice::Woven => vec![&Woven],
            JudgeChoice::Host => vec![&Host],
            JudgeChoice::Both => vec![&Interpreter, &Woven],
            JudgeChoice::Components => vec![&Interpreter, &WovenComponent, &HostComponent],
            JudgeChoice::All => vec![&Interpreter, &Woven, &Host, &WovenComponent, &HostComponent],
        }
    }
}

pub fn run(args: Args, _ui: &Ui) -> Result<()> {
    let files = collect(&args.policy.with(&args.paths))?;
    if files.is_empty() {
        bail!("no .traces files under the given paths");
    }
    let judges = args.judge.judges();
    let mut report = Report::new(std::io::stdout().lock());
    for file in &files {
        report.file(file)?;
        match trace::load_trace_file(file) {
            Ok(loaded) => {
                for result in trace::run_loaded(&loaded, &judges) {
                    report.trace(&result)?;
                }
            }
            Err(e) => report.unloadable(&e)?,
        }
    }
    report.totals()?;
    if report.failed > 0 {
        return Err(TestsFailed {
            failed: report.failed,
        }
        .into());
    }
    Ok(())
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
