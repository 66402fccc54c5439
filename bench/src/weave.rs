//! Section 1: weave throughput on real modules against what a user would otherwise run.
//!
//! Every tool runs in its own child process (see [`crate::child`]) so peak memory is per
//! tool. In-process tools time only their work on the in-memory module; `wasm-opt` is an
//! external program, so its time is the child's wall time (including reading and writing
//! the file, which for a cached file is a small fraction of the total).

use crate::child::{run_measured, ChildRun};
use crate::stats::{fmt_kib_as_mib, fmt_ratio, fmt_secs, mb, median};
use crate::tools::{InProcTool, Measurement};
use crate::Ctx;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One row of a module's table.
#[derive(Debug, Clone)]
pub struct ToolResult {
    pub name: String,
    pub secs: Option<f64>,
    pub max_rss_kib: u64,
    pub out_bytes: Option<u64>,
    pub runs: usize,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ModuleResult {
    pub name: String,
    pub size: u64,
    pub tools: Vec<ToolResult>,
    pub profile: Option<String>,
}

impl ModuleResult {
    pub fn tool(&self, name: &str) -> Option<&ToolResult> {
        self.tools.iter().find(|t| t.name == name)
    }

    pub fn secs(&self, name: &str) -> Option<f64> {
        self.tool(name).and_then(|t| t.secs)
    }
}

pub const VALIDATE: &str = "wasmparser validate (floor)";
pub const REENCODE: &str = "wasm-encoder RoundtripReencoder";
pub const WALRUS: &str = "walrus parse + emit";
pub const WASM_OPT: &str = "binaryen wasm-opt (no passes)";

/// The policy sets woven in this section on one validating thread (the brief's targets
/// are per core): label and files relative to the workspace.
pub fn policy_sets() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("irm weave no-exfil, 1 thread", vec![crate::irm::NO_EXFIL]),
        (
            "irm weave filesystem (resvg-fs), 1 thread",
            vec!["examples/resvg/resvg-fs.pol"],
        ),
    ]
}

/// `irm check` of the module woven with no-exfil (the certifier alone, weaving untimed).
pub const CHECK: &str = "irm check no-exfil (certifier)";

/// The first policy set woven with irm's default, one validating thread per core.
pub const ALL_CORES: &str = "irm weave no-exfil, all cores";

pub fn run(ctx: &Ctx) -> Result<Vec<ModuleResult>> {
    let modules: &[&str] = if ctx.quick {
        &["resvg.wasm"]
    } else {
        &[
            "cpython.wasm",
            "biome.wasm",
            "nextpnr-ice40.wasm",
            "resvg.wasm",
        ]
    };
    let mut results = Vec::new();
    for name in modules {
        let path = ctx.corpus.join(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            eprintln!("weave: {name} not in the corpus cache, skipped");
            results.push(ModuleResult {
                name: name.to_string(),
                size: 0,
                tools: vec![],
                profile: None,
            });
            continue;
        };
        eprintln!("weave: {name} ({:.1} MB)", mb(meta.len()));
        let mut tools = vec![
            in_proc(ctx, VALIDATE, InProcTool::Validate, &path, &[]),
            in_proc(ctx, REENCODE, InProcTool::Reencode, &path, &[]),
            in_proc(ctx, WALRUS, InProcTool::Walrus, &path, &[]),
            wasm_opt(ctx, &path),
        ];
        for (label, files) in policy_sets() {
            let files: Vec<PathBuf> = files
                .iter()
                .map(|f| crate::irm::policy_file(&ctx.workspace, f).0)
                .collect();
            tools.push(in_proc(ctx, label, InProcTool::Weave, &path, &files));
        }
        let no_exfil = crate::irm::policy_file(&ctx.workspace, crate::irm::NO_EXFIL).0;
        tools.push(in_proc(
            ctx,
            ALL_CORES,
            InProcTool::WeaveAllCores,
            &path,
            &[no_exfil],
        ));
        tools.push(in_proc(
            ctx,
            CHECK,
            InProcTool::Check,
            &path,
            &[crate::irm::policy_file(&ctx.workspace, crate::irm::NO_EXFIL).0],
        ));
        let mut m = ModuleResult {
            name: name.to_string(),
            size: meta.len(),
            tools,
            profile: None,
        };
        if !ctx.quick && misses_weave_target(&m) {
            m.profile = profile_weave(ctx, &path);
        }
        results.push(m);
    }
    Ok(results)
}

