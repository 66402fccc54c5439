//! The compiled automaton: the stable contract between the policy compiler, the reference
//! interpreter, the weaver (`instrumenter`) and the runtime (`monitor-rt`).
//!
//! A [`Program`] is the composition of one or more [`Policy`]s over a shared set of
//! [`Event`]s. Everything is index-based plain data so that it serialises to JSON
//! (`irm compile --emit json`) and can be embedded in a woven module's custom section.
//!
//! # Semantics (normative; `docs/policy-language.md` explains them with examples)
//!
//! * An **event** is a call of one imported function `module.field`. Every event of a
//!   program names a distinct import; two policy names for the same import are aliases
//!   of one event.
//! * When the module calls an event's import, every policy takes one **step** in the
//!   *pre* phase, in program order. A step looks at the transitions of that policy whose
//!   `event` and `phase` match and whose `from` contains the current state, in their
//!   order; the first whose guard holds **fires**. If none fires the policy allows the
//!   call and keeps its state and variables.
//! * A firing transition evaluates all its updates against the values *before* the step
//!   (simultaneous assignment), checks each new value against the variable's range, and
//!   moves to `next` (or stays when `next` is `None`).
//! * Evaluation errors are violations, never wrap-around or traps: a string argument out
//!   of the memory's bounds, division or remainder by zero, or a variable update leaving
//!   its declared range make that policy's step a [`Verdict::Deny`] with a generated
//!   reason (see [`RuntimeFault`]).
//! * The steps of all policies are combined: if any policy denies, the call is denied and
//!   the first denying policy (in program order) is reported; otherwise if any suppresses,
//!   the import is not called and the value of the first suppressing policy is returned;
//!   otherwise the import is called. Audits of every policy are reported unless the call
//!   is denied. State changes of all policies commit together (a denied call stops the
//!   program, so its changes are never observed).
//! * After the import returns, every policy takes a step in the *post* phase, where guards
//!   may read `result`. A post-phase deny stops the program after the call; suppression is
//!   not allowed in the post phase (the compiler rejects it).
//! * Integers are `i64`. An `i32` argument or result is **sign-extended**; `+ - *` and
//!   shifts wrap in two's complement (shift counts are taken modulo 64), `/` and `%`
//!   truncate toward zero. `&&` and `||` short-circuit, so a guard like
//!   `len > 0 && path glob "/tmp/**"` only reads the string when the left side holds.
//!
//! ## Resources: paths and descriptors
//!
//! WASI preview 1 catalogue parameters have roles ([`crate::wasi::Role`]): descriptor
//! numbers, paths relative to a directory descriptor, symbolic-link contents, and
//! out-pointers. Guards speak about the resources behind them:
//!
//! * [`Subject::Resolved`] reads a path parameter **resolved** ([`crate::path`]): its
//!   directory descriptor's path joined with the argument and normalised lexically; a
//!   link target is resolved against the directory of the link. [`Subject::Raw`] reads
//!   the bytes as passed, [`Subject::FdPath`] a descriptor's own path.
//! * [`Expr::FdIs`] and [`Expr::FdWritable`] ask the **descriptor table**
//!   ([`crate::descriptors`]) what a descriptor is. The table is the monitor's own: it
//!   is filled at the first monitored call from what the host reports and changed by
//!   successful `path_open`, `sock_accept`, `fd_close` and `fd_renumber` calls at the end
//!   of their post phase. A program that reads it, or audits, is a **tracking** program
//!   ([`Program::tracks`]); its events include those four calls, monitored whether or
//!   not a transition names them.
//! * Before a call that proceeds, every out-pointer parameter of the event must lie
//!   inside the memory and be aligned, or the call is denied ([`RuntimeFault::OutPointer`]):
//!   the host would write it after the call's effect and trap.
//! * A call with **post-phase work** ([`Program::has_post_work`]) marks the monitor busy
//!   before the import is called and clears the mark when it returns. A monitored call
//!   that finds the mark is denied ([`RuntimeFault::Interrupted`]): the earlier call
//!   trapped (its post phase never ran), or the host called back into the module during
//!   it. Calls without post-phase work leave no mark, so a host callback during them is
//!   decided against the pre phase's updates. Only a policy that [acts](Policy::acts)
//!   makes work: one that can decide nothing loses nothing when its post phase is
//!   missed. A module is judged against the program [restricted](Program::restricted_to)
//!   to the events it imports, so a policy that acts only through an event the module
//!   lacks makes no work there either.
//! * **Audits.** The pre phase's audits are reported after the import returns (for a
//!   suppressed call, before the suppression value is returned), so nothing outside the
//!   monitor runs between the guards and the import. An audit of a policy without
//!   `allow_undelivered_audits` requires descriptor 2 to still be the stderr found at
//!   start; otherwise the call is denied ([`RuntimeFault::AuditUndelivered`]).
//! * Faults not tied to one transition (out-pointers, the descriptor limit, an
//!   interrupted monitor) are reported by the event's **owner**
//!   ([`Program::owner`]): the first policy with a transition on the event, else the
//!   first policy.
use serde::{Deserialize, Serialize};

