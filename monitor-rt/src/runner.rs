//! [`Runner`]: loads a module, weaves it (inline enforcement), compiles it, links it and
//! runs it on a thread of its own, and turns what happened into a [`Finished`] run or a
//! [`RunError`].
use std::path::Path;
use std::sync::{Arc, Mutex};

use instrumenter::manifest::{self, Manifest};
use instrumenter::WeaveOptions;
use policy_lang::ir::Program;
use wasmtime::{Engine, Linker, Module, Store, Val, WasmBacktrace};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::error::{backtrace_text, classify};
use crate::hooks::{define_hooks, violation_from_manifest};
use crate::host::{wrap_imports, HostShim};
use crate::link::{self, check_imports};
use crate::observe::{self, lock};
use crate::{
    cache, record, AuditRecord, CacheUse, Enforcement, InvokeError, RunError, RunnerBuilder,
    ViolationReport,
};

/// Runs modules under a fixed configuration; see the [crate documentation](crate).
pub struct Runner {
    pub(crate) cfg: RunnerBuilder,
    pub(crate) program: Option<Arc<Program>>,
    pub(crate) engine: Engine,
}

/// A module or component ready to run: woven (inline enforcement) and compiled.
pub struct Prepared {
    code: Code,
    manifest: Option<Manifest>,
    name: String,
    /// What the compiled-module cache did.
    pub cache: CacheUse,
    /// A warning about the cache (it could not be written), never fatal.
    pub cache_warning: Option<String>,
}

/// A run that ended normally (the entry point returned, or `proc_exit(0)`).
#[derive(Clone, Debug)]
pub struct Finished {
    /// Every audit record, in order.
    pub audits: Vec<AuditRecord>,
    /// The results of the `--invoke`d function, rendered.
    pub results: Vec<String>,
    /// What the compiled-module cache did.
    pub cache: CacheUse,
}

/// The data of a run's store: the WASI context. Host functions receive it through their
/// `Caller`.
pub struct RunState {
    pub(crate) wasi: WasiP1Ctx,
}

impl RunState {
    /// The WASI preview 1 context of the run.
    pub fn wasi(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }
}

/// What was compiled.
enum Code {
    Module(Module),
    Component(wasmtime::component::Component),
}

impl Runner {
    pub fn builder() -> RunnerBuilder {
        RunnerBuilder::default()
    }

