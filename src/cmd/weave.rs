//! `irm weave`: harden a module with policies and write the result.
use anyhow::{Context, Result};
use clap::ValueEnum;
use instrumenter::{weave, WeaveOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::input::{compile_policies, read_module};

#[derive(clap::Args)]
pub struct Args {
    /// Policy file; repeat to enforce several (a call is allowed only if all allow it).
    #[arg(long = "policy", short = 'p', value_name = "FILE", required = true)]
    pub policies: Vec<PathBuf>,
    /// The module to harden (`.wasm`, or `.wat` text).
    pub input: PathBuf,
    /// Where to write the hardened module.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Print the weave report as JSON on stdout instead of the summary on stderr.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub report: Option<Report>,
    /// Import `irm` hook functions so a host sees every monitored call (what `irm run`
    /// does internally; the output then needs those imports).
    #[arg(long)]
    pub host_hooks: bool,
    /// Threads that validate function bodies (0: one per core). The output is the same
    /// for any number.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Print nothing on success.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Report {
    /// The full report (per policy: wrapped imports, redirected references, elided events).
    Json,
    /// The human summary (the default, on stderr).
    Text,
}

pub fn run(args: Args) -> Result<u8> {
    let compiled = match compile_policies(&args.policies) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let input = read_module(&args.input)?;
    let woven = weave(
        &input,
        &compiled.program,
        &WeaveOptions {
            host_hooks: args.host_hooks,
            threads: args.threads,
        },
    )
    .with_context(|| format!("cannot weave `{}`", args.input.display()))?;
    write_atomically(&args.output, &woven.wasm)?;
    match args.report {
        Some(Report::Json) => println!("{}", serde_json::to_string_pretty(&woven.report)?),
        Some(Report::Text) => print!("{}", woven.report.summary()),
        None if !args.quiet => {
            eprint!("{}", woven.report.summary());
            eprintln!(
                "wrote {} ({} bytes, {:+} bytes)",
                args.output.display(),
                woven.report.output_size,
                woven.report.output_size as i64 - woven.report.input_size as i64
            );
        }
        None => {}
    }
    Ok(0)
}

/// Writes through a temporary file in the same folder and renames it, so a failed or
/// interrupted weave never leaves a partial (and possibly unmonitored-looking) output.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in `{}`", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}
