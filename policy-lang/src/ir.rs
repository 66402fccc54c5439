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
use serde::{Deserialize, Serialize};

/// Version of this format; bumped on every incompatible change.
pub const IR_VERSION: u32 = 1;

/// Index into [`Program::events`].
pub type EventId = u32;
/// Index into [`Policy::states`].
pub type StateId = u32;
/// Index into [`Policy::vars`].
pub type VarId = u32;
/// Index into [`Event::params`].
pub type ParamId = u32;

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
    /// Import module, e.g. `wasi_snapshot_preview1`.
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
}

/// One security automaton.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub states: Vec<State>,
    pub initial: StateId,
    pub vars: Vec<Var>,
    /// In source order; the order decides which transition fires (first match).
    pub transitions: Vec<Transition>,
    /// The policy opted in to string guards on shared memories (see the brief, route 10).
    pub allow_shared_memory_strings: bool,
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
    /// A string parameter tested against a pattern.
    Str(ParamId, Pattern),
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

/// Why evaluating a step failed; each is reported as a `Deny` of the policy being stepped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeFault {
    /// A string parameter's pointer and length do not lie inside memory 0.
    StringOutOfBounds {
        param: ParamId,
    },
    DivisionByZero,
    /// An update would move the variable outside `min..=max`.
    VarOutOfRange {
        var: VarId,
        value: i64,
    },
}

impl Program {
    /// The event bound to import `module.field`, if any.
    pub fn event_for_import(&self, module: &str, field: &str) -> Option<EventId> {
        self.events
            .iter()
            .position(|e| e.module == module && e.field == field)
            .map(|i| i as EventId)
    }
}

impl Policy {
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