fn runs_for(ctx: &Ctx, tool_is_slow: bool) -> usize {
    if ctx.quick {
        1
    } else if tool_is_slow {
        // walrus and wasm-opt take many seconds on cpython; three runs still give a median.
        ctx.runs.min(3)
    } else {
        ctx.runs
    }
}

fn in_proc(
    ctx: &Ctx,
    label: &str,
    tool: InProcTool,
    module: &Path,
    policies: &[PathBuf],
) -> ToolResult {
    let runs = runs_for(ctx, tool == InProcTool::Walrus);
    let mut secs = Vec::new();
    let mut rss = 0;
    let mut out_bytes = None;
    let mut note = None;
    for _ in 0..runs {
        let mut cmd = Command::new(&ctx.self_exe);
        cmd.arg("measure")
            .arg("--tool")
            .arg(
                clap::ValueEnum::to_possible_value(&tool)
                    .expect("every tool has a name")
                    .get_name(),
            )
            .arg("--module")
            .arg(module);
        for p in policies {
            cmd.arg("--policy").arg(p);
        }
        match run_measured(&mut cmd) {
            Ok(run) if run.success() => {
                match serde_json::from_str::<Measurement>(run.stdout.trim()) {
                    Ok(m) => {
                        secs.push(m.secs);
                        out_bytes = Some(m.out_bytes);
                        rss = rss.max(run.max_rss_kib);
                    }
                    Err(e) => {
                        note = Some(format!("unreadable measurement ({e})"));
                        break;
                    }
                }
            }
            Ok(run) => {
                note = Some(failure_note(&run));
                break;
            }
            Err(e) => {
                note = Some(format!("{e:#}"));
                break;
            }
        }
    }
    eprintln!("  {label}: {}", summary(&secs, &note));
    ToolResult {
        name: label.to_string(),
        secs: median(&secs),
        max_rss_kib: rss,
        out_bytes,
        runs: secs.len(),
        note,
    }
}

fn wasm_opt(ctx: &Ctx, module: &Path) -> ToolResult {
    let out = std::env::temp_dir().join(format!("irm-bench-wasm-opt-{}.wasm", std::process::id()));
    let runs = runs_for(ctx, true);
    let mut secs = Vec::new();
    let mut rss = 0;
    let mut note = None;
    let mut out_bytes = None;
    for _ in 0..runs {
        // `-g` keeps the name section, as irm does; `--all-features` lets it read everything
        // it knows. No optimisation flags: parse, build binaryen IR, print binary.
        let mut cmd = Command::new("wasm-opt");
        cmd.arg("--all-features")
            .arg("-g")
            .arg(module)
            .arg("-o")
            .arg(&out);
        match run_measured(&mut cmd) {
            Ok(run) if run.success() => {
                secs.push(run.wall.as_secs_f64());
                rss = rss.max(run.max_rss_kib);
                out_bytes = std::fs::metadata(&out).ok().map(|m| m.len());
            }
            Ok(run) => {
                note = Some(format!(
                    "skipped: wasm-opt cannot process it: {}",
                    failure_note(&run)
                ));
                break;
            }
            Err(e) => {
                note = Some(format!("skipped: wasm-opt not runnable ({e:#})"));
                break;
            }
        }
    }
    let _ = std::fs::remove_file(&out);
    eprintln!("  {WASM_OPT}: {}", summary(&secs, &note));
    ToolResult {
        name: WASM_OPT.to_string(),
        secs: median(&secs),
        max_rss_kib: rss,
        out_bytes,
        runs: secs.len(),
        note,
    }
}

fn failure_note(run: &ChildRun) -> String {
    let what = match run.code {
        Some(c) => format!("exit {c}"),
        None => "killed by a signal".to_string(),
    };
    let tail = run.stderr_tail();
    let tail: String = tail.chars().take(200).collect();
    format!("{what}: {tail}")
}

