//! `irm-bench`: measures irm against what users would run instead and writes BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p irm-bench -- --out BENCHMARKS.md           # full run (~15 min)
//! cargo run --release -p irm-bench -- --quick --out /tmp/bench.md   # smoke run (~1 min)
//! ```
//!
//! Sections: (1) weave throughput on real modules, (2) runtime cost per monitored call,
//! (3) real programs, (4) policy compilation, (5) the whole `irm weave` process against
//! `wasm-tools validate` (skipped when wasm-tools is not installed), (6) components: weave
//! against validate, and the cost of a call through the interposed monitor. Every ratio is taken between numbers measured
//! in the same run on the same machine. Real modules come from `scripts/fetch-corpus.sh`
//! (`$IRM_CORPUS`, default `~/.cache/irm-corpus`); missing ones are reported as skipped.

mod child;
mod compile;
mod components;
mod irm;
mod machine;
mod process;
mod profile;
mod programs;
mod report;
mod runtime;
mod stats;
mod tools;
mod weave;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "irm-bench", about = "Benchmarks irm and writes BENCHMARKS.md")]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Where to write the markdown report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Smoke run: small modules, one run each, short loops. Numbers are not meaningful.
    #[arg(long)]
    quick: bool,
    /// Folder with the corpus modules (default: $IRM_CORPUS/wasm or ~/.cache/irm-corpus/wasm).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Runs per measurement; the report shows medians.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Run only these sections (comma separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Section>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Section {
    Weave,
    Runtime,
    Programs,
    Compile,
    Process,
    Components,
}

#[derive(Subcommand)]
enum Sub {
    /// Internal: run one in-process tool once and print its timing as JSON (used by the
    /// harness so that every tool's peak memory is measured in its own process).
    Measure {
        #[arg(long)]
        tool: tools::InProcTool,
        #[arg(long)]
        module: PathBuf,
        #[arg(long)]
        policy: Vec<PathBuf>,
    },
    /// Internal: repeat one piece of work for a few seconds under `perf record` (used to
    /// explain a missed target).
    ProfileWork {
        #[arg(long)]
        work: profile::Work,
        /// The runtime scenario (index) for `--work inline`.
        #[arg(long, default_value_t = 0)]
        scenario: usize,
        #[arg(long)]
        module: Option<PathBuf>,
        #[arg(long)]
        policy: Vec<PathBuf>,
        #[arg(long, default_value_t = 3.0)]
        secs: f64,
    },
}

/// Settings shared by all sections.
pub struct Ctx {
    pub quick: bool,
    pub runs: usize,
    pub corpus: PathBuf,
    pub workspace: PathBuf,
    pub self_exe: PathBuf,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Sub::Measure {
            tool,
            module,
            policy,
        }) => {
            let m = tools::measure(tool, &module, &policy)?;
            println!("{}", serde_json::to_string(&m)?);
            return Ok(());
        }
        Some(Sub::ProfileWork {
            work,
            scenario,
            module,
            policy,
            secs,
        }) => return profile::work(work, scenario, module.as_deref(), &policy, secs),
        None => {}
    }

    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench crate has a parent folder")?
        .to_path_buf();
    let corpus = cli.corpus.unwrap_or_else(default_corpus);
    let ctx = Ctx {
        quick: cli.quick,
        runs: if cli.quick { 1 } else { cli.runs.max(1) },
        corpus,
        workspace,
        self_exe: std::env::current_exe().context("locating irm-bench itself")?,
    };
    if cfg!(debug_assertions) && !ctx.quick {
        eprintln!("irm-bench: warning: this is a debug build; run with --release for real numbers");
    }
    let wants = |s: Section| cli.only.is_empty() || cli.only.contains(&s);

    let machine = machine::Machine::detect(&ctx.workspace);
    let mut rep = report::Report::new(machine, ctx.quick);
    if wants(Section::Weave) {
        rep.weave = Some(weave::run(&ctx)?);
    }
    if wants(Section::Runtime) {
        let r = runtime::run(&ctx)?;
        if !ctx.quick {
            rep.runtime_profile = runtime::worst_fsm_miss(&r).and_then(|(i, name)| {
                eprintln!("runtime: profiling the inline {name} loop");
                profile::perf(
                    &ctx,
                    &[
                        "--work".into(),
                        "inline".into(),
                        "--scenario".into(),
                        i.to_string().into(),
                    ],
                    &format!("Profile of the inline-monitored `{name}` loop"),
                )
            });
        }
        rep.runtime = Some(r);
    }
    if wants(Section::Programs) {
        rep.programs = Some(programs::run(&ctx)?);
    }
    if wants(Section::Compile) {
        let c = compile::run(&ctx)?;
        if !ctx.quick && compile::misses_target(&c) {
            eprintln!("compile: profiling the 1,000-transition compile");
            rep.compile_profile = profile::perf(
                &ctx,
                &["--work".into(), "compile1000".into()],
                "Profile of compiling the 1,000-transition policy repeatedly",
            );
        }
        rep.compile = Some(c);
    }
    if wants(Section::Process) {
        rep.process = Some(process::run(&ctx));
    }
    if wants(Section::Components) {
        rep.components = Some(components::run(&ctx)?);
    }
    let text = rep.markdown();
    std::fs::write(&cli.out, &text).with_context(|| format!("writing {}", cli.out.display()))?;
    eprintln!("irm-bench: wrote {}", cli.out.display());
    Ok(())
}

fn default_corpus() -> PathBuf {
    let base = std::env::var_os("IRM_CORPUS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/irm-corpus")))
        .unwrap_or_else(|| PathBuf::from(".cache/irm-corpus"));
    base.join("wasm")
}
