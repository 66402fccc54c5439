//! `irm run`: run a WASI preview 1 (or preview 0) module, or a WASI 0.2 component, in
//! wasmtime, under policies when given.
//!
//! Exit codes (decided in [`crate::failure`]): the guest's own, 86 when a policy stopped
//! it, 134 when it trapped, 1 for errors of irm itself (unreadable module, policies that
//! do not compile, link errors), 2 for malformed options.
use anyhow::{Context, Result};
use clap::ValueEnum;
use monitor_rt::{Enforcement, Runner};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::input::{compile_policies, read_module, PolicyArgs};
use crate::failure::RunFailed;
use crate::ui::Ui;

/// Several policies are composed: a call must satisfy every one.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Where the policies are enforced: woven into the module (inline) or in host
    /// functions around its imports (host; the module is not changed).
    #[arg(long, value_enum, default_value_t = Mode::Inline)]
    pub enforce: Mode,
    /// Preopen a host directory, as HOST or HOST::GUEST (descriptors 3, 4, ... in
    /// order); `:ro` at the end makes it read-only: the host refuses every change under it.
    #[arg(long = "dir", value_name = "HOST[::GUEST][:ro]", value_parser = parse_dir)]
    pub dirs: Vec<Preopen>,
    /// Set an environment variable of the guest.
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Call this export (after `_initialize`) instead of `_start`; ARGS become its
    /// parameters and the guest's argv.
    #[arg(long, value_name = "FUNC")]
    pub invoke: Option<String>,
    /// Provide function import MODULE.FIELD as a stub that returns VALUE (default 0),
    /// e.g. `--stub host.call=-1`.
    #[arg(long = "stub", value_name = "MODULE.FIELD[=VALUE]", value_parser = parse_stub)]
    pub stubs: Vec<Stub>,
    /// Let the guest open sockets to any address and resolve names (WASI 0.2 sockets),
    /// like wasmtime's `-S inherit-network`; without it every address is refused.
    #[arg(long)]
    pub inherit_network: bool,
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
    /// The module or component (.wasm or .wat).
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

/// `--dir HOST[::GUEST][:ro]`: a host directory, the path the guest sees it under, and
/// whether the guest may only read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// `--stub MODULE.FIELD[=VALUE]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stub {
    pub module: String,
    pub field: String,
    pub value: i64,
}

fn parse_dir(spec: &str) -> Result<Preopen, String> {
    let (spec, read_only) = match spec.strip_suffix(":ro") {
        Some(rest) => (rest, true),
        None => (spec, false),
    };
    let (host, guest) = spec.split_once("::").unwrap_or((spec, spec));
    if host.is_empty() {
        return Err("no host directory (expected HOST or HOST::GUEST)".into());
    }
    if guest.is_empty() {
        return Err("no guest path after `::` (expected HOST::GUEST)".into());
    }
    Ok(Preopen {
        host: PathBuf::from(host),
        guest: guest.to_string(),
        read_only,
    })
}

fn parse_env(spec: &str) -> Result<(String, String), String> {
    match spec.split_once('=') {
        Some(("", _)) => Err("no variable name before `=` (expected K=V)".into()),
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => Err("expected K=V".into()),
    }
}

fn parse_stub(spec: &str) -> Result<Stub, String> {
    let (import, value) = match spec.split_once('=') {
        Some((import, v)) => {
            let v = v
                .trim()
                .parse()
                .map_err(|_| format!("`{v}` is not an integer"))?;
            (import, v)
        }
        None => (spec, 0),
    };
    match import.split_once('.') {
        Some((module, field)) if !module.is_empty() && !field.is_empty() => Ok(Stub {
            module: module.to_string(),
            field: field.to_string(),
            value,
        }),
        _ => Err("expected MODULE.FIELD[=VALUE]".into()),
    }
}