    /// The compiled policies, if any.
    pub fn program(&self) -> Option<&Program> {
        self.program.as_deref()
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads a `.wasm` or `.wat` file and runs it.
    pub fn run_file(&self, path: impl AsRef<Path>) -> Result<Finished, RunError> {
        let prepared = self.prepare_file(path)?;
        self.run_prepared(&prepared)
    }

    /// Runs module bytes (binary or text); `name` is used in messages and as argv\[0\]
    /// when no arguments were given.
    pub fn run_bytes(&self, wasm: &[u8], name: &str) -> Result<Finished, RunError> {
        let prepared = self.prepare(wasm, name)?;
        self.run_prepared(&prepared)
    }

    /// Reads, weaves and compiles a module file.
    pub fn prepare_file(&self, path: impl AsRef<Path>) -> Result<Prepared, RunError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| RunError::Load {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        self.prepare(&bytes, &shown)
    }

    /// Weaves (inline enforcement) and compiles module bytes (binary or text).
    pub fn prepare(&self, wasm: &[u8], name: &str) -> Result<Prepared, RunError> {
        let binary = wat::parse_bytes(wasm).map_err(|e| RunError::Load {
            path: name.to_string(),
            message: e.to_string(),
        })?;
        if instrumenter::component::is_component(&binary) {
            return self.prepare_component(&binary, name);
        }
        let woven;
        let bytes: &[u8] = match (&self.program, self.cfg.enforcement) {
            (Some(program), Enforcement::Inline) if self.cfg.certified_only => {
                certifier::certify(&binary, program, &[]).map_err(|findings| {
                    RunError::NotCertified {
                        path: name.to_string(),
                        findings: findings.iter().map(|f| f.to_string()).collect(),
                    }
                })?;
                &binary
            }
            (Some(program), Enforcement::Inline) => {
                woven = instrumenter::weave(
                    &binary,
                    program,
                    &WeaveOptions {
                        host_hooks: true,
                        ..WeaveOptions::default()
                    },
                )
                .map_err(|source| RunError::Weave {
                    path: name.to_string(),
                    source: Box::new(source),
                })?;
                &woven.wasm
            }
            _ => &binary,
        };
        let manifest = manifest::read(bytes).map_err(|source| RunError::Weave {
            path: name.to_string(),
            source: Box::new(source),
        })?;
        let (module, cache, cache_warning) =
            cache::compile(&self.engine, bytes, self.cfg.cache_dir.as_deref()).map_err(|e| {
                RunError::Compile {
                    path: name.to_string(),
                    message: format!("{e:#}"),
                }
            })?;
        Ok(Prepared {
            code: Code::Module(module),
            manifest,
            name: name.to_string(),
            cache,
            cache_warning,
        })
    }

    /// Weaves (inline enforcement, with host hooks) and compiles a component. Compiled
    /// components are not cached.
    fn prepare_component(&self, binary: &[u8], name: &str) -> Result<Prepared, RunError> {
        crate::component::check_config(&self.cfg)?;
        let weave_error = |source| RunError::Weave {
            path: name.to_string(),
            source: Box::new(source),
        };
        let woven = match (&self.program, self.cfg.enforcement) {
            (Some(program), Enforcement::Inline) => Some(
                instrumenter::weave(
                    binary,
                    program,
                    &WeaveOptions {
                        host_hooks: true,
                        ..WeaveOptions::default()
                    },
                )
                .map_err(weave_error)?,
            ),
            _ => None,
        };
        let bytes = woven.as_ref().map_or(binary, |w| &w.wasm[..]);
        let manifest = manifest::read(bytes).map_err(weave_error)?;
        let component = wasmtime::component::Component::new(&self.engine, bytes).map_err(|e| {
            RunError::Compile {
                path: name.to_string(),
                message: format!("{e:#}"),
            }
        })?;
        Ok(Prepared {
            code: Code::Component(component),
            manifest,
            name: name.to_string(),
            cache: CacheUse::Disabled,
            cache_warning: None,
        })
    }

    /// Runs a prepared module on a thread with enough native stack for the wasm stack.
    pub fn run_prepared(&self, prepared: &Prepared) -> Result<Finished, RunError> {
        let stack = self.cfg.wasm_stack.saturating_add(16 << 20);
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("irm-guest".into())
                .stack_size(stack)
                .spawn_scoped(s, || self.run_here(prepared))
                .map_err(RunError::GuestThread)?
                .join()
                .unwrap_or_else(|_| Err(RunError::Host("the runtime panicked".into())))
        })
    }

    fn run_here(&self, prepared: &Prepared) -> Result<Finished, RunError> {
        let module = match &prepared.code {
            Code::Module(m) => m,
            Code::Component(c) => {
                return crate::component::run(
                    self,
                    c,
                    prepared.manifest.as_ref(),
                    &prepared.name,
                    prepared.cache,
                )
            }
        };
        let wasi = link::wasi(&self.cfg, &prepared.name)?;
        let mut store = Store::new(&self.engine, RunState { wasi });
        let mut linker = link::linker(&self.engine, &self.cfg, module)?;

        // The program whose events the runtime observes: the host-enforced one, else the
        // one a woven module carries.
        let observed: Option<Arc<Program>> =
            match (self.cfg.enforcement, &self.program, &prepared.manifest) {
                (Enforcement::Host, Some(p), _) => Some(Arc::clone(p)),
                (_, _, Some(m)) => Some(Arc::new(m.program.clone())),
                _ => None,
            };
        let observer = observed.as_ref().map(|p| {
            Arc::new(Mutex::new(observe::Observer::new(
                Arc::clone(p),
                self.cfg.audit_sink.clone(),
                self.cfg.record.is_some(),
            )))
        });
        if let (Some(m), Some(obs)) = (&prepared.manifest, &observer) {
            if let Some(hooks) = &m.hooks {
                define_hooks(&mut linker, &mut store, module, m, hooks, obs)?;
            }
        }
        let mut shim = None;
        if let (Enforcement::Host, Some(program), Some(obs)) =
            (self.cfg.enforcement, &self.program, &observer)
        {
            shim = wrap_imports(&mut linker, &mut store, module, program, obs)?;
        }
        check_imports(&linker, &mut store, module)?;

        let outcome = self.instantiate_and_call(&linker, &mut store, module, shim.as_ref());
        let (results, err, instance) = match outcome {
            Ok((results, instance)) => (results, None, instance),
            Err((e, instance)) => (Vec::new(), Some(e), instance),
        };

        let mut guard = observer.as_ref().map(|o| lock(o));
        if let Some(o) = &mut guard {
            o.finish();
        }
        // A woven module without hooks: the violation global and the manifest.
        let mut violation = guard.as_mut().and_then(|o| o.violation.take());
        if violation.is_none() && err.is_some() {
            if let (Some(m), Some(instance)) = (&prepared.manifest, instance) {
                let code = instance
                    .get_global(&mut store, manifest::VIOLATION_GLOBAL)
                    .and_then(|g| g.get(&mut store).i32())
                    .unwrap_or(0) as u32;
                if code != 0 {
                    violation = Some(violation_from_manifest(m, code, guard.as_deref()));
                }
            }
        }
        if let Some(v) = &mut violation {
            if let Some(bt) = err.as_ref().and_then(|e| e.downcast_ref::<WasmBacktrace>()) {
                v.backtrace = Some(backtrace_text(bt));
            }
        }
        if let (Some(path), Some(o)) = (&self.cfg.record, guard.as_deref()) {
            self.write_record(path, &prepared.name, o, violation.as_ref())?;
        }
        let audits = guard
            .map(|mut o| std::mem::take(&mut o.audits))
            .unwrap_or_default();
        if let Some(v) = violation {
            return Err(RunError::Violation(Box::new(v)));
        }
        match err {
            None => Ok(Finished {
                audits,
                results,
                cache: prepared.cache,
            }),
            Some(e) => match classify(e) {
                None => Ok(Finished {
                    audits,
                    results,
                    cache: prepared.cache,
                }),
                Some(e) => Err(e),
            },
        }
    }

    #[allow(clippy::type_complexity)]
    fn instantiate_and_call(
        &self,
        linker: &Linker<RunState>,
        store: &mut Store<RunState>,
        module: &Module,
        shim: Option<&HostShim>,
    ) -> Result<
        (Vec<String>, Option<wasmtime::Instance>),
        (wasmtime::Error, Option<wasmtime::Instance>),
    > {
        let instance = linker
            .instantiate(&mut *store, module)
            .map_err(|e| (e, None))?;
        if let Some(shim) = shim {
            shim.connect(store, &instance)
                .map_err(|e| (e, Some(instance)))?;
        }
        let call = |store: &mut Store<RunState>,
                    name: &str,
                    args: &[String]|
         -> wasmtime::Result<Vec<String>> {
            let func = instance.get_func(&mut *store, name).ok_or_else(|| {
                wasmtime::Error::new(InvokeError::MissingExport(name.to_string()))
            })?;
            let ty = func.ty(&*store);
            let params: Vec<Val> = ty
                .params()
                .zip(args.iter().chain(std::iter::repeat(&String::new())))
                .map(|(t, a)| parse_val(&t, a))
                .collect::<Result<_, _>>()?;
            let mut results = vec![Val::I32(0); ty.results().len()];
            func.call(&mut *store, &params, &mut results)?;
            Ok(results.iter().map(show_val).collect())
        };
        let r = match &self.cfg.invoke {
            Some(name) => {
                let init = if instance.get_func(&mut *store, "_initialize").is_some() {
                    call(store, "_initialize", &[])
                } else {
                    Ok(Vec::new())
                };
                init.and_then(|_| {
                    let args: Vec<String> = self.cfg.args.iter().skip(1).cloned().collect();
                    call(store, name, &args)
                })
            }
            None => call(store, "_start", &[]).map(|_| Vec::new()),
        };
        r.map(|v| (v, Some(instance)))
            .map_err(|e| (e, Some(instance)))
    }

    pub(crate) fn write_record(
        &self,
        path: &Path,
        name: &str,
        obs: &observe::Observer,
        violation: Option<&ViolationReport>,
    ) -> Result<(), RunError> {
        let steps = obs.recorded.as_deref().unwrap_or(&[]);
        let deny = violation.map(|v| {
            (
                v.recent.last().map_or(steps.len(), |c| c.call),
                v.policy.as_str(),
                v.reason.as_str(),
            )
        });
        let with: Vec<String> = self
            .cfg
            .policy_files
            .iter()
            .skip(1)
            .map(|p| {
                std::path::absolute(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string()
            })
            .collect();
        let text = record::render(
            &obs.program,
            steps,
            &record::Ending { deny },
            name,
            &with,
            &policy_lang::interp::World {
                preopens: self.cfg.preopen_names(),
            },
        );
        std::fs::write(path, text).map_err(|error| RunError::WriteRecord {
            path: path.to_path_buf(),
            error,
        })
    }
}