/// Version of this format; bumped on every incompatible change.
pub const IR_VERSION: u32 = 2;

/// Index into [`Program::events`].
pub type EventId = u32;
/// Index into [`Policy::states`].
pub type StateId = u32;
/// Index into [`Policy::vars`].
pub type VarId = u32;
/// Index into [`Event::params`].
pub type ParamId = u32;
/// Index into [`Policy::sets`].
pub type SetId = u32;

/// A set of policies composed over one set of events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub version: u32,
    pub events: Vec<Event>,
    pub policies: Vec<Policy>,
}

/// A monitored import and how its Wasm parameters are named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The name the policy source uses (the first one, when aliased), e.g. `path_open`.
    pub name: String,
    /// Import module, e.g. `wasi_snapshot_preview1`; a versioned WIT interface in its
    /// canonical spelling, e.g. `wasi:io/streams@0.2.x` ([`crate::wit::canonical_module`]).
    pub module: String,
    /// Import field, e.g. `path_open`.
    pub field: String,
    /// Named parameters in order; each covers one or two Wasm parameters.
    pub params: Vec<Param>,
    /// The import's Wasm results.
    pub results: Vec<ValType>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
}

/// The type of a named parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    I32,
    I64,
    F32,
    F64,
    /// A byte string in the module's memory 0, passed as two consecutive `i32` Wasm
    /// parameters: pointer, then length in bytes.
    Str,
}

/// A core Wasm value type, as far as events can use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValType {
    I32,
    I64,
    F32,
    F64,
}

impl Event {
    /// The Wasm parameter types the import must have, strings flattened to `i32, i32`.
    pub fn wasm_params(&self) -> Vec<ValType> {
        let mut out = Vec::new();
        for p in &self.params {
            match p.ty {
                ParamType::I32 => out.push(ValType::I32),
                ParamType::I64 => out.push(ValType::I64),
                ParamType::F32 => out.push(ValType::F32),
                ParamType::F64 => out.push(ValType::F64),
                ParamType::Str => out.extend([ValType::I32, ValType::I32]),
            }
        }
        out
    }

    /// Index of the first Wasm parameter that carries named parameter `param`.
    pub fn wasm_param_index(&self, param: ParamId) -> u32 {
        self.params[..param as usize]
            .iter()
            .map(|p| if p.ty == ParamType::Str { 2 } else { 1 })
            .sum()
    }

    /// `module.field`, as shown to people.
    pub fn import_name(&self) -> String {
        format!("{}.{}", self.module, self.field)
    }

    /// `v` as the caller receives it as the import's first result: an `i32`
    /// sign-extended.
    pub fn narrow_result(&self, v: i64) -> i64 {
        match self.results.first() {
            Some(ValType::I32) => v as i32 as i64,
            _ => v,
        }
    }
}

