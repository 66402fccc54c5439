//! Host enforcement: the module is not changed; a host function wrapped around each
//! monitored import asks the reference interpreter ([`Monitor`]) before and after calling
//! the real one.
use std::sync::{Arc, Mutex, OnceLock};

use policy_lang::interp::{self, Monitor};
use policy_lang::ir::{Phase, Program};
use thiserror::Error;
use wasmtime::{Extern, ExternType, Func, Linker, Module, Store, Val};

use crate::link::{args_from_caller, val_i64};
use crate::observe::{self, lock};
use crate::{RunError, RunState};

/// Stops the guest from a host-enforced deny; the report is in the observer.
#[derive(Debug, Error)]
#[error("stopped by an irm policy")]
struct PolicyStop;

/// Host enforcement: replaces every import the program monitors by a function that asks
/// the interpreter before (and after) calling the real one.
///
/// WASI's functions find the guest's memory through the instance that calls them, and a
/// host function called from another host function has no calling instance. So the real
/// functions are called through a small *shim* module, instantiated right after the
/// guest, that imports them and the guest's memory and re-exports that memory as
/// `memory`: the wrapper calls the shim's trampoline, the trampoline calls the real
/// function, which sees the guest's memory.
pub(crate) fn wrap_imports(
    linker: &mut Linker<RunState>,
    store: &mut Store<RunState>,
    module: &Module,
    program: &Arc<Program>,
    obs: &Arc<Mutex<observe::Observer>>,
) -> Result<Option<HostShim>, RunError> {
    let monitor = Arc::new(Mutex::new(Monitor::from_arc(Arc::clone(program))));
    let slots: Arc<OnceLock<Vec<Func>>> = Arc::new(OnceLock::new());
    let mut reals: Vec<(Func, wasmtime::FuncType)> = Vec::new();
    for import in module.imports() {
        let Some(event) = program.event_for_import(import.module(), import.name()) else {
            continue;
        };
        let name = format!("{}.{}", import.module(), import.name());
        let ExternType::Func(ty) = import.ty() else {
            return Err(RunError::Link(vec![format!(
                "{name}: the policies monitor it as a function, but the module imports it as {:?}",
                import.ty()
            )]));
        };
        let e = &program.events[event as usize];
        let expected: Vec<String> = e
            .wasm_params()
            .iter()
            .map(|t| format!("{t:?}").to_lowercase())
            .collect();
        let got: Vec<String> = ty.params().map(|t| t.to_string()).collect();
        let expected_results: Vec<String> = e
            .results
            .iter()
            .map(|t| format!("{t:?}").to_lowercase())
            .collect();
        let got_results: Vec<String> = ty.results().map(|t| t.to_string()).collect();
        if expected != got || expected_results != got_results {
            return Err(RunError::Link(vec![format!(
                "{name}: imported as {ty}, but the policies monitor it as (params {}) (results {}); refusing to run it unmonitored",
                expected.join(" "),
                expected_results.join(" ")
            )]));
        }
        let Ok(Extern::Func(inner)) = linker.get(&mut *store, import.module(), import.name())
        else {
            // Nothing provides it: check_imports reports it.
            continue;
        };
        let slot = reals.len();
        reals.push((inner, ty.clone()));
        let (program, obs, monitor, slots) = (
            Arc::clone(program),
            Arc::clone(obs),
            Arc::clone(&monitor),
            Arc::clone(&slots),
        );
        let func = Func::new(
            &mut *store,
            ty.clone(),
            move |mut caller, params, results| {
                let wasm: Vec<i64> = params.iter().map(val_i64).collect();
                let args = args_from_caller(&mut caller, &program, event, &wasm);
                let step = monitor
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pre(event, &args);
                {
                    let mut o = lock(&obs);
                    o.begin(event, args.clone());
                    o.apply_step(&step, Phase::Pre);
                }
                match step.outcome {
                    interp::Outcome::Deny(_) => return Err(wasmtime::Error::new(PolicyStop)),
                    interp::Outcome::Suppress(v) => {
                        for (out, t) in results.iter_mut().zip(ty.results()) {
                            *out = match t {
                                wasmtime::ValType::I32 => Val::I32(v.unwrap_or(0) as i32),
                                wasmtime::ValType::I64 => Val::I64(v.unwrap_or(0)),
                                wasmtime::ValType::F32 => Val::F32(0),
                                wasmtime::ValType::F64 => Val::F64(0),
                                _ => {
                                    return Err(wasmtime::Error::msg(
                                        "cannot suppress a call returning a reference",
                                    ))
                                }
                            };
                        }
                        lock(&obs).finish();
                        return Ok(());
                    }
                    interp::Outcome::Proceed => {}
                }
                let Some(real) = slots.get().and_then(|v| v.get(slot)) else {
                    return Err(wasmtime::Error::msg(format!(
                    "{}.{} was called while the module was being instantiated (start function); host enforcement cannot forward such calls",
                    program.events[event as usize].module, program.events[event as usize].field
                )));
                };
                real.call(&mut caller, params, results)?;
                let result = observe::first_result(&program, event, results);
                let post = monitor
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .post(event, &args, result);
                let mut o = lock(&obs);
                o.returned(result);
                o.apply_step(&post, Phase::Post);
                if let interp::Outcome::Deny(_) = post.outcome {
                    return Err(wasmtime::Error::new(PolicyStop));
                }
                o.finish();
                Ok(())
            },
        );
        linker
            .define(&*store, import.module(), import.name(), func)
            .map_err(|error| RunError::WrapImport {
                import: name,
                error,
            })?;
    }
    if reals.is_empty() {
        return Ok(None);
    }
    let memory = match module.get_export("memory") {
        Some(ExternType::Memory(m)) => Some(m),
        _ => None,
    };
    let wasm = shim_module(&reals, memory.as_ref());
    let shim = Module::new(store.engine(), &wasm).map_err(RunError::Shim)?;
    Ok(Some(HostShim {
        module: shim,
        reals: reals.into_iter().map(|(f, _)| f).collect(),
        has_memory: memory.is_some(),
        slots,
    }))
}

