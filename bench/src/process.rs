//! Section 5: the whole `irm weave` process against the whole `wasm-tools validate`
//! process on the same module: what a user waits for, start-up, reading the module and
//! (for irm) writing the output to disk included. Both run as children, alternately,
//! and are timed from spawn to exit.

use crate::child::run_measured;
use crate::stats::{fmt_ratio, fmt_secs, median};
use crate::Ctx;
use std::path::Path;
use std::process::Command;

/// The target: at most this many times `wasm-tools validate`.
pub const TARGET_RATIO: f64 = 1.3;

pub struct ProcessResult {
    pub module: String,
    /// Median wall seconds of `wasm-tools validate MODULE`.
    pub validate: Option<f64>,
    /// Median wall seconds of `irm weave -q -p no-exfil.pol MODULE -o FILE`.
    pub weave: Option<f64>,
    pub runs: usize,
    pub wasm_tools_version: Option<String>,
    /// Why nothing (or not everything) was measured.
    pub note: Option<String>,
}

impl ProcessResult {
    pub fn ratio(&self) -> Option<f64> {
        Some(self.weave? / self.validate?)
    }
}

pub fn run(ctx: &Ctx) -> ProcessResult {
    let module = if ctx.quick {
        "resvg.wasm"
    } else {
        "cpython.wasm"
    };
    let mut r = ProcessResult {
        module: module.to_string(),
        validate: None,
        weave: None,
        runs: 0,
        wasm_tools_version: None,
        note: None,
    };
    let path = ctx.corpus.join(module);
    if !path.is_file() {
        r.note = Some(format!("skipped: {module} is not in the corpus cache"));
        eprintln!("process: {}", r.note.as_deref().unwrap_or_default());
        return r;
    }
    r.wasm_tools_version = Command::new("wasm-tools")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if r.wasm_tools_version.is_none() {
        r.note = Some(
            "skipped: wasm-tools is not installed (`cargo install wasm-tools --locked`)".into(),
        );
        eprintln!("process: {}", r.note.as_deref().unwrap_or_default());
        return r;
    }
    // `cargo run --release -p irm-bench` builds the workspace's binaries next to it.
    let irm = ctx
        .self_exe
        .with_file_name(format!("irm{}", std::env::consts::EXE_SUFFIX));
    if !irm.is_file() {
        r.note = Some(format!(
            "skipped: no irm binary at {} (`cargo build --release`)",
            irm.display()
        ));
        eprintln!("process: {}", r.note.as_deref().unwrap_or_default());
        return r;
    }
    eprintln!("process: irm weave and wasm-tools validate on {module}");
    let policy = crate::irm::policy_file(&ctx.workspace, crate::irm::NO_EXFIL).0;
    let out = std::env::temp_dir().join(format!("irm-bench-process-{}.wasm", std::process::id()));
    let (mut validate, mut weave) = (Vec::new(), Vec::new());
    for _ in 0..ctx.runs {
        match time(Command::new("wasm-tools").arg("validate").arg(&path)) {
            Ok(s) => validate.push(s),
            Err(e) => {
                r.note = Some(format!("wasm-tools validate failed: {e}"));
                break;
            }
        }
        match time(&mut weave_command(&irm, &policy, &path, &out)) {
            Ok(s) => weave.push(s),
            Err(e) => {
                r.note = Some(format!("irm weave failed: {e}"));
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&out);
    r.validate = median(&validate);
    r.weave = median(&weave);
    r.runs = weave.len().min(validate.len());
    if let (Some(v), Some(w)) = (r.validate, r.weave) {
        eprintln!(
            "  wasm-tools validate {}, irm weave {} ({})",
            fmt_secs(v),
            fmt_secs(w),
            fmt_ratio(w / v)
        );
    }
    r
}

fn weave_command(irm: &Path, policy: &Path, module: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(irm);
    cmd.args(["weave", "-q", "--policy"])
        .arg(policy)
        .arg(module)
        .arg("-o")
        .arg(out);
    cmd
}

/// Wall seconds of one successful run of `cmd`.
fn time(cmd: &mut Command) -> Result<f64, String> {
    match run_measured(cmd) {
        Ok(run) if run.success() => Ok(run.wall.as_secs_f64()),
        Ok(run) => Err(run.stderr_tail()),
        Err(e) => Err(format!("{e:#}")),
    }
}

pub fn markdown(r: &ProcessResult) -> String {
    let mut s = String::new();
    match (r.validate, r.weave, r.ratio()) {
        (Some(v), Some(w), Some(ratio)) => {
            s.push_str(&format!(
                "| command on {} | median wall time | runs |\n|---|---:|---:|\n",
                r.module
            ));
            s.push_str(&format!(
                "| `{}` validate | {} | {} |\n",
                r.wasm_tools_version.as_deref().unwrap_or("wasm-tools"),
                fmt_secs(v),
                r.runs
            ));
            s.push_str(&format!(
                "| `irm weave -p no-exfil.pol -o FILE` | {} | {} |\n\nratio: {} (target ≤ {TARGET_RATIO}x)\n",
                fmt_secs(w),
                r.runs,
                fmt_ratio(ratio)
            ));
        }
        _ => s.push_str(&format!(
            "{}\n",
            r.note.as_deref().unwrap_or("Not measured.")
        )),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(validate: Option<f64>, weave: Option<f64>) -> ProcessResult {
        ProcessResult {
            module: "m.wasm".into(),
            validate,
            weave,
            runs: 1,
            wasm_tools_version: None,
            note: Some("skipped: wasm-tools is not installed".into()),
        }
    }

    #[test]
    fn the_ratio_is_weave_over_validate() {
        assert_eq!(result(Some(2.0), Some(2.5)).ratio(), Some(1.25));
    }

    #[test]
    fn a_skipped_comparison_has_no_ratio_and_shows_why() {
        let r = result(None, None);
        assert_eq!(r.ratio(), None);
        assert!(markdown(&r).contains("wasm-tools is not installed"));
    }
}
