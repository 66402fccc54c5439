//! Planning: which policies this module can violate, which import declarations get a
//! wrapper, and where every new function, global, memory and data segment goes.
//!
//! Index layout of the woven module (nothing existing moves in the default mode):
//! * functions: original imports `0..I`, hook imports `I..I+H` (host hooks only),
//!   original defined functions shifted by `H`, then one wrapper per wrapped import
//!   declaration, then the string matcher (when a policy tests strings);
//! * globals: original ones, then `irm:violation`, then per effective policy its state
//!   and its variables;
//! * memories: original ones, then the private monitor memory (DFA tables and the audit
//!   save area) when needed;
//! * data segments: original ones, then the passive message segment, then the active
//!   DFA segment of the private memory;
//! * types: original ones, then the hook types and the matcher type.
use std::collections::{BTreeSet, HashMap};

use policy_lang::ir::{
    BinOp, EventId, Expr, ParamType, Phase, Program, Transition, UnOp, ValType, Verdict,
};

use crate::manifest::MonitorGlobals;
use crate::module::ModuleInfo;
use crate::report::{ElidedEvent, PolicyReport};
use crate::{WeaveError, WeaveOptions};

pub(crate) struct WrapperPlan {
    pub import: u32,
    pub event: EventId,
    pub index: u32,
    /// The import's type index, which the wrapper shares.
    pub type_index: u32,
}

pub(crate) struct HookPlan {
    pub event: EventId,
    pub field: String,
    pub func_index: u32,
    pub type_index: u32,
    pub params: Vec<wasm_encoder::ValType>,
}

pub(crate) struct Plan {
    pub effective: Vec<bool>,
    pub policy_reports: Vec<PolicyReport>,
    pub wrappers: Vec<WrapperPlan>,
    /// By original function index: the wrapper a reference to it is redirected to.
    pub redirect: Vec<Option<u32>>,
    /// Hook imports; empty without host hooks.
    pub hooks: Vec<HookPlan>,
    pub hook_of_event: HashMap<EventId, u32>,
    /// Number of hook imports: how far defined functions move.
    pub shift: u32,
    pub num_func_imports: u32,
    pub matcher_type: u32,
    pub matcher_index: u32,
    pub globals: MonitorGlobals,
    /// Initial values of the new globals after `irm:violation`, in index order.
    pub state_inits: Vec<(wasm_encoder::ValType, i64)>,
    /// The module's own `fd_write` usable for messages (default mode only).
    pub fd_write: Option<u32>,
    pub private_memory: u32,
    pub message_segment: u32,
}

impl Plan {
    pub fn any(&self) -> bool {
        !self.wrappers.is_empty()
    }

    /// The wrapper references to original function `f` are redirected to, if any.
    pub fn wrapper_of(&self, f: u32) -> Option<u32> {
        self.redirect.get(f as usize).copied().flatten()
    }

    /// New index of original function `f` (references to wrapped imports excluded).
    pub fn shifted(&self, f: u32) -> u32 {
        if f < self.num_func_imports {
            f
        } else {
            f + self.shift
        }
    }
}

pub(crate) fn describe(ty: &[ValType]) -> String {
    let names: Vec<&str> = ty
        .iter()
        .map(|t| match t {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
        })
        .collect();
    format!("({})", names.join(", "))
}

fn describe_wasm(ty: &[wasmparser::ValType]) -> String {
    let names: Vec<String> = ty.iter().map(|t| t.to_string()).collect();
    format!("({})", names.join(", "))
}

pub(crate) fn to_wasm(t: ValType) -> wasm_encoder::ValType {
    match t {
        ValType::I32 => wasm_encoder::ValType::I32,
        ValType::I64 => wasm_encoder::ValType::I64,
        ValType::F32 => wasm_encoder::ValType::F32,
        ValType::F64 => wasm_encoder::ValType::F64,
    }
}

fn same_type(ir: &[ValType], wasm: &[wasmparser::ValType]) -> bool {
    ir.len() == wasm.len()
        && ir.iter().zip(wasm).all(|(a, b)| {
            matches!(
                (a, b),
                (ValType::I32, wasmparser::ValType::I32)
                    | (ValType::I64, wasmparser::ValType::I64)
                    | (ValType::F32, wasmparser::ValType::F32)
                    | (ValType::F64, wasmparser::ValType::F64)
            )
        })
}

