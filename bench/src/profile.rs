//! Profiles that explain a missed target: `perf record` of a child process doing the work
//! that missed, summarised as self time per symbol.
//!
//! JIT-compiled Wasm shows up under its function names because the runtime child enables
//! wasmtime's perf map (`/tmp/perf-PID.map`), which `perf report` reads.

use crate::child::run_measured;
use crate::runtime::{module_wat, scenarios};
use crate::Ctx;
use anyhow::{anyhow, bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// What the `profile-work` child repeats for a few seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Work {
    /// Compile the generated 1,000-transition policy.
    Compile1000,
    /// Run the inline-woven loop of a runtime scenario (`--scenario`).
    Inline,
    /// Weave `--module` with `--policy` files (the module read and the policies compiled
    /// once, outside the loop).
    Weave,
}

/// The child side: repeat `work` for about `secs` seconds.
pub fn work(
    work: Work,
    scenario: usize,
    module: Option<&Path>,
    policies: &[PathBuf],
    secs: f64,
) -> Result<()> {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    match work {
        Work::Weave => {
            let module = module.ok_or_else(|| anyhow!("--work weave needs --module"))?;
            let bytes =
                std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
            let program = crate::irm::compile_policies(policies)?;
            while Instant::now() < until {
                std::hint::black_box(crate::irm::weave_on(&bytes, &program, 1)?);
            }
        }
        Work::Compile1000 => {
            let text = crate::compile::generate(1000);
            while Instant::now() < until {
                std::hint::black_box(crate::irm::compile_source("generated_1000.pol", &text)?);
            }
        }
        Work::Inline => {
            let sc = scenarios()
                .into_iter()
                .nth(scenario)
                .ok_or_else(|| anyhow!("no runtime scenario {scenario}"))?;
            let program = crate::irm::compile_source("scenario.pol", &sc.source())?;
            let original = wat::parse_str(module_wat(sc.import)).context("benchmark module")?;
            let woven = crate::irm::weave(&original, &program)?;
            let mut config = wasmtime::Config::new();
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            let engine = wasmtime::Engine::new(&config).map_err(|e| anyhow!("{e:#}"))?;
            let module = wasmtime::Module::new(&engine, &woven).map_err(|e| anyhow!("{e:#}"))?;
            while Instant::now() < until {
                crate::runtime::run_once(&engine, &module, sc.import, 10_000_000)?;
            }
        }
    }
    Ok(())
}

/// `perf record` of `irm-bench profile-work ARGS`, as a markdown paragraph headed by
/// `caption`; `None` (with a message) when perf is unavailable or records nothing.
pub fn perf(ctx: &Ctx, args: &[OsString], caption: &str) -> Option<String> {
    let mut child: Vec<OsString> = vec![ctx.self_exe.clone().into(), "profile-work".into()];
    child.extend(args.iter().cloned());
    perf_of(&child, caption)
}

/// `perf record` of an arbitrary command line (program first).
pub fn perf_of(command: &[OsString], caption: &str) -> Option<String> {
    match perf_inner(command) {
        Ok(lines) => Some(format!(
            "{caption} (`perf record`, self time per symbol ≥1.5%, then the callers of the hottest):\n\n```\n{}\n```\n",
            lines.join("\n")
        )),
        Err(e) => {
            eprintln!("  profile not taken: {e:#}");
            None
        }
    }
}

fn perf_inner(command: &[OsString]) -> Result<Vec<String>> {
    let data = std::env::temp_dir().join(format!("irm-bench-perf-{}.data", std::process::id()));
    let mut cmd = Command::new("perf");
    cmd.args(["record", "-F", "299", "--call-graph", "dwarf,16384", "-o"])
        .arg(&data)
        .arg("--")
        .args(command);
    let rec = run_measured(&mut cmd)?;
    if !rec.success() {
        let _ = std::fs::remove_file(&data);
        bail!("perf record failed: {}", rec.stderr_tail());
    }
    let report = |extra: &[&str]| -> Result<String> {
        let out = Command::new("perf")
            .arg("report")
            .arg("-i")
            .arg(&data)
            .args(["--stdio", "--no-children", "--sort", "symbol"])
            .args(extra)
            .output()
            .context("running perf report")?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let flat = report(&["--percent-limit", "1.5", "-g", "none"]);
    let graph = report(&[
        "--percent-limit",
        "10",
        "-g",
        "caller,2,callee,function,percent",
        "--max-stack",
        "24",
    ]);
    let _ = std::fs::remove_file(&data);
    let mut lines = summarise(&flat?);
    if lines.is_empty() {
        bail!("perf report produced no samples");
    }
    let graph = call_chains(&graph?);
    if !graph.is_empty() {
        lines.push(String::new());
        lines.push("callers of the symbols above 10% (inlined frames left out):".into());
        lines.extend(graph);
    }
    Ok(lines)
}

/// The call-graph part of a `perf report -g caller` output, without inlined frames, with
/// long lines cut, at most 40 lines.
pub fn call_chains(report: &str) -> Vec<String> {
    report
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter(|l| !l.contains("(inlined)"))
        .filter(|l| l.trim() != "|" && !l.trim().trim_start_matches('|').trim().is_empty())
        .map(|l| {
            let l = l.trim_end().trim_end_matches(['-', ' ']);
            if l.chars().count() > 150 {
                let cut: String = l.chars().take(150).collect();
                format!("{cut}…")
            } else {
                l.to_string()
            }
        })
        .take(40)
        .collect()
}

/// The sample lines of a `perf report --stdio`, long Rust symbols shortened to their tail.
pub fn summarise(report: &str) -> Vec<String> {
    report
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(20)
        .map(|l| {
            // perf pads the symbol column and appends empty columns ("-      -").
            let l = l.trim_end().trim_end_matches(['-', ' ']);
            if l.chars().count() > 140 {
                let head_end = l.find("[.]").map(|i| i + 3).unwrap_or(0);
                let tail: Vec<char> = l.chars().rev().take(110).collect();
                let tail: String = tail.into_iter().rev().collect();
                format!("{} …{tail}", &l[..head_end])
            } else {
                l.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_keeps_sample_lines_and_drops_comments() {
        let report = "# Samples: 10\n#\n    40.00%  [.] foo\n\n    20.00%  [k] bar\n";
        assert_eq!(
            summarise(report),
            ["    40.00%  [.] foo", "    20.00%  [k] bar"]
        );
    }

    #[test]
    fn call_chains_leave_out_inlined_frames() {
        let report = "    67.00%  [.] memcmp\n            |\n            |--66.00%--to_dfa\n            |          eq (inlined)\n            |          lower\n";
        assert_eq!(
            call_chains(report),
            [
                "    67.00%  [.] memcmp",
                "            |--66.00%--to_dfa",
                "            |          lower"
            ]
        );
    }

    #[test]
    fn summary_drops_perf_padding_columns() {
        let report = "    70.48%  [.] memcmp          -      -            \n";
        assert_eq!(summarise(report), ["    70.48%  [.] memcmp"]);
    }

    #[test]
    fn summary_shortens_long_symbols_to_their_tail() {
        let long = format!("    9.00%  [.] {}::the_function_name", "a".repeat(200));
        let out = summarise(&long);
        assert!(out[0].starts_with("    9.00%  [.] …"), "{}", out[0]);
        assert!(out[0].ends_with("::the_function_name"));
        assert!(out[0].chars().count() < 140);
    }
}
