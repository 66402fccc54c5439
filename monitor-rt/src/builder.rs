//! [`RunnerBuilder`]: everything a [`Runner`] is configured with, and its defaults.
use std::path::PathBuf;
use std::sync::Arc;

use policy_lang::ir::Program;
use wasmtime::{Config, Engine, Linker};

use crate::{cache, AuditRecord, AuditSink, MemoryOutputPipe, RunError, RunState, Runner};

/// The default maximum wasm stack (8 MiB; big programs such as CPython need it).
pub const DEFAULT_WASM_STACK: usize = 8 << 20;

/// Where the policies are enforced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Enforcement {
    /// Woven into the module (with host hooks for reporting).
    #[default]
    Inline,
    /// In host functions wrapped around the module's imports; the module is not changed.
    Host,
}

/// A host directory the guest sees as `guest`.
#[derive(Clone, Debug)]
pub(crate) struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

type HostFns = Arc<dyn Fn(&mut Linker<RunState>) -> anyhow::Result<()> + Send + Sync>;

/// Configures a [`Runner`]. [`Runner::builder`] starts from these defaults, which the
/// methods below change:
///
/// * no policies: the module runs unmonitored, unless `irm weave` wove it beforehand;
/// * [`Enforcement::Inline`];
/// * no preopened directories, no environment variables, no arguments (argv is then the
///   module's name alone);
/// * the guest inherits the process's stdin, stdout and stderr;
/// * `_start` as the entry point;
/// * WASI preview 1 only: no host functions, no stubs;
/// * audit records collected in [`Finished::audits`](crate::Finished::audits) only, and
///   no recorded trace;
/// * a wasm stack of [`DEFAULT_WASM_STACK`] bytes;
/// * compiled modules cached in [`cache::default_dir`]: `$XDG_CACHE_HOME/irm`, else
///   `~/.cache/irm` (no cache when neither variable is set).
#[derive(Clone)]
pub struct RunnerBuilder {
    pub(crate) policy_files: Vec<PathBuf>,
    pub(crate) program: Option<Program>,
    pub(crate) enforcement: Enforcement,
    pub(crate) dirs: Vec<Preopen>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) args: Vec<String>,
    pub(crate) wasm_stack: usize,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) invoke: Option<String>,
    pub(crate) host_fns: Vec<HostFns>,
    pub(crate) audit_sink: Option<AuditSink>,
    pub(crate) record: Option<PathBuf>,
    pub(crate) stdout: Option<MemoryOutputPipe>,
    pub(crate) stderr: Option<MemoryOutputPipe>,
    pub(crate) certified_only: bool,
    pub(crate) stubs: Vec<(String, String, i64)>,
    pub(crate) network: bool,
}

impl Default for RunnerBuilder {
    fn default() -> Self {
        RunnerBuilder {
            policy_files: Vec::new(),
            program: None,
            enforcement: Enforcement::Inline,
            dirs: Vec::new(),
            env: Vec::new(),
            args: Vec::new(),
            wasm_stack: DEFAULT_WASM_STACK,
            cache_dir: cache::default_dir(),
            invoke: None,
            host_fns: Vec::new(),
            audit_sink: None,
            record: None,
            stdout: None,
            stderr: None,
            certified_only: false,
            stubs: Vec::new(),
            network: false,
        }
    }
}