/// One security automaton.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub states: Vec<State>,
    pub initial: StateId,
    pub vars: Vec<Var>,
    /// Bounded sets of integers, initially empty.
    #[serde(default)]
    pub sets: Vec<SetVar>,
    /// In source order; the order decides which transition fires (first match).
    pub transitions: Vec<Transition>,
    /// The policy opted in to string guards on shared memories (see the brief, route 10).
    pub allow_shared_memory_strings: bool,
    /// The policy's audits do not require descriptor 2 to still be stderr.
    #[serde(default)]
    pub allow_undelivered_audits: bool,
}

/// The largest capacity of a set variable.
pub const MAX_SET_CAPACITY: u32 = 64;

/// A set of at most `capacity` integers (`var open: set[3];`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetVar {
    pub name: String,
    pub capacity: u32,
}

/// Inserting into or removing from a set. Inserting a member or removing a non-member
/// changes nothing; inserting into a full set is a fault ([`RuntimeFault::SetFull`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetUpdate {
    pub set: SetId,
    pub insert: bool,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
}

/// A bounded integer variable: `min <= value <= max` always holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Var {
    pub name: String,
    pub min: i64,
    pub max: i64,
    pub init: i64,
}

/// Before the import runs (arguments only) or after it returned (arguments and result).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Pre,
    Post,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub event: EventId,
    pub phase: Phase,
    /// States this transition leaves from; never empty (the compiler expands "any state").
    pub from: Vec<StateId>,
    /// A boolean expression; `Expr::Bool(true)` when the source has no guard.
    pub guard: Expr,
    pub updates: Vec<Update>,
    /// Set insertions and removals, evaluated with the updates (against the values before
    /// the step), applied after them in order.
    #[serde(default)]
    pub set_updates: Vec<SetUpdate>,
    pub verdict: Verdict,
    /// The state after the step; `None` keeps the current state. Ignored for `Deny`.
    pub next: Option<StateId>,
    /// The reason text given in the source, if any.
    pub reason: Option<String>,
    /// Where the transition is written, for messages: `file:line:col`.
    pub origin: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    pub var: VarId,
    pub value: Expr,
}

/// What a firing transition decides about the call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The call proceeds.
    Allow,
    /// The call proceeds and is reported.
    Audit,
    /// The import is not called; the call returns this value (`None` for imports without
    /// results). Pre phase only.
    Suppress(Option<i64>),
    /// The program stops with a violation.
    Deny,
}

/// Typed by the compiler: a guard is boolean, an update value and comparison operands are
/// integers. Consumers may rely on well-typedness.
#[derive(Clone, Debug, PartialEq, Hash, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expr {
    Bool(bool),
    Int(i64),
    /// An integer parameter of the event (never a `Str` or float parameter).
    Param(ParamId),
    /// The import's single integer result; post phase only.
    Result,
    Var(VarId),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A string tested against a pattern.
    Str(Subject, Pattern),
    /// Boolean: the descriptor in parameter `param` has a kind in `mask`
    /// (bit `1 << k` for [`crate::descriptors::Kind`] `k`).
    FdIs(ParamId, u8),
    /// Boolean: the descriptor in parameter `param` may write (false when closed).
    FdWritable(ParamId),
    /// Boolean: the integer is a member of the set.
    SetHas(SetId, Box<Expr>),
    /// Integer: how many members the set has.
    SetLen(SetId),
}

/// What a string test reads.
#[derive(Clone, Copy, Debug, PartialEq, Hash, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// A string parameter's bytes as passed.
    Raw(ParamId),
    /// A path or link-target parameter, resolved (see the module docs).
    Resolved(ParamId),
    /// The path of the descriptor in an integer parameter: empty for streams and
    /// sockets; a fault for a closed descriptor or one whose path is unknown.
    FdPath(ParamId),
}