/// Whether evaluating `e` can fail (string bounds, division by zero).
pub(crate) fn may_fault(e: &Expr) -> bool {
    match e {
        Expr::Str(..) => true,
        Expr::Binary(op, a, b) => {
            let div =
                matches!(op, BinOp::Div | BinOp::Rem) && !matches!(**b, Expr::Int(n) if n != 0);
            div || may_fault(a) || may_fault(b)
        }
        Expr::Unary(_, a) => may_fault(a),
        _ => false,
    }
}

pub(crate) fn reads_strings(e: &Expr) -> bool {
    match e {
        Expr::Str(..) => true,
        Expr::Binary(_, a, b) => reads_strings(a) || reads_strings(b),
        Expr::Unary(_, a) => reads_strings(a),
        _ => false,
    }
}

/// Why a transition makes its policy effective, if it does.
fn effect(t: &Transition) -> Option<&'static str> {
    match t.verdict {
        Verdict::Deny => return Some("denies"),
        Verdict::Suppress(_) => return Some("suppresses"),
        Verdict::Audit => return Some("audits"),
        Verdict::Allow => {}
    }
    if !t.updates.is_empty() {
        return Some("updates variables on");
    }
    if may_fault(&t.guard) {
        return Some("has a guard that may fault on");
    }
    None
}

/// Checks every index of the program, so code generation can index without panicking.
pub(crate) fn check_program(program: &Program) -> Result<(), WeaveError> {
    let bad = |message: String| Err(WeaveError::BadProgram { message });
    for (pi, p) in program.policies.iter().enumerate() {
        let ns = p.states.len() as u32;
        if p.initial >= ns {
            return bad(format!(
                "policy {pi} ({}) has initial state {} of {ns}",
                p.name, p.initial
            ));
        }
        for v in &p.vars {
            if !(v.min <= v.init && v.init <= v.max) {
                return bad(format!(
                    "policy {}: variable {} starts outside its range",
                    p.name, v.name
                ));
            }
        }
        for (ti, t) in p.transitions.iter().enumerate() {
            let Some(event) = program.events.get(t.event as usize) else {
                return bad(format!(
                    "policy {} transition {ti} names event {}",
                    p.name, t.event
                ));
            };
            if t.from.is_empty() || t.from.iter().chain(t.next.iter()).any(|&s| s >= ns) {
                return bad(format!(
                    "policy {} transition {ti} ({}) names a missing state",
                    p.name, t.origin
                ));
            }
            if t.updates.iter().any(|u| u.var as usize >= p.vars.len()) {
                return bad(format!(
                    "policy {} transition {ti} ({}) updates a missing variable",
                    p.name, t.origin
                ));
            }
            let exprs = std::iter::once(&t.guard).chain(t.updates.iter().map(|u| &u.value));
            for e in exprs {
                check_expr(e, event, p.vars.len(), t.phase).map_err(|m| {
                    WeaveError::BadProgram {
                        message: format!("policy {} transition {ti} ({}): {m}", p.name, t.origin),
                    }
                })?;
            }
        }
    }
    Ok(())
}

fn check_expr(
    e: &Expr,
    ev: &policy_lang::ir::Event,
    nvars: usize,
    phase: Phase,
) -> Result<(), String> {
    match e {
        Expr::Bool(_) | Expr::Int(_) => Ok(()),
        Expr::Param(p) => match ev.params.get(*p as usize).map(|p| p.ty) {
            Some(ParamType::I32 | ParamType::I64) => Ok(()),
            Some(_) => Err(format!("parameter {p} of {} is not an integer", ev.name)),
            None => Err(format!("event {} has no parameter {p}", ev.name)),
        },
        Expr::Str(p, _) => match ev.params.get(*p as usize).map(|p| p.ty) {
            Some(ParamType::Str) => Ok(()),
            _ => Err(format!("parameter {p} of {} is not a string", ev.name)),
        },
        Expr::Result => {
            if phase != Phase::Post {
                Err("`result` used before the call".into())
            } else if ev.results.len() != 1 || !matches!(ev.results[0], ValType::I32 | ValType::I64)
            {
                Err(format!(
                    "`result` needs one integer result, {} returns {}",
                    ev.name,
                    describe(&ev.results)
                ))
            } else {
                Ok(())
            }
        }
        Expr::Var(v) if (*v as usize) < nvars => Ok(()),
        Expr::Var(v) => Err(format!("variable {v} does not exist")),
        Expr::Unary(_, a) => check_expr(a, ev, nvars, phase),
        Expr::Binary(_, a, b) => {
            check_expr(a, ev, nvars, phase)?;
            check_expr(b, ev, nvars, phase)
        }
    }
}

