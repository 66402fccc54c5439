//! The driver module both wasmtime judges run, and the fake host it calls.
//!
//! For a [`Program`] and a trace, [`driver`] generates a small module that imports every
//! event of the program with its exact signature, owns memory 0 (exported as `memory`),
//! holds the trace's string arguments in a data segment, and exports one function per
//! step, `step1`, `step2`, ..., that makes that step's call with the trace's arguments
//! (and `run`, which calls them all in order).
//! The judges call the steps in order, as an embedder calls an instance again and again:
//! a step whose import traps (`-> trap`) ends that call only. The judges provide the
//! imports with [`fake_imports`]: host functions that record what they receive and return
//! the trace's results, and the fake WASI host of `policy_lang::fake_host`, which answers
//! the monitor's own questions (`fd_fdstat_get`, `fd_prestat_get`, `fd_prestat_dir_name`)
//! from the trace's world and takes its audit lines (`fd_write` to 2).
//!
//! Memory layout (all little-endian):
//! * `0..OUT_AREA`, or up to the last byte a numeric out-pointer of the trace reaches:
//!   left zero for the trace's out-pointers; the fake host writes there what it hands
//!   out (`opened_fd`, `ro_fd`);
//! * the string arguments, back to back;
//! * at `step_cell` (8-aligned): the 1-based number of the call in progress (written
//!   before each call), so host functions and hooks know which trace step they belong to;
//! * at `results_at + 8*i`: the first result of call `i` (0-based) as the driver received
//!   it (`i32` sign-extended to 8 bytes, floats as their bits), so suppression values are
//!   observed;
//! * at `lists_at`, 4 KiB: the lists the fake host returns (`get-directories`), as a
//!   real host allocates them with the component's `realloc`.
//!
//! Arguments follow the interpreter's reading of malformed traces: a missing or mistyped
//! integer argument is 0; a string argument that is not a byte string is out of bounds.
//! An out-of-bounds string is passed as pointer = memory size, length 1; an out-pointer
//! given as `oob` as -1 (the last byte of the 32-bit space). An out-pointer the trace
//! gives as a number is a valid one: memory is made large enough to hold it, and a
//! misaligned one is refused (write `oob` for a bad pointer).
use std::sync::{Arc, Mutex};

use policy_lang::fake_host::{FakeHost, Memory, SCAN_FUNCTIONS};
use policy_lang::interp::{ObservationKind, TraceEvent, Value, Verdict, World};
use policy_lang::ir::{Event, ParamType, Phase, Program, ValType};
use policy_lang::wasi::{self, Role};
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, ImportSection, MemArg, MemorySection, MemoryType, TypeSection,
};
use wasmtime::{Caller, Extern, Linker, Val};

use super::JudgeError;

/// Bytes at the bottom of memory left for the trace's out-pointers.
const OUT_AREA: u32 = 4096;
/// Bytes at the top for the lists the fake host returns (`get-directories`: 12 bytes and
/// the name per preopen).
const LISTS: u64 = 4096;
const PAGE: u64 = 65536;

fn enc(t: ValType) -> wasm_encoder::ValType {
    match t {
        ValType::I32 => wasm_encoder::ValType::I32,
        ValType::I64 => wasm_encoder::ValType::I64,
        ValType::F32 => wasm_encoder::ValType::F32,
        ValType::F64 => wasm_encoder::ValType::F64,
    }
}

fn mem(offset: u32, align: u32) -> MemArg {
    MemArg {
        offset: offset as u64,
        align,
        memory_index: 0,
    }
}

/// One Wasm argument the driver passes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Arg {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
}

impl Arg {
    fn from_val(v: &Val) -> Option<Arg> {
        Some(match v {
            Val::I32(x) => Arg::I32(*x),
            Val::I64(x) => Arg::I64(*x),
            Val::F32(x) => Arg::F32(*x),
            Val::F64(x) => Arg::F64(*x),
            _ => return None,
        })
    }

