//! The component judges: a trace of a policy on WASI 0.2 functions replayed by a driver
//! *component*, against a fake WASI 0.2 host, so `irm test` checks the component weaver
//! and the component host enforcement against the reference interpreter.
//!
//! * [`woven_component`]: the driver woven by the component weaver (host hooks on); the
//!   monitor instance between the driver's core code and its lowered imports decides;
//! * [`host_component`]: the driver as it is, its imports wrapped by host enforcement
//!   (`irm run --enforce host`), which decides with the interpreter.
//!
//! The driver is a command (its one export is `wasi:cli/run`, as a weave with a policy
//! that asks what a stream or descriptor is requires): `run` makes the trace's calls in
//! order, as a core module's driver does ([`super::driver`]), with the trace's
//! arguments, except handles. A component's handles are numbers the canonical ABI hands
//! out, not ones a trace can choose: the driver keeps a table from the trace's numbers to
//! the handles it received (`opens N`, `get_stdout() -> N`, `get_directories() opens N`
//! for the preopens N, N + 1, ...) and passes the handle it received where the trace
//! names N. A handle no call of the trace handed out is minted before the first call, by
//! a WASI call that makes one (`create-tcp-socket`, `create-udp-socket`,
//! `instance-network`, `get-directories`, `get-stdin`, `get-stdout`) when it is no event
//! of the program, so no monitor sees it. When the monitor follows that call (a policy
//! that asks what a descriptor or stream is), a trace that uses a handle no call handed
//! out is not replayable (the canonical ABI traps on it before any monitor sees it), nor is a
//! trace with a call after one that trapped (a trapped instance cannot be entered
//! again), a string out of bounds, more than 16 flat parameters, or a suppression (its
//! value is not observable). Such a trace is reported as not run by these judges, with
//! the reason ([`policy_lang::trace::NotApplicable`]).
//!
//! The fake host answers each call from the trace: `opens N` is `ok` with the handles it
//! hands out, a handle result (`-> N`) is a fresh handle, an integer result is that
//! integer, and anything else is the zero of its type (`err` of a `result`, an empty
//! list for `get-directories` without `opens`). Its handles are the resources
//! wasmtime-wasi uses, with the trace's number as their `rep`, so host enforcement reads
//! them as it reads real ones.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use instrumenter::manifest::{self, hook_kind};
use instrumenter::{weave, WeaveOptions};
use policy_lang::descriptors::Effect;
use policy_lang::handles::Place;
use policy_lang::interp::{
    Observation, ObservationKind, TraceEvent, Value, Verdict, Violation, World,
};
use policy_lang::ir::{EventId, Phase, Program, Verdict as Ir};
use policy_lang::trace::NotApplicable;
use policy_lang::wit;
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection, Function,
    FunctionSection, ImportSection, MemArg, Module, TypeSection, ValType,
};
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{Component, Linker, Resource, ResourceType, Val};
use wasmtime::{Store, StoreContextMut};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

use super::{shared_engine, JudgeError};
use crate::component::ComponentState;
use crate::observe::Observer;
use crate::record::StepNote;

/// Handles a trace may name: 0 ..= MAX_HANDLE.
const MAX_HANDLE: u32 = 1023;
const PAGE: u32 = 65536;
/// Where a minting call writes its result (before the handle table).
const MINT_RESULT: u32 = 16;

/// Whether `program` is judged as components: every event a transition names is a
/// WASI 0.2 catalogue function (the preview 1 events a tracking program adds for its
/// descriptor table do not count), and there is one.
pub fn applies(program: &Program) -> bool {
    let mut named = program
        .policies
        .iter()
        .flat_map(|p| &p.transitions)
        .map(|t| &program.events[t.event as usize])
        .peekable();
    named.peek().is_some() && named.all(|e| wit::find(&e.module, &e.field).is_some())
}

/// How the driver gets the handle a trace number stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// Handed out by a call of the trace.
    Call,
    /// Minted before the first call, a resource of this name (`tcp-socket`).
    Mint(String),
}

/// What replaying a trace needs: the handle numbers to mint, by resource.
struct Replay {
    mints: BTreeMap<u32, String>,
}

fn not_replayable(why: String) -> JudgeError {
    JudgeError::NotApplicable(NotApplicable(why))
}

