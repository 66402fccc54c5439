//! `irm run`: run a WASI preview 1 module in wasmtime, under policies when given.
//!
//! Exit codes: the guest's own, 86 when a policy stopped it, 134 when it trapped, 1 for
//! errors of irm itself (unreadable module, policies that do not compile, link errors).
use anyhow::{Context, Result};
use clap::ValueEnum;
use monitor_rt::{Enforcement, RunError, Runner};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(clap::Args)]
pub struct Args {
    /// Policy files to enforce (composed: a call must satisfy every one).
    #[arg(long = "policy", value_name = "P.pol")]
    pub policies: Vec<PathBuf>,
    /// Where the policies are enforced: woven into the module (inline) or in host
    /// functions around its imports (host; the module is not changed).
    #[arg(long, value_enum, default_value_t = Mode::Inline)]
    pub enforce: Mode,
    /// Preopen a host directory, as HOST or HOST::GUEST.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub dirs: Vec<String>,
    /// Set an environment variable of the guest.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Call this export (after `_initialize`) instead of `_start`; ARGS become its
    /// parameters and the guest's argv.
    #[arg(long, value_name = "FUNC")]
    pub invoke: Option<String>,
    /// Provide function import MODULE.FIELD as a stub that returns VALUE (default 0),
    /// e.g. `--stub host.call=-1`.
    #[arg(long = "stub", value_name = "MODULE.FIELD[=VALUE]")]
    pub stubs: Vec<String>,
    /// Maximum wasm stack in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = monitor_rt::DEFAULT_WASM_STACK)]
    pub wasm_stack: usize,
    /// Do not use the compiled-module cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Write audit events as JSON lines to FILE instead of printing them.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Write the monitored calls of the run to FILE as an `irm test` trace (whatever the
    /// outcome). `irm test` reads NAME.traces next to NAME.pol: save it next to the first
    /// policy; the others are named in `with` lines.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Show the Wasm backtrace of a violation or trap.
    #[arg(short, long)]
    pub verbose: bool,
    /// The module (.wasm or .wat).
    #[arg(value_name = "MODULE")]
    pub module: PathBuf,
    /// Arguments of the guest (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Inline,
    Host,
}

fn parse_dir(spec: &str) -> (PathBuf, String) {
    match spec.split_once("::") {
        Some((host, guest)) => (PathBuf::from(host), guest.to_string()),
        None => (PathBuf::from(spec), spec.to_string()),
    }
}

pub fn run(args: Args) -> Result<u8> {
    let mut b = Runner::builder()
        .enforcement(match args.enforce {
            Mode::Inline => Enforcement::Inline,
            Mode::Host => Enforcement::Host,
        })
        .wasm_stack(args.wasm_stack);
    for p in &args.policies {
        b = b.policy_file(p);
    }
    for d in &args.dirs {
        let (host, guest) = parse_dir(d);
        b = b.dir(host, guest);
    }
    for e in &args.env {
        let (k, v) = e
            .split_once('=')
            .with_context(|| format!("--env {e}: expected K=V"))?;
        b = b.env(k, v);
    }
    for st in &args.stubs {
        let (import, value) = match st.split_once('=') {
            Some((i, v)) => {
                let v: i64 = v
                    .trim()
                    .parse()
                    .with_context(|| format!("--stub {st}: `{v}` is not an integer"))?;
                (i, v)
            }
            None => (st.as_str(), 0),
        };
        let (m, f) = import
            .split_once('.')
            .with_context(|| format!("--stub {st}: expected MODULE.FIELD[=VALUE]"))?;
        b = b.stub(m, f, value);
    }
    let name = args.module.display().to_string();
    b = b.arg(name.clone()).args(args.args.iter().cloned());
    if let Some(f) = &args.invoke {
        b = b.invoke(f);
    }
    if args.no_cache {
        b = b.cache_dir(None);
    }
    if let Some(r) = &args.record {
        b = b.record(r);
    }
    let log_error: Arc<Mutex<Option<String>>> = Arc::default();
    match &args.audit_log {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create the audit log `{}`", path.display()))?;
            let file = Mutex::new(std::io::BufWriter::new(file));
            let shown = path.display().to_string();
            let log_error = Arc::clone(&log_error);
            b = b.on_audit(move |rec| {
                let line = serde_json::to_string(rec).unwrap_or_default();
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = writeln!(f, "{line}").and_then(|_| f.flush()) {
                    let mut slot = log_error.lock().unwrap_or_else(|p| p.into_inner());
                    slot.get_or_insert_with(|| {
                        format!("cannot write the audit log `{shown}`: {e}")
                    });
                }
            });
        }
        None => {
            b = b.on_audit(|rec| eprintln!("irm: audit: {rec}"));
        }
    }
    let runner = match b.build() {
        Ok(r) => r,
        Err(e) => return report(e, args.verbose),
    };
    let prepared = match runner.prepare_file(&args.module) {
        Ok(p) => p,
        Err(e) => return report(e, args.verbose),
    };
    if let Some(w) = &prepared.cache_warning {
        eprintln!("irm: warning: {w}");
    }
    let outcome = runner.run_prepared(&prepared);
    if let Some(e) = log_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        eprintln!("irm: error: {e}");
        if outcome.is_ok() {
            return Ok(1);
        }
    }
    match outcome {
        Ok(done) => {
            for r in &done.results {
                println!("{r}");
            }
            Ok(0)
        }
        Err(e) => report(e, args.verbose),
    }
}

fn report(e: RunError, verbose: bool) -> Result<u8> {
    match &e {
        RunError::Exit(_) => {}
        RunError::Violation(v) => eprintln!("{}", v.render(verbose)),
        RunError::Trap { message, backtrace } => {
            eprintln!("irm: the program trapped (not a policy violation): {message}");
            match (backtrace, verbose) {
                (Some(b), true) => eprintln!("wasm backtrace:\n{b}"),
                (_, false) => eprintln!("(run with -v for the wasm backtrace)"),
                _ => {}
            }
        }
        RunError::Policy(diagnostics) => {
            eprintln!("{diagnostics}");
            eprintln!("irm: the policies do not compile");
        }
        other => eprintln!("irm: error: {other}"),
    }
    Ok(e.exit_code())
}
