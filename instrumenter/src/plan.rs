//! Planning: which policies this module can violate, which import declarations get a
//! wrapper, and where every new function, global, memory and data segment goes.
//!
//! [`plan`] runs five phases, one function each: [`match_imports`] (every declaration of
//! every event, WASI preview 0 spellings included, signatures checked), [`elide`] (which
//! policies this module can violate and which events need a wrapper), [`check_module`]
//! (what the module must offer: no thread spawning, no reserved names, a memory the host
//! reads for string and descriptor features), [`wasi_functions`] (the WASI functions the
//! monitor calls itself, added as imports when the module lacks them) and [`lay_out`]
//! (indices and offsets).
//!
//! Index layout of the woven module (nothing existing moves unless imports are added):
//! * functions: original imports `0..I`, hook imports (host hooks only), WASI imports the
//!   monitor needs and the module lacks, original defined functions shifted by both, then
//!   one wrapper per wrapped import declaration, then the helpers (string matchers, path
//!   resolver, descriptor scan, set operations) that the program needs;
//! * globals: original ones, then `irm:violation`, then per effective policy its state
//!   and its variables, then the monitor's `busy` and `ready` flags when used;
//! * memories: original ones, then the private monitor memory;
//! * data segments: original ones, then the passive message segment, then the active
//!   DFA segment of the private memory;
//! * types: original ones, then the new types in [`Plan::types`] order.
//!
//! Private memory layout: the audit save area at 0, the descriptor table
//! ([`crate::resources::Layout`]) when the program keeps one, the set variables, then the
//! DFA tables.
use std::collections::{BTreeSet, HashMap};

use policy_lang::descriptors::Effect;
use policy_lang::ir::{
    EventId, Expr, ParamType, Phase, Program, Subject, Transition, ValType, Verdict,
};
use policy_lang::wasi::{self, Role};

use crate::manifest::MonitorGlobals;
use crate::module::ModuleInfo;
use crate::report::{ElidedEvent, PolicyReport};
use crate::resources::Layout;
use crate::{CoreOptions, WeaveError};

pub(crate) struct WrapperPlan {
    pub import: u32,
    pub event: EventId,
    pub index: u32,
    /// The import's type index, which the wrapper shares.
    pub type_index: u32,
    /// Imported from `wasi_unstable` (preview 0): out-pointer sizes differ.
    pub preview0: bool,
}

pub(crate) struct HookPlan {
    pub event: EventId,
    pub field: String,
    pub func_index: u32,
    pub type_index: u32,
}

/// A WASI function the monitor calls that the module does not import.
pub(crate) struct AddedImport {
    pub module: &'static str,
    pub field: &'static str,
    pub func_index: u32,
    pub type_index: u32,
}

/// The WASI functions the descriptor scan and tracking call (raw imports, never wrappers).
#[derive(Clone, Copy)]
pub(crate) struct WasiFns {
    pub fd_fdstat_get: u32,
    pub fd_prestat_get: u32,
    pub fd_prestat_dir_name: u32,
}

/// Function indices of the generated helpers, present when the program needs them.
#[derive(Clone, Copy, Default)]
pub(crate) struct Helpers {
    /// `(dfa, ptr, len) -> i32` over host memory.
    pub matcher: Option<u32>,
    /// `(dfa, ptr, len) -> i32` over the private memory (resolved and descriptor paths).
    pub private_matcher: Option<u32>,
    pub resolve: Option<u32>,
    pub init: Option<u32>,
    pub set_has: Option<u32>,
    pub set_insert: Option<u32>,
    pub set_remove: Option<u32>,
}