fn summary(secs: &[f64], note: &Option<String>) -> String {
    match (median(secs), note) {
        (Some(s), _) => fmt_secs(s),
        (None, Some(n)) => n.clone(),
        (None, None) => "no result".into(),
    }
}

/// The weave targets of the brief: at most 1.5x validation, and (for the 100 MB module)
/// under 2 s.
pub fn misses_weave_target(m: &ModuleResult) -> bool {
    let Some(floor) = m.secs(VALIDATE) else {
        return false;
    };
    policy_sets().iter().any(|(label, _)| match m.secs(label) {
        Some(w) => w > 1.5 * floor || (m.size > 50_000_000 && w > 2.0),
        None => false,
    })
}

/// A `perf` profile of weaving `module` repeatedly (first policy set), when perf works here.
fn profile_weave(ctx: &Ctx, module: &Path) -> Option<String> {
    let (label, files) = &policy_sets()[0];
    let mut args: Vec<std::ffi::OsString> = vec![
        "--work".into(),
        "weave".into(),
        "--module".into(),
        module.into(),
    ];
    for f in files {
        args.push("--policy".into());
        args.push(crate::irm::policy_file(&ctx.workspace, f).0.into());
    }
    let caption = format!(
        "Profile of `{label}` of {}, repeated for 3 s (the module read and the policy compiled once, outside the loop)",
        module.file_name().unwrap_or_default().to_string_lossy()
    );
    crate::profile::perf(ctx, &args, &caption)
}

pub fn markdown(results: &[ModuleResult]) -> String {
    let mut s = String::new();
    for m in results {
        if m.tools.is_empty() {
            s.push_str(&format!(
                "### {}\n\nNot in the corpus cache (run `scripts/fetch-corpus.sh`); skipped.\n\n",
                m.name
            ));
            continue;
        }
        s.push_str(&format!("### {} ({:.1} MB)\n\n", m.name, mb(m.size)));
        s.push_str("| tool | median time | MB/s | time / validation | peak memory | output | runs | note |\n");
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---|\n");
        let floor = m.secs(VALIDATE);
        for t in &m.tools {
            let (time, mbs, ratio) = match t.secs {
                Some(secs) => (
                    fmt_secs(secs),
                    format!("{:.0}", mb(m.size) / secs),
                    floor
                        .map(|f| fmt_ratio(secs / f))
                        .unwrap_or_else(|| "–".into()),
                ),
                None => ("–".into(), "–".into(), "–".into()),
            };
            let out = t
                .out_bytes
                .filter(|&b| b > 0)
                .map(|b| format!("{:.1} MB", mb(b)))
                .unwrap_or_else(|| "–".into());
            let rss = if t.max_rss_kib > 0 {
                fmt_kib_as_mib(t.max_rss_kib)
            } else {
                "–".into()
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                t.name,
                time,
                mbs,
                ratio,
                rss,
                out,
                t.runs,
                t.note.as_deref().unwrap_or("").replace('|', "\\|")
            ));
        }
        s.push('\n');
        if let Some(p) = &m.profile {
            s.push_str(p);
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(size: u64, validate: f64, weave: f64) -> ModuleResult {
        let tool = |name: &str, secs: f64| ToolResult {
            name: name.to_string(),
            secs: Some(secs),
            max_rss_kib: 0,
            out_bytes: None,
            runs: 1,
            note: None,
        };
        ModuleResult {
            name: "m.wasm".into(),
            size,
            tools: vec![tool(VALIDATE, validate), tool(policy_sets()[0].0, weave)],
            profile: None,
        }
    }

    #[test]
    fn weave_within_one_and_a_half_validations_meets_the_target() {
        assert!(!misses_weave_target(&module(1_000_000, 1.0, 1.5)));
    }

    #[test]
    fn weave_slower_than_one_and_a_half_validations_misses_the_target() {
        assert!(misses_weave_target(&module(1_000_000, 1.0, 1.6)));
    }

    #[test]
    fn weave_of_a_large_module_over_two_seconds_misses_the_target() {
        assert!(misses_weave_target(&module(99_000_000, 1.5, 2.1)));
    }
}
