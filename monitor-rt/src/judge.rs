//! The woven judge: decides a trace by running it through a *woven* module, so that
//! `irm test` checks the weaver against the reference interpreter on every trace.
//!
//! For a [`Program`] and a trace, [`driver`] generates a small module that imports every
//! event of the program with its exact signature, owns memory 0 (exported as `memory`),
//! holds the trace's string arguments in a data segment, and calls the events in trace
//! order with the trace's arguments. [`judge`] weaves it with host hooks, runs it in
//! wasmtime with host functions that record what they receive and return the trace's
//! results, and turns what happened into an [`interp::Verdict`] — the same structure the
//! interpreter produces — so [`disagreement`] can compare the two.
//!
//! Driver memory layout (all little-endian):
//! * `0..4`: the 1-based number of the call in progress (written before each call), so
//!   host functions and hooks know which trace step they belong to;
//! * `8 + 8*i`: the first result of call `i` (0-based) as the driver received it (`i32`
//!   sign-extended to 8 bytes, floats as their bits), so suppression values are observed;
//! * then the string arguments, back to back.
//!
//! Arguments follow the interpreter's reading of malformed traces: a missing or mistyped
//! integer argument is 0; a string argument that is not a byte string is out of bounds.
//! An out-of-bounds string is passed as pointer = memory size, length 1.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use instrumenter::manifest::{self, hook_kind, CodeKind, Fault, Manifest};
use instrumenter::{weave, WeaveError, WeaveOptions};
use policy_lang::interp::{self, Observation, ObservationKind, TraceEvent, Value, Violation};
use policy_lang::ir::{Event, ParamType, Phase, Program, RuntimeFault, ValType};
use thiserror::Error;
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, ImportSection, MemArg, MemorySection, MemoryType, Module, TypeSection,
};
use wasmtime::{Engine, Extern, Linker, Store, Trap, Val};

impl From<WeaveError> for JudgeError {
    fn from(e: WeaveError) -> Self {
        JudgeError::Weave(Box::new(e))
    }
}

/// The driver's Wasm arguments per step, its data segment and its memory size in pages.
type Plan = (Vec<Vec<Arg>>, Vec<u8>, u32);