pub fn run(args: Args, ui: &Ui) -> Result<()> {
    let failed = |error| RunFailed {
        error,
        verbose: args.verbose,
    };
    let mut b = Runner::builder()
        .enforcement(match args.enforce {
            Mode::Inline => Enforcement::Inline,
            Mode::Host => Enforcement::Host,
        })
        .wasm_stack(args.wasm_stack)
        .inherit_network(args.inherit_network);
    if !args.policy.files.is_empty() {
        b = b.program(compile_policies(&args.policy.files, ui)?.program);
    }
    for d in &args.dirs {
        b = if d.read_only {
            b.dir_read_only(&d.host, &d.guest)
        } else {
            b.dir(&d.host, &d.guest)
        };
    }
    for (k, v) in &args.env {
        b = b.env(k, v);
    }
    for s in &args.stubs {
        b = b.stub(&s.module, &s.field, s.value);
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
    let module = read_module(&args.module)?;
    // A module hardened elsewhere is not woven again: it runs only if it certifies.
    let pre_woven = matches!(instrumenter::manifest::read(&module), Ok(Some(_)));
    if pre_woven && !args.policy.files.is_empty() && matches!(args.enforce, Mode::Inline) {
        b = b.certified_only(true);
    }
    let runner = b.build().map_err(failed)?;
    let prepared = runner.prepare(&module, &name).map_err(failed)?;
    drop(module);
    if let Some(w) = &prepared.cache_warning {
        eprintln!("irm: warning: {w}");
    }
    let outcome = runner.run_prepared(&prepared);
    let log_error = log_error.lock().unwrap_or_else(|p| p.into_inner()).take();
    match (outcome, log_error) {
        (Ok(done), None) => {
            for r in &done.results {
                println!("{r}");
            }
            Ok(())
        }
        (Ok(_), Some(log)) => Err(anyhow::anyhow!(log)),
        (Err(e), log) => {
            // The run's own outcome decides the exit code; a broken audit log is said too.
            if let Some(log) = log {
                eprintln!("{} {log}", ui.error_prefix());
            }
            Err(failed(e).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_is_host_or_host_and_guest() {
        assert_eq!(
            parse_dir("data::/data"),
            Ok(Preopen {
                host: "data".into(),
                guest: "/data".into(),
                read_only: false,
            })
        );
        assert_eq!(
            parse_dir("/tmp"),
            Ok(Preopen {
                host: "/tmp".into(),
                guest: "/tmp".into(),
                read_only: false,
            })
        );
    }

    #[test]
    fn a_dir_ending_in_ro_is_read_only() {
        assert_eq!(
            parse_dir("data::/data:ro"),
            Ok(Preopen {
                host: "data".into(),
                guest: "/data".into(),
                read_only: true,
            })
        );
        assert_eq!(
            parse_dir("/etc:ro").map(|d| d.guest),
            Ok("/etc".to_string())
        );
    }

    #[test]
    fn a_dir_without_a_host_or_guest_is_malformed() {
        assert!(parse_dir("").is_err());
        assert!(parse_dir("::/data").is_err());
        assert!(parse_dir("data::").is_err());
    }

    #[test]
    fn an_env_needs_a_name_and_an_equals_sign() {
        assert_eq!(parse_env("K=a=b"), Ok(("K".into(), "a=b".into())));
        assert_eq!(parse_env("K="), Ok(("K".into(), String::new())));
        assert!(parse_env("K").is_err());
        assert!(parse_env("=v").is_err());
    }

    #[test]
    fn a_stub_names_module_and_field_and_may_give_a_value() {
        assert_eq!(
            parse_stub("host.call=-1"),
            Ok(Stub {
                module: "host".into(),
                field: "call".into(),
                value: -1
            })
        );
        assert_eq!(parse_stub("env.f").map(|s| s.value), Ok(0));
        assert!(parse_stub("call").is_err());
        assert!(parse_stub(".call").is_err());
        assert!(parse_stub("host.call=x").is_err());
    }
}