impl Subject {
    /// The parameter the subject is about.
    pub fn param(self) -> ParamId {
        match self {
            Subject::Raw(p) | Subject::Resolved(p) | Subject::FdPath(p) => p,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Hash, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnOp {
    /// Integer negation (wrapping).
    Neg,
    /// Boolean not.
    Not,
    /// Bitwise not.
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Hash, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    /// Arithmetic shift right.
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Boolean, short-circuit.
    And,
    /// Boolean, short-circuit.
    Or,
}

/// A test on the bytes of a string argument. See [`crate::pattern`] for the exact glob
/// semantics and the DFA both the interpreter and the weaver use.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    Exact(String),
    Prefix(String),
    Glob(String),
}

/// Why a step failed; each is reported as a `Deny`. The first kinds come from evaluating
/// a transition and are the stepped policy's; the call-level ones are the event's owner's
/// ([`Program::owner`]); [`RuntimeFault::AuditUndelivered`] is the auditing policy's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeFault {
    /// A string parameter's pointer and length do not lie inside the memory.
    StringOutOfBounds {
        param: ParamId,
    },
    DivisionByZero,
    /// An update would move the variable outside `min..=max`.
    VarOutOfRange {
        var: VarId,
        value: i64,
    },
    /// A relative path under descriptor `fd`, whose path the monitor does not know (it
    /// is closed, a stream or socket, or a preopen with a relative name).
    UnresolvedPath {
        param: ParamId,
        fd: i64,
    },
    /// A path argument, or its resolution, is longer than [`crate::path::MAX_PATH`].
    PathTooLong {
        param: ParamId,
    },
    /// `fd.path` of a descriptor that is closed or whose path is unknown.
    UnknownDescriptor {
        param: ParamId,
        fd: i64,
    },
    /// An insertion into a set that is full.
    SetFull {
        set: SetId,
    },
    /// Call level: an out-pointer argument lies outside the memory or is misaligned.
    OutPointer {
        param: ParamId,
    },
    /// Call level: the host handed out descriptor `fd`, beyond the monitor's table
    /// ([`crate::descriptors::MAX_FDS`]).
    DescriptorLimit {
        fd: i64,
    },
    /// Call level: an earlier monitored call with post-phase work has not returned.
    Interrupted,
    /// An audit while descriptor 2 is no longer the stderr found at start.
    AuditUndelivered,
}

impl RuntimeFault {
    /// The reason a report gives for this fault of `policy` (and `transition`, for the
    /// transition-level kinds) on `event`: one wording for the interpreter, the woven
    /// monitor's messages and the host's reports. It holds no run-time value, so the
    /// woven monitor can carry it as text; [`RuntimeFault::detail`] has those.
    pub fn reason(
        &self,
        program: &Program,
        event: EventId,
        policy: usize,
        transition: Option<usize>,
    ) -> String {
        let p = program.policies.get(policy);
        let at = transition
            .and_then(|ti| p?.transitions.get(ti))
            .map(|t| format!(" (transition at {})", t.origin))
            .unwrap_or_default();
        let param = |id: ParamId| {
            program
                .events
                .get(event as usize)
                .and_then(|e| e.params.get(id as usize))
                .map_or_else(|| format!("#{id}"), |p| p.name.clone())
        };
        match self {
            RuntimeFault::StringOutOfBounds { param: id } => {
                format!("string argument `{}` is outside memory{at}", param(*id))
            }
            RuntimeFault::DivisionByZero => format!("division by zero{at}"),
            RuntimeFault::VarOutOfRange { var, .. } => match p.and_then(|p| p.vars.get(*var as usize)) {
                Some(v) => format!(
                    "variable `{}` would leave its range {}..{}{at}",
                    v.name, v.min, v.max
                ),
                None => format!("variable #{var} would leave its range{at}"),
            },
            RuntimeFault::UnresolvedPath { param: id, .. } => format!(
                "path `{}` is relative to a descriptor whose path the monitor does not know{at}",
                param(*id)
            ),
            RuntimeFault::PathTooLong { param: id } => format!(
                "path `{}` is longer than {} bytes{at}",
                param(*id),
                crate::path::MAX_PATH
            ),
            RuntimeFault::UnknownDescriptor { param: id, .. } => format!(
                "descriptor `{}` is closed or has no known path{at}",
                param(*id)
            ),
            RuntimeFault::SetFull { set } => match p.and_then(|p| p.sets.get(*set as usize)) {
                Some(s) => format!("set `{}` is full ({} members){at}", s.name, s.capacity),
                None => format!("set #{set} is full{at}"),
            },
            RuntimeFault::OutPointer { param: id } => format!(
                "out-pointer `{}` lies outside memory or is misaligned",
                param(*id)
            ),
            RuntimeFault::DescriptorLimit { .. } => format!(
                "the host handed out a descriptor or stream handle beyond the monitor's table of {}",
                crate::descriptors::MAX_FDS
            ),
            RuntimeFault::Interrupted => "an earlier monitored call did not return (it trapped or was denied, or the host called back into the module during it)".into(),
            RuntimeFault::AuditUndelivered => {
                format!("the audit cannot be delivered: descriptor 2 is no longer stderr{at}")
            }
        }
    }