    /// The argument's bits (an `i32` zero-extended), as the fake host reads them.
    fn bits(self) -> u64 {
        match self {
            Arg::I32(v) => v as u32 as u64,
            Arg::I64(v) => v as u64,
            Arg::F32(v) => v as u64,
            Arg::F64(v) => v,
        }
    }
}

/// The driver's Wasm arguments per step, its data segment, and its layout.
type Plan = (Vec<Vec<Arg>>, Vec<u8>, Layout);

/// Where the driver keeps its bookkeeping.
#[derive(Clone, Copy, Debug)]
pub(super) struct Layout {
    strings_at: u32,
    pub step_cell: u32,
    results_at: u32,
    /// Where the fake host writes the lists a call returns (`get-directories`).
    pub lists_at: u32,
    pages: u32,
}

/// The generated driver and what it passes at each step.
pub struct Driver {
    pub wasm: Vec<u8>,
    /// Per trace step, the Wasm arguments of the call.
    args: Vec<Vec<Arg>>,
    pub(super) layout: Layout,
}

/// The out-pointer role of parameter `param` of `event`, when the catalogue knows it.
fn out_role(event: &Event, param: &str) -> Option<(u32, u32)> {
    match wasi::event_role(&event.module, &event.field, param)? {
        Role::Out {
            size,
            align,
            size_p0,
        } => Some((
            if event.module == wasi::MODULE {
                size
            } else {
                size_p0
            },
            align,
        )),
        _ => None,
    }
}

/// The highest byte the trace's numeric out-pointers reach; a misaligned one is refused.
fn out_pointers_end(program: &Program, trace: &[TraceEvent]) -> Result<u64, JudgeError> {
    let mut end: u64 = 0;
    for (i, call) in trace.iter().enumerate() {
        let Some(event) = program.events.get(call.event as usize) else {
            continue;
        };
        for (param, value) in event.params.iter().zip(&call.args) {
            let (Value::Int(v), Some((size, align))) = (value, out_role(event, &param.name)) else {
                continue;
            };
            let at = *v as u32;
            if !at.is_multiple_of(align) {
                return Err(JudgeError::Inconsistent(format!(
                    "step {}: out-pointer `{}` = {v} is not {align}-aligned; write `oob` for a bad pointer",
                    i + 1,
                    param.name
                )));
            }
            end = end.max(at as u64 + size as u64);
        }
    }
    Ok(end)
}

impl Driver {
    /// The address of the driver's step cell: the 1-based number of the call in
    /// progress, for host functions that answer the trace's calls.
    pub fn step_cell(&self) -> u32 {
        self.layout.step_cell
    }
}