/// Checks that `trace` can be replayed by a component, and plans the handles.
fn replay(program: &Program, world: &World, trace: &[TraceEvent]) -> Result<Replay, JudgeError> {
    if program.policies.iter().any(|p| {
        p.transitions
            .iter()
            .any(|t| matches!(t.verdict, Ir::Suppress(_)))
    }) {
        return Err(not_replayable(
            "a policy suppresses calls, and a component driver cannot observe the value its call received".into(),
        ));
    }
    let mut sources: BTreeMap<u32, Source> = BTreeMap::new();
    let mut after_trap = false;
    for (i, call) in trace.iter().enumerate() {
        let step = i + 1;
        let e = event(program, call.event, step)?;
        let f = wit::find(&e.module, &e.field)
            .ok_or_else(|| not_replayable(format!("step {step}: not a WASI 0.2 function")))?;
        if after_trap {
            return Err(not_replayable(format!(
                "step {step} follows a call that trapped, after which a component instance cannot be entered again"
            )));
        }
        if e.params.first().is_some_and(|p| p.name == "params") {
            return Err(not_replayable(format!(
                "step {step}: more than 16 flat parameters, passed through memory the trace does not describe"
            )));
        }
        for (p, v) in e.params.iter().zip(&call.args) {
            if matches!(v, Value::Str(None)) {
                return Err(not_replayable(format!(
                    "step {step}: `{}` is out of bounds, which the canonical ABI traps on",
                    p.name
                )));
            }
            let Some((_, resource)) = f.handle_params.iter().find(|(n, _)| *n == p.name) else {
                continue;
            };
            let n = match v {
                Value::Int(n) => *n,
                _ => 0,
            };
            let n = u32::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_HANDLE)
                .ok_or_else(|| not_replayable(format!("step {step}: handle {n} out of range")))?;
            if sources.contains_key(&n) {
                continue;
            }
            // A handle from nowhere: a component can only have one some call made, so
            // the driver makes it first, with a call no policy names.
            let name = resource.rsplit('.').next().unwrap_or(resource).to_string();
            let unseen = mint_call(&name).is_some_and(|(i, f, _)| {
                let module = format!("{i}@{}", wit::VERSION);
                program.event_for_import(&module, f).is_none()
            });
            if !unseen {
                let why = match mint_call(&name) {
                    Some((_, f, _)) => {
                        format!("the call that would make one ({f}) is an event of the policies")
                    }
                    None => "the driver has no call that makes one".to_string(),
                };
                return Err(not_replayable(format!(
                    "step {step}: `{}` = {n} is a `{name}` no earlier call handed out, and {why}",
                    p.name
                )));
            }
            sources.insert(n, Source::Mint(name));
        }
        if call.trapped {
            after_trap = true;
            continue;
        }
        // A dropped handle is gone: the canonical ABI traps on its later use.
        if e.field.starts_with("[resource-drop]") {
            if let Some(Value::Int(n)) = call.args.first() {
                sources.remove(&(*n as u32));
            }
        }
        for n in handed(program, world, call) {
            if n > MAX_HANDLE {
                return Err(not_replayable(format!(
                    "step {step}: handle {n} out of range"
                )));
            }
            sources.insert(n, Source::Call);
        }
    }
    let mints = sources
        .into_iter()
        .filter_map(|(n, s)| match s {
            Source::Mint(r) => Some((n, r)),
            Source::Call => None,
        })
        .collect();
    Ok(Replay { mints })
}

fn event(
    program: &Program,
    event: EventId,
    step: usize,
) -> Result<&policy_lang::ir::Event, JudgeError> {
    program
        .events
        .get(event as usize)
        .ok_or(JudgeError::UnknownEvent { step, event })
}

/// The trace numbers a successful call hands out, in the order the driver stores them.
fn handed(program: &Program, world: &World, call: &TraceEvent) -> Vec<u32> {
    let Some(e) = program.events.get(call.event as usize) else {
        return Vec::new();
    };
    let grants = policy_lang::handles::grants(e);
    match (Effect::of_import(&e.module, &e.field), call.opened) {
        (Some(Effect::OpenAt), Some(o)) => vec![o.fd],
        (Some(Effect::Preopens), Some(o)) => {
            (0..world.preopens.len() as u32).map(|k| o.fd + k).collect()
        }
        _ if grants.iter().any(|g| g.at == Place::Result) => {
            vec![call.result.unwrap_or(0) as u32]
        }
        (_, Some(o)) => (0..grants.len() as u32).map(|k| o.fd + k).collect(),
        _ => Vec::new(),
    }
}

// ---- the driver ---------------------------------------------------------------------

/// The versioned interface a component imports for an event's module (`...@0.2.x`).
fn import_module(module: &str) -> String {
    let (interface, _) = wit::split_interface(module).unwrap_or((module, None));
    format!("{interface}@{}", wit::VERSION)
}