/// Why the woven judge could not reach a verdict (as opposed to reaching a different one).
#[derive(Debug, Error)]
pub enum JudgeError {
    #[error("trace step {step}: event #{event} is not an event of the program")]
    UnknownEvent { step: usize, event: u32 },
    #[error("the driver module could not be woven: {0}")]
    Weave(Box<WeaveError>),
    #[error("the woven driver has no readable irm.monitor manifest")]
    NoManifest,
    #[error("the woven driver could not be run: {0:#}")]
    Wasm(wasmtime::Error),
    #[error("the woven driver misbehaved: {0}")]
    Inconsistent(String),
}

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
enum Arg {
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

/// What the host saw while the woven driver ran.
#[derive(Default, Debug)]
struct Seen {
    /// (step, event, arguments) of every call that reached an import.
    calls: Vec<(usize, u32, Vec<Arg>)>,
    /// (step, hook kind, code, extra) of every hook call.
    hooks: Vec<(usize, i32, u32, i64)>,
}

fn step_in_progress(caller: &mut wasmtime::Caller<'_, ()>) -> usize {
    let Some(Extern::Memory(m)) = caller.get_export("memory") else {
        return 0;
    };
    let mut cell = [0u8; 4];
    match m.read(&caller, STEP_CELL as usize, &mut cell) {
        Ok(()) => u32::from_le_bytes(cell) as usize,
        Err(_) => 0,
    }
}

/// One engine for every trace: creating an engine is far costlier than the tiny driver
/// modules it compiles, and `irm test` judges every trace of every policy.
fn shared_engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

/// Runs `trace` through the woven driver and reports the woven monitor's verdict.
pub fn judge(program: &Program, trace: &[TraceEvent]) -> Result<interp::Verdict, JudgeError> {
    let driver = driver(program, trace)?;
    let woven = weave(
        &driver.wasm,
        program,
        &WeaveOptions {
            host_hooks: true,
            ..WeaveOptions::default()
        },
    )?;
    let manifest = manifest::read(&woven.wasm)?.ok_or(JudgeError::NoManifest)?;

    let engine = shared_engine();
    let module = wasmtime::Module::new(engine, &woven.wasm).map_err(JudgeError::Wasm)?;
    let mut store = Store::new(engine, ());
    let mut linker = Linker::new(engine);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let results: Arc<Vec<Option<i64>>> = Arc::new(trace.iter().map(|c| c.result).collect());
    for import in module.imports() {
        let Some(ty) = import.ty().func().cloned() else {
            continue;
        };
        let (m, field) = (import.module().to_string(), import.name().to_string());
        let seen = Arc::clone(&seen);
        if m == manifest::HOOK_MODULE {
            linker
                .func_new(&m, &field, ty, move |mut caller, params, _| {
                    let step = step_in_progress(&mut caller);
                    let kind = params.first().and_then(Val::i32).unwrap_or(-1);
                    let code = params.get(1).and_then(Val::i32).unwrap_or(0) as u32;
                    let extra = params.last().and_then(Val::i64).unwrap_or(0);
                    seen.lock().unwrap().hooks.push((step, kind, code, extra));
                    Ok(())
                })
                .map_err(JudgeError::Wasm)?;
        } else {
            let Some(event) = program.event_for_import(&m, &field) else {
                continue;
            };
            let results = Arc::clone(&results);
            let types: Vec<wasmtime::ValType> = ty.results().collect();
            linker
                .func_new(&m, &field, ty, move |mut caller, params, out| {
                    let step = step_in_progress(&mut caller);
                    let args = params.iter().filter_map(Arg::from_val).collect();
                    seen.lock().unwrap().calls.push((step, event, args));
                    let value = step
                        .checked_sub(1)
                        .and_then(|i| results.get(i).copied().flatten())
                        .unwrap_or(0);
                    crate::fill_results(out, &types, value)
                })
                .map_err(JudgeError::Wasm)?;
        }
    }
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(JudgeError::Wasm)?;
    let run = instance
        .get_typed_func::<(), ()>(&mut store, "run")
        .map_err(JudgeError::Wasm)?;
    let outcome = run.call(&mut store, ());
    let violation_code = instance
        .get_global(&mut store, manifest::VIOLATION_GLOBAL)
        .and_then(|g| g.get(&mut store).i32())
        .unwrap_or(0) as u32;
    let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| {
        JudgeError::Inconsistent("the woven driver lost its memory export".into())
    })?;
    let mut stored = vec![0u8; 8 * trace.len()];
    memory
        .read(&store, RESULTS_AT as usize, &mut stored)
        .map_err(|e| JudgeError::Inconsistent(format!("reading results: {e}")))?;
    let seen = std::mem::take(&mut *seen.lock().unwrap());

    let verdict = verdict_from_hooks(program, &manifest, &seen, &stored)?;
    match (&outcome, &verdict.violation) {
        (Ok(()), None) => {}
        (Err(e), Some(_)) => {
            if e.downcast_ref::<Trap>() != Some(&Trap::UnreachableCodeReached) {
                return Err(JudgeError::Inconsistent(format!(
                    "a deny ended in a trap other than `unreachable`: {e:#}"
                )));
            }
            let reported = seen
                .hooks
                .iter()
                .rev()
                .find(|h| h.1 == hook_kind::DENY)
                .map(|h| h.2);
            if reported != Some(violation_code) {
                return Err(JudgeError::Inconsistent(format!(
                    "the deny hook reported code {reported:?} but irm:violation holds {violation_code}"
                )));
            }
        }
        (Ok(()), Some(v)) => {
            return Err(JudgeError::Inconsistent(format!(
                "a deny was reported at step {} but the driver ran to the end",
                v.step
            )))
        }
        (Err(e), None) => {
            return Err(JudgeError::Inconsistent(format!(
                "the driver trapped without a deny: {e:#}"
            )))
        }
    }
    check_calls(trace, &driver, &verdict, &seen)?;
    Ok(verdict)
}