/// Lays out memory and computes the Wasm arguments of every step. The strings come after
/// every byte an out-pointer reaches, so what the fake host writes never changes them.
fn plan_args(program: &Program, trace: &[TraceEvent]) -> Result<Plan, JudgeError> {
    let out_end = out_pointers_end(program, trace)?;
    let strings_at = out_end.max(OUT_AREA as u64).next_multiple_of(8);
    if strings_at > u32::MAX as u64 / 2 {
        return Err(JudgeError::Inconsistent(
            "the trace's out-pointers do not leave room in a 32-bit memory".into(),
        ));
    }
    let strings_at = strings_at as u32;
    let mut data = Vec::new();
    let mut pending: Vec<Vec<Option<Arg>>> = Vec::new();
    // Pointers of out-of-bounds strings depend on the final memory size: `None` marks them.
    for (i, call) in trace.iter().enumerate() {
        let event = program
            .events
            .get(call.event as usize)
            .ok_or(JudgeError::UnknownEvent {
                step: i + 1,
                event: call.event,
            })?;
        let mut args = Vec::new();
        for (p, param) in event.params.iter().enumerate() {
            let value = call.args.get(p);
            let bits = Value::wasm_bits(value, param.ty);
            match param.ty {
                ParamType::I32 => args.push(Some(Arg::I32(bits as i32))),
                ParamType::I64 => args.push(Some(Arg::I64(bits as i64))),
                ParamType::F32 => args.push(Some(Arg::F32(bits as u32))),
                ParamType::F64 => args.push(Some(Arg::F64(bits))),
                ParamType::Str => match value {
                    Some(Value::Str(Some(bytes))) => {
                        let at = strings_at + data.len() as u32;
                        data.extend_from_slice(bytes);
                        args.push(Some(Arg::I32(at as i32)));
                        args.push(Some(Arg::I32(bytes.len() as i32)));
                    }
                    _ => {
                        args.push(None);
                        args.push(Some(Arg::I32(1)));
                    }
                },
            }
        }
        pending.push(args);
    }
    let step_cell = (strings_at as u64 + data.len() as u64).next_multiple_of(8);
    let results_at = step_cell + 8;
    let lists_at = results_at + 8 * trace.len() as u64;
    let end = lists_at + LISTS;
    if end > u32::MAX as u64 - PAGE {
        return Err(JudgeError::Inconsistent(
            "the trace's strings and out-pointers do not fit a 32-bit memory".into(),
        ));
    }
    let pages = end.div_ceil(PAGE).max(1);
    let oob = (pages * PAGE) as u32 as i32;
    let args = pending
        .into_iter()
        .map(|a| a.into_iter().map(|x| x.unwrap_or(Arg::I32(oob))).collect())
        .collect();
    let layout = Layout {
        strings_at,
        step_cell: step_cell as u32,
        results_at: results_at as u32,
        lists_at: lists_at as u32,
        pages: pages as u32,
    };
    Ok((args, data, layout))
}

/// The name of the export that makes the call of 1-based step `step`.
pub(super) fn step_export(step: usize) -> String {
    format!("step{step}")
}

/// Generates the driver module for `trace`: export `stepN` makes the call of step N.
pub fn driver(program: &Program, trace: &[TraceEvent]) -> Result<Driver, JudgeError> {
    let (args, data, layout) = plan_args(program, trace)?;
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    for (i, e) in program.events.iter().enumerate() {
        types.ty().function(
            e.wasm_params().into_iter().map(enc),
            e.results.iter().copied().map(enc),
        );
        imports.import(&e.module, &e.field, EntityType::Function(i as u32));
    }
    let step_type = program.events.len() as u32;
    types.ty().function([], []);
    let mut funcs = FunctionSection::new();
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: layout.pages as u64,
        maximum: Some(layout.pages as u64),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);

    // Locals hold results while the first one is stored: the largest result count of
    // any event, one slot per position and type.
    let max_results = program
        .events
        .iter()
        .map(|e| e.results.len())
        .max()
        .unwrap_or(0) as u32;
    let all = [ValType::I32, ValType::I64, ValType::F32, ValType::F64];
    let local = |t: ValType, j: usize| -> u32 {
        all.iter().position(|x| *x == t).unwrap() as u32 * max_results + j as u32
    };
    let mut code = CodeSection::new();
    for (i, call) in trace.iter().enumerate() {
        funcs.function(step_type);
        exports.export(
            &step_export(i + 1),
            ExportKind::Func,
            program.events.len() as u32 + i as u32,
        );
        let mut body = Function::new(all.iter().map(|t| (max_results, enc(*t))));
        let mut sink = body.instructions();
        let event: &Event = &program.events[call.event as usize];
        sink.i32_const(layout.step_cell as i32)
            .i32_const(i as i32 + 1)
            .i32_store(mem(0, 2));
        for a in &args[i] {
            match *a {
                Arg::I32(v) => sink.i32_const(v),
                Arg::I64(v) => sink.i64_const(v),
                Arg::F32(v) => sink.f32_const(f32::from_bits(v).into()),
                Arg::F64(v) => sink.f64_const(f64::from_bits(v).into()),
            };
        }
        sink.call(call.event);
        for (j, t) in event.results.iter().enumerate().rev() {
            sink.local_set(local(*t, j));
        }
        if let Some(first) = event.results.first() {
            let at = layout.results_at + 8 * i as u32;
            sink.i32_const(at as i32).local_get(local(*first, 0));
            match first {
                ValType::I32 => sink.i64_extend_i32_s().i64_store(mem(0, 3)),
                ValType::I64 => sink.i64_store(mem(0, 3)),
                ValType::F32 => sink.f32_store(mem(0, 2)),
                ValType::F64 => sink.f64_store(mem(0, 3)),
            };
        }
        sink.end();
        code.function(&body);
    }
    // `run`: every step in order (for runs that expect no trap).
    funcs.function(step_type);
    let first_step = program.events.len() as u32;
    exports.export("run", ExportKind::Func, first_step + trace.len() as u32);
    let mut run = Function::new([]);
    {
        let mut sink = run.instructions();
        for i in 0..trace.len() as u32 {
            sink.call(first_step + i);
        }
        sink.end();
    }
    code.function(&run);
    let mut datas = DataSection::new();
    if !data.is_empty() {
        datas.active(0, &ConstExpr::i32_const(layout.strings_at as i32), data);
    }

    Ok(Driver {
        wasm: crate::host::encode_module(&[
            &types, &imports, &funcs, &memories, &exports, &code, &datas,
        ]),
        args,
        layout,
    })
}