/// The driver component for `trace`.
fn driver(
    program: &Program,
    world: &World,
    trace: &[TraceEvent],
    replay: &Replay,
) -> Result<Vec<u8>, JudgeError> {
    let inconsistent = |e: String| JudgeError::Inconsistent(format!("the driver component: {e}"));
    // Memory: [0, 4096) the trace's out-pointers; then the strings; then the handle
    // table (4 bytes per trace number); then the heap `cabi_realloc` hands out.
    let mut data: Vec<u8> = Vec::new();
    let strings_at: u32 = 4096;
    let mut max_out: u64 = 0;
    let mut steps: Vec<(EventId, Vec<Arg>)> = Vec::new();
    for (i, call) in trace.iter().enumerate() {
        let e = event(program, call.event, i + 1)?;
        let f = wit::find(&e.module, &e.field).ok_or_else(|| inconsistent("not WIT".into()))?;
        let mut args = Vec::new();
        for (p, param) in e.params.iter().enumerate() {
            let value = call.args.get(p);
            let is_handle = f.handle_params.iter().any(|(n, _)| *n == param.name);
            match param.ty {
                policy_lang::ir::ParamType::Str => {
                    let bytes = match value {
                        Some(Value::Str(Some(b))) => b.clone(),
                        _ => Vec::new(),
                    };
                    args.push(Arg::I32(strings_at as i32 + data.len() as i32));
                    args.push(Arg::I32(bytes.len() as i32));
                    data.extend_from_slice(&bytes);
                }
                ty => {
                    let bits = Value::wasm_bits(value, ty);
                    if is_handle {
                        args.push(Arg::Handle(bits as u32));
                    } else {
                        args.push(match ty {
                            policy_lang::ir::ParamType::I64 => Arg::I64(bits as i64),
                            policy_lang::ir::ParamType::F32 => Arg::F32(bits as u32),
                            policy_lang::ir::ParamType::F64 => Arg::F64(bits),
                            _ => Arg::I32(bits as i32),
                        });
                        if param.name == "retptr" {
                            max_out = max_out.max(bits as u32 as u64 + 64);
                        }
                    }
                }
            }
        }
        steps.push((call.event, args));
    }
    if max_out > strings_at as u64 {
        return Err(not_replayable(
            "a `retptr` beyond the first 4 KiB of the driver's memory".into(),
        ));
    }
    let handles_at = (strings_at + data.len() as u32).next_multiple_of(8);
    let heap_at = handles_at + 4 * (MAX_HANDLE + 1);
    let pages = heap_at.div_ceil(PAGE) + 4;

    // The events the trace calls, each imported once: import i is `used[i]`.
    let used: Vec<EventId> = trace
        .iter()
        .map(|c| c.event)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let import_of = |e: EventId| used.iter().position(|u| *u == e).unwrap_or(0) as u32;
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    for (i, &id) in used.iter().enumerate() {
        let e = &program.events[id as usize];
        types.ty().function(
            e.wasm_params().into_iter().map(core),
            e.results.iter().copied().map(core),
        );
        imports.import(
            &import_module(&e.module),
            &e.field,
            EntityType::Function(i as u32),
        );
    }
    let n_events = used.len() as u32;
    let mints: Vec<(u32, &String)> = replay.mints.iter().map(|(n, r)| (*n, r)).collect();
    let mut mint_funcs: BTreeMap<&String, (u32, Shape)> = BTreeMap::new();
    for (_, r) in &mints {
        if mint_funcs.contains_key(r) {
            continue;
        }
        let (interface, function, shape) =
            mint_call(r).ok_or_else(|| inconsistent(format!("cannot mint a `{r}`")))?;
        let ty = types.len();
        match shape {
            Shape::Ok => types.ty().function([ValType::I32, ValType::I32], []),
            Shape::Result => types.ty().function([], [ValType::I32]),
            Shape::List => types.ty().function([ValType::I32], []),
        };
        let index = n_events + mint_funcs.len() as u32;
        imports.import(
            &format!("{interface}@{}", wit::VERSION),
            function,
            EntityType::Function(ty),
        );
        mint_funcs.insert(r, (index, shape));
    }
    let n_imports = n_events + mint_funcs.len() as u32;
    let run_ty = types.len();
    types.ty().function([], [ValType::I32]);
    let realloc_ty = types.len();
    types.ty().function([ValType::I32; 4], [ValType::I32]);

    let mem = |offset: u32| MemArg {
        offset: offset as u64,
        align: 2,
        memory_index: 0,
    };
    let mut run = Function::new([(1, ValType::I32), (1, ValType::I64)]);
    let (scratch, result64) = (0u32, 1u32);
    for (n, r) in &mints {
        let (func, shape) = mint_funcs[r];
        run.instruction(&I::I32Const((handles_at + 4 * n) as i32));
        match shape {
            // create-*-socket(ipv4, retptr): the handle is at retptr + 4.
            Shape::Ok => run
                .instruction(&I::I32Const(0))
                .instruction(&I::I32Const(MINT_RESULT as i32))
                .instruction(&I::Call(func))
                .instruction(&I::I32Const(MINT_RESULT as i32))
                .instruction(&I::I32Load(mem(4))),
            Shape::Result => run.instruction(&I::Call(func)),
            // get-directories(retptr): the list's first element's handle.
            Shape::List => run
                .instruction(&I::I32Const(MINT_RESULT as i32))
                .instruction(&I::Call(func))
                .instruction(&I::I32Const(MINT_RESULT as i32))
                .instruction(&I::I32Load(mem(0)))
                .instruction(&I::I32Load(mem(0))),
        };
        run.instruction(&I::I32Store(mem(0)));
    }
    for ((event_id, args), call) in steps.iter().zip(trace) {
        let e = &program.events[*event_id as usize];
        for a in args {
            match *a {
                Arg::I32(v) => run.instruction(&I::I32Const(v)),
                Arg::I64(v) => run.instruction(&I::I64Const(v)),
                Arg::F32(v) => run.instruction(&I::F32Const(f32::from_bits(v).into())),
                Arg::F64(v) => run.instruction(&I::F64Const(f64::from_bits(v).into())),
                Arg::Handle(n) => run
                    .instruction(&I::I32Const((handles_at + 4 * n) as i32))
                    .instruction(&I::I32Load(mem(0))),
            };
        }
        run.instruction(&I::Call(import_of(*event_id)));
        // Keep the first result (a handle `-> N` hands out), drop the rest.
        for (j, t) in e.results.iter().enumerate().rev() {
            match (j, t) {
                (0, policy_lang::ir::ValType::I32) => run.instruction(&I::LocalSet(scratch)),
                (0, policy_lang::ir::ValType::I64) => run.instruction(&I::LocalSet(result64)),
                _ => run.instruction(&I::Drop),
            };
        }
        store_handed(&mut run, program, world, call, args, handles_at, scratch)?;
    }
    run.instruction(&I::I32Const(0)).instruction(&I::End);

    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut exports = ExportSection::new();
    funcs.function(run_ty);
    code.function(&run);
    exports.export(
        &format!("wasi:cli/run@{}#run", wit::VERSION),
        ExportKind::Func,
        n_imports,
    );
    funcs.function(realloc_ty);
    code.function(&crate::component::forward::realloc_body());
    exports.export("cabi_realloc", ExportKind::Func, n_imports + 1);
    exports.export("memory", ExportKind::Memory, 0);
    let (memories, globals) = crate::component::forward::heap(pages, heap_at);
    let mut datas = DataSection::new();
    if !data.is_empty() {
        datas.active(0, &ConstExpr::i32_const(strings_at as i32), data);
    }
    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&funcs)
        .section(&memories)
        .section(&globals)
        .section(&exports)
        .section(&code)
        .section(&datas);
    let mut core = module.finish();

    let (resolve, world_id) = world_for(program, &used, &mints).map_err(inconsistent)?;
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world_id,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(|e| inconsistent(format!("{e:#}")))?;
    wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| inconsistent(format!("{e:#}")))
}

use wasm_encoder::Instruction as I;

/// One core argument of a call.
#[derive(Clone, Copy, Debug)]
enum Arg {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    /// The handle the trace numbers so: loaded from the driver's table.
    Handle(u32),
}

fn core(t: policy_lang::ir::ValType) -> ValType {
    match t {
        policy_lang::ir::ValType::I32 => ValType::I32,
        policy_lang::ir::ValType::I64 => ValType::I64,
        policy_lang::ir::ValType::F32 => ValType::F32,
        policy_lang::ir::ValType::F64 => ValType::F64,
    }
}

