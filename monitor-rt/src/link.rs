//! What the guest is linked against: WASI preview 1, the embedder's host functions and the
//! stubs, checked against the module's imports; and the conversions host functions share
//! between wasm values and the policies' arguments.
use policy_lang::interp::Value;
use policy_lang::ir::Program;
use policy_lang::wasi::{self, Role};
use wasmtime::{Caller, Engine, Extern, ExternType, Linker, Module, Store, Val};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::observe;
use crate::{RunError, RunState, RunnerBuilder};

/// The WASI preview 1 context of one run of module `name` (argv\[0\] when no arguments
/// were given).
pub(crate) fn wasi(cfg: &RunnerBuilder, name: &str) -> Result<WasiP1Ctx, RunError> {
    Ok(wasi_builder(cfg, name)?.build_p1())
}

/// The WASI configuration of one run of `name`, for either preview.
pub(crate) fn wasi_builder(cfg: &RunnerBuilder, name: &str) -> Result<WasiCtxBuilder, RunError> {
    let mut b = WasiCtxBuilder::new();
    if cfg.network {
        b.inherit_network();
        b.allow_ip_name_lookup(true);
        b.allow_tcp(true);
        b.allow_udp(true);
    }
    b.inherit_stdio();
    if let Some(p) = &cfg.stdout {
        b.stdout(p.clone());
    }
    if let Some(p) = &cfg.stderr {
        b.stderr(p.clone());
    }
    let mut argv = Vec::with_capacity(cfg.args.len() + 1);
    if cfg.args.is_empty() {
        argv.push(name.to_string());
    }
    argv.extend(cfg.args.iter().cloned());
    b.args(&argv);
    for (k, v) in &cfg.env {
        b.env(k, v);
    }
    for d in &cfg.dirs {
        let perms = if d.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        b.preopened_dir(&d.host, &d.guest, perms)
            .map_err(|error| RunError::Preopen {
                host: d.host.clone(),
                guest: d.guest.clone(),
                error,
            })?;
    }
    Ok(b)
}

/// A linker with WASI (preview 1, and preview 0 as the wasmtime CLI links it), then the
/// embedder's host functions, then the stubs `module` imports; each may replace what the
/// one before defined.
pub(crate) fn linker(
    engine: &Engine,
    cfg: &RunnerBuilder,
    module: &Module,
) -> Result<Linker<RunState>, RunError> {
    let mut linker: Linker<RunState> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut RunState| &mut s.wasi)
        .map_err(RunError::Wasi)?;
    wasmtime_wasi::p0::add_to_linker_sync(&mut linker, |s: &mut RunState| &mut s.wasi)
        .map_err(RunError::Wasi)?;
    // Embedders may replace WASI functions (stubs in tests, sandboxed variants).
    linker.allow_shadowing(true);
    for f in &cfg.host_fns {
        f(&mut linker).map_err(RunError::HostFunctions)?;
    }
    // Again: the host functions may have turned it off, and stubs replace them too.
    linker.allow_shadowing(true);
    for import in module.imports() {
        let Some(&(_, _, value)) = cfg
            .stubs
            .iter()
            .find(|(m, f, _)| m == import.module() && f == import.name())
        else {
            continue;
        };
        let ExternType::Func(ty) = import.ty() else {
            return Err(RunError::StubNotAFunction {
                module: import.module().to_string(),
                field: import.name().to_string(),
                ty: Box::new(import.ty()),
            });
        };
        let results: Vec<wasmtime::ValType> = ty.results().collect();
        linker
            .func_new(import.module(), import.name(), ty, move |_, _, out| {
                fill_results(out, &results, value)
            })
            .map_err(RunError::DefineStub)?;
    }
    Ok(linker)
}