/// Whether an expression is boolean-typed (the IR is well-typed; this tells which).
pub(crate) fn is_bool(e: &Expr) -> bool {
    match e {
        Expr::Bool(_) | Expr::Str(..) => true,
        Expr::Unary(UnOp::Not, _) => true,
        Expr::Binary(op, _, _) => matches!(
            op,
            BinOp::Eq
                | BinOp::Ne
                | BinOp::Lt
                | BinOp::Le
                | BinOp::Gt
                | BinOp::Ge
                | BinOp::And
                | BinOp::Or
        ),
        _ => false,
    }
}

/// Plans the weave of `program` into the module `info` describes, in five steps: bind
/// the imports to events, elide what this module cannot violate, refuse what cannot be
/// monitored safely, then lay out the new functions and the new globals.
pub(crate) fn plan(
    info: &ModuleInfo,
    program: &Program,
    options: &WeaveOptions,
) -> Result<Plan, WeaveError> {
    check_program(program)?;
    let decls = bind_imports(info, program)?;
    let mut elision = elide(program, &decls);
    refuse_unsafe(info, program, options, &elision)?;
    let functions = lay_out_functions(info, program, options, &mut elision);
    let (globals, state_inits) = lay_out_globals(info, program, &elision.effective);
    Ok(Plan {
        effective: elision.effective,
        policy_reports: elision.reports,
        wrappers: functions.wrappers,
        redirect: functions.redirect,
        hooks: functions.hooks,
        hook_of_event: functions.hook_of_event,
        shift: functions.shift,
        num_func_imports: info.func_imports.len() as u32,
        matcher_type: functions.matcher_type,
        matcher_index: functions.matcher_index,
        globals,
        state_inits,
        fd_write: message_fd_write(info, options),
        private_memory: info.memories.len() as u32,
        message_segment: info.num_data,
    })
}

/// Every function import declaration of every event (by event id), after checking each
/// one's kind and exact signature against the event.
fn bind_imports(info: &ModuleInfo, program: &Program) -> Result<Vec<Vec<u32>>, WeaveError> {
    let origin_of = |event: EventId| {
        program
            .policies
            .iter()
            .flat_map(|p| p.transitions.iter())
            .find(|t| t.event == event)
            .map(|t| t.origin.clone())
            .unwrap_or_else(|| "an unused event declaration".into())
    };
    let mut decls: Vec<Vec<u32>> = vec![Vec::new(); program.events.len()];
    for imp in &info.func_imports {
        let Some(e) = program.event_for_import(imp.module, imp.field) else {
            continue;
        };
        let event = &program.events[e as usize];
        let ok = info.func_type(imp.type_index).filter(|ft| {
            same_type(&event.wasm_params(), ft.params()) && same_type(&event.results, ft.results())
        });
        if ok.is_none() {
            let found = match info.func_type(imp.type_index) {
                Some(ft) => format!(
                    "{} -> {}",
                    describe_wasm(ft.params()),
                    describe_wasm(ft.results())
                ),
                None => format!("non-function type {}", imp.type_index),
            };
            return Err(WeaveError::SignatureMismatch {
                import: event.import_name(),
                func_index: imp.func_index,
                event: event.name.clone(),
                expected: format!(
                    "{} -> {}",
                    describe(&event.wasm_params()),
                    describe(&event.results)
                ),
                found,
                origin: origin_of(e),
            });
        }
        decls[e as usize].push(imp.func_index);
    }
    for imp in &info.other_imports {
        if let Some(e) = program.event_for_import(imp.module, imp.field) {
            let event = &program.events[e as usize];
            return Err(WeaveError::NotAFunction {
                import: event.import_name(),
                kind: imp.kind,
                event: event.name.clone(),
                origin: origin_of(e),
            });
        }
    }
    Ok(decls)
}

/// Which policies and events static elision keeps.
struct Elision {
    /// Per policy: whether this module can violate it (or it audits, suppresses, updates).
    effective: Vec<bool>,
    /// Per policy, with what was elided and why (wrapped imports are added later).
    reports: Vec<PolicyReport>,
    /// The events whose imports get wrappers.
    wrapped_events: BTreeSet<EventId>,
}