impl RunnerBuilder {
    /// Adds a policy file; all policies are composed (a call must satisfy every one).
    pub fn policy_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.policy_files.push(path.into());
        self
    }

    /// Uses an already compiled program (instead of, or before, policy files).
    pub fn program(mut self, program: Program) -> Self {
        self.program = Some(program);
        self
    }

    /// Where the policies are enforced.
    pub fn enforcement(mut self, e: Enforcement) -> Self {
        self.enforcement = e;
        self
    }

    /// Preopens host directory `host` as `guest` (read and write). Preopens are
    /// descriptors 3, 4, ... in the order they are added.
    pub fn dir(mut self, host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        self.dirs.push(Preopen {
            host: host.into(),
            guest: guest.into(),
            read_only: false,
        });
        self
    }

    /// Preopens host directory `host` as `guest` for reading only: the host refuses every
    /// change under it (wasmtime-wasi's read-only directory and file permissions), whatever
    /// the policies say.
    pub fn dir_read_only(mut self, host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        self.dirs.push(Preopen {
            host: host.into(),
            guest: guest.into(),
            read_only: true,
        });
        self
    }

    /// The guest names of the preopens, in descriptor order (3, 4, ...).
    pub(crate) fn preopen_names(&self) -> Vec<Vec<u8>> {
        self.dirs
            .iter()
            .map(|d| d.guest.as_bytes().to_vec())
            .collect()
    }

    /// Sets an environment variable of the guest.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Appends one argument to the guest's argv (the first is the program name).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments to the guest's argv.
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The maximum wasm stack in bytes.
    pub fn wasm_stack(mut self, bytes: usize) -> Self {
        self.wasm_stack = bytes;
        self
    }

    /// Caches compiled modules in `dir`; `None` disables the cache.
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// Calls this export (after `_initialize`, when the module has one) instead of
    /// `_start`: for reactors and libraries.
    pub fn invoke(mut self, func: impl Into<String>) -> Self {
        self.invoke = Some(func.into());
        self
    }

    /// Adds host functions to the linker of every run, after WASI; they may replace WASI
    /// functions (stubs, sandboxed variants). Host enforcement wraps them like WASI's
    /// when a policy monitors them; inline enforcement monitors the module's calls to them.
    pub fn host_functions(
        mut self,
        f: impl Fn(&mut Linker<RunState>) -> anyhow::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.host_fns.push(Arc::new(f));
        self
    }

    /// Receives every audit record as it happens.
    pub fn on_audit(mut self, f: impl Fn(&AuditRecord) + Send + Sync + 'static) -> Self {
        self.audit_sink = Some(Arc::new(f));
        self
    }

    /// Writes the monitored calls of each run to `path` as an `irm test` trace, whatever
    /// the run's outcome.
    pub fn record(mut self, path: impl Into<PathBuf>) -> Self {
        self.record = Some(path.into());
        self
    }

    /// Provides function import `module.field`, whatever its type, as a function that
    /// does nothing and returns `value` as its first result (0 for the others); e.g.
    /// CPython's `host.call` with -1. Stubs replace WASI and host functions of the same name.
    pub fn stub(mut self, module: impl Into<String>, field: impl Into<String>, value: i64) -> Self {
        self.stubs.push((module.into(), field.into(), value));
        self
    }

    /// Sends the guest's stdout into `pipe` (a clone shares the buffer; read it with
    /// `contents()` after the run) instead of inheriting the process's.
    pub fn stdout(mut self, pipe: MemoryOutputPipe) -> Self {
        self.stdout = Some(pipe);
        self
    }

    /// Sends the guest's stderr into `pipe` instead of inheriting the process's.
    pub fn stderr(mut self, pipe: MemoryOutputPipe) -> Self {
        self.stderr = Some(pipe);
        self
    }

    /// Compiles the policies and sets up the engine.
    /// Runs only modules that `certifier` certifies against the program, as they are,
    /// instead of weaving the program into them: for a host that receives modules
    /// hardened elsewhere and must not trust whoever wove them. A module that does not
    /// certify is refused with [`RunError::NotCertified`] before it is compiled.
    /// Requires a program and inline enforcement.
    pub fn certified_only(mut self, yes: bool) -> Self {
        self.certified_only = yes;
        self
    }

    /// Lets the guest open sockets to any address and resolve names, as the wasmtime
    /// CLI's `-S inherit-network` does (WASI 0.2 sockets; preview 1 has no `connect`).
    /// Off by default: every address is refused.
    pub fn inherit_network(mut self, yes: bool) -> Self {
        self.network = yes;
        self
    }

    pub fn build(self) -> Result<Runner, RunError> {
        let program = match (&self.program, self.policy_files.is_empty()) {
            (Some(_), false) => return Err(RunError::ProgramAndPolicyFiles),
            (program, true) => program.clone(),
            (None, false) => Some(
                policy_lang::compile_files(&self.policy_files)
                    .map_err(RunError::Policy)?
                    .program,
            ),
        };
        if self.enforcement == Enforcement::Host && program.is_none() {
            return Err(RunError::HostWithoutPolicies);
        }
        if self.certified_only && (program.is_none() || self.enforcement == Enforcement::Host) {
            return Err(RunError::CertifiedOnlyNeedsInlinePolicies);
        }
        if let Some(Preopen { host, guest, .. }) = self.dirs.iter().find(|d| !d.host.is_dir()) {
            return Err(RunError::NotADirectory {
                host: host.clone(),
                guest: guest.clone(),
            });
        }
        let mut config = Config::new();
        config.max_wasm_stack(self.wasm_stack);
        // wasmtime requires the async stack to be larger, even for sync calls.
        config.async_stack_size(self.wasm_stack.saturating_add(2 << 20));
        let engine = Engine::new(&config).map_err(RunError::Engine)?;
        Ok(Runner {
            cfg: self,
            program: program.map(Arc::new),
            engine,
        })
    }
}
