//! Why a run did not finish normally, and how a wasmtime error becomes one of those reasons.
use std::path::PathBuf;

use instrumenter::WeaveError;
use policy_lang::Diagnostics;
use thiserror::Error;
use wasmtime::{ExternType, Trap, ValType, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::ViolationReport;

/// Exit code of `irm run` when a policy stopped the program.
pub const EXIT_VIOLATION: u8 = 86;
/// Exit code of `irm run` when the guest trapped.
pub const EXIT_TRAP: u8 = 134;

/// Why a run did not finish normally. The errors of wasmtime, WASI and the file system
/// are kept as they are and shown in the message, so printing a `RunError` (as `irm run`
/// does) shows all there is to know.
#[derive(Debug, Error)]
pub enum RunError {
    /// A policy stopped the program.
    #[error("{}", .0.render(false))]
    Violation(Box<ViolationReport>),
    /// The guest exited with a non-zero code (`proc_exit`).
    #[error("the program exited with code {0}")]
    Exit(i32),
    /// The guest trapped (not a policy violation).
    #[error("the program trapped: {message}{}", backtrace_suffix(.backtrace))]
    Trap {
        message: String,
        backtrace: Option<String>,
    },
    /// A host function failed (not a trap of the guest, not a violation).
    #[error("a host function failed: {0}")]
    Host(String),
    /// Imports that neither WASI nor the embedder provides, or that have the wrong type.
    #[error("the module cannot be linked:\n{}", .0.join("\n"))]
    Link(Vec<String>),
    /// The module could not be read or parsed.
    #[error("cannot load `{path}`: {message}")]
    Load { path: String, message: String },
    /// The policies do not compile; the diagnostics render with their sources.
    #[error(transparent)]
    Policy(Diagnostics),
    #[error("cannot weave the policies into `{path}`: {source}")]
    Weave {
        path: String,
        source: Box<WeaveError>,
    },
    #[error("cannot compile `{path}`: {message}")]
    Compile { path: String, message: String },
    /// With [`RunnerBuilder::certified_only`](crate::RunnerBuilder::certified_only): the
    /// module does not certify against the program; the first reason comes first.
    #[error("`{path}` does not certify against the policies: {}", .findings.join("; "))]
    NotCertified { path: String, findings: Vec<String> },
    /// [`RunnerBuilder::certified_only`](crate::RunnerBuilder::certified_only) without a
    /// program, or with host enforcement.
    #[error("running certified modules only needs policies, enforced inline")]
    CertifiedOnlyNeedsInlinePolicies,
    /// The entry point could not be called as asked.
    #[error(transparent)]
    Invoke(InvokeError),

    /// A component was asked to run in a way only core modules support.
    #[error("{what} is not supported for components (WASI 0.2) yet; {instead}")]
    ComponentUnsupported {
        what: &'static str,
        instead: &'static str,
    },
    /// Both [`RunnerBuilder::program`](crate::RunnerBuilder::program) and
    /// [`RunnerBuilder::policy_file`](crate::RunnerBuilder::policy_file) were given.
    #[error("give either a compiled program or policy files, not both")]
    ProgramAndPolicyFiles,
    /// [`Enforcement::Host`](crate::Enforcement::Host) without a policy to enforce.
    #[error("host enforcement needs at least one policy")]
    HostWithoutPolicies,
    /// A directory to preopen ([`RunnerBuilder::dir`](crate::RunnerBuilder::dir)) is
    /// not one.
    #[error("--dir {}::{guest}: `{}` is not a directory", host.display(), host.display())]
    NotADirectory { host: PathBuf, guest: String },
    /// A stub ([`RunnerBuilder::stub`](crate::RunnerBuilder::stub)) for an import that is
    /// not a function.
    #[error("--stub {module}.{field}: the module imports it as {ty:?}, not as a function")]
    StubNotAFunction {
        module: String,
        field: String,
        ty: Box<ExternType>,
    },
    /// wasmtime refuses the engine configuration (the wasm stack).
    #[error("cannot configure wasmtime: {0}")]
    Engine(wasmtime::Error),
    /// The thread the guest runs on cannot be started (its native stack is too large).
    #[error("cannot start the guest thread: {0}")]
    GuestThread(std::io::Error),
    /// A directory to preopen cannot be opened.
    #[error("cannot preopen `{}` as `{guest}`: {error}", host.display())]
    Preopen {
        host: PathBuf,
        guest: String,
        error: wasmtime::Error,
    },
    /// WASI preview 1 cannot be added to the linker.
    #[error("cannot add WASI: {0}")]
    Wasi(wasmtime::Error),
    /// The embedder's [`RunnerBuilder::host_functions`](crate::RunnerBuilder::host_functions)
    /// failed.
    #[error("cannot define the host functions: {0:#}")]
    HostFunctions(anyhow::Error),
    #[error("cannot define the stub: {0}")]
    DefineStub(wasmtime::Error),
    #[error("cannot define hook {module}.{field}: {error}")]
    DefineHook {
        module: String,
        field: String,
        error: wasmtime::Error,
    },
    /// Host enforcement cannot put its wrapper in place of a monitored import.
    #[error("cannot wrap {import}: {error}")]
    WrapImport {
        import: String,
        error: wasmtime::Error,
    },
    /// Host enforcement's trampoline module does not compile.
    #[error("cannot compile the host-enforcement shim: {0:#}")]
    Shim(wasmtime::Error),
    /// The trace asked for by [`RunnerBuilder::record`](crate::RunnerBuilder::record)
    /// cannot be written.
    #[error("cannot write the recorded trace `{}`: {error}", path.display())]
    WriteRecord {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Why the entry point (`_start`, or the export given to
/// [`RunnerBuilder::invoke`](crate::RunnerBuilder::invoke)) cannot be called.
#[derive(Clone, Debug, Error)]
pub enum InvokeError {
    #[error("the module exports no function `{0}`")]
    MissingExport(String),
    /// An argument that does not parse as the parameter's type.
    #[error("invoke argument `{arg}` is not {expected}")]
    BadArg { arg: String, expected: &'static str },
    /// A parameter of a type no text can stand for (a reference).
    #[error("cannot pass a {0} from the command line")]
    Unrepresentable(ValType),
}

fn backtrace_suffix(b: &Option<String>) -> String {
    match b {
        Some(b) => format!("\nwasm backtrace:\n{b}"),
        None => String::new(),
    }
}

impl RunError {
    /// The process exit code `irm run` uses for this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Violation(_) => EXIT_VIOLATION,
            RunError::Trap { .. } => EXIT_TRAP,
            RunError::Exit(code) => *code as u8,
            _ => 1,
        }
    }
}

/// The frames of a backtrace, one per line, without wasmtime's heading.
pub(crate) fn backtrace_text(b: &WasmBacktrace) -> String {
    let text = b.to_string();
    let frames: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("error while executing"))
        .map(str::trim)
        .collect();
    frames.join("\n")
}

/// Turns a wasmtime error into what it is; `None` for `proc_exit(0)`.
pub(crate) fn classify(e: wasmtime::Error) -> Option<RunError> {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return (exit.0 != 0).then_some(RunError::Exit(exit.0));
    }
    let backtrace = e.downcast_ref::<WasmBacktrace>().map(backtrace_text);
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return Some(RunError::Trap {
            message: trap.to_string(),
            backtrace,
        });
    }
    if let Some(i) = e.downcast_ref::<InvokeError>() {
        return Some(RunError::Invoke(i.clone()));
    }
    Some(RunError::Host(format!("{e:#}")))
}