/// Builds the verdict from the hooks: audits, suppressions and the deny, in order.
fn verdict_from_hooks(
    program: &Program,
    manifest: &Manifest,
    seen: &Seen,
    stored: &[u8],
) -> Result<interp::Verdict, JudgeError> {
    let mut verdict = interp::Verdict::default();
    for &(step, kind, code, extra) in &seen.hooks {
        if kind == hook_kind::PRE || kind == hook_kind::POST {
            continue;
        }
        let c = manifest.code(code).ok_or_else(|| {
            JudgeError::Inconsistent(format!("hook kind {kind} with unknown code {code}"))
        })?;
        match kind {
            hook_kind::AUDIT => verdict.observations.push(Observation {
                step,
                phase: c.phase,
                policy: c.policy_name.clone(),
                kind: ObservationKind::Audit,
                reason: c.reason.clone(),
            }),
            hook_kind::SUPPRESS => {
                let has_result = program
                    .events
                    .get(c.event as usize)
                    .is_some_and(|e| !e.results.is_empty());
                let value = has_result.then(|| {
                    let at = 8 * (step.saturating_sub(1));
                    let bytes: [u8; 8] = stored
                        .get(at..at + 8)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or([0; 8]);
                    i64::from_le_bytes(bytes)
                });
                verdict.observations.push(Observation {
                    step,
                    phase: c.phase,
                    policy: c.policy_name.clone(),
                    kind: ObservationKind::Suppress(value),
                    reason: c.reason.clone(),
                });
            }
            hook_kind::DENY => {
                let fault = match (&c.kind, &c.fault) {
                    (CodeKind::Fault, Some(Fault::StringOutOfBounds { param })) => {
                        Some(RuntimeFault::StringOutOfBounds { param: *param })
                    }
                    (CodeKind::Fault, Some(Fault::DivisionByZero)) => {
                        Some(RuntimeFault::DivisionByZero)
                    }
                    (CodeKind::Fault, Some(Fault::VarOutOfRange { var })) => {
                        Some(RuntimeFault::VarOutOfRange {
                            var: *var,
                            value: extra,
                        })
                    }
                    _ => None,
                };
                verdict.violation = Some(Violation {
                    step,
                    phase: c.phase,
                    policy: c.policy_name.clone(),
                    reason: c.reason.clone(),
                    fault,
                });
                break;
            }
            other => {
                return Err(JudgeError::Inconsistent(format!(
                    "unknown hook kind {other}"
                )))
            }
        }
    }
    Ok(verdict)
}

