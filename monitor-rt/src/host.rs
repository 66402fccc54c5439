//! Host enforcement: the module is not changed; a host function wrapped around each
//! monitored import asks the reference interpreter ([`Monitor`]) before and after calling
//! the real one.
use std::sync::{Arc, Mutex, OnceLock};

use policy_lang::descriptors::{Descriptors, Effect, Initial, Opened};
use policy_lang::interp::{self, Monitor, Value};
use policy_lang::ir::{Phase, Program};
use policy_lang::wasi;
use thiserror::Error;
use wasmtime::{AsContextMut, Caller, Extern, ExternType, Func, Linker, Module, Store, Val};

use crate::link::{args_from_caller, val_i64};
use crate::observe::{self, lock};
use crate::{RunError, RunState};

/// Stops the guest from a host-enforced deny; the report is in the observer.
#[derive(Debug, Error)]
#[error("stopped by an irm policy")]
pub(crate) struct PolicyStop;

/// The pre phase of a host-enforced call, for modules and components alike: the monitor
/// decides, the observer begins the call and records the decision. Returns the step and
/// the audits to deliver once the call returns (as the woven monitor delivers them).
pub(crate) fn decide_pre(
    monitor: &Mutex<Monitor>,
    obs: &Mutex<observe::Observer>,
    event: policy_lang::ir::EventId,
    args: &[Value],
) -> (interp::Step, Vec<interp::Report>) {
    let mut step = lock(monitor).pre(event, args);
    let pre_audits = match step.outcome {
        interp::Outcome::Proceed => std::mem::take(&mut step.audits),
        _ => Vec::new(),
    };
    let mut o = lock(obs);
    o.begin(event, args.to_vec());
    o.apply_step(&step, Phase::Pre);
    (step, pre_audits)
}

/// The end of a host-enforced call that went ahead: the observer records its result (and,
/// for a component call answering behind `retptr`, the first handle it handed out), the
/// pre-phase audits and the post phase; a post-phase deny stops the guest.
pub(crate) fn conclude(
    obs: &Mutex<observe::Observer>,
    result: Option<i64>,
    opened: Option<Option<u32>>,
    pre_audits: Vec<interp::Report>,
    post: &interp::Step,
) -> wasmtime::Result<()> {
    let mut o = lock(obs);
    o.returned(result);
    if let Some(handle) = opened {
        o.opened(handle);
    }
    for a in pre_audits {
        o.audit(a.policy, Phase::Pre, a.reason);
    }
    o.apply_step(post, Phase::Post);
    if let interp::Outcome::Deny(_) = post.outcome {
        return Err(wasmtime::Error::new(PolicyStop));
    }
    o.finish();
    Ok(())
}