/// After a call that hands out handles, stores each one at its trace number.
fn store_handed(
    f: &mut Function,
    program: &Program,
    world: &World,
    call: &TraceEvent,
    args: &[Arg],
    handles_at: u32,
    scratch: u32,
) -> Result<(), JudgeError> {
    if call.trapped {
        return Ok(());
    }
    let e = &program.events[call.event as usize];
    let numbers = handed(program, world, call);
    if numbers.is_empty() {
        return Ok(());
    }
    let mem = |offset: u32| MemArg {
        offset: offset as u64,
        align: 2,
        memory_index: 0,
    };
    let retptr = e
        .params
        .iter()
        .position(|p| p.name == "retptr")
        .and_then(|i| {
            // The argument index of parameter `i`: strings take two.
            let before: usize = e.params[..i]
                .iter()
                .map(|p| 1 + (p.ty == policy_lang::ir::ParamType::Str) as usize)
                .sum();
            match args.get(before) {
                Some(Arg::I32(v)) => Some(*v as u32),
                _ => None,
            }
        });
    let grants = policy_lang::handles::grants(e);
    let store_at = |f: &mut Function, n: u32, load_from: u32, offset: u32| {
        f.instruction(&I::I32Const((handles_at + 4 * n) as i32))
            .instruction(&I::I32Const(load_from as i32))
            .instruction(&I::I32Load(mem(offset)))
            .instruction(&I::I32Store(mem(0)));
    };
    match Effect::of_import(&e.module, &e.field) {
        Some(Effect::OpenAt) => {
            let at =
                retptr.ok_or_else(|| JudgeError::Inconsistent("open-at without retptr".into()))?;
            store_at(f, numbers[0], at, 4);
        }
        Some(Effect::Preopens) => {
            let at = retptr
                .ok_or_else(|| JudgeError::Inconsistent("get-directories without retptr".into()))?;
            // The list's pointer is at `retptr`; element k's handle at pointer + 12 k.
            for (k, n) in numbers.iter().enumerate() {
                f.instruction(&I::I32Const((handles_at + 4 * n) as i32))
                    .instruction(&I::I32Const(at as i32))
                    .instruction(&I::I32Load(mem(0)))
                    .instruction(&I::I32Load(mem(12 * k as u32)))
                    .instruction(&I::I32Store(mem(0)));
            }
        }
        _ => {
            for (g, n) in grants.iter().zip(&numbers) {
                match g.at {
                    Place::Result => {
                        f.instruction(&I::I32Const((handles_at + 4 * n) as i32))
                            .instruction(&I::LocalGet(scratch))
                            .instruction(&I::I32Store(mem(0)));
                    }
                    Place::Ok(off) => {
                        let at = retptr.ok_or_else(|| {
                            JudgeError::Inconsistent("a grant behind no retptr".into())
                        })?;
                        store_at(f, *n, at, off);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The catalogue's WIT, parsed once.
fn catalogue() -> &'static wit_parser::Resolve {
    static RESOLVE: OnceLock<wit_parser::Resolve> = OnceLock::new();
    RESOLVE.get_or_init(|| {
        let mut resolve = wit_parser::Resolve::default();
        for (name, text) in wit::FILES {
            resolve
                .push_str(name, text)
                .expect("the vendored WASI 0.2 WIT files parse");
        }
        resolve
    })
}

/// The driver's world: every interface of the events the trace calls (and of the calls
/// that mint handles), exporting `wasi:cli/run`.
fn world_for(
    program: &Program,
    used: &[EventId],
    mints: &[(u32, &String)],
) -> Result<(wit_parser::Resolve, wit_parser::WorldId), String> {
    let mut resolve = catalogue().clone();
    let mut interfaces: BTreeSet<String> = used
        .iter()
        .map(|e| import_module(&program.events[*e as usize].module))
        .collect();
    for (_, r) in mints {
        let (interface, _, _) = mint_call(r).ok_or_else(|| format!("cannot mint a `{r}`"))?;
        interfaces.insert(format!("{interface}@{}", wit::VERSION));
    }
    let mut text = String::from("package irm:judge;\n");
    text.push_str("world driver {\n");
    for i in &interfaces {
        text.push_str(&format!("  import {i};\n"));
    }
    text.push_str(&format!("  export wasi:cli/run@{};\n}}\n", wit::VERSION));
    let pkg = resolve
        .push_str("irm-judge.wit", &text)
        .map_err(|e| format!("{e:#}\n{text}"))?;
    let world = resolve
        .select_world(&[pkg], Some("driver"))
        .map_err(|e| format!("{e:#}"))?;
    Ok((resolve, world))
}

/// How a minting call hands out its handle.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `(param, retptr)`, a `result` whose `ok` handle is at `retptr + 4`.
    Ok,
    /// The handle is the call's result.
    Result,
    /// `(retptr)`, a list of pairs whose first element's first field is the handle.
    List,
}

/// The WASI call that makes a `name` (`tcp-socket`) out of nothing: its interface, its
/// name, and how it hands the handle out.
fn mint_call(name: &str) -> Option<(&'static str, &'static str, Shape)> {
    Some(match name {
        "tcp-socket" => (
            "wasi:sockets/tcp-create-socket",
            "create-tcp-socket",
            Shape::Ok,
        ),
        "udp-socket" => (
            "wasi:sockets/udp-create-socket",
            "create-udp-socket",
            Shape::Ok,
        ),
        "network" => (
            "wasi:sockets/instance-network",
            "instance-network",
            Shape::Result,
        ),
        "descriptor" => ("wasi:filesystem/preopens", "get-directories", Shape::List),
        "input-stream" => ("wasi:cli/stdin", "get-stdin", Shape::Result),
        "output-stream" => ("wasi:cli/stdout", "get-stdout", Shape::Result),
        _ => return None,
    })
}

// ---- the fake host ------------------------------------------------------------------

/// What the fake host saw: the events of the calls that reached it, in order.
#[derive(Default)]
struct Seen {
    calls: Vec<EventId>,
    /// (monitored call number, hook kind, code, extra) of every hook call (woven).
    hooks: Vec<(usize, i32, u32, i64)>,
}

/// A resource type the fake host hands out: wasmtime-wasi's for descriptors and streams
/// (so host enforcement reads them as real ones), one of its own for any other.
fn resource_type(name: &str, others: &mut BTreeMap<String, u32>) -> ResourceType {
    match name {
        "descriptor" => ResourceType::host::<wasmtime_wasi::filesystem::Descriptor>(),
        "input-stream" => ResourceType::host::<DynInputStream>(),
        "output-stream" => ResourceType::host::<DynOutputStream>(),
        _ => {
            let n = others.len() as u32;
            ResourceType::host_dynamic(*others.entry(name.to_string()).or_insert(n))
        }
    }
}

/// A fresh handle of resource type `ty` whose `rep` is `rep`.
fn mint(
    store: &mut StoreContextMut<'_, ComponentState>,
    ty: ResourceType,
    rep: u32,
) -> wasmtime::Result<Val> {
    let any = if ty == ResourceType::host::<wasmtime_wasi::filesystem::Descriptor>() {
        Resource::<wasmtime_wasi::filesystem::Descriptor>::new_own(rep)
            .try_into_resource_any(&mut *store)?
    } else if ty == ResourceType::host::<DynInputStream>() {
        Resource::<DynInputStream>::new_own(rep).try_into_resource_any(&mut *store)?
    } else if ty == ResourceType::host::<DynOutputStream>() {
        Resource::<DynOutputStream>::new_own(rep).try_into_resource_any(&mut *store)?
    } else {
        let Some(payload) = dynamic_payload(ty) else {
            return Err(wasmtime::Error::msg(
                "a resource the fake host did not define",
            ));
        };
        wasmtime::component::ResourceDynamic::new_own(rep, payload)
            .try_into_resource_any(&mut *store)?
    };
    Ok(Val::Resource(any))
}

/// The payload of a dynamic host resource type (the fake host numbers them from 0).
fn dynamic_payload(ty: ResourceType) -> Option<u32> {
    (0..64).find(|p| ty == ResourceType::host_dynamic(*p))
}

/// Handles a fake answer hands out: the trace numbers, in order. A handle the trace does
/// not number (the socket `accept` hands out with its streams) gets a number above any
/// a trace can name.
struct Numbers(std::vec::IntoIter<u32>);

impl Numbers {
    /// The number of the next handle of type `ty`: the trace numbers descriptors and
    /// streams (a minting call, whatever it makes).
    fn next(&mut self, ty: ResourceType, minting: bool) -> u32 {
        static SPARE: std::sync::atomic::AtomicU32 =
            std::sync::atomic::AtomicU32::new(MAX_HANDLE + 1);
        let numbered = minting
            || ty == ResourceType::host::<wasmtime_wasi::filesystem::Descriptor>()
            || ty == ResourceType::host::<DynInputStream>()
            || ty == ResourceType::host::<DynOutputStream>();
        numbered
            .then(|| self.0.next())
            .flatten()
            .unwrap_or_else(|| SPARE.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

/// The zero of `ty`, with the handles it must hold minted from `numbers`; `ok` picks a
/// `result`'s case (`None`: the error, unless only the ok case exists).
fn answer(
    store: &mut StoreContextMut<'_, ComponentState>,
    ty: &Type,
    ok: bool,
    numbers: &mut Numbers,
    minting: bool,
) -> wasmtime::Result<Val> {
    Ok(match ty {
        Type::Bool => Val::Bool(false),
        Type::S8 => Val::S8(0),
        Type::U8 => Val::U8(0),
        Type::S16 => Val::S16(0),
        Type::U16 => Val::U16(0),
        Type::S32 => Val::S32(0),
        Type::U32 => Val::U32(0),
        Type::S64 => Val::S64(0),
        Type::U64 => Val::U64(0),
        Type::Float32 => Val::Float32(0.0),
        Type::Float64 => Val::Float64(0.0),
        Type::Char => Val::Char('\0'),
        Type::String => Val::String(String::new()),
        Type::List(_) => Val::List(Vec::new()),
        Type::Record(r) => Val::Record(
            r.fields()
                .map(|f| {
                    Ok((
                        f.name.to_string(),
                        answer(store, &f.ty, ok, numbers, minting)?,
                    ))
                })
                .collect::<wasmtime::Result<_>>()?,
        ),
        Type::Tuple(t) => Val::Tuple(
            t.types()
                .map(|t| answer(store, &t, ok, numbers, minting))
                .collect::<wasmtime::Result<_>>()?,
        ),
        Type::Variant(v) => {
            // The first case that holds no handle.
            let case = v
                .cases()
                .find(|c| c.ty.as_ref().is_none_or(|t| !holds_handles(t)))
                .ok_or_else(|| wasmtime::Error::msg("no variant case without handles"))?;
            let payload = match &case.ty {
                Some(t) => Some(Box::new(answer(store, t, ok, numbers, minting)?)),
                None => None,
            };
            Val::Variant(case.name.to_string(), payload)
        }
        Type::Enum(e) => Val::Enum(e.names().next().unwrap_or_default().to_string()),
        Type::Option(_) => Val::Option(None),
        Type::Result(r) => {
            let take_ok = ok || r.err().is_none();
            let case = if take_ok { r.ok() } else { r.err() };
            let payload = match case {
                Some(t) => Some(Box::new(answer(store, &t, ok, numbers, minting)?)),
                None => None,
            };
            Val::Result(if take_ok { Ok(payload) } else { Err(payload) })
        }
        Type::Flags(_) => Val::Flags(Vec::new()),
        Type::Own(r) => {
            let n = numbers.next(*r, minting);
            mint(store, *r, n)?
        }
        other => return Err(wasmtime::Error::msg(format!("cannot make up a {other:?}"))),
    })
}

fn holds_handles(ty: &Type) -> bool {
    match ty {
        Type::Own(_) | Type::Borrow(_) => true,
        Type::List(l) => holds_handles(&l.ty()),
        Type::Record(r) => r.fields().any(|f| holds_handles(&f.ty)),
        Type::Tuple(t) => t.types().any(|t| holds_handles(&t)),
        Type::Variant(v) => v.cases().any(|c| c.ty.as_ref().is_some_and(holds_handles)),
        Type::Option(o) => holds_handles(&o.ty()),
        Type::Result(r) => {
            r.ok().as_ref().is_some_and(holds_handles)
                || r.err().as_ref().is_some_and(holds_handles)
        }
        _ => false,
    }
}

/// The trace's answer to the call of step `call` of `e`: see the module docs.
fn trace_answer(
    store: &mut StoreContextMut<'_, ComponentState>,
    program: &Program,
    world: &World,
    call: &TraceEvent,
    ty: &wasmtime::component::types::ComponentFunc,
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let e = &program.events[call.event as usize];
    let numbers = handed(program, world, call);
    let Some(rt) = ty.results().next() else {
        return Ok(());
    };
    let Some(out) = results.first_mut() else {
        return Ok(());
    };
    *out = match Effect::of_import(&e.module, &e.field) {
        Some(Effect::Preopens) => {
            let Type::List(list) = &rt else {
                return Err(wasmtime::Error::msg("get-directories returns no list"));
            };
            let Type::Tuple(pair) = list.ty() else {
                return Err(wasmtime::Error::msg("get-directories returns no pairs"));
            };
            let Some(Type::Own(descriptor)) = pair.types().next() else {
                return Err(wasmtime::Error::msg(
                    "get-directories returns no descriptors",
                ));
            };
            let mut items = Vec::new();
            for (n, name) in numbers.iter().zip(&world.preopens) {
                items.push(Val::Tuple(vec![
                    mint(store, descriptor, *n)?,
                    Val::String(String::from_utf8_lossy(name).into_owned()),
                ]));
            }
            Val::List(items)
        }
        _ => match &rt {
            Type::Own(r) => mint(store, *r, call.result.unwrap_or(0) as u32)?,
            Type::Result(_) => answer(
                store,
                &rt,
                call.opened.is_some(),
                &mut Numbers(numbers.into_iter()),
                false,
            )?,
            t => crate::component::host::integer(t, call.result.unwrap_or(0)).map_or_else(
                || answer(store, t, false, &mut Numbers(Vec::new().into_iter()), false),
                Ok,
            )?,
        },
    };
    Ok(())
}

/// The trap a fake import raises at a step the trace says traps.
#[derive(Debug, thiserror::Error)]
#[error("the import trapped, as the trace says")]
struct TraceTrap;

/// A linker holding the fake host for `component`'s imports: every function of its
/// imported interfaces answers the trace, in order (`step` counts the calls of trace
/// events that reached it); the minting calls answer the numbers `replay` mints.
fn fake_host(
    component: &Component,
    program: &Arc<Program>,
    world: &World,
    trace: &Arc<Vec<TraceEvent>>,
    replay: &Replay,
    seen: &Arc<Mutex<Seen>>,
) -> Result<Linker<ComponentState>, JudgeError> {
    let engine = shared_engine();
    let mut linker: Linker<ComponentState> = Linker::new(engine);
    let mut others = BTreeMap::new();
    // Which trace step each call of an event answers: the next one of that event not
    // yet answered, in order (a call the monitor denied or did not let through never
    // comes; the next call of the same event is for a later step).
    let next: Arc<Mutex<usize>> = Arc::new(Mutex::new(0));
    let mut minted: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (n, r) in &replay.mints {
        minted.entry(r.clone()).or_default().push(*n);
    }
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if name == instrumenter::component::HOOK_INTERFACE {
            continue;
        }
        let mut inst = linker.instance(name).map_err(JudgeError::Wasm)?;
        for (field, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::Resource(_) => {
                    let ty = resource_type(field, &mut others);
                    inst.resource(field, ty, |_, _| Ok(()))
                        .map_err(JudgeError::Wasm)?;
                }
                ComponentItem::ComponentFunc(_) => {
                    let event = program.event_for_import(name, field);
                    let mint_queue: Option<Arc<Mutex<std::vec::IntoIter<u32>>>> = event
                        .is_none()
                        .then(|| {
                            minted
                                .iter()
                                .find(|(r, _)| {
                                    mint_call(r)
                                        .is_some_and(|(i, f, _)| f == field && name.starts_with(i))
                                })
                                .map(|(_, ns)| Arc::new(Mutex::new(ns.clone().into_iter())))
                        })
                        .flatten();
                    let (program, world, trace, seen, next) = (
                        Arc::clone(program),
                        world.clone(),
                        Arc::clone(trace),
                        Arc::clone(seen),
                        Arc::clone(&next),
                    );
                    let function = format!("{name}.{field}");
                    inst.func_new(field, move |mut store, ty, params, results| {
                        // A host lent handles gives them back before it returns.
                        for b in crate::component::host::borrows(params) {
                            b.resource_drop(&mut store)?;
                        }
                        if let Some(queue) = &mint_queue {
                            let n = queue.lock().unwrap().next().ok_or_else(|| {
                                wasmtime::Error::msg(format!("{function}: minted too often"))
                            })?;
                            let rt = ty.results().next();
                            if let (Some(rt), Some(out)) = (rt, results.first_mut()) {
                                let mut numbers = Numbers(vec![n].into_iter());
                                *out = match &rt {
                                    // get-directories: one preopen, of unknown place.
                                    Type::List(l) => Val::List(vec![answer(
                                        &mut store,
                                        &l.ty(),
                                        true,
                                        &mut numbers,
                                        true,
                                    )?]),
                                    rt => answer(&mut store, rt, true, &mut numbers, true)?,
                                };
                            }
                            return Ok(());
                        }
                        let Some(event) = event else {
                            return Err(wasmtime::Error::msg(format!(
                                "{function}: the driver called a function no trace step names"
                            )));
                        };
                        let step = {
                            let mut next = next.lock().unwrap();
                            let found = trace
                                .iter()
                                .enumerate()
                                .skip(*next)
                                .find(|(_, c)| c.event == event)
                                .map(|(i, _)| i);
                            let i = found.ok_or_else(|| {
                                wasmtime::Error::msg(format!(
                                    "{function}: called after every step of it was answered"
                                ))
                            })?;
                            *next = i + 1;
                            i
                        };
                        seen.lock().unwrap().calls.push(event);
                        let call = &trace[step];
                        if call.trapped {
                            return Err(wasmtime::Error::new(TraceTrap));
                        }
                        trace_answer(&mut store, &program, &world, call, &ty, results)
                    })
                    .map_err(JudgeError::Wasm)?;
                }
                _ => {}
            }
        }
    }
    Ok(linker)
}

// ---- the judges -----------------------------------------------------------------------

/// The trace steps (1-based) whose calls the monitor decides, in order: the k-th call a
/// monitor begins is the k-th of these. The monitor judges the driver as it sees the
/// policies: restricted to the events the driver imports, those the trace calls. Drops
/// count when the monitor sees them (woven: it wraps `resource.drop`; host enforcement
/// never sees one).
fn monitored_steps(program: &Program, trace: &[TraceEvent], drops: bool) -> Vec<usize> {
    let called: BTreeSet<EventId> = trace.iter().map(|c| c.event).collect();
    let view = program
        .restricted_to(|e| called.contains(&e))
        .for_component();
    trace
        .iter()
        .enumerate()
        .filter(|(_, c)| view.monitors(c.event))
        .filter(|(_, c)| {
            drops
                || !program.events[c.event as usize]
                    .field
                    .starts_with("[resource-drop]")
        })
        .map(|(i, _)| i + 1)
        .collect()
}

fn instantiate_and_run(
    linker: &Linker<ComponentState>,
    store: &mut Store<ComponentState>,
    component: &Component,
) -> Result<wasmtime::Result<()>, JudgeError> {
    let instance = linker
        .instantiate(&mut *store, component)
        .map_err(JudgeError::Wasm)?;
    let command = wasmtime_wasi::p2::bindings::sync::Command::new(&mut *store, &instance)
        .map_err(JudgeError::Wasm)?;
    Ok(match command.wasi_cli_run().call_run(&mut *store) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(())) => Err(wasmtime::Error::msg("the driver's run returned an error")),
        Err(e) => Err(e),
    })
}

fn new_store() -> Store<ComponentState> {
    Store::new(
        shared_engine(),
        ComponentState {
            ctx: wasmtime_wasi::WasiCtxBuilder::new().build(),
            table: wasmtime::component::ResourceTable::new(),
        },
    )
}

/// A trace being replayed: its plan, and what the fake host shares with the judge.
struct Replaying {
    replay: Replay,
    program: Arc<Program>,
    trace: Arc<Vec<TraceEvent>>,
    seen: Arc<Mutex<Seen>>,
}

impl Replaying {
    /// Plans the replay of `trace` (or says why it cannot be replayed) and builds its
    /// driver component.
    fn new(
        program: &Program,
        world: &World,
        trace: &[TraceEvent],
    ) -> Result<(Replaying, Vec<u8>), JudgeError> {
        let replay = replay(program, world, trace)?;
        let wasm = driver(program, world, trace, &replay)?;
        let run = Replaying {
            replay,
            program: Arc::new(program.clone()),
            trace: Arc::new(trace.to_vec()),
            seen: Arc::default(),
        };
        Ok((run, wasm))
    }

    fn fake_host(
        &self,
        component: &Component,
        world: &World,
    ) -> Result<Linker<ComponentState>, JudgeError> {
        fake_host(
            component,
            &self.program,
            world,
            &self.trace,
            &self.replay,
            &self.seen,
        )
    }
}

/// Runs `trace` through the driver component woven with the policies and reports the
/// woven monitor's verdict.
pub fn woven_component(
    program: &Program,
    world: &World,
    trace: &[TraceEvent],
) -> Result<Verdict, JudgeError> {
    let (run, wasm) = Replaying::new(program, world, trace)?;
    let woven = weave(
        &wasm,
        program,
        &WeaveOptions {
            host_hooks: true,
            ..WeaveOptions::default()
        },
    )?;
    // No policy can act on the driver's calls: the weave left it as it was, and nothing
    // decides them.
    let manifest = manifest::read(&woven.wasm)?;
    let component = Component::new(shared_engine(), &woven.wasm).map_err(JudgeError::Wasm)?;
    let mut linker = run.fake_host(&component, world)?;
    let seen = &run.seen;
    if let Some(hooks) = manifest.as_ref().and_then(|m| m.hooks.as_ref()) {
        let mut inst = linker
            .instance(instrumenter::component::HOOK_INTERFACE)
            .map_err(JudgeError::Wasm)?;
        let begun = Arc::new(Mutex::new(0usize));
        let events: BTreeSet<u32> = hooks.hooks.iter().map(|h| h.event).collect();
        for event in events {
            let (seen, begun) = (Arc::clone(seen), Arc::clone(&begun));
            inst.func_new(
                &instrumenter::component::hook_name(event),
                move |_, _, params, _| {
                    let int = |v: &Val| match v {
                        Val::S32(x) => *x as i64,
                        Val::S64(x) => *x,
                        _ => 0,
                    };
                    let ints = params
                        .iter()
                        .take_while(|v| !matches!(v, Val::List(_)))
                        .count();
                    let kind = params.first().map(int).unwrap_or(-1) as i32;
                    let code = params.get(1).map(int).unwrap_or(0) as u32;
                    let extra = params.get(ints.saturating_sub(1)).map(int).unwrap_or(0);
                    let mut begun = begun.lock().unwrap();
                    if kind == hook_kind::PRE {
                        *begun += 1;
                    }
                    seen.lock().unwrap().hooks.push((*begun, kind, code, extra));
                    Ok(())
                },
            )
            .map_err(JudgeError::Wasm)?;
        }
    }
    let mut store = new_store();
    let outcome = instantiate_and_run(&linker, &mut store, &component)?;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let steps = monitored_steps(program, trace, true);
    let step_of = |k: usize| steps.get(k.wrapping_sub(1)).copied().unwrap_or(0);
    let hooks: Vec<(usize, i32, u32, i64)> = seen
        .hooks
        .iter()
        .map(|&(k, kind, code, extra)| (step_of(k), kind, code, extra))
        .collect();
    let verdict = match &manifest {
        Some(m) => super::woven::verdict_from_hook_list(program, m, &hooks, |_| 0)?,
        None => Verdict::default(),
    };
    check_run(program, trace, &verdict, &outcome, &seen.calls)?;
    Ok(verdict)
}

/// Runs `trace` through the driver component under host enforcement and reports the
/// interpreter's verdict as the wrappers around its imports reached it.
pub fn host_component(
    program: &Program,
    world: &World,
    trace: &[TraceEvent],
) -> Result<Verdict, JudgeError> {
    let (run, wasm) = Replaying::new(program, world, trace)?;
    let component = Component::new(shared_engine(), &wasm).map_err(JudgeError::Wasm)?;
    // The wrappers replace, in one copy of the fake host, the functions they forward to
    // in the other.
    let real = run.fake_host(&component, world)?;
    let mut linker = real.clone();
    let observer = Arc::new(Mutex::new(Observer::new(
        Arc::clone(&run.program),
        None,
        true,
    )));
    let mut store = new_store();
    crate::component::host::wrap_imports(
        &mut linker,
        &mut store,
        &component,
        program,
        &observer,
        &real,
    )
    .map_err(|e| JudgeError::Host(Box::new(e)))?;
    let outcome = instantiate_and_run(&linker, &mut store, &component)?;
    let mut obs = observer.lock().unwrap_or_else(|p| p.into_inner());
    // The denied call, still in progress, is recorded last.
    obs.finish();
    let steps = monitored_steps(program, trace, false);
    let recorded = obs.recorded.as_deref().unwrap_or(&[]);
    let policy = |p: usize| {
        program
            .policies
            .get(p)
            .map_or_else(|| format!("#{p}"), |p| p.name.clone())
    };
    let mut observations = Vec::new();
    for (k, s) in recorded.iter().enumerate() {
        let step = steps.get(k).copied().unwrap_or(0);
        for n in &s.notes {
            if let StepNote::Audit {
                policy: p,
                phase,
                reason,
            } = n
            {
                observations.push(Observation {
                    step,
                    phase: *phase,
                    policy: policy(*p),
                    kind: ObservationKind::Audit,
                    reason: reason.clone(),
                });
            }
        }
    }
    let violation = obs.violation.as_ref().map(|v| Violation {
        step: steps
            .get(recorded.len().saturating_sub(1))
            .copied()
            .unwrap_or(0),
        phase: v.phase,
        policy: v.policy.clone(),
        reason: v.reason.clone(),
        fault: v.fault.clone(),
    });
    let verdict = Verdict {
        violation,
        observations,
    };
    let calls = run.seen.lock().unwrap().calls.clone();
    // The forwarder's calls reach the fake host that `real` holds; both share `seen`.
    check_run(program, trace, &verdict, &outcome, &calls)?;
    Ok(verdict)
}

/// The run ended in an error exactly when the verdict has a violation, and the calls the
/// monitor let through, and only they, reached the host, in order.
fn check_run(
    program: &Program,
    trace: &[TraceEvent],
    verdict: &Verdict,
    outcome: &wasmtime::Result<()>,
    calls: &[EventId],
) -> Result<(), JudgeError> {
    // A trace whose last call traps ends the run with that trap, and no deny.
    let trapped = outcome
        .as_ref()
        .err()
        .is_some_and(|e| e.downcast_ref::<TraceTrap>().is_some());
    match (outcome, &verdict.violation) {
        (Ok(()), Some(v)) => {
            return Err(JudgeError::Inconsistent(format!(
                "a deny was reported at step {} but the driver ran to the end",
                v.step
            )))
        }
        (Err(e), None) if !(trapped && trace.last().is_some_and(|c| c.trapped)) => {
            return Err(JudgeError::Inconsistent(format!(
                "the driver failed without a deny: {e:#}"
            )))
        }
        (Err(e), Some(_)) if trapped => {
            return Err(JudgeError::Inconsistent(format!(
                "a deny was reported but the run ended in the trace's trap: {e:#}"
            )))
        }
        _ => {}
    }
    let last = match &verdict.violation {
        Some(v) if v.phase == Phase::Pre => v.step.saturating_sub(1),
        Some(v) => v.step,
        None => trace.len(),
    };
    // A drop is no call into the host: its resource's destructor runs.
    let expected: Vec<EventId> = trace[..last.min(trace.len())]
        .iter()
        .map(|c| c.event)
        .filter(|e| {
            !program.events[*e as usize]
                .field
                .starts_with("[resource-drop]")
        })
        .collect();
    if expected != calls {
        let name = |e: &EventId| {
            program
                .events
                .get(*e as usize)
                .map_or("?", |e| e.name.as_str())
                .to_string()
        };
        return Err(JudgeError::Inconsistent(format!(
            "the host received {:?}, but the monitor's decisions let through {:?}",
            calls.iter().map(name).collect::<Vec<_>>(),
            expected.iter().map(name).collect::<Vec<_>>()
        )));
    }
    Ok(())
}
