//! `irm weave`: harden a module with policies and write the result.
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use instrumenter::{weave, WeaveOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::input::{compile_policies, read_module, RequiredPolicyArgs};
use crate::failure::usage_error;
use crate::ui::Ui;

/// Several policies are composed: a call is allowed only if every policy allows it.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policy: RequiredPolicyArgs,
    /// The module to harden (`.wasm`, or `.wat` text).
    pub input: PathBuf,
    /// Where to write the hardened module: default NAME.hardened.wasm next to the input;
    /// `-` writes to standard output (refused when it is a terminal).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
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
    /// Certify the output with `irm check` before writing it; an output that does not
    /// certify is not written.
    #[arg(long)]
    pub check: bool,
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

/// Where the hardened module goes.
enum Output {
    /// A file the user named with `-o`.
    Named(PathBuf),
    /// `NAME.hardened.wasm` next to the input: irm chose the name, so it always says it.
    Beside(PathBuf),
    /// `-o -`.
    Stdout,
}

impl Output {
    fn of(args: &Args) -> Output {
        match &args.output {
            Some(p) if p.as_os_str() == "-" => Output::Stdout,
            Some(p) => Output::Named(p.clone()),
            None => Output::Beside(hardened_name(&args.input)),
        }
    }
}

/// `dir/app.wasm` (or `dir/app.wat`) becomes `dir/app.hardened.wasm`.
fn hardened_name(input: &Path) -> PathBuf {
    let stem = input.file_stem().unwrap_or(input.as_os_str());
    let mut name = stem.to_os_string();
    name.push(".hardened.wasm");
    input.with_file_name(name)
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let output = Output::of(&args);
    if let Output::Stdout = output {
        if args.report.is_some() {
            return Err(usage_error(
                "weave",
                "`--report` prints on standard output, where `-o -` writes the module; write the module to a file",
            ));
        }
        // Checked before the work, like `wasm-tools` does before writing binary output.
        if std::io::stdout().is_terminal() {
            bail!(
                "refusing to write a binary module to a terminal; redirect standard output or write to a file with `-o FILE`"
            );
        }
    }
    let compiled = compile_policies(&args.policy.files, ui)?;
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
    drop(input);
    if args.check {
        if let Err(findings) =
            super::check::certify(&woven.wasm, &args.policy.files, &compiled.program)
        {
            eprint!("{}", super::check::render_findings(&args.input, &findings));
            bail!("the woven module does not certify; nothing was written (please report this irm bug)");
        }
    }
    let written = match &output {
        Output::Named(path) | Output::Beside(path) => {
            write_replacing(path, &woven.wasm)?;
            path.display().to_string()
        }
        Output::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(&woven.wasm)
                .and_then(|_| out.flush())
                .context("cannot write the module to standard output")?;
            "the module to standard output".to_string()
        }
    };
    let wrote = format!(
        "wrote {written} ({} bytes, {:+} bytes)",
        woven.report.output_size,
        woven.report.output_size as i64 - woven.report.input_size as i64
    );
    match args.report {
        Some(Report::Json) => println!("{}", serde_json::to_string_pretty(&woven.report)?),
        Some(Report::Text) => print!("{}", woven.report.summary()),
        None if !args.quiet => eprint!("{}", woven.report.summary()),
        None => {}
    }
    let say_where = match output {
        Output::Beside(_) => !args.quiet,
        Output::Named(_) | Output::Stdout => !args.quiet && args.report.is_none(),
    };
    if say_where {
        eprintln!("{wrote}");
    }
    Ok(())
}

/// Writes `bytes` to a temporary file in `path`'s folder and moves it to `path`, so a
/// failed or interrupted weave never leaves a partial (and possibly unmonitored-looking)
/// file under the output's name: `path` names the old file or the complete new one, never
/// anything in between.
///
/// The file is written with one `write` and not synced to disk: the output can be made
/// again, and waiting for the disk would cost more than the weave (a crash of the machine
/// right after can lose it, never truncate it in place). For the same reason an existing
/// regular file is replaced by exchanging the two names ([`replace_existing`]) rather
/// than renaming over it: ext4 (with its default `auto_da_alloc`) starts writing a file
/// renamed over another to disk in the `rename` call itself, which on CPython's 99 MB
/// cost more than the write.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".irm-").suffix(".wasm.tmp");
    // Like any new file (the umask applies), not tempfile's owner-only default.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in `{}`", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    let tmp = tmp.into_temp_path();
    let tmp = match replace_existing(&tmp, path) {
        // `tmp` now names the old file, which dropping it removes.
        Ok(()) => return Ok(()),
        Err(()) => tmp,
    };
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// Atomically exchanges the names `new` and `path` when `path` is an existing regular
/// file and the file system can (Linux `renameat2` with `RENAME_EXCHANGE`); `Err` when
/// not, and nothing changed: then a plain rename is the way.
#[cfg(target_os = "linux")]
fn replace_existing(new: &Path, path: &Path) -> Result<(), ()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file()) {
        return Err(());
    }
    renameat_with(CWD, new, CWD, path, RenameFlags::EXCHANGE).map_err(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn replace_existing(_new: &Path, _path: &Path) -> Result<(), ()> {
    Err(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_output_is_named_after_the_input_in_its_folder() {
        assert_eq!(
            hardened_name(Path::new("dir/app.wasm")),
            PathBuf::from("dir/app.hardened.wasm")
        );
        assert_eq!(
            hardened_name(Path::new("app.wat")),
            PathBuf::from("app.hardened.wasm")
        );
        assert_eq!(
            hardened_name(Path::new("bin/app")),
            PathBuf::from("bin/app.hardened.wasm")
        );
    }
}