/// Every import must be provided with the right type; lists all that are not.
pub(crate) fn check_imports(
    linker: &Linker<RunState>,
    store: &mut Store<RunState>,
    module: &Module,
) -> Result<(), RunError> {
    let mut missing = Vec::new();
    for import in module.imports() {
        let found = linker.get(&mut *store, import.module(), import.name()).ok();
        let describe = |t: &ExternType| match t {
            ExternType::Func(f) => format!("function {f}"),
            ExternType::Memory(m) => format!("memory {m:?}"),
            ExternType::Table(t) => format!("table {t:?}"),
            ExternType::Global(g) => format!("global {g:?}"),
            ExternType::Tag(t) => format!("tag {t:?}"),
        };
        match found {
            None => missing.push(format!(
                "  {}.{}: {} — provided neither by WASI (preview 1 or 0) nor by the host",
                import.module(),
                import.name(),
                describe(&import.ty())
            )),
            Some(Extern::Func(f)) => {
                if let ExternType::Func(want) = import.ty() {
                    let have = f.ty(&*store);
                    if !wasmtime::FuncType::eq(&have, &want) {
                        missing.push(format!(
                            "  {}.{}: imported as {want}, but the host provides {have}",
                            import.module(),
                            import.name()
                        ));
                    }
                }
            }
            Some(_) => {}
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(RunError::Link(missing))
    }
}

/// Fills a host function's results: `first` in the first, 0 in the others (numbers only;
/// the stubs and the judge's fake imports never return references).
pub(crate) fn fill_results(
    out: &mut [Val],
    types: &[wasmtime::ValType],
    first: i64,
) -> wasmtime::Result<()> {
    for (i, (slot, t)) in out.iter_mut().zip(types).enumerate() {
        let v = if i == 0 { first } else { 0 };
        *slot = match t {
            wasmtime::ValType::I32 => Val::I32(v as i32),
            wasmtime::ValType::I64 => Val::I64(v),
            wasmtime::ValType::F32 => Val::F32((v as f32).to_bits()),
            wasmtime::ValType::F64 => Val::F64((v as f64).to_bits()),
            _ => return Err(wasmtime::Error::msg("a stub cannot return a reference")),
        };
    }
    Ok(())
}

/// Reads the memory the WASI host reads (the one exported as `memory`) and decodes the
/// arguments, out-pointers outside it or misaligned marked as the monitor sees them
/// (`preview0`: the import is spelled `wasi_unstable`, whose structures may be smaller).
pub(crate) fn args_from_caller(
    caller: &mut Caller<'_, RunState>,
    program: &Program,
    event: u32,
    preview0: bool,
    wasm: &[i64],
) -> Vec<Value> {
    let memory = match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    };
    let data = memory.map(|m| m.data(&*caller));
    let mut args = observe::decode_args(program, event, wasm, data);
    mark_bad_out_pointers(
        program,
        event,
        preview0,
        &mut args,
        data.map_or(0, <[u8]>::len),
    );
    args
}

/// Marks every out-pointer argument the catalogue knows that lies outside memory (of
/// `memory_size` bytes) or is misaligned as [`Value::BadPointer`], as the woven monitor
/// checks them before the call.
fn mark_bad_out_pointers(
    program: &Program,
    event: u32,
    preview0: bool,
    args: &mut [Value],
    memory_size: usize,
) {
    let e = &program.events[event as usize];
    for (p, v) in e.params.iter().zip(args.iter_mut()) {
        let Some(Role::Out {
            size,
            align,
            size_p0,
        }) = wasi::event_role(&e.module, &e.field, &p.name)
        else {
            continue;
        };
        let Value::Int(ptr) = *v else { continue };
        let size = if preview0 { size_p0 } else { size } as u64;
        let at = ptr as u32 as u64;
        if !at.is_multiple_of(align as u64) || at + size > memory_size as u64 {
            *v = Value::BadPointer(ptr);
        }
    }
}

pub(crate) fn val_i64(v: &Val) -> i64 {
    match v {
        Val::I32(x) => *x as i64,
        Val::I64(x) => *x,
        Val::F32(x) => *x as i64,
        Val::F64(x) => *x as i64,
        _ => 0,
    }
}