    /// The run-time value behind the fault, for reports: `value 4`, `descriptor 7`.
    pub fn detail(&self) -> Option<String> {
        match self {
            RuntimeFault::VarOutOfRange { value, .. } => Some(format!("value {value}")),
            RuntimeFault::UnresolvedPath { fd, .. }
            | RuntimeFault::UnknownDescriptor { fd, .. }
            | RuntimeFault::DescriptorLimit { fd } => Some(format!("descriptor {fd}")),
            _ => None,
        }
    }

    /// The phase of a call-level fault (one no transition raises): a descriptor handed
    /// out beyond the table is found after the call, every other before it.
    pub fn call_phase(&self) -> Phase {
        match self {
            RuntimeFault::DescriptorLimit { .. } => Phase::Post,
            _ => Phase::Pre,
        }
    }

    /// The fault with its run-time value set to `value` (the woven monitor reports the
    /// value separately from the code).
    pub fn with_value(&self, value: i64) -> RuntimeFault {
        let mut f = self.clone();
        match &mut f {
            RuntimeFault::VarOutOfRange { value: v, .. }
            | RuntimeFault::UnresolvedPath { fd: v, .. }
            | RuntimeFault::UnknownDescriptor { fd: v, .. }
            | RuntimeFault::DescriptorLimit { fd: v } => *v = value,
            _ => {}
        }
        f
    }
}

impl Program {
    /// The event bound to import `module.field`, if any. A versioned WIT interface is
    /// matched by its compatibility class, as wasmtime links it ([`crate::wit`]): an
    /// import of `wasi:io/streams@0.2.6` is the event of `wasi:io/streams@0.2.x`.
    pub fn event_for_import(&self, module: &str, field: &str) -> Option<EventId> {
        let module = crate::wit::canonical_module(module);
        self.events
            .iter()
            .position(|e| e.module == module && e.field == field)
            .map(|i| i as EventId)
    }

    /// The event import `module.field` is, and whether it is spelled the WASI preview 0
    /// way: its own event, else for `wasi_unstable.field` the event of its preview 1 twin
    /// `wasi_snapshot_preview1.field`. `Err(())` for a `wasi_unstable` function that has a
    /// preview 1 event but does not exist in preview 0 (`sock_accept`).
    #[allow(clippy::result_unit_err)]
    pub fn event_for_spelling(
        &self,
        module: &str,
        field: &str,
    ) -> Result<Option<(EventId, bool)>, ()> {
        if let Some(e) = self.event_for_import(module, field) {
            return Ok(Some((e, false)));
        }
        if module == crate::wasi::PREVIEW0_MODULE {
            if let Some(e) = self.event_for_import(crate::wasi::MODULE, field) {
                return if crate::wasi::in_preview0(field) {
                    Ok(Some((e, true)))
                } else {
                    Err(())
                };
            }
        }
        Ok(None)
    }

    /// Whether the program keeps the descriptor table: a policy that [acts](Policy::acts)
    /// asks it in an expression (resolved paths, descriptor paths, kinds, write access),
    /// or audits without `allow_undelivered_audits`.
    pub fn tracks(&self) -> bool {
        self.policies.iter().any(Policy::tracks)
    }