pub(crate) struct Plan {
    /// The program as this module sees it ([`Program::restricted_to`] its imports): what
    /// the monitor does, and what the certifier and host-side monitor judge it against.
    pub view: Program,
    pub effective: Vec<bool>,
    pub policy_reports: Vec<PolicyReport>,
    pub wrappers: Vec<WrapperPlan>,
    /// By original function index: the wrapper a reference to it is redirected to.
    pub redirect: Vec<Option<u32>>,
    /// Hook imports; empty without host hooks.
    pub hooks: Vec<HookPlan>,
    pub hook_of_event: HashMap<EventId, u32>,
    /// Hooks also take each string argument as an in-bounds `(ptr, len)` pair.
    pub hook_strings: bool,
    /// WASI imports added for the monitor, after the hooks.
    pub added_imports: Vec<AddedImport>,
    /// Number of imports added (hooks and WASI): how far defined functions move.
    pub shift: u32,
    pub num_func_imports: u32,
    /// Types added, in index order after the module's own: `(params, results)`.
    pub types: Vec<(Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>)>,
    /// Type indices of the helpers' signatures.
    pub matcher_type: u32,
    pub resolve_type: u32,
    pub init_type: u32,
    pub set_has_type: u32,
    pub set_insert_type: u32,
    pub set_remove_type: u32,
    pub helpers: Helpers,
    /// Function index of the first helper (after the wrappers).
    pub first_helper: u32,
    pub globals: MonitorGlobals,
    /// Initial values of the new globals after `irm:violation`, in index order.
    pub state_inits: Vec<(wasm_encoder::ValType, i64)>,
    /// The module's own `fd_write` (or the added one) usable for messages (default mode).
    pub fd_write: Option<u32>,
    /// The descriptor scan's functions, when the program keeps a descriptor table.
    pub wasi: Option<WasiFns>,
    /// The memory the host reads (strings, out-pointers, messages).
    pub host_memory: Option<u32>,
    pub private_memory: u32,
    pub message_segment: u32,
    /// Where the descriptor table lies, when the program keeps one in this module.
    pub table: Option<Layout>,
    /// Where a component's stream-handle table lies ([`policy_lang::handles`]): one
    /// kind byte per handle, input streams then output streams, `MAX_HANDLES` each.
    pub handles: Option<u32>,
    /// Where a component's descriptor table lies (WASI 0.2 `descriptor` handles, laid
    /// out as preview 1's table; kept with the stream table). It starts empty: there is
    /// no scan, `get-directories` and `open-at` fill it.
    pub component_table: Option<Layout>,
    /// Per policy, per set variable: its base in the private memory (`u32` length, `u32`
    /// unused, then `capacity` i64 members).
    pub sets: Vec<Vec<u32>>,
    /// The first private byte the DFA tables may use.
    pub dfa_start: u32,
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