/// Every call the monitor let through reached the host once, in order, with the exact
/// arguments the driver passed; suppressed and pre-denied calls did not.
fn check_calls(
    trace: &[TraceEvent],
    driver: &Driver,
    verdict: &interp::Verdict,
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

/// The interpreter's verdict as the woven run can observe it: suppression values are
/// what the driver receives, so they are narrowed to the import's result type.
fn observable(program: &Program, trace: &[TraceEvent], v: &interp::Verdict) -> interp::Verdict {
    let mut v = v.clone();
    for o in &mut v.observations {
        if let ObservationKind::Suppress(Some(value)) = &mut o.kind {
            let event = trace
                .get(o.step - 1)
                .and_then(|c| program.events.get(c.event as usize));
            if event.and_then(|e| e.results.first()) == Some(&ValType::I32) {
                *value = *value as i32 as i64;
            }
        }
    }
    v
}

/// `None` when the woven verdict equals the interpreter's; otherwise a message saying
/// where they part. Reasons of faults are compared through the fault itself (kind,
/// parameter or variable, value), since their wording is generated.
pub fn disagreement(
    program: &Program,
    trace: &[TraceEvent],
    interpreter: &interp::Verdict,
    woven: &interp::Verdict,
) -> Option<String> {
    let expected = observable(program, trace, interpreter);
    let strip = |v: &Option<Violation>| {
        v.clone().map(|mut v| {
            if v.fault.is_some() {
                v.reason.clear();
            }
            v
        })
    };
    if strip(&expected.violation) != strip(&woven.violation) {
        return Some(format!(
            "the interpreter says {}, the woven module says {}",
            describe(&expected.violation),
            describe(&woven.violation)
        ));
    }
    let by_step = |v: &interp::Verdict| {
        let mut m: HashMap<usize, Vec<Observation>> = HashMap::new();
        for o in &v.observations {
            m.entry(o.step).or_default().push(o.clone());
        }
        m
    };
    let (a, b) = (by_step(&expected), by_step(woven));
    let mut steps: Vec<&usize> = a.keys().chain(b.keys()).collect();
    steps.sort();
    steps.dedup();
    for s in steps {
        if a.get(s) != b.get(s) {
            return Some(format!(
                "at step {s} the interpreter reports {:?}, the woven module reports {:?}",
                a.get(s).map(|v| v.as_slice()).unwrap_or_default(),
                b.get(s).map(|v| v.as_slice()).unwrap_or_default()
            ));
        }
    }
    None
}

fn describe(v: &Option<Violation>) -> String {
    match v {
        None => "the trace is accepted".into(),
        Some(v) => format!(
            "step {} ({:?}) is denied by policy `{}`: {}{}",
            v.step,
            v.phase,
            v.policy,
            v.reason,
            v.fault
                .as_ref()
                .map(|f| format!(" [{f:?}]"))
                .unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_lang::ir::{
        BinOp, Expr, Param, Pattern, Policy, State, Transition, Update, Var, Verdict as Ir,
        IR_VERSION,
    };

    fn event(name: &str, params: Vec<(&str, ParamType)>, results: Vec<ValType>) -> Event {
        Event {
            name: name.into(),
            module: "env".into(),
            field: name.into(),
            params: params
                .into_iter()
                .map(|(n, ty)| Param { name: n.into(), ty })
                .collect(),
            results,
        }
    }

    fn t(
        event: u32,
        phase: Phase,
        from: u32,
        guard: Expr,
        verdict: Ir,
        next: Option<u32>,
    ) -> Transition {
        Transition {
            event,
            phase,
            from: vec![from],
            guard,
            updates: vec![],
            verdict,
            next,
            reason: Some(format!("rule on event {event}")),
            origin: "judge.pol:1:1".into(),
        }
    }

    /// Events: `read(fd: i32) -> i32`, `send(buf: string, n: i64) -> i32`, `open(path: string)`.
    fn program(policies: Vec<Policy>) -> Program {
        Program {
            version: IR_VERSION,
            events: vec![
                event("read", vec![("fd", ParamType::I32)], vec![ValType::I32]),
                event(
                    "send",
                    vec![("buf", ParamType::Str), ("n", ParamType::I64)],
                    vec![ValType::I32],
                ),
                event("open", vec![("path", ParamType::Str)], vec![]),
            ],
            policies,
        }
    }

    fn policy(name: &str, states: u32, vars: Vec<Var>, transitions: Vec<Transition>) -> Policy {
        Policy {
            name: name.into(),
            states: (0..states)
                .map(|s| State {
                    name: format!("s{s}"),
                })
                .collect(),
            initial: 0,
            vars,
            transitions,
            allow_shared_memory_strings: false,
        }
    }

    fn call(event: u32, args: Vec<Value>, result: Option<i64>) -> TraceEvent {
        TraceEvent {
            event,
            args,
            result,
        }
    }

    fn s(text: &str) -> Value {
        Value::Str(Some(text.as_bytes().to_vec()))
    }

    /// The woven judge reaches a verdict and it equals the interpreter's.
    fn assert_agrees(program: &Program, trace: &[TraceEvent]) -> interp::Verdict {
        let reference = interp::run_trace(program, trace);
        let woven = judge(program, trace).unwrap_or_else(|e| panic!("woven judge failed: {e}"));
        if let Some(d) = disagreement(program, trace, &reference, &woven) {
            panic!("{d}\ninterpreter: {reference:?}\nwoven: {woven:?}");
        }
        reference
    }

    fn no_exfil() -> Program {
        program(vec![policy(
            "no_exfil",
            2,
            vec![],
            vec![
                t(0, Phase::Pre, 0, Expr::Bool(true), Ir::Allow, Some(1)),
                t(1, Phase::Pre, 1, Expr::Bool(true), Ir::Deny, None),
            ],
        )])
    }

    #[test]
    fn driver_module_validates() {
        let trace = [
            call(1, vec![s("hello"), Value::Int(5)], Some(5)),
            call(2, vec![Value::Str(None)], None),
        ];
        let d = driver(&no_exfil(), &trace).unwrap();
        wasmparser::Validator::new()
            .validate_all(&d.wasm)
            .expect("the driver validates");
    }

    #[test]
    fn accepted_trace_is_accepted_by_both_judges() {
        let trace = [
            call(1, vec![s("hi"), Value::Int(2)], Some(2)),
            call(0, vec![Value::Int(3)], Some(10)),
        ];
        assert!(assert_agrees(&no_exfil(), &trace).accepted());
    }

    #[test]
    fn pre_phase_deny_is_found_at_the_same_step() {
        let trace = [
            call(0, vec![Value::Int(3)], Some(10)),
            call(0, vec![Value::Int(3)], Some(10)),
            call(1, vec![s("secret"), Value::Int(6)], Some(6)),
            call(1, vec![s("more"), Value::Int(4)], Some(4)),
        ];
        let v = assert_agrees(&no_exfil(), &trace);
        assert_eq!(v.violation.map(|v| v.step), Some(3));
    }

    #[test]
    fn post_phase_deny_on_the_result_is_found() {
        let p = program(vec![policy(
            "short_reads",
            1,
            vec![],
            vec![t(
                0,
                Phase::Post,
                0,
                Expr::Binary(BinOp::Gt, Box::new(Expr::Result), Box::new(Expr::Int(100))),
                Ir::Deny,
                None,
            )],
        )]);
        let trace = [
            call(0, vec![Value::Int(0)], Some(5)),
            call(0, vec![Value::Int(0)], Some(500)),
        ];
        let v = assert_agrees(&p, &trace);
        assert_eq!(
            v.violation.map(|v| (v.step, v.phase)),
            Some((2, Phase::Post))
        );
    }

    #[test]
    fn suppression_value_reaches_the_caller() {
        let p = program(vec![policy(
            "no_send",
            1,
            vec![],
            vec![t(
                1,
                Phase::Pre,
                0,
                Expr::Bool(true),
                Ir::Suppress(Some(-76)),
                None,
            )],
        )]);
        let trace = [
            call(1, vec![s("x"), Value::Int(1)], Some(1)),
            call(0, vec![Value::Int(1)], Some(1)),
        ];
        let v = assert_agrees(&p, &trace);
        assert_eq!(v.observations.len(), 1);
    }

    #[test]
    fn audits_are_reported_per_step() {
        let p = program(vec![policy(
            "watch",
            1,
            vec![],
            vec![t(
                2,
                Phase::Pre,
                0,
                Expr::Str(0, Pattern::Glob("/etc/**".into())),
                Ir::Audit,
                None,
            )],
        )]);
        let trace = [
            call(2, vec![s("/etc/passwd")], None),
            call(2, vec![s("/tmp/x")], None),
        ];
        let v = assert_agrees(&p, &trace);
        assert_eq!(v.observations.len(), 1);
    }

    #[test]
    fn out_of_bounds_string_is_a_fault_in_both_judges() {
        let p = program(vec![policy(
            "paths",
            1,
            vec![],
            vec![t(
                2,
                Phase::Pre,
                0,
                Expr::Str(0, Pattern::Prefix("/tmp/".into())),
                Ir::Deny,
                None,
            )],
        )]);
        let trace = [
            call(2, vec![s("/home/u")], None),
            call(2, vec![Value::Str(None)], None),
        ];
        let v = assert_agrees(&p, &trace);
        assert!(v.violation.unwrap().fault.is_some());
    }

    #[test]
    fn variable_leaving_its_range_is_a_fault_in_both_judges() {
        let mut count = t(0, Phase::Post, 0, Expr::Bool(true), Ir::Allow, None);
        count.updates = vec![Update {
            var: 0,
            value: Expr::Binary(BinOp::Add, Box::new(Expr::Var(0)), Box::new(Expr::Int(1))),
        }];
        let p = program(vec![policy(
            "at_most_two",
            1,
            vec![Var {
                name: "n".into(),
                min: 0,
                max: 2,
                init: 0,
            }],
            vec![count],
        )]);
        let trace: Vec<_> = (0..4)
            .map(|_| call(0, vec![Value::Int(0)], Some(1)))
            .collect();
        let v = assert_agrees(&p, &trace);
        assert_eq!(v.violation.map(|v| v.step), Some(3));
    }

    #[test]
    fn first_denying_policy_in_program_order_is_reported() {
        let deny = |name: &str| {
            policy(
                name,
                1,
                vec![],
                vec![t(0, Phase::Pre, 0, Expr::Bool(true), Ir::Deny, None)],
            )
        };
        let p = program(vec![deny("first"), deny("second")]);
        let v = assert_agrees(&p, &[call(0, vec![Value::Int(1)], Some(0))]);
        assert_eq!(v.violation.unwrap().policy, "first");
    }

    #[test]
    fn a_disagreement_is_described() {
        let p = no_exfil();
        let trace = [
            call(0, vec![Value::Int(3)], None),
            call(1, vec![s("a"), Value::Int(1)], None),
        ];
        let reference = interp::run_trace(&p, &trace);
        let wrong = interp::Verdict::default();
        let msg = disagreement(&p, &trace, &reference, &wrong).expect("they differ");
        assert!(msg.contains("step 2") && msg.contains("accepted"), "{msg}");
    }
}