    /// The program as a module that imports only the events `imported` accepts sees it:
    /// every transition on another event can never fire there, so its guard becomes
    /// `false`. Indices of policies, transitions and events are kept, so reports read the
    /// same. What depends on whether a policy can act ([`Program::tracks`],
    /// [`Program::has_post_work`]) is then decided for that module; the weaver, the
    /// host-side monitor and the certifier judge a module against this view.
    pub fn restricted_to(&self, imported: impl Fn(EventId) -> bool) -> Program {
        let mut view = self.clone();
        for t in view.policies.iter_mut().flat_map(|p| &mut p.transitions) {
            if !imported(t.event) {
                t.guard = Expr::Bool(false);
            }
        }
        view
    }

    /// Whether calls of `event` are decided at all: a policy that [acts](Policy::acts)
    /// mentions it, or the descriptor table follows it. Calls of any other event go ahead
    /// untouched (no check of an earlier call's mark, of out-pointers or of anything
    /// else), as the weaver leaves their imports alone.
    pub fn monitors(&self, event: EventId) -> bool {
        self.descriptor_effect(event).is_some()
            || !self.stream_grants(event).is_empty()
            || self.stream_drop(event).is_some()
            || self.policies.iter().any(|p| p.mentions(event) && p.acts())
    }

    /// [`Program::restricted_to`] the events a module's imports `(module, field)` are
    /// (WASI preview 0 spellings included), as the host-side monitor and the certifier
    /// judge a module; an import of no event, or of none preview 0 has, adds none.
    pub fn restricted_to_imports<'a>(
        &self,
        imports: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Program {
        let imported: std::collections::BTreeSet<EventId> = imports
            .into_iter()
            .filter_map(|(module, field)| self.event_for_spelling(module, field).ok().flatten())
            .map(|(e, _)| e)
            .collect();
        self.restricted_to(|e| imported.contains(&e))
    }

    /// The program as a WebAssembly component sees it. A component has no WASI preview 1
    /// descriptors (its stream handles are [`crate::handles`]); its audits reach the host through host hooks,
    /// which the guest cannot close or renumber the way it can descriptor 2, so every
    /// policy allows undelivered audits (the weaver refuses audits in a component woven
    /// without hooks, where nothing would deliver them).
    pub fn for_component(&self) -> Program {
        let mut view = self.clone();
        for p in &mut view.policies {
            p.allow_undelivered_audits = true;
        }
        view
    }

    /// What a successful call of `event` does to the descriptor table, when the program
    /// tracks descriptors.
    pub fn descriptor_effect(&self, event: EventId) -> Option<crate::descriptors::Effect> {
        let e = self.events.get(event as usize)?;
        if !self.tracks() {
            return None;
        }
        crate::descriptors::Effect::of_import(&e.module, &e.field)
    }

    /// The streams a successful call of `event` hands out ([`crate::handles`]), when
    /// the program tracks.
    pub fn stream_grants(&self, event: EventId) -> &'static [crate::handles::Grant] {
        match self.events.get(event as usize) {
            Some(e) if self.tracks() => crate::handles::grants(e),
            _ => &[],
        }
    }

    /// The stream a call of `event` drops ([`crate::handles::drops`]), when the program
    /// tracks.
    pub fn stream_drop(&self, event: EventId) -> Option<crate::handles::Stream> {
        match self.events.get(event as usize) {
            Some(e) if self.tracks() => crate::handles::drops(e),
            _ => None,
        }
    }

    /// Whether a call of `event` leaves work for after the import returns that the
    /// monitor must not miss: a post transition, a change to the descriptor table, or a
    /// pre-phase audit that must be delivered. The monitor is busy from the call until
    /// then, and a call that never returns leaves it busy (interrupted). An audit of a
    /// policy that allows undelivered audits is written after the call too, but missing
    /// it loses nothing the policy relies on.
    pub fn has_post_work(&self, event: EventId) -> bool {
        self.descriptor_effect(event).is_some()
            || !self.stream_grants(event).is_empty()
            || self.stream_drop(event).is_some()
            || self.policies.iter().filter(|p| p.acts()).any(|p| {
                p.live().any(|t| {
                    t.event == event
                        && (t.phase == Phase::Post
                            || (t.verdict == Verdict::Audit && !p.allow_undelivered_audits))
                })
            })
    }