/// The trampolines through which host enforcement calls the real imports.
pub(crate) struct HostShim {
    module: Module,
    reals: Vec<Func>,
    has_memory: bool,
    slots: Arc<OnceLock<Vec<Func>>>,
}

impl HostShim {
    /// Instantiates the shim against the guest's memory and arms the wrappers.
    pub(crate) fn connect(
        &self,
        store: &mut Store<RunState>,
        guest: &wasmtime::Instance,
    ) -> wasmtime::Result<()> {
        let mut imports: Vec<Extern> = self.reals.iter().map(|f| Extern::Func(*f)).collect();
        if self.has_memory {
            let m = guest
                .get_export(&mut *store, "memory")
                .ok_or_else(|| wasmtime::Error::msg("the module lost its memory export"))?;
            imports.push(m);
        }
        let instance = wasmtime::Instance::new(&mut *store, &self.module, &imports)?;
        let funcs = (0..self.reals.len())
            .map(|i| {
                instance
                    .get_func(&mut *store, &format!("f{i}"))
                    .ok_or_else(|| wasmtime::Error::msg("the shim lacks a trampoline"))
            })
            .collect::<wasmtime::Result<Vec<_>>>()?;
        let _ = self.slots.set(funcs);
        Ok(())
    }
}

fn enc_val(t: &wasmtime::ValType) -> wasm_encoder::ValType {
    match t {
        wasmtime::ValType::I64 => wasm_encoder::ValType::I64,
        wasmtime::ValType::F32 => wasm_encoder::ValType::F32,
        wasmtime::ValType::F64 => wasm_encoder::ValType::F64,
        _ => wasm_encoder::ValType::I32,
    }
}

/// `(import "real" "i" (func ...))` for every real import, `(import "guest" "memory")`
/// re-exported as `memory`, and `(export "fi")` trampolines that forward their arguments.
fn shim_module(
    reals: &[(Func, wasmtime::FuncType)],
    memory: Option<&wasmtime::MemoryType>,
) -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
        ImportSection, TypeSection,
    };
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    let mut funcs = FunctionSection::new();
    let mut exports = ExportSection::new();
    let mut code = CodeSection::new();
    let n = reals.len() as u32;
    for (i, (_, ty)) in reals.iter().enumerate() {
        types.ty().function(
            ty.params().map(|t| enc_val(&t)),
            ty.results().map(|t| enc_val(&t)),
        );
        imports.import("real", &i.to_string(), EntityType::Function(i as u32));
    }
    if let Some(m) = memory {
        imports.import(
            "guest",
            "memory",
            EntityType::Memory(wasm_encoder::MemoryType {
                minimum: 0,
                maximum: if m.is_shared() { m.maximum() } else { None },
                memory64: m.is_64(),
                shared: m.is_shared(),
                page_size_log2: (m.page_size_log2() != 16).then_some(m.page_size_log2() as u32),
            }),
        );
        exports.export("memory", ExportKind::Memory, 0);
    }
    for (i, (_, ty)) in reals.iter().enumerate() {
        funcs.function(i as u32);
        exports.export(&format!("f{i}"), ExportKind::Func, n + i as u32);
        let mut body = Function::new([]);
        {
            let mut sink = body.instructions();
            for p in 0..ty.params().len() as u32 {
                sink.local_get(p);
            }
            sink.call(i as u32);
            sink.end();
        }
        code.function(&body);
    }
    let mut module = wasm_encoder::Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&funcs)
        .section(&exports)
        .section(&code);
    module.finish()
}