/// Elides every policy none of whose imported events can lead to anything but an allow
/// without effects, and every event the module does not import.
fn elide(program: &Program, decls: &[Vec<u32>]) -> Elision {
    let mut effective = vec![false; program.policies.len()];
    let mut reports = Vec::new();
    let mut wrapped_events = BTreeSet::new();
    for (pi, p) in program.policies.iter().enumerate() {
        let mentioned: BTreeSet<EventId> = p.transitions.iter().map(|t| t.event).collect();
        let why = p
            .transitions
            .iter()
            .filter(|t| !decls[t.event as usize].is_empty())
            .find_map(|t| {
                effect(t).map(|w| format!("{w} {}", program.events[t.event as usize].name))
            });
        let mut elided = Vec::new();
        for &e in &mentioned {
            let ev = &program.events[e as usize];
            if decls[e as usize].is_empty() {
                elided.push(ElidedEvent {
                    event: ev.name.clone(),
                    reason: format!("{} is not imported", ev.import_name()),
                });
            } else if why.is_none() {
                elided.push(ElidedEvent {
                    event: ev.name.clone(),
                    reason: "the policy cannot be violated by this module".into(),
                });
            } else {
                wrapped_events.insert(e);
            }
        }
        effective[pi] = why.is_some();
        let why = why.unwrap_or_else(|| {
            if mentioned.iter().all(|&e| decls[e as usize].is_empty()) {
                "none of its events is imported".into()
            } else {
                "on the imported events it only allows, without updates or guards that may fault"
                    .into()
            }
        });
        reports.push(PolicyReport {
            name: p.name.clone(),
            effective: effective[pi],
            why,
            wrapped_imports: Vec::new(),
            redirected: Default::default(),
            elided_events: elided,
        });
    }
    Elision {
        effective,
        reports,
        wrapped_events,
    }
}