/// Calls the driver's steps in order, as an embedder would: a step whose import trapped
/// as the trace says (`-> trap`) is followed by the next; any other error ends the run
/// and is its outcome.
pub(super) fn run_steps<T>(
    instance: &wasmtime::Instance,
    store: &mut wasmtime::Store<T>,
    trace: &[TraceEvent],
) -> Result<wasmtime::Result<()>, JudgeError> {
    for (i, call) in trace.iter().enumerate() {
        let f = instance
            .get_typed_func::<(), ()>(&mut *store, &step_export(i + 1))
            .map_err(JudgeError::Wasm)?;
        if let Err(e) = f.call(&mut *store, ()) {
            if call.trapped && e.downcast_ref::<TraceTrap>().is_some() {
                continue;
            }
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

/// The trap a fake import raises at a step the trace says traps.
#[derive(Debug, thiserror::Error)]
#[error("the import trapped, as the trace says")]
pub(super) struct TraceTrap;

/// The memory the calling instance exports as `memory` (the driver's, or the
/// host-enforcement shim's re-export of it), as the fake host reads and writes it.
struct CallerMemory<'c, 'a, T: 'static>(&'c mut Caller<'a, T>);

impl<T: 'static> CallerMemory<'_, '_, T> {
    fn memory(&mut self) -> Option<wasmtime::Memory> {
        match self.0.get_export("memory") {
            Some(Extern::Memory(m)) => Some(m),
            _ => None,
        }
    }
}

impl<T: 'static> Memory for CallerMemory<'_, '_, T> {
    fn read(&mut self, at: u32, len: u32) -> Option<Vec<u8>> {
        let m = self.memory()?;
        let range = at as usize..at as usize + len as usize;
        m.data(&*self.0).get(range).map(<[u8]>::to_vec)
    }
    fn write(&mut self, at: u32, bytes: &[u8]) -> bool {
        let m = self.memory();
        m.is_some_and(|m| m.write(&mut *self.0, at as usize, bytes).is_ok())
    }
}

/// What the host saw while a driver ran.
#[derive(Default, Debug)]
pub(super) struct Seen {
    /// (step, event, arguments) of every call that reached an import.
    pub calls: Vec<(usize, u32, Vec<Arg>)>,
    /// (step, hook kind, code, extra) of every hook call.
    pub hooks: Vec<(usize, i32, u32, i64)>,
    /// (step, function) of every call the monitor made itself (scan, audit lines).
    pub internal: Vec<(usize, String)>,
}

/// The step cell (at `cell`) of the calling instance's memory ([`CallerMemory`]).
pub(super) fn step_in_progress<T: 'static>(caller: &mut Caller<'_, T>, cell: u32) -> usize {
    let cell = CallerMemory(caller).read(cell, 4);
    cell.map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The first result the driver received at each step, read from its memory after a run.
pub(super) struct Received(Vec<u8>);

impl Received {
    pub fn read<T>(
        instance: &wasmtime::Instance,
        store: &mut wasmtime::Store<T>,
        driver: &Driver,
        steps: usize,
    ) -> Result<Received, JudgeError> {
        let memory = instance
            .get_memory(&mut *store, "memory")
            .ok_or_else(|| JudgeError::Inconsistent("the driver lost its memory export".into()))?;
        let mut stored = vec![0u8; 8 * steps];
        memory
            .read(&*store, driver.layout.results_at as usize, &mut stored)
            .map_err(|e| JudgeError::Inconsistent(format!("reading results: {e}")))?;
        Ok(Received(stored))
    }

    /// At the 1-based `step`: an `i32` sign-extended, an `i64` as is.
    pub fn at(&self, step: usize) -> i64 {
        let at = 8 * step.saturating_sub(1);
        let bytes: [u8; 8] = self
            .0
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 8]);
        i64::from_le_bytes(bytes)
    }
}

