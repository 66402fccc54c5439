//! Why a run did not finish normally, and how a wasmtime error becomes one of those reasons.
use instrumenter::WeaveError;
use thiserror::Error;
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::ViolationReport;

/// Exit code of `irm run` when a policy stopped the program.
pub const EXIT_VIOLATION: u8 = 86;
/// Exit code of `irm run` when the guest trapped.
pub const EXIT_TRAP: u8 = 134;

/// Why a run did not finish normally.
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
    /// The policies do not compile (rendered diagnostics).
    #[error("{0}")]
    Policy(String),
    #[error("cannot weave the policies into `{path}`: {source}")]
    Weave {
        path: String,
        source: Box<WeaveError>,
    },
    #[error("cannot compile `{path}`: {message}")]
    Compile { path: String, message: String },
    /// Bad runner configuration (a directory that does not exist, a missing export...).
    #[error("{0}")]
    Config(String),
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

#[derive(Debug)]
pub(crate) struct MissingExport(pub(crate) String);
impl std::fmt::Display for MissingExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the module exports no function `{}`", self.0)
    }
}
impl std::error::Error for MissingExport {}

#[derive(Debug)]
pub(crate) struct BadInvokeArg(pub(crate) String);
impl std::fmt::Display for BadInvokeArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInvokeArg {}

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
    if let Some(m) = e.downcast_ref::<MissingExport>() {
        return Some(RunError::Config(m.to_string()));
    }
    if let Some(m) = e.downcast_ref::<BadInvokeArg>() {
        return Some(RunError::Config(m.to_string()));
    }
    Some(RunError::Host(format!("{e:#}")))
}