    /// The policy that reports call-level faults of `event`: the first with a transition
    /// on it, else the first that keeps the descriptor table (an event no policy names is
    /// monitored only for the table, so its faults are that policy's, as they would be
    /// if it ran alone), else the first policy.
    pub fn owner(&self, event: EventId) -> usize {
        self.policies
            .iter()
            .position(|p| p.mentions(event))
            .or_else(|| self.policies.iter().position(Policy::tracks))
            .unwrap_or(0)
    }
}

impl Transition {
    /// Whether the transition can fire at all: its guard is not the constant `false`.
    pub fn can_fire(&self) -> bool {
        self.guard != Expr::Bool(false)
    }

    /// What firing the transition can do that a module observes, if anything: deny,
    /// suppress or audit the call, update variables (which later guards read), or fault
    /// in its guard. A transition that can only allow and move between states of a
    /// policy whose every transition is like it changes nothing.
    pub fn effect(&self) -> Option<&'static str> {
        if !self.can_fire() {
            return None;
        }
        match self.verdict {
            Verdict::Deny => return Some("denies"),
            Verdict::Suppress(_) => return Some("suppresses"),
            Verdict::Audit => return Some("audits"),
            Verdict::Allow => {}
        }
        if !self.updates.is_empty() || !self.set_updates.is_empty() {
            return Some("updates variables on");
        }
        if self.guard.may_fault() {
            return Some("has a guard that may fault on");
        }
        None
    }

    /// Every expression of the transition: guard, update values, set-update values.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        std::iter::once(&self.guard)
            .chain(self.updates.iter().map(|u| &u.value))
            .chain(self.set_updates.iter().map(|u| &u.value))
    }
}

impl Expr {
    /// Calls `f` on this expression and every sub-expression, outermost first.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Unary(_, a) | Expr::SetHas(_, a) => a.visit(f),
            Expr::Binary(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            _ => {}
        }
    }

    /// Whether any part satisfies `p`.
    pub fn any(&self, p: &mut impl FnMut(&Expr) -> bool) -> bool {
        let mut found = false;
        self.visit(&mut |e| found = found || p(e));
        found
    }

    /// Whether evaluating it reads the descriptor table.
    pub fn reads_descriptors(&self) -> bool {
        self.any(&mut |e| {
            matches!(
                e,
                Expr::Str(Subject::Resolved(_) | Subject::FdPath(_), _)
                    | Expr::FdIs(..)
                    | Expr::FdWritable(_)
            )
        })
    }

    /// Whether evaluating it reads a string argument from the module's memory.
    pub fn reads_strings(&self) -> bool {
        self.any(&mut |e| matches!(e, Expr::Str(Subject::Raw(_) | Subject::Resolved(_), _)))
    }

    /// Whether evaluating it can fault (see [`RuntimeFault`]'s transition-level kinds).
    pub fn may_fault(&self) -> bool {
        self.any(&mut |e| match e {
            Expr::Str(..) => true,
            Expr::Binary(BinOp::Div | BinOp::Rem, _, b) => !matches!(**b, Expr::Int(n) if n != 0),
            _ => false,
        })
    }

    /// Whether the expression is boolean-typed (the IR is well-typed; this tells which).
    pub fn is_bool(&self) -> bool {
        match self {
            Expr::Bool(_) | Expr::Str(..) | Expr::FdIs(..) | Expr::FdWritable(_) => true,
            Expr::SetHas(..) => true,
            Expr::Unary(UnOp::Not, _) => true,
            Expr::Binary(op, _, _) => op.is_comparison() || matches!(op, BinOp::And | BinOp::Or),
            _ => false,
        }
    }
}

impl BinOp {
    /// `== != < <= > >=`: integers (or booleans for `==`, `!=`) to a boolean.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }

    /// The value of `a op b` for the integer and comparison operators (booleans as 0 and
    /// 1): the one definition the interpreter, constant folding and trace constants use.
    /// `None` for division or remainder by zero; `&&` and `||` combine evaluated operands.
    pub fn apply(self, a: i64, b: i64) -> Option<i64> {
        Some(match self {
            BinOp::Add => a.wrapping_add(b),
            BinOp::Sub => a.wrapping_sub(b),
            BinOp::Mul => a.wrapping_mul(b),
            BinOp::Div | BinOp::Rem if b == 0 => return None,
            // `wrapping_*` turns i64::MIN / -1 into i64::MIN and i64::MIN % -1 into 0.
            BinOp::Div => a.wrapping_div(b),
            BinOp::Rem => a.wrapping_rem(b),
            BinOp::BitAnd => a & b,
            BinOp::BitOr => a | b,
            BinOp::BitXor => a ^ b,
            // `wrapping_sh*` take the count modulo 64, as the IR requires.
            BinOp::Shl => a.wrapping_shl((b & 63) as u32),
            BinOp::Shr => a.wrapping_shr((b & 63) as u32),
            BinOp::Eq => (a == b) as i64,
            BinOp::Ne => (a != b) as i64,
            BinOp::Lt => (a < b) as i64,
            BinOp::Le => (a <= b) as i64,
            BinOp::Gt => (a > b) as i64,
            BinOp::Ge => (a >= b) as i64,
            BinOp::And => (a != 0 && b != 0) as i64,
            BinOp::Or => (a != 0 || b != 0) as i64,
        })
    }
}

impl UnOp {
    /// The value of `op a` (booleans as 0 and 1).
    pub fn apply(self, a: i64) -> i64 {
        match self {
            UnOp::Neg => a.wrapping_neg(),
            UnOp::Not => (a == 0) as i64,
            UnOp::BitNot => !a,
        }
    }
}

impl Policy {
    /// Whether the policy can decide anything: some transition that can fire has an
    /// [effect](Transition::effect). A policy that cannot act is never monitored: it
    /// keeps no descriptor table and leaves no post-phase work, whatever it names.
    pub fn acts(&self) -> bool {
        self.transitions.iter().any(|t| t.effect().is_some())
    }

    /// The transitions that can fire.
    pub fn live(&self) -> impl Iterator<Item = &Transition> {
        self.transitions.iter().filter(|t| t.can_fire())
    }

    /// Whether the policy needs the descriptor table: it acts, and a transition that can
    /// fire asks the table in an expression, or audits without `allow_undelivered_audits`
    /// (delivery depends on what fd 2 is).
    pub fn tracks(&self) -> bool {
        self.acts()
            && self.live().any(|t| {
                (t.verdict == Verdict::Audit && !self.allow_undelivered_audits)
                    || t.exprs().any(Expr::reads_descriptors)
            })
    }

    /// The transitions that may fire for `event` in `phase` from `state`, in firing order.
    pub fn candidates(
        &self,
        state: StateId,
        event: EventId,
        phase: Phase,
    ) -> impl Iterator<Item = (usize, &Transition)> {
        self.transitions
            .iter()
            .enumerate()
            .filter(move |(_, t)| t.event == event && t.phase == phase && t.from.contains(&state))
    }

    /// Whether the policy has any transition on `event` at all.
    pub fn mentions(&self, event: EventId) -> bool {
        self.transitions.iter().any(|t| t.event == event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_open_like() -> Event {
        Event {
            name: "open".into(),
            module: "m".into(),
            field: "open".into(),
            params: vec![
                Param {
                    name: "fd".into(),
                    ty: ParamType::I32,
                },
                Param {
                    name: "path".into(),
                    ty: ParamType::Str,
                },
                Param {
                    name: "rights".into(),
                    ty: ParamType::I64,
                },
            ],
            results: vec![ValType::I32],
        }
    }

    #[test]
    fn string_params_flatten_to_pointer_and_length() {
        let e = path_open_like();
        assert_eq!(
            e.wasm_params(),
            vec![ValType::I32, ValType::I32, ValType::I32, ValType::I64]
        );
    }

    #[test]
    fn wasm_param_index_skips_both_halves_of_a_string() {
        let e = path_open_like();
        assert_eq!(e.wasm_param_index(0), 0);
        assert_eq!(e.wasm_param_index(1), 1);
        assert_eq!(e.wasm_param_index(2), 3);
    }
}