    /// The generated helper functions in index order, with their type indices.
    pub fn helper_types(&self) -> Vec<u32> {
        let h = &self.helpers;
        [
            (h.matcher, self.matcher_type),
            (h.private_matcher, self.matcher_type),
            (h.resolve, self.resolve_type),
            (h.init, self.init_type),
            (h.set_has, self.set_has_type),
            (h.set_insert, self.set_insert_type),
            (h.set_remove, self.set_remove_type),
        ]
        .into_iter()
        .filter_map(|(f, t)| f.map(|_| t))
        .collect()
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
        for s in &p.sets {
            if s.capacity == 0 || s.capacity > policy_lang::ir::MAX_SET_CAPACITY {
                return bad(format!(
                    "policy {}: set {} has capacity {}",
                    p.name, s.name, s.capacity
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
            if t.updates.iter().any(|u| u.var as usize >= p.vars.len())
                || t.set_updates.iter().any(|u| u.set as usize >= p.sets.len())
            {
                return bad(format!(
                    "policy {} transition {ti} ({}) updates a missing variable",
                    p.name, t.origin
                ));
            }
            for e in t.exprs() {
                check_expr(e, event, p.vars.len(), p.sets.len(), t.phase).map_err(|m| {
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
    nsets: usize,
    phase: Phase,
) -> Result<(), String> {
    let param_ty = |p: u32| ev.params.get(p as usize).map(|p| p.ty);
    let role = |p: u32| {
        ev.params
            .get(p as usize)
            .and_then(|x| wasi::event_role(&ev.module, &ev.field, &x.name))
    };
    let mut err = None;
    e.visit(&mut |e| {
        if err.is_some() {
            return;
        }
        err = match e {
            Expr::Param(p) => match param_ty(*p) {
                Some(ParamType::I32 | ParamType::I64) => None,
                Some(_) => Some(format!("parameter {p} of {} is not an integer", ev.name)),
                None => Some(format!("event {} has no parameter {p}", ev.name)),
            },
            Expr::Str(Subject::Raw(p), _) => (param_ty(*p) != Some(ParamType::Str))
                .then(|| format!("parameter {p} of {} is not a string", ev.name)),
            Expr::Str(Subject::Resolved(p), _) => {
                (!matches!(role(*p), Some(Role::Path { .. } | Role::LinkTarget { .. })))
                    .then(|| format!("parameter {p} of {} is not a path", ev.name))
            }
            Expr::FdIs(p, _)
                if ev
                    .params
                    .get(*p as usize)
                    .is_some_and(|x| policy_lang::handles::stream_param(ev, &x.name).is_some()) =>
            {
                None
            }
            Expr::Str(Subject::FdPath(p), _) | Expr::FdIs(p, _) | Expr::FdWritable(p) => (role(*p)
                != Some(Role::Descriptor))
            .then(|| format!("parameter {p} of {} is not a descriptor", ev.name)),
            Expr::Result => {
                if phase != Phase::Post {
                    Some("`result` used before the call".into())
                } else if ev.results.len() != 1
                    || !matches!(ev.results[0], ValType::I32 | ValType::I64)
                {
                    Some(format!(
                        "`result` needs one integer result, {} returns {}",
                        ev.name,
                        describe(&ev.results)
                    ))
                } else {
                    None
                }
            }
            Expr::Var(v) if (*v as usize) >= nvars => Some(format!("variable {v} does not exist")),
            Expr::SetHas(s, _) | Expr::SetLen(s) if (*s as usize) >= nsets => {
                Some(format!("set {s} does not exist"))
            }
            _ => None,
        };
    });
    err.map_or(Ok(()), Err)
}

/// Every declaration of every event, by event: `(function index, preview 0)`.
type Decls = Vec<Vec<(u32, bool)>>;

/// The event an import declaration is, if any: its own `module.field`, or for
/// `wasi_unstable.f` the preview 1 event `f`. `Err` when preview 0 lacks the function.
/// The first transition's origin on `event`, for messages.
fn origin_of(program: &Program, event: EventId) -> String {
    program
        .policies
        .iter()
        .flat_map(|p| p.transitions.iter())
        .find(|t| t.event == event)
        .map(|t| t.origin.clone())
        .unwrap_or_else(|| "the descriptor tracking of the program".into())
}

/// Phase 1: every declaration of every event, with its kind and exact signature checked.
fn match_imports(info: &ModuleInfo, program: &Program) -> Result<Decls, WeaveError> {
    let mut decls: Decls = vec![Vec::new(); program.events.len()];
    for imp in &info.func_imports {
        let (e, preview0) = match program.event_for_spelling(imp.module, imp.field) {
            Ok(Some(x)) => x,
            Ok(None) => continue,
            Err(()) => {
                return Err(WeaveError::Preview0 {
                    import: format!("{}.{}", imp.module, imp.field),
                    func_index: imp.func_index,
                    why: "WASI preview 0 has no such function (it was added in preview 1)".into(),
                })
            }
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
                import: format!("{}.{}", imp.module, imp.field),
                func_index: imp.func_index,
                event: event.name.clone(),
                expected: format!(
                    "{} -> {}",
                    describe(&event.wasm_params()),
                    describe(&event.results)
                ),
                found,
                origin: origin_of(program, e),
            });
        }
        decls[e as usize].push((imp.func_index, preview0));
    }
    for imp in &info.other_imports {
        if let Ok(Some((e, _))) = program.event_for_spelling(imp.module, imp.field) {
            let event = &program.events[e as usize];
            return Err(WeaveError::NotAFunction {
                import: format!("{}.{}", imp.module, imp.field),
                kind: imp.kind,
                event: event.name.clone(),
                origin: origin_of(program, e),
            });
        }
    }
    Ok(decls)
}

/// What [`elide`] decided.
struct Elision {
    effective: Vec<bool>,
    reports: Vec<PolicyReport>,
    /// Events that get wrappers.
    wrapped: BTreeSet<EventId>,
    /// The module's monitor keeps the descriptor table.
    table: bool,
    /// The module's monitor keeps the stream-handle table.
    handles: bool,
}

/// The effective transitions on events this module imports.
fn live_transitions<'p>(
    program: &'p Program,
    effective: &'p [bool],
    decls: &'p Decls,
) -> impl Iterator<Item = (usize, &'p Transition)> + 'p {
    program
        .policies
        .iter()
        .enumerate()
        .filter(move |(pi, _)| effective[*pi])
        .flat_map(|(pi, p)| p.transitions.iter().map(move |t| (pi, t)))
        .filter(move |(_, t)| !decls[t.event as usize].is_empty())
}

/// Phase 2: which policies this module can violate, and which events get wrappers.
fn elide(info: &ModuleInfo, program: &Program, view: &Program, decls: &Decls) -> Elision {
    let mut effective = vec![false; program.policies.len()];
    let mut reports = Vec::new();
    let mut wrapped = BTreeSet::new();
    for (pi, p) in program.policies.iter().enumerate() {
        let mentioned: BTreeSet<EventId> = p.transitions.iter().map(|t| t.event).collect();
        // In the view, transitions on events the module lacks cannot fire.
        let why = view.policies[pi].transitions.iter().find_map(|t| {
            t.effect()
                .map(|w| format!("{w} {}", program.events[t.event as usize].name))
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
                wrapped.insert(e);
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
    // The table is kept when a live transition asks it, or audits without the opt-out;
    // a module that imports no WASI function cannot change its descriptors, so it has
    // no use for one.
    let table = info.imports_wasi() && view.tracks();
    if table {
        for (e, ev) in program.events.iter().enumerate() {
            let e = e as EventId;
            if ev.module == wasi::MODULE
                && Effect::of(&ev.field).is_some()
                && !decls[e as usize].is_empty()
            {
                wrapped.insert(e);
            }
        }
    }
    // A component's monitor (its stub imports WIT functions) keeps the stream-handle
    // table when the program tracks, and sees every call that hands out a stream.
    let handles = view.tracks()
        && program.events.iter().enumerate().any(|(e, ev)| {
            !decls[e].is_empty() && policy_lang::wit::split_interface(&ev.module).is_some()
        });
    if handles {
        for (e, ev) in program.events.iter().enumerate() {
            let hands = !policy_lang::handles::grants(ev).is_empty()
                || policy_lang::handles::drops(ev).is_some()
                || (Effect::of_import(&ev.module, &ev.field).is_some()
                    && policy_lang::wit::split_interface(&ev.module).is_some());
            if hands && !decls[e].is_empty() {
                wrapped.insert(e as EventId);
            }
        }
    }
    Elision {
        effective,
        reports,
        wrapped,
        table,
        handles,
    }
}

/// Phase 3: what the module must offer for the monitor it gets. Returns the memory the
/// host reads, when the monitor needs one.
fn check_module(
    info: &ModuleInfo,
    program: &Program,
    options: &CoreOptions,
    decls: &Decls,
    el: &Elision,
) -> Result<Option<u32>, WeaveError> {
    let enforced: Vec<&str> = program
        .policies
        .iter()
        .zip(&el.effective)
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

    // Guards on preview 0 imports must mean what they say under preview 1's names.
    for (pi, t) in live_transitions(program, &el.effective, decls) {
        if !decls[t.event as usize].iter().any(|&(_, p0)| p0) {
            continue;
        }
        let ev = &program.events[t.event as usize];
        for e in t.exprs() {
            let mut bad = None;
            e.visit(&mut |x| {
                if let Expr::Param(p) = x {
                    let name = &ev.params[*p as usize].name;
                    if let Some(why) = wasi::preview0_meaning_differs(&ev.field, name) {
                        bad.get_or_insert((name.clone(), why));
                    }
                }
            });
            if let Some((param, why)) = bad {
                let imp = decls[t.event as usize]
                    .iter()
                    .find(|&&(_, p0)| p0)
                    .map(|&(f, _)| f)
                    .unwrap_or(0);
                return Err(WeaveError::Preview0 {
                    import: format!("{}.{}", wasi::PREVIEW0_MODULE, ev.field),
                    func_index: imp,
                    why: format!(
                        "policy `{}` reads `{param}` (transition at {}): {why}",
                        program.policies[pi].name, t.origin
                    ),
                });
            }
        }
    }

    // String guards and the descriptor table need the memory the host reads: the one
    // exported as `memory` (WASI hosts read that one), or memory 0 of a module that
    // talks to a custom host only.
    let host_memory = match info.memory_export {
        Some(m) => Some(m),
        None if info.imports_wasi() => None,
        None => (!info.memories.is_empty()).then_some(0),
    };
    let needs = |t: &Transition| {
        t.exprs()
            .any(|e| e.reads_strings() || e.reads_descriptors())
    };
    for (pi, t) in live_transitions(program, &el.effective, decls) {
        let p = &program.policies[pi];
        let strings = t.exprs().any(Expr::reads_strings);
        if !(needs(t) || (el.table && t.verdict == Verdict::Audit)) {
            continue;
        }
        let err = |why: String| WeaveError::NoStringMemory {
            policy: p.name.clone(),
            origin: t.origin.clone(),
            why,
        };
        let Some(m) = host_memory else {
            return Err(err(if info.memories.is_empty() {
                "the module has no memory".into()
            } else {
                "the module imports WASI but exports no memory named `memory`, so irm cannot tell which memory the host reads".into()
            }));
        };
        let mt = &info.memories[m as usize];
        if mt.memory64 {
            return Err(err(format!("memory {m}, which the host reads, is 64-bit")));
        }
        if mt.page_size_log2.is_some_and(|l| l != 16) {
            return Err(err(format!("memory {m} has a custom page size")));
        }
        if mt.shared && strings && !p.allow_shared_memory_strings {
            return Err(WeaveError::SharedMemoryStrings {
                policy: p.name.clone(),
                origin: t.origin.clone(),
            });
        }
    }
    Ok(host_memory)
}

/// The WASI signature of the functions the monitor calls itself.
fn wasi_signature(field: &str) -> (Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>) {
    use wasm_encoder::ValType::I32;
    let n = match field {
        "fd_prestat_dir_name" => 3,
        "fd_write" => 4,
        _ => 2,
    };
    (vec![I32; n], vec![I32])
}

/// The module's own declaration of WASI function `field` with the expected signature.
fn own_wasi_import(info: &ModuleInfo, field: &str) -> Option<u32> {
    let (params, results) = wasi_signature(field);
    info.func_imports
        .iter()
        .find(|i| {
            (i.module == wasi::MODULE || i.module == wasi::PREVIEW0_MODULE)
                && i.field == field
                && info.func_type(i.type_index).is_some_and(|ft| {
                    ft.params().len() == params.len()
                        && ft.params().iter().all(|t| *t == wasmparser::ValType::I32)
                        && ft.results() == [wasmparser::ValType::I32]
                        && results.len() == 1
                })
        })
        .map(|i| i.func_index)
}

/// What phase 4 decided: the functions the monitor calls, own or to add.
struct WasiPlan {
    /// `field` -> the module's own function index, or `None`: to be added.
    needed: Vec<(&'static str, Option<u32>)>,
    /// The module name to add imports from.
    module: &'static str,
}

/// Phase 4: the WASI functions the monitor calls itself (the descriptor scan, the file
/// type of a new descriptor, and in the default mode `fd_write` for messages).
fn wasi_functions(
    info: &ModuleInfo,
    program: &Program,
    options: &CoreOptions,
    decls: &Decls,
    el: &Elision,
) -> Result<WasiPlan, WeaveError> {
    let mut fields: Vec<&'static str> = Vec::new();
    if el.table {
        fields.extend(["fd_fdstat_get", "fd_prestat_get", "fd_prestat_dir_name"]);
    }
    let audits: Vec<(usize, &Transition)> = live_transitions(program, &el.effective, decls)
        .filter(|(_, t)| t.verdict == Verdict::Audit)
        .collect();
    if !options.host_hooks && !audits.is_empty() && own_wasi_import(info, "fd_write").is_none() {
        if info.imports_wasi() && info.memory_export.is_some() {
            fields.push("fd_write");
        } else if let Some((pi, t)) = audits
            .iter()
            .find(|(pi, _)| !program.policies[*pi].allow_undelivered_audits)
        {
            return Err(WeaveError::NoAuditChannel {
                policy: program.policies[*pi].name.clone(),
                origin: t.origin.clone(),
            });
        }
    }
    let module = if info.func_imports.iter().any(|i| i.module == wasi::MODULE) {
        wasi::MODULE
    } else {
        wasi::PREVIEW0_MODULE
    };
    Ok(WasiPlan {
        needed: fields
            .into_iter()
            .map(|f| (f, own_wasi_import(info, f)))
            .collect(),
        module,
    })
}

/// Which helpers the live transitions need.
struct Needs {
    raw_strings: bool,
    private_strings: bool,
    sets: bool,
}

fn needs(program: &Program, el: &Elision, decls: &Decls) -> Needs {
    let mut n = Needs {
        raw_strings: false,
        private_strings: false,
        sets: false,
    };
    for (pi, t) in live_transitions(program, &el.effective, decls) {
        for e in t.exprs() {
            e.visit(&mut |x| match x {
                Expr::Str(Subject::Raw(_), _) => n.raw_strings = true,
                Expr::Str(_, _) => n.private_strings = true,
                _ => {}
            });
        }
        n.sets |= !program.policies[pi].sets.is_empty();
    }
    n
}

/// The bytes of the audit save area: the largest scratch area any audit message needs.
fn audit_save_len(program: &Program, el: &Elision, decls: &Decls, messages: bool) -> u32 {
    if !messages {
        return 0;
    }
    live_transitions(program, &el.effective, decls)
        .filter(|(_, t)| t.verdict == Verdict::Audit)
        .map(|(pi, t)| {
            let p = &program.policies[pi];
            let ev = &program.events[t.event as usize];
            let reason = t
                .reason
                .clone()
                .unwrap_or_else(|| format!("audited by the transition at {}", t.origin));
            let m = crate::codegen::message(
                crate::manifest::CodeKind::Audit,
                &p.name,
                &ev.import_name(),
                &reason,
            );
            crate::codegen::scratch_len(m.len())
        })
        .max()
        .unwrap_or(0)
}

pub(crate) fn plan(
    info: &ModuleInfo,
    program: &Program,
    options: &CoreOptions,
) -> Result<Plan, WeaveError> {
    check_program(program)?;
    let decls = match_imports(info, program)?;
    let view = program.restricted_to(|e| !decls[e as usize].is_empty());
    let el = elide(info, program, &view, &decls);
    let host_memory = check_module(info, program, options, &decls, &el)?;
    let wasi_plan = wasi_functions(info, program, options, &decls, &el)?;
    lay_out(
        info,
        program,
        view,
        options,
        decls,
        el,
        host_memory,
        wasi_plan,
    )
}

type Sig = (Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>);

/// The types the weave adds after the module's own, each once.
struct NewTypes {
    num_types: u32,
    list: Vec<Sig>,
}

impl NewTypes {
    /// The index of `sig`, added if it is new.
    fn index(&mut self, sig: Sig) -> u32 {
        match self.list.iter().position(|t| *t == sig) {
            Some(i) => self.num_types + i as u32,
            None => {
                self.list.push(sig);
                self.num_types + self.list.len() as u32 - 1
            }
        }
    }
}

/// The imports the weave adds after the module's own: hooks (one per wrapped event, in
/// event order), then the WASI functions the monitor calls that the module lacks.
struct NewImports {
    hooks: Vec<HookPlan>,
    hook_of_event: HashMap<EventId, u32>,
    added: Vec<AddedImport>,
    /// Every WASI function the monitor calls: the module's own import or the added one.
    wasi: HashMap<&'static str, u32>,
}

fn lay_out_imports(
    info: &ModuleInfo,
    program: &Program,
    options: &CoreOptions,
    hook_strings: bool,
    wrapped_events: &BTreeSet<EventId>,
    wasi_plan: &WasiPlan,
    types: &mut NewTypes,
) -> NewImports {
    let num_func_imports = info.func_imports.len() as u32;
    let mut hooks = Vec::new();
    let mut hook_of_event = HashMap::new();
    if options.host_hooks {
        for &e in wrapped_events {
            let ev = &program.events[e as usize];
            let func_index = num_func_imports + hooks.len() as u32;
            hook_of_event.insert(e, func_index);
            let mut sig = vec![wasm_encoder::ValType::I32, wasm_encoder::ValType::I32];
            let words = if hook_strings {
                crate::manifest::packed_slots(&ev.wasm_params()).1
            } else {
                ev.wasm_params().len()
            };
            sig.extend(std::iter::repeat_n(wasm_encoder::ValType::I64, words));
            sig.push(wasm_encoder::ValType::I64);
            if hook_strings {
                let strings = ev.params.iter().filter(|p| p.ty == ParamType::Str).count();
                sig.extend(std::iter::repeat_n(wasm_encoder::ValType::I32, 2 * strings));
            }
            hooks.push(HookPlan {
                event: e,
                field: format!("hook:{e}"),
                func_index,
                type_index: types.index((sig, Vec::new())),
            });
        }
    }
    let mut added = Vec::new();
    let mut wasi: HashMap<&'static str, u32> = HashMap::new();
    for (field, own) in &wasi_plan.needed {
        let index = match own {
            Some(f) => *f,
            None => {
                let func_index = num_func_imports + hooks.len() as u32 + added.len() as u32;
                added.push(AddedImport {
                    module: wasi_plan.module,
                    field,
                    func_index,
                    type_index: types.index(wasi_signature(field)),
                });
                func_index
            }
        };
        wasi.insert(field, index);
    }
    NewImports {
        hooks,
        hook_of_event,
        added,
        wasi,
    }
}

/// One wrapper per declaration of a wrapped event, after every function (each added to
/// the reports of the policies that name its event); the redirect map to them.
fn lay_out_wrappers(
    info: &ModuleInfo,
    program: &Program,
    effective: &[bool],
    wrapped_events: &BTreeSet<EventId>,
    first_wrapper: u32,
    reports: &mut [PolicyReport],
) -> (Vec<WrapperPlan>, Vec<Option<u32>>) {
    let mut wrappers = Vec::new();
    let mut redirect = vec![None; info.num_funcs() as usize];
    for imp in &info.func_imports {
        let Ok(Some((e, preview0))) = program.event_for_spelling(imp.module, imp.field) else {
            continue;
        };
        if !wrapped_events.contains(&e) {
            continue;
        }
        let index = first_wrapper + wrappers.len() as u32;
        redirect[imp.func_index as usize] = Some(index);
        wrappers.push(WrapperPlan {
            import: imp.func_index,
            event: e,
            index,
            type_index: imp.type_index,
            preview0,
        });
        let name = format!("{}.{}#{}", imp.module, imp.field, imp.func_index);
        for (pi, p) in program.policies.iter().enumerate() {
            if effective[pi] && p.mentions(e) {
                reports[pi].wrapped_imports.push(name.clone());
            }
        }
    }
    (wrappers, redirect)
}

/// `irm:violation` after the original globals, then per kept policy its state and one
/// global per variable, then the `busy` and `ready` flags when used; with the initial
/// values after `irm:violation`, in index order.
fn lay_out_globals(
    info: &ModuleInfo,
    program: &Program,
    effective: &[bool],
    wrapped_events: &BTreeSet<EventId>,
    table: bool,
) -> (MonitorGlobals, Vec<(wasm_encoder::ValType, i64)>) {
    use wasm_encoder::ValType::{I32, I64};
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
        state_inits.push((I32, p.initial as i64));
        next_global += 1;
        let mut vs = Vec::new();
        for v in &p.vars {
            vs.push(next_global);
            state_inits.push((I64, v.init));
            next_global += 1;
        }
        vars.push(vs);
    }
    // Every wrapper can deny (a fault if nothing else), and a monitor that denied must
    // deny every later call, as the interpreter does: the flag is kept whenever anything
    // is wrapped, not only when a call has post-phase work.
    let busy_used = !wrapped_events.is_empty();
    let mut flag = |used: bool| {
        used.then(|| {
            state_inits.push((I32, 0));
            next_global += 1;
            next_global - 1
        })
    };
    let busy = flag(busy_used);
    let ready = flag(table);
    let globals = MonitorGlobals {
        violation,
        states,
        vars,
        busy,
        ready,
    };
    (globals, state_inits)
}

/// Offsets in the private memory, as [`lay_out_private_memory`] chose them.
struct Private {
    table: Option<Layout>,
    handles: Option<u32>,
    component_table: Option<Layout>,
    sets: Vec<Vec<u32>>,
    dfa_start: u32,
}

/// The private memory: the audit save area, the descriptor table (when tracking), a
/// component's stream and descriptor tables (when tracking), each kept policy's sets;
/// returns their offsets and where the DFAs start.
fn lay_out_private_memory(
    program: &Program,
    effective: &[bool],
    save_len: u32,
    table: bool,
    handles: bool,
) -> Private {
    let mut at = save_len.next_multiple_of(8);
    let table_layout = table.then(|| {
        let l = Layout { base: at };
        at = l.end().next_multiple_of(8);
        l
    });
    let handles_base = handles.then(|| {
        let base = at;
        at += 2 * policy_lang::handles::MAX_HANDLES;
        base
    });
    let component_table = handles.then(|| {
        let l = Layout {
            base: at.next_multiple_of(8),
        };
        at = l.end().next_multiple_of(8);
        l
    });
    let mut sets = Vec::new();
    for (pi, p) in program.policies.iter().enumerate() {
        let mut bases = Vec::new();
        if effective[pi] {
            for s in &p.sets {
                bases.push(at);
                at += 8 + 8 * s.capacity;
            }
        }
        sets.push(bases);
    }
    Private {
        table: table_layout,
        handles: handles_base,
        component_table,
        sets,
        dfa_start: at,
    }
}

/// Phase 5: indices of every new import, function, type and global, and private-memory
/// offsets.
#[allow(clippy::too_many_arguments)]
fn lay_out(
    info: &ModuleInfo,
    program: &Program,
    view: Program,
    options: &CoreOptions,
    decls: Decls,
    el: Elision,
    host_memory: Option<u32>,
    wasi_plan: WasiPlan,
) -> Result<Plan, WeaveError> {
    let n = needs(program, &el, &decls);
    let num_func_imports = info.func_imports.len() as u32;
    let mut types = NewTypes {
        num_types: info.types.len() as u32,
        list: Vec::new(),
    };
    // Strings reach the hooks only from a memory the monitor reads; without one, a
    // string parameter cannot be read by anyone (the policies' guards are refused).
    let hook_strings = options.hook_strings && host_memory.is_some();
    let imports = lay_out_imports(
        info,
        program,
        options,
        hook_strings,
        &el.wrapped,
        &wasi_plan,
        &mut types,
    );
    // Messages go through the module's own fd_write (or the added one) into the memory
    // the host reads; with host hooks the host reports instead.
    let fd_write = if options.host_hooks || host_memory.is_none() {
        None
    } else {
        imports
            .wasi
            .get("fd_write")
            .copied()
            .or_else(|| own_wasi_import(info, "fd_write"))
            .filter(|_| info.memory_export.is_some())
    };
    let save_len = audit_save_len(program, &el, &decls, fd_write.is_some());
    let Elision {
        effective,
        mut reports,
        wrapped: wrapped_events,
        table,
        handles,
    } = el;
    let shift = imports.hooks.len() as u32 + imports.added.len() as u32;
    let wasi_fns = table.then(|| WasiFns {
        fd_fdstat_get: imports.wasi["fd_fdstat_get"],
        fd_prestat_get: imports.wasi["fd_prestat_get"],
        fd_prestat_dir_name: imports.wasi["fd_prestat_dir_name"],
    });
    let (wrappers, redirect) = lay_out_wrappers(
        info,
        program,
        &effective,
        &wrapped_events,
        info.num_funcs() + shift,
        &mut reports,
    );

    // Helpers after the wrappers, in the order `Plan::helper_types` lists them.
    let first_helper = info.num_funcs() + shift + wrappers.len() as u32;
    let mut next_fn = first_helper;
    let mut take = |want: bool| {
        want.then(|| {
            next_fn += 1;
            next_fn - 1
        })
    };
    use wasm_encoder::ValType::{I32, I64};
    let helpers = Helpers {
        matcher: take(n.raw_strings),
        private_matcher: take(n.private_strings),
        resolve: take(table || handles),
        init: take(table),
        set_has: take(n.sets),
        set_insert: take(n.sets),
        set_remove: take(n.sets),
    };
    let matcher_type = types.index((vec![I32; 3], vec![I32]));
    let resolve_type = types.index((vec![I32; 5], vec![I32]));
    let init_type = types.index((vec![], vec![I32]));
    let set_has_type = types.index((vec![I32, I64], vec![I32]));
    let set_insert_type = types.index((vec![I32, I32, I64], vec![I32]));
    let set_remove_type = types.index((vec![I32, I64], vec![]));

    let (globals, state_inits) = lay_out_globals(info, program, &effective, &wrapped_events, table);
    let private = lay_out_private_memory(program, &effective, save_len, table, handles);

    Ok(Plan {
        view,
        effective,
        policy_reports: reports,
        wrappers,
        redirect,
        hooks: imports.hooks,
        hook_of_event: imports.hook_of_event,
        hook_strings,
        added_imports: imports.added,
        shift,
        num_func_imports,
        types: types.list,
        matcher_type,
        resolve_type,
        init_type,
        set_has_type,
        set_insert_type,
        set_remove_type,
        helpers,
        first_helper,
        globals,
        state_inits,
        fd_write,
        wasi: wasi_fns,
        host_memory,
        private_memory: info.memories.len() as u32,
        message_segment: info.num_data,
        table: private.table,
        handles: private.handles,
        component_table: private.component_table,
        sets: private.sets,
        dfa_start: private.dfa_start,
    })
}
