//! The driver module both wasmtime judges run, and what they check of its run.
//!
//! For a [`Program`] and a trace, [`driver`] generates a small module that imports every
//! event of the program with its exact signature, owns memory 0 (exported as `memory`),
//! holds the trace's string arguments in a data segment, and calls the events in trace
//! order with the trace's arguments. The judges provide its imports with
//! [`fake_imports`]: host functions that record what they receive and return the
//! trace's results.
//!
//! Memory layout (all little-endian):
//! * `0..4`: the 1-based number of the call in progress (written before each call), so
//!   host functions and hooks know which trace step they belong to;
//! * `8 + 8*i`: the first result of call `i` (0-based) as the driver received it (`i32`
//!   sign-extended to 8 bytes, floats as their bits), so suppression values are observed;
//! * then the string arguments, back to back.
//!
//! Arguments follow the interpreter's reading of malformed traces: a missing or mistyped
//! integer argument is 0; a string argument that is not a byte string is out of bounds.
//! An out-of-bounds string is passed as pointer = memory size, length 1.
use std::sync::{Arc, Mutex};

use policy_lang::interp::{ObservationKind, TraceEvent, Value, Verdict};
use policy_lang::ir::{Event, ParamType, Phase, Program, ValType};
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, ImportSection, MemArg, MemorySection, MemoryType, Module, TypeSection,
};
use wasmtime::{Caller, Extern, Linker, Val};

use super::JudgeError;

/// The driver's Wasm arguments per step, its data segment and its memory size in pages.
type Plan = (Vec<Vec<Arg>>, Vec<u8>, u32);

const STEP_CELL: u32 = 0;
const RESULTS_AT: u32 = 8;
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
}

/// The generated driver and what it passes at each step.
pub struct Driver {
    pub wasm: Vec<u8>,
    /// Per trace step, the Wasm arguments of the call.
    args: Vec<Vec<Arg>>,
}

/// Lays out the strings and computes the Wasm arguments of every step.
fn plan_args(program: &Program, trace: &[TraceEvent]) -> Result<Plan, JudgeError> {
    let strings_at = RESULTS_AT + 8 * trace.len() as u32;
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
            let int = match value {
                Some(Value::Int(v)) => *v,
                _ => 0,
            };
            let float = match value {
                Some(Value::Float(f)) => *f,
                _ => 0.0,
            };
            match param.ty {
                ParamType::I32 => args.push(Some(Arg::I32(int as i32))),
                ParamType::I64 => args.push(Some(Arg::I64(int))),
                ParamType::F32 => args.push(Some(Arg::F32((float as f32).to_bits()))),
                ParamType::F64 => args.push(Some(Arg::F64(float.to_bits()))),
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
    let end = strings_at as u64 + data.len() as u64;
    let pages = end.div_ceil(PAGE).max(1);
    let oob = (pages * PAGE) as u32 as i32;
    let args = pending
        .into_iter()
        .map(|a| a.into_iter().map(|x| x.unwrap_or(Arg::I32(oob))).collect())
        .collect();
    Ok((args, data, pages as u32))
}

/// Generates the driver module for `trace`: export `run` performs the calls.
pub fn driver(program: &Program, trace: &[TraceEvent]) -> Result<Driver, JudgeError> {
    let (args, data, pages) = plan_args(program, trace)?;
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    for (i, e) in program.events.iter().enumerate() {
        types.ty().function(
            e.wasm_params().into_iter().map(enc),
            e.results.iter().copied().map(enc),
        );
        imports.import(&e.module, &e.field, EntityType::Function(i as u32));
    }
    let run_type = program.events.len() as u32;
    types.ty().function([], []);
    let mut funcs = FunctionSection::new();
    funcs.function(run_type);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: pages as u64,
        maximum: Some(pages as u64),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    let run_index = program.events.len() as u32;
    exports.export("run", ExportKind::Func, run_index);
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
    let mut body = Function::new(all.iter().map(|t| (max_results, enc(*t))));
    {
        let mut sink = body.instructions();
        for (i, call) in trace.iter().enumerate() {
            let event: &Event = &program.events[call.event as usize];
            sink.i32_const(STEP_CELL as i32)
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
                let at = RESULTS_AT + 8 * i as u32;
                sink.i32_const(at as i32).local_get(local(*first, 0));
                match first {
                    ValType::I32 => sink.i64_extend_i32_s().i64_store(mem(0, 3)),
                    ValType::I64 => sink.i64_store(mem(0, 3)),
                    ValType::F32 => sink.f32_store(mem(0, 2)),
                    ValType::F64 => sink.f64_store(mem(0, 3)),
                };
            }
        }
        sink.end();
    }
    let mut code = CodeSection::new();
    code.function(&body);
    let mut datas = DataSection::new();
    if !data.is_empty() {
        let at = RESULTS_AT + 8 * trace.len() as u32;
        datas.active(0, &ConstExpr::i32_const(at as i32), data);
    }

    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&funcs)
        .section(&memories)
        .section(&exports)
        .section(&code)
        .section(&datas);
    Ok(Driver {
        wasm: module.finish(),
        args,
    })
}