/// Host enforcement: replaces every import the program monitors (in either WASI
/// spelling) by a function that asks the interpreter before (and after) calling the real
/// one.
///
/// WASI's functions find the guest's memory through the instance that calls them, and a
/// host function called from another host function has no calling instance. So the real
/// functions are called through a small *shim* module, instantiated right after the
/// guest, that imports them and the guest's memory and re-exports that memory as
/// `memory`: the wrapper calls the shim's trampoline, the trampoline calls the real
/// function, which sees the guest's memory. The monitor learns the descriptors the same
/// way the woven monitor does, from the host itself: a second small module, the
/// *scanner*, with a memory of its own, calls the real `fd_fdstat_get`,
/// `fd_prestat_get` and `fd_prestat_dir_name` for it, at start and after each open.
pub(crate) fn wrap_imports(
    linker: &mut Linker<RunState>,
    store: &mut Store<RunState>,
    module: &Module,
    program: &Arc<Program>,
    obs: &Arc<Mutex<observe::Observer>>,
) -> Result<Option<HostShim>, RunError> {
    // The module is judged as it sees the policies, as its woven twin would be.
    let view = program.restricted_to_imports(module.imports().map(|i| (i.module(), i.name())));
    let program = &Arc::new(view);
    let monitor = Arc::new(Mutex::new(Monitor::from_arc(Arc::clone(program))));
    let slots: Arc<OnceLock<Vec<Func>>> = Arc::new(OnceLock::new());
    let scanner: Arc<OnceLock<Scanner>> = Arc::new(OnceLock::new());
    let mut reals: Vec<(Func, wasmtime::FuncType)> = Vec::new();
    for import in module.imports() {
        let name = format!("{}.{}", import.module(), import.name());
        let (event, preview0) = match program.event_for_spelling(import.module(), import.name())
        {
            Ok(Some(x)) => x,
            Ok(None) => continue,
            Err(()) => {
                return Err(RunError::Link(vec![format!(
                    "{name}: WASI preview 0 has no such function (it was added in preview 1); refusing to run it unmonitored"
                )]))
            }
        };
        let ExternType::Func(ty) = import.ty() else {
            return Err(RunError::Link(vec![format!(
                "{name}: the policies monitor it as a function, but the module imports it as {:?}",
                import.ty()
            )]));
        };
        let e = &program.events[event as usize];
        if preview0 {
            if let Some(why) = preview0_conflict(program, event) {
                return Err(RunError::Link(vec![format!("{name}: {why}")]));
            }
        }
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
        let (effect, grants) = (
            program.descriptor_effect(event),
            program.stream_grants(event),
        );
        let (program, obs, monitor, slots, scanner) = (
            Arc::clone(program),
            Arc::clone(obs),
            Arc::clone(&monitor),
            Arc::clone(&slots),
            Arc::clone(&scanner),
        );
        let func = Func::new(
            &mut *store,
            ty.clone(),
            move |mut caller, params, results| {
                let wasm: Vec<i64> = params.iter().map(val_i64).collect();
                let args = args_from_caller(&mut caller, &program, event, preview0, &wasm);
                let (step, pre_audits) = decide_pre(&monitor, &obs, event, &args);
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
                // A trap here leaves the monitor busy: every later monitored call is
                // denied, as in the woven monitor.
                real.call(&mut caller, params, results)?;
                let result = observe::first_result(&program, event, results);
                let hands = Hands {
                    event: &program.events[event as usize],
                    effect,
                    grants,
                };
                let opened = match result {
                    Some(0) => opened_by(&mut caller, &hands, &args, scanner.get())?,
                    _ => None,
                };
                let component = descriptors_handed(&mut caller, &hands, &args);
                let post = match (component, streams_handed(&mut caller, &hands, &args)) {
                    (Some(Handed::Directories(d)), _) => {
                        lock(&monitor).post_directories(event, &args, &d)
                    }
                    (Some(Handed::Opened(o)), _) => {
                        lock(&monitor).post_opened(event, &args, result, o)
                    }
                    (None, Some(handed)) => {
                        lock(&monitor).post_streams(event, &args, result, handed.as_deref())
                    }
                    (None, None) => lock(&monitor).post_opened(event, &args, result, opened),
                };
                conclude(&obs, result, None, pre_audits, &post)
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
    // The scanner's functions; a program that tracks descriptors cannot do without them.
    let mut scan_funcs = Vec::new();
    for f in policy_lang::fake_host::SCAN_FUNCTIONS {
        match linker.get(&mut *store, wasi::MODULE, f) {
            Ok(Extern::Func(func)) => scan_funcs.push(func),
            _ if program.tracks() => {
                return Err(RunError::Link(vec![format!(
                    "{}.{f}: the policies track descriptors, which needs the host's {f}, but nothing provides it",
                    wasi::MODULE
                )]))
            }
            _ => break,
        }
    }
    let scanner_module = if program.tracks() {
        Some(Module::new(store.engine(), scanner_module()).map_err(RunError::Shim)?)
    } else {
        None
    };
    Ok(Some(HostShim {
        module: shim,
        reals: reals.into_iter().map(|(f, _)| f).collect(),
        has_memory: memory.is_some(),
        slots,
        monitor,
        program: Arc::clone(program),
        scanner,
        scanner_module,
        scan_funcs,
    }))
}

/// Why a guard on `event` would not mean what it says when the module spells it the WASI
/// preview 0 way, if it would not (the weaver refuses the same modules).
fn preview0_conflict(program: &Program, event: u32) -> Option<String> {
    let ev = &program.events[event as usize];
    for p in &program.policies {
        for t in p.transitions.iter().filter(|t| t.event == event) {
            let mut bad = None;
            for e in t.exprs() {
                e.visit(&mut |x| {
                    if let policy_lang::ir::Expr::Param(id) = x {
                        let name = &ev.params[*id as usize].name;
                        if let Some(why) = wasi::preview0_meaning_differs(&ev.field, name) {
                            bad.get_or_insert((name.clone(), why));
                        }
                    }
                });
            }
            if let Some((param, why)) = bad {
                return Some(format!(
                    "policy `{}` reads `{param}` (transition at {}): {why}",
                    p.name, t.origin
                ));
            }
        }
    }
    None
}

/// The guest's memory as the WASI host reads it: its export `memory`.
fn guest_memory(caller: &mut Caller<'_, RunState>) -> Option<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Some(m),
        _ => None,
    }
}

/// What a call of one event hands out, decided once per import (each asks whether the
/// program tracks, which walks every transition).
struct Hands<'p> {
    event: &'p policy_lang::ir::Event,
    effect: Option<Effect>,
    grants: &'static [policy_lang::handles::Grant],
}

/// The pointer argument `name` of a call, if the event has it.
fn pointer_arg(event: &policy_lang::ir::Event, args: &[Value], name: &str) -> Option<u32> {
    match event
        .params
        .iter()
        .position(|p| p.name == name)
        .and_then(|i| args.get(i))
        .cloned()
    {
        Some(Value::Int(ptr)) => Some(ptr as u32),
        _ => None,
    }
}

/// `len` bytes of the guest's memory at `at`, when they are in it.
fn guest_bytes(caller: &mut Caller<'_, RunState>, at: u32, len: u32) -> Option<Vec<u8>> {
    let memory = guest_memory(caller)?;
    let mut b = vec![0u8; len as usize];
    memory.read(&*caller, at as usize, &mut b).ok().map(|_| b)
}

/// The little-endian `u32` of the guest's memory at `at`.
fn guest_u32(caller: &mut Caller<'_, RunState>, at: u32) -> Option<u32> {
    let b = guest_bytes(caller, at, 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// What a component call that hands out descriptors wrote behind `retptr`.
enum Handed {
    /// `open-at`: the descriptor, when the result is `ok`.
    Opened(Option<Opened>),
    /// `get-directories`: each preopen's handle and name.
    Directories(Vec<(u32, Vec<u8>)>),
}

/// For a component's `open-at` or `get-directories` (`policy_lang::descriptors::Effect`):
/// what the host wrote behind `retptr`; `None` for any other call. What cannot be read
/// is nothing handed out (the monitor then knows less, and denies what it cannot judge).
fn descriptors_handed(
    caller: &mut Caller<'_, RunState>,
    hands: &Hands<'_>,
    args: &[Value],
) -> Option<Handed> {
    let retptr = pointer_arg(hands.event, args, "retptr");
    match hands.effect? {
        Effect::OpenAt => {
            let ok = |caller: &mut Caller<'_, RunState>, at: u32| {
                (guest_u32(caller, at)? & 0xff == 0).then_some(())?;
                guest_u32(caller, at.wrapping_add(4))
            };
            let fd = retptr.and_then(|at| ok(caller, at));
            Some(Handed::Opened(fd.map(|fd| Opened { fd, filetype: 0 })))
        }
        Effect::Preopens => {
            let mut directories = Vec::new();
            let list = retptr.and_then(|at| {
                Some((
                    guest_u32(caller, at)?,
                    guest_u32(caller, at.wrapping_add(4))?,
                ))
            });
            for i in 0..list.map_or(0, |(_, n)| n) {
                let element = list.map_or(0, |(l, _)| l).wrapping_add(12 * i);
                let (Some(h), Some(name), Some(len)) = (
                    guest_u32(caller, element),
                    guest_u32(caller, element.wrapping_add(4)),
                    guest_u32(caller, element.wrapping_add(8)),
                ) else {
                    break;
                };
                // A name that cannot be read is a directory of unknown path.
                let name = guest_bytes(caller, name, len).unwrap_or_default();
                directories.push((h, name));
            }
            Some(Handed::Directories(directories))
        }
        _ => None,
    }
}

/// For a component call that hands out streams behind `retptr`: the handles the host
/// wrote there (`Some(None)` when its result is an error); `None` for any other call.
fn streams_handed(
    caller: &mut Caller<'_, RunState>,
    hands: &Hands<'_>,
    args: &[Value],
) -> Option<Option<Vec<u32>>> {
    use policy_lang::handles::Place;
    if !hands.grants.iter().any(|g| matches!(g.at, Place::Ok(_))) {
        return None;
    }
    let Some(at) = pointer_arg(hands.event, args, "retptr") else {
        return Some(None);
    };
    if guest_u32(caller, at).map(|w| w & 0xff) != Some(0) {
        return Some(None);
    }
    let handed = hands
        .grants
        .iter()
        .map(|g| match g.at {
            Place::Ok(off) => guest_u32(caller, at.wrapping_add(off)),
            Place::Result => None,
        })
        .collect();
    Some(handed)
}

/// What a successful `path_open` or `sock_accept` handed out: the descriptor in its
/// out-pointer and, from the host, its file type.
fn opened_by(
    caller: &mut Caller<'_, RunState>,
    hands: &Hands<'_>,
    args: &[Value],
    scanner: Option<&Scanner>,
) -> wasmtime::Result<Option<Opened>> {
    let out = match hands.effect {
        Some(Effect::Open) => "opened_fd",
        Some(Effect::Accept) => "ro_fd",
        _ => return Ok(None),
    };
    let Some(fd) = pointer_arg(hands.event, args, out).and_then(|at| guest_u32(caller, at)) else {
        return Ok(None);
    };
    if hands.effect == Some(Effect::Accept) {
        return Ok(Some(Opened {
            fd,
            filetype: policy_lang::descriptors::FILETYPE_SOCKET_STREAM,
        }));
    }
    let scanner =
        scanner.ok_or_else(|| wasmtime::Error::msg("the descriptor scanner is not connected"))?;
    // An open the host cannot describe is recorded as a file (fail closed: never a
    // directory whose path would widen what relative paths resolve under).
    let filetype = scanner
        .fdstat(&mut *caller, fd)?
        .map_or(policy_lang::descriptors::FILETYPE_REGULAR_FILE, |(t, _)| t);
    Ok(Some(Opened { fd, filetype }))
}

/// The scanner instance: trampolines to the real scan functions and its own memory.
pub(crate) struct Scanner {
    fdstat: Func,
    prestat: Func,
    dir_name: Func,
    memory: wasmtime::Memory,
}

const ERRNO_BADF: i32 = 8;

impl Scanner {
    fn call(&self, mut store: impl AsContextMut, f: &Func, args: &[Val]) -> wasmtime::Result<i32> {
        let mut out = [Val::I32(0)];
        f.call(&mut store, args, &mut out)?;
        Ok(out[0].i32().unwrap_or(-1))
    }

    /// `fd_fdstat_get(fd)`: `Some((filetype, rights_base))`, `None` on any error.
    fn fdstat(&self, mut store: impl AsContextMut, fd: u32) -> wasmtime::Result<Option<(u8, u64)>> {
        let errno = self.call(
            &mut store,
            &self.fdstat,
            &[Val::I32(fd as i32), Val::I32(0)],
        )?;
        if errno != 0 {
            return Ok(None);
        }
        let data = self.memory.data(&store);
        let rights = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
        Ok(Some((data[0], rights)))
    }

    /// What the host reports at start for descriptors 0, 1, 2, ... up to the first one
    /// at or above 3 that is not open, as [`Descriptors::from_world`] takes it.
    fn world(&self, mut store: impl AsContextMut) -> wasmtime::Result<Vec<Initial>> {
        let mut out = Vec::new();
        for fd in 0..policy_lang::descriptors::MAX_FDS {
            let errno = self.call(
                &mut store,
                &self.fdstat,
                &[Val::I32(fd as i32), Val::I32(0)],
            )?;
            if errno == ERRNO_BADF {
                if fd >= 3 {
                    break;
                }
                continue;
            }
            let (filetype, rights) = if errno == 0 {
                let data = self.memory.data(&store);
                (
                    Some(data[0]),
                    u64::from_le_bytes(data[8..16].try_into().expect("8 bytes")),
                )
            } else {
                (None, 0)
            };
            let mut preopen = None;
            let errno = self.call(
                &mut store,
                &self.prestat,
                &[Val::I32(fd as i32), Val::I32(0)],
            )?;
            if errno == 0 {
                let data = self.memory.data(&store);
                let len = u32::from_le_bytes(data[4..8].try_into().expect("4 bytes")) as usize;
                if data[0] == 0 && len <= policy_lang::path::MAX_PATH {
                    let errno = self.call(
                        &mut store,
                        &self.dir_name,
                        &[Val::I32(fd as i32), Val::I32(16), Val::I32(len as i32)],
                    )?;
                    if errno == 0 {
                        preopen = Some(self.memory.data(&store)[16..16 + len].to_vec());
                    }
                }
            }
            out.push(Initial {
                fd,
                filetype,
                rights,
                preopen,
            });
        }
        Ok(out)
    }
}

/// The trampolines through which host enforcement calls the real imports, and the
/// scanner through which it asks the host about descriptors.
pub(crate) struct HostShim {
    module: Module,
    reals: Vec<Func>,
    has_memory: bool,
    slots: Arc<OnceLock<Vec<Func>>>,
    monitor: Arc<Mutex<Monitor>>,
    program: Arc<Program>,
    scanner: Arc<OnceLock<Scanner>>,
    scanner_module: Option<Module>,
    scan_funcs: Vec<Func>,
}

impl HostShim {
    /// Instantiates the shim against the guest's memory, learns the descriptors from the
    /// host when the policies track them, and arms the wrappers.
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
        if let Some(module) = &self.scanner_module {
            let imports: Vec<Extern> = self.scan_funcs.iter().map(|f| Extern::Func(*f)).collect();
            let instance = wasmtime::Instance::new(&mut *store, module, &imports)?;
            let get = |store: &mut Store<RunState>, name: &str| {
                instance
                    .get_func(&mut *store, name)
                    .ok_or_else(|| wasmtime::Error::msg("the scanner lacks a trampoline"))
            };
            let scanner = Scanner {
                fdstat: get(store, "fdstat")?,
                prestat: get(store, "prestat")?,
                dir_name: get(store, "dir_name")?,
                memory: instance
                    .get_memory(&mut *store, "memory")
                    .ok_or_else(|| wasmtime::Error::msg("the scanner lacks its memory"))?,
            };
            let world = scanner.world(&mut *store)?;
            let table = Descriptors::from_world(&world).map_err(|fd| {
                wasmtime::Error::msg(format!(
                    "descriptor {fd} is open at start, beyond the monitor's table of {}",
                    policy_lang::descriptors::MAX_FDS
                ))
            })?;
            *lock(&self.monitor) = Monitor::with_descriptors(Arc::clone(&self.program), table);
            let _ = self.scanner.set(scanner);
        }
        let _ = self.slots.set(funcs);
        Ok(())
    }
}

/// A module with one page of memory of its own (exported as `memory`, so WASI writes its
/// answers there) and trampolines `fdstat`, `prestat`, `dir_name` to the imported real
/// `fd_fdstat_get`, `fd_prestat_get`, `fd_prestat_dir_name`.
fn scanner_module() -> Vec<u8> {
    use wasm_encoder::{
        CodeSection, EntityType, ExportKind, ExportSection, Function, FunctionSection,
        ImportSection, MemorySection, MemoryType, TypeSection, ValType,
    };
    let mut types = TypeSection::new();
    types
        .ty()
        .function([ValType::I32, ValType::I32], [ValType::I32]);
    types
        .ty()
        .function([ValType::I32, ValType::I32, ValType::I32], [ValType::I32]);
    let mut imports = ImportSection::new();
    imports.import("real", "fd_fdstat_get", EntityType::Function(0));
    imports.import("real", "fd_prestat_get", EntityType::Function(0));
    imports.import("real", "fd_prestat_dir_name", EntityType::Function(1));
    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut exports = ExportSection::new();
    for (i, (name, ty, params)) in [("fdstat", 0, 2), ("prestat", 0, 2), ("dir_name", 1, 3)]
        .into_iter()
        .enumerate()
    {
        funcs.function(ty);
        exports.export(name, ExportKind::Func, 3 + i as u32);
        let mut body = Function::new([]);
        {
            let mut sink = body.instructions();
            for p in 0..params {
                sink.local_get(p);
            }
            sink.call(i as u32);
            sink.end();
        }
        code.function(&body);
    }
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: Some(1),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    exports.export("memory", ExportKind::Memory, 0);
    encode_module(&[&types, &imports, &funcs, &memories, &exports, &code])
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
    encode_module(&[&types, &imports, &funcs, &exports, &code])
}

/// The module made of `sections`, in the order given (which must be the binary format's).
pub(crate) fn encode_module(sections: &[&dyn wasm_encoder::Section]) -> Vec<u8> {
    let mut wasm = wasm_encoder::Module::new().finish();
    for s in sections {
        s.append_to(&mut wasm);
    }
    wasm
}