/// Provides every import of `module` that is an event of `program`, and the WASI
/// functions the monitor calls itself, as host functions. A call that is the trace's
/// call of the step in progress (its event, its exact arguments, the first such call of
/// the step) is recorded in `seen`, changes the fake host's descriptors when it
/// succeeds, writes the descriptor it hands out, and returns the trace's result (or
/// traps, for `-> trap`); any other call must be one of the monitor's own (the
/// descriptor scan, an audit line on 2), answered by the fake host, or the judge fails.
#[allow(clippy::too_many_arguments)]
pub(super) fn fake_imports<T: 'static>(
    linker: &mut Linker<T>,
    module: &wasmtime::Module,
    program: &Program,
    world: &World,
    trace: &[TraceEvent],
    driver: &Driver,
    seen: &Arc<Mutex<Seen>>,
) -> Result<(), JudgeError> {
    let trace: Arc<Vec<TraceEvent>> = Arc::new(trace.to_vec());
    let expected: Arc<Vec<Vec<Arg>>> = Arc::new(driver.args.clone());
    let mut fake = FakeHost::new(world);
    fake.list_area = Some(driver.layout.lists_at);
    let host = Arc::new(Mutex::new(fake));
    let cell = driver.layout.step_cell;
    let mut names: Vec<(String, String, wasmtime::FuncType)> = module
        .imports()
        .filter_map(|i| {
            Some((
                i.module().to_string(),
                i.name().to_string(),
                i.ty().func()?.clone(),
            ))
        })
        .filter(|(m, f, _)| {
            program.event_for_import(m, f).is_some()
                || (wasi::is_wasi_module(m)
                    && (SCAN_FUNCTIONS.contains(&f.as_str()) || f == "fd_write"))
        })
        .collect();
    // Host enforcement's scanner looks the WASI functions up in the linker.
    let engine = module.engine();
    for f in SCAN_FUNCTIONS {
        if !names.iter().any(|(m, n, _)| m == wasi::MODULE && n == f) {
            let w = wasi::function(f).expect("scan functions are WASI");
            let ty = wasmtime::FuncType::new(
                engine,
                w.wasm_params().into_iter().map(wasm_ty),
                w.results.iter().copied().map(wasm_ty),
            );
            names.push((wasi::MODULE.to_string(), f.to_string(), ty));
        }
    }
    for (m, f, ty) in names {
        let event = program.event_for_import(&m, &f);
        let decl = event.map(|e| program.events[e as usize].clone());
        let (seen, trace, expected, host) = (
            Arc::clone(seen),
            Arc::clone(&trace),
            Arc::clone(&expected),
            Arc::clone(&host),
        );
        let types: Vec<wasmtime::ValType> = ty.results().collect();
        let field = f.clone();
        linker
            .func_new(&m, &f, ty, move |mut caller, params, out| {
                let step = step_in_progress(&mut caller, cell);
                let args: Vec<Arg> = params.iter().filter_map(Arg::from_val).collect();
                let call = step.checked_sub(1).and_then(|i| trace.get(i));
                let is_trace_call = {
                    let s = seen.lock().unwrap();
                    event.is_some()
                        && call.is_some_and(|c| Some(c.event) == event)
                        && expected.get(step.wrapping_sub(1)) == Some(&args)
                        && !s.calls.iter().any(|(st, _, _)| *st == step)
                };
                let bits: Vec<u64> = args.iter().map(|a| a.bits()).collect();
                let mut host = host.lock().unwrap_or_else(|p| p.into_inner());
                if !is_trace_call {
                    return match host.internal(&field, &bits, &mut CallerMemory(&mut caller)) {
                        Some(errno) => {
                            seen.lock().unwrap().internal.push((step, field.clone()));
                            crate::fill_results(out, &types, errno)
                        }
                        None => Err(wasmtime::Error::msg(format!(
                            "step {step}: unexpected call of {field} with {args:?}"
                        ))),
                    };
                }
                let (call, event) = (call.expect("checked"), event.expect("checked"));
                seen.lock().unwrap().calls.push((step, event, args.clone()));
                if call.trapped {
                    return Err(wasmtime::Error::new(TraceTrap));
                }
                let value = call.result.unwrap_or(0);
                let decl = decl.as_ref().expect("an event has a declaration");
                if value == 0 {
                    host.succeeded(decl, call, &bits, &mut CallerMemory(&mut caller));
                }
                crate::fill_results(out, &types, value)
            })
            .map_err(JudgeError::Wasm)?;
    }
    Ok(())
}

