//! Runs WebAssembly modules (WASI preview 1) in wasmtime under irm policies and reports
//! violations as typed errors.
//!
//! A [`Runner`] is built once ([`Runner::builder`]): the policies, how they are enforced
//! ([`Enforcement`]), the WASI view of the world (preopened directories, environment,
//! arguments), the wasm stack, the compiled-module cache and any host functions the
//! embedder provides. Each [`Runner::run_file`] / [`Runner::run_bytes`] then loads a
//! module, weaves it in memory (inline enforcement), compiles it (through the cache),
//! links it and runs it, returning a [`Finished`] run or a [`RunError`]:
//!
//! * [`RunError::Violation`]: a policy stopped the program; the [`ViolationReport`] names
//!   the policy, the event with its arguments (strings as text), the reason and the last
//!   monitored calls;
//! * [`RunError::Exit`]: the guest called `proc_exit` with a non-zero code;
//! * [`RunError::Trap`]: the guest trapped for its own reasons (never a violation);
//! * [`RunError::Link`]: imports nobody provides, each with its type;
//! * [`RunError::Policy`]: the policies do not compile (their diagnostics);
//! * errors loading, weaving or compiling the module, calling its entry point
//!   ([`InvokeError`]), and one variant for each configuration the runner refuses.
//!
//! Compiled modules are cached on disk ([`cache`], keyed by the SHA-256 of the exact bytes
//! and the engine configuration), so a 99 MB module compiles once. The guest inherits the
//! process's stdio unless [`RunnerBuilder::stdout`] / [`RunnerBuilder::stderr`] give it
//! in-memory pipes. Audit records reach [`RunnerBuilder::on_audit`] as they happen, and
//! [`RunnerBuilder::record`] writes the run's monitored calls as an `irm test` trace.
//!
//! **Inline** enforcement weaves the policies into the module with host hooks
//! (`instrumenter::WeaveOptions { host_hooks: true, .. }`): the woven code decides, the
//! hooks only tell the runtime what happened so it can report it. **Host** enforcement
//! leaves the module untouched and decides every call of a monitored import in a host
//! function wrapped around the real one, with the reference interpreter
//! ([`policy_lang::interp::Monitor`]); it is the baseline for benchmarks and a
//! differential oracle for the weaver. A module woven beforehand (`irm weave`) needs no
//! policies at all: its own code enforces them, and the runtime reads its `irm:violation`
//! global and `irm.monitor` manifest to report a violation.
//!
//! ```no_run
//! use monitor_rt::{Enforcement, RunError, Runner};
//! use std::sync::atomic::{AtomicI32, Ordering};
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let open = Arc::new(AtomicI32::new(0));
//! let runner = Runner::builder()
//!     .policy_file("policies/max-windows.pol")
//!     .enforcement(Enforcement::Inline)
//!     .dir("examples/windows", "/data")
//!     .arg("windows")
//!     .host_functions(move |linker| {
//!         let open = Arc::clone(&open);
//!         linker.func_wrap("env", "open_window", move |_width: i32, _height: i32| -> i32 {
//!             open.fetch_add(1, Ordering::SeqCst) + 1
//!         })?;
//!         linker.func_wrap("env", "close_window", |_handle: i32| {})?;
//!         Ok(())
//!     })
//!     .build()?;
//! match runner.run_file("examples/windows/windows.wat") {
//!     Ok(done) => println!("finished; {} audit records", done.audits.len()),
//!     Err(RunError::Violation(v)) => eprintln!("{}", v.render(false)),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # Ok(())
//! # }
//! ```
mod builder;
pub mod cache;
mod component;
mod error;
mod hooks;
mod host;
pub mod judge;
mod link;
mod observe;
mod record;
mod runner;

pub use builder::{Enforcement, RunnerBuilder, DEFAULT_WASM_STACK};
pub use cache::CacheUse;
pub use error::{InvokeError, RunError, EXIT_TRAP, EXIT_VIOLATION};
pub use observe::{Arg, ArgValue, AuditRecord, AuditSink, CallRecord, ViolationReport, RECENT};
pub use policy_lang;
pub use runner::{Finished, Prepared, RunState, Runner};
pub use wasmtime;
pub use wasmtime_wasi;
/// An in-memory stdout/stderr for [`RunnerBuilder::stdout`] and [`RunnerBuilder::stderr`].
pub use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

// The judge's fake imports fill their results like the stubs do.
pub(crate) use link::fill_results;