/// What the host saw while a driver ran.
#[derive(Default, Debug)]
pub(super) struct Seen {
    /// (step, event, arguments) of every call that reached an import.
    pub calls: Vec<(usize, u32, Vec<Arg>)>,
    /// (step, hook kind, code, extra) of every hook call.
    pub hooks: Vec<(usize, i32, u32, i64)>,
}

/// The step cell of the memory exported as `memory` by the calling instance: the driver,
/// or the host-enforcement shim that re-exports the driver's memory.
pub(super) fn step_in_progress<T>(caller: &mut Caller<'_, T>) -> usize {
    let Some(Extern::Memory(m)) = caller.get_export("memory") else {
        return 0;
    };
    let mut cell = [0u8; 4];
    match m.read(&caller, STEP_CELL as usize, &mut cell) {
        Ok(()) => u32::from_le_bytes(cell) as usize,
        Err(_) => 0,
    }
}

/// The first result the driver received at each step, read from its memory after a run.
pub(super) struct Received(Vec<u8>);

impl Received {
    pub fn read<T>(
        instance: &wasmtime::Instance,
        store: &mut wasmtime::Store<T>,
        steps: usize,
    ) -> Result<Received, JudgeError> {
        let memory = instance
            .get_memory(&mut *store, "memory")
            .ok_or_else(|| JudgeError::Inconsistent("the driver lost its memory export".into()))?;
        let mut stored = vec![0u8; 8 * steps];
        memory
            .read(&*store, RESULTS_AT as usize, &mut stored)
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

/// Provides every import of `module` that is an event of `program` as a host function
/// that records its step and arguments in `seen` and returns the trace's result for the
/// step (0 when it gives none).
pub(super) fn fake_imports<T: 'static>(
    linker: &mut Linker<T>,
    module: &wasmtime::Module,
    program: &Program,
    trace: &[TraceEvent],
    seen: &Arc<Mutex<Seen>>,
) -> Result<(), JudgeError> {
    let results: Arc<Vec<Option<i64>>> = Arc::new(trace.iter().map(|c| c.result).collect());
    for import in module.imports() {
        let (Some(ty), Some(event)) = (
            import.ty().func().cloned(),
            program.event_for_import(import.module(), import.name()),
        ) else {
            continue;
        };
        let (seen, results) = (Arc::clone(seen), Arc::clone(&results));
        let types: Vec<wasmtime::ValType> = ty.results().collect();
        linker
            .func_new(
                import.module(),
                import.name(),
                ty,
                move |mut caller, params, out| {
                    let step = step_in_progress(&mut caller);
                    let args = params.iter().filter_map(Arg::from_val).collect();
                    seen.lock().unwrap().calls.push((step, event, args));
                    let value = step
                        .checked_sub(1)
                        .and_then(|i| results.get(i).copied().flatten())
                        .unwrap_or(0);
                    crate::fill_results(out, &types, value)
                },
            )
            .map_err(JudgeError::Wasm)?;
    }
    Ok(())
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