fn wasm_ty(t: ValType) -> wasmtime::ValType {
    match t {
        ValType::I32 => wasmtime::ValType::I32,
        ValType::I64 => wasmtime::ValType::I64,
        ValType::F32 => wasmtime::ValType::F32,
        ValType::F64 => wasmtime::ValType::F64,
    }
}

/// A run ends in an error exactly when the verdict has a violation.
pub(super) fn check_ending(
    outcome: &wasmtime::Result<()>,
    verdict: &Verdict,
) -> Result<(), JudgeError> {
    match (outcome, &verdict.violation) {
        (Ok(()), Some(v)) => Err(JudgeError::Inconsistent(format!(
            "a deny was reported at step {} but the driver ran to the end",
            v.step
        ))),
        (Err(e), None) => Err(JudgeError::Inconsistent(format!(
            "the driver trapped without a deny: {e:#}"
        ))),
        _ => Ok(()),
    }
}

/// Every call the monitor let through reached the host once, in order, with the exact
/// arguments the driver passed; suppressed and pre-denied calls did not.
pub(super) fn check_calls(
    trace: &[TraceEvent],
    driver: &Driver,
    verdict: &Verdict,
    seen: &Seen,
) -> Result<(), JudgeError> {
    let suppressed: Vec<usize> = verdict
        .observations
        .iter()
        .filter(|o| matches!(o.kind, ObservationKind::Suppress(_)))
        .map(|o| o.step)
        .collect();
    let last = match &verdict.violation {
        Some(v) if v.phase == Phase::Pre => v.step - 1,
        Some(v) => v.step,
        None => trace.len(),
    };
    let expected: Vec<(usize, u32, &Vec<Arg>)> = (1..=last)
        .filter(|s| !suppressed.contains(s))
        .map(|s| (s, trace[s - 1].event, &driver.args[s - 1]))
        .collect();
    let got: Vec<(usize, u32, &Vec<Arg>)> =
        seen.calls.iter().map(|(s, e, a)| (*s, *e, a)).collect();
    if expected != got {
        return Err(JudgeError::Inconsistent(format!(
            "the imports received {got:?}, but the monitor's decisions let through {expected:?}"
        )));
    }
    Ok(())
}