fn parse_val(t: &wasmtime::ValType, a: &str) -> Result<Val, InvokeError> {
    let a = a.trim();
    let bad = |expected| InvokeError::BadArg {
        arg: a.to_string(),
        expected,
    };
    let a0 = if a.is_empty() { "0" } else { a };
    Ok(match t {
        wasmtime::ValType::I32 => Val::I32(
            a0.parse::<i32>()
                .or_else(|_| a0.parse::<u32>().map(|v| v as i32))
                .map_err(|_| bad("an i32"))?,
        ),
        wasmtime::ValType::I64 => Val::I64(
            a0.parse::<i64>()
                .or_else(|_| a0.parse::<u64>().map(|v| v as i64))
                .map_err(|_| bad("an i64"))?,
        ),
        wasmtime::ValType::F32 => Val::F32(a0.parse::<f32>().map_err(|_| bad("an f32"))?.to_bits()),
        wasmtime::ValType::F64 => Val::F64(a0.parse::<f64>().map_err(|_| bad("an f64"))?.to_bits()),
        other => return Err(InvokeError::Unrepresentable(other.clone())),
    })
}

fn show_val(v: &Val) -> String {
    match v {
        Val::I32(x) => x.to_string(),
        Val::I64(x) => x.to_string(),
        Val::F32(x) => f32::from_bits(*x).to_string(),
        Val::F64(x) => f64::from_bits(*x).to_string(),
        other => format!("{other:?}"),
    }
}