/// Refuses a module the kept policies cannot be enforced in safely: one that spawns
/// threads (each would get its own monitor), one that uses the names irm adds, one whose
/// memory 0 string guards cannot read (or that other threads can change).
fn refuse_unsafe(
    info: &ModuleInfo,
    program: &Program,
    options: &WeaveOptions,
    elision: &Elision,
) -> Result<(), WeaveError> {
    let enforced: Vec<&str> = program
        .policies
        .iter()
        .zip(&elision.effective)
        .filter(|(_, e)| **e)
        .map(|(p, _)| p.name.as_str())
        .collect();
    if !enforced.is_empty() {
        let spawn = info.func_imports.iter().find(|i| {
            matches!(
                (i.module, i.field),
                ("wasi", "thread-spawn")
                    | ("wasi", "thread_spawn")
                    | ("wasi_snapshot_preview1", "thread_spawn")
                    | ("wasi_snapshot_preview1", "thread-spawn")
            )
        });
        if let Some(i) = spawn {
            return Err(WeaveError::ThreadSpawn {
                import: format!("{}.{}", i.module, i.field),
                policies: enforced.join(", "),
            });
        }
    }
    if info
        .export_names
        .contains(&crate::manifest::VIOLATION_GLOBAL)
    {
        return Err(WeaveError::ReservedName {
            name: format!("export `{}`", crate::manifest::VIOLATION_GLOBAL),
            why: "the woven module exports its violation code under it",
        });
    }
    if options.host_hooks {
        if let Some(i) = info
            .func_imports
            .iter()
            .find(|i| i.module == crate::manifest::HOOK_MODULE)
        {
            return Err(WeaveError::ReservedName {
                name: format!("import module `{}` ({}.{})", i.module, i.module, i.field),
                why: "host hooks are imported from it",
            });
        }
    }
    // String guards need a 32-bit memory 0 that no other thread can change.
    for (pi, p) in program.policies.iter().enumerate() {
        if !elision.effective[pi] {
            continue;
        }
        for t in p
            .transitions
            .iter()
            .filter(|t| elision.wrapped_events.contains(&t.event))
        {
            let strings =
                reads_strings(&t.guard) || t.updates.iter().any(|u| reads_strings(&u.value));
            if !strings {
                continue;
            }
            let err = |why| WeaveError::NoStringMemory {
                policy: p.name.clone(),
                origin: t.origin.clone(),
                why,
            };
            match info.memories.first() {
                None => return Err(err("the module has no memory")),
                Some(m) if m.memory64 => return Err(err("memory 0 is 64-bit")),
                Some(m) if m.page_size_log2.is_some_and(|l| l != 16) => {
                    return Err(err("memory 0 has a custom page size"))
                }
                Some(m) if m.shared && !p.allow_shared_memory_strings => {
                    return Err(WeaveError::SharedMemoryStrings {
                        policy: p.name.clone(),
                        origin: t.origin.clone(),
                    })
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Indices of the new functions and their types.
struct Functions {
    hooks: Vec<HookPlan>,
    hook_of_event: HashMap<EventId, u32>,
    shift: u32,
    matcher_type: u32,
    wrappers: Vec<WrapperPlan>,
    redirect: Vec<Option<u32>>,
    matcher_index: u32,
}

/// Hook imports (host hooks only, one per wrapped event in event order) after the
/// original imports; one wrapper per declaration of a wrapped event after every function;
/// the string matcher last. Adds each wrapped declaration to its policies' reports.
fn lay_out_functions(
    info: &ModuleInfo,
    program: &Program,
    options: &WeaveOptions,
    elision: &mut Elision,
) -> Functions {
    let num_func_imports = info.func_imports.len() as u32;
    let num_types = info.types.len() as u32;
    let mut hooks = Vec::new();
    let mut hook_of_event = HashMap::new();
    if options.host_hooks {
        for &e in &elision.wrapped_events {
            let ev = &program.events[e as usize];
            let func_index = num_func_imports + hooks.len() as u32;
            hook_of_event.insert(e, func_index);
            hooks.push(HookPlan {
                event: e,
                field: format!("hook:{e}"),
                func_index,
                type_index: num_types + hooks.len() as u32,
                params: ev.wasm_params().into_iter().map(to_wasm).collect(),
            });
        }
    }
    let shift = hooks.len() as u32;

    let mut wrappers = Vec::new();
    let mut redirect = vec![None; (info.num_funcs()) as usize];
    let first_wrapper = info.num_funcs() + shift;
    for imp in &info.func_imports {
        let Some(e) = program.event_for_import(imp.module, imp.field) else {
            continue;
        };
        if !elision.wrapped_events.contains(&e) {
            continue;
        }
        let index = first_wrapper + wrappers.len() as u32;
        redirect[imp.func_index as usize] = Some(index);
        wrappers.push(WrapperPlan {
            import: imp.func_index,
            event: e,
            index,
            type_index: imp.type_index,
        });
        let name = format!("{}.{}#{}", imp.module, imp.field, imp.func_index);
        for (pi, p) in program.policies.iter().enumerate() {
            if elision.effective[pi] && p.mentions(e) {
                elision.reports[pi].wrapped_imports.push(name.clone());
            }
        }
    }
    let matcher_index = first_wrapper + wrappers.len() as u32;
    Functions {
        hooks,
        hook_of_event,
        shift,
        matcher_type: num_types + shift,
        wrappers,
        redirect,
        matcher_index,
    }
}

/// `irm:violation` after the original globals, then per kept policy its state and one
/// global per variable; returns their indices and the initial values after
/// `irm:violation`, in index order.
fn lay_out_globals(
    info: &ModuleInfo,
    program: &Program,
    effective: &[bool],
) -> (MonitorGlobals, Vec<(wasm_encoder::ValType, i64)>) {
    let violation = info.num_globals;
    let mut next_global = violation + 1;
    let mut states = Vec::new();
    let mut vars = Vec::new();
    let mut state_inits = Vec::new();
    for (pi, p) in program.policies.iter().enumerate() {
        if !effective[pi] {
            states.push(None);
            vars.push(Vec::new());
            continue;
        }
        states.push(Some(next_global));
        state_inits.push((wasm_encoder::ValType::I32, p.initial as i64));
        next_global += 1;
        let mut vs = Vec::new();
        for v in &p.vars {
            vs.push(next_global);
            state_inits.push((wasm_encoder::ValType::I64, v.init));
            next_global += 1;
        }
        vars.push(vs);
    }
    let globals = MonitorGlobals {
        violation,
        states,
        vars,
    };
    (globals, state_inits)
}

/// The module's own `fd_write` with its WASI type, when messages can be written through
/// it (default mode, a 32-bit memory 0 with 64 KiB pages).
fn message_fd_write(info: &ModuleInfo, options: &WeaveOptions) -> Option<u32> {
    if options.host_hooks {
        return None;
    }
    let mem_ok = info
        .memories
        .first()
        .is_some_and(|m| !m.memory64 && m.page_size_log2.is_none_or(|l| l == 16));
    info.func_imports
        .iter()
        .find(|i| {
            i.module == "wasi_snapshot_preview1"
                && i.field == "fd_write"
                && info.func_type(i.type_index).is_some_and(|ft| {
                    use wasmparser::ValType::I32;
                    ft.params() == [I32, I32, I32, I32] && ft.results() == [I32]
                })
        })
        .filter(|_| mem_ok)
        .map(|i| i.func_index)
}
