//! The reference interpreter: the ground truth for what a [`Program`] decides.
//!
//! It implements the normative semantics in [`crate::ir`] directly, with no optimisation,
//! so that the weaver (`instrumenter`) and the host-side monitor (`monitor-rt`) can be
//! tested against it. Points the IR leaves to the consumer are settled here, and the other
//! consumers must match them:
//!
//! * **Argument conversion.** An `i32` parameter or result is sign-extended from its low
//!   32 bits, whatever [`Value::Int`] holds; an `i64` is taken as is. A missing argument,
//!   or one of the wrong kind, reads as `0` (integers) or as an out-of-bounds string
//!   (strings), so a malformed call can never pass a string guard.
//! * **Evaluation order.** Operands are evaluated left to right; `&&` and `||` short-circuit.
//!   The first fault met ends the step, so a string guard on an out-of-bounds argument
//!   faults only when it is actually evaluated.
//! * **Updates.** Only a firing transition whose verdict is not `Deny` evaluates its
//!   updates (a deny stops the program, so its updates could never be observed). Updates
//!   are taken in order; each is evaluated against the values before the step and then
//!   range-checked, and the first failure is the fault reported. When two updates assign
//!   the same variable the later one wins.
//! * **Suppression.** A suppressed call has no post phase: the import never ran. A
//!   `Suppress` verdict in the post phase (which the compiler rejects) acts as `Allow`.
//! * **Results.** `result` reads the import's first result; in the pre phase, or when no
//!   result is given, it reads `0`.
//! * **Commit.** After a step every policy that did not deny commits its new state and
//!   variables, even when another policy denied; after any deny the monitor is
//!   *interrupted* for good, so those changes are never observed.
//! * **Out-pointers.** The caller, who knows the memory, passes an out-pointer that lies
//!   outside it (or is misaligned) as [`Value::BadPointer`].
//! * **What the host handed out.** The caller reports the descriptor a successful
//!   `path_open` or `sock_accept` produced ([`Opened`]); without it the table does not
//!   change.
use std::sync::Arc;

use crate::descriptors::{self, Change, Descriptor, Descriptors, Effect, Kind, Opened};
use crate::handles::{self, Handles, Place};
use crate::ir::{
    BinOp, EventId, Expr, ParamId, ParamType, Phase, Policy, Program, RuntimeFault, StateId,
    Subject, Transition, VarId, Verdict as IrVerdict,
};
use crate::path::{self, ResolveError};
use crate::wasi::{self, Role};

/// One argument of a monitored call, as the monitor sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer parameter; `i32` parameters are sign-extended from the low 32 bits.
    Int(i64),
    /// The bytes of a string parameter; `None` when pointer and length lie outside memory 0.
    Str(Option<Vec<u8>>),
    /// A float parameter (never read by guards, carried for completeness).
    Float(f64),
    /// An out-pointer parameter that lies outside the memory or is misaligned; guards
    /// read it as the integer.
    BadPointer(i64),
}

impl Value {
    /// The integer a missing or mistyped argument reads as: 0.
    pub fn int(value: Option<&Value>) -> i64 {
        match value {
            Some(Value::Int(v) | Value::BadPointer(v)) => *v,
            _ => 0,
        }
    }

    /// The bits Wasm passes for numeric parameter type `ty` (an `i32` zero-extended, a
    /// float as its bits), a missing or mistyped argument read as 0.
    pub fn wasm_bits(value: Option<&Value>, ty: ParamType) -> u64 {
        let float = match value {
            Some(Value::Float(f)) => *f,
            _ => 0.0,
        };
        match ty {
            ParamType::I32 => Value::int(value) as u32 as u64,
            ParamType::F32 => (float as f32).to_bits() as u64,
            ParamType::F64 => float.to_bits(),
            ParamType::I64 | ParamType::Str => Value::int(value) as u64,
        }
    }
}

/// A decision of one policy that someone must be told about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Index into [`Program::policies`].
    pub policy: usize,
    /// Index into that policy's transitions; `None` only if no transition was involved.
    pub transition: Option<usize>,
    /// Set when the report is a deny caused by an evaluation error.
    pub fault: Option<RuntimeFault>,
    /// The transition's reason text, or one generated from its origin or the fault.
    pub reason: String,
}

/// What the composed monitor decides about one call in one phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Call the import (pre) / carry on (post).
    Proceed,
    /// Do not call the import; return this value (`None` for imports without results).
    Suppress(Option<i64>),
    /// Stop the program: the first denying policy in program order.
    Deny(Report),
}

/// The result of one phase of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub outcome: Outcome,
    /// Audits of every policy, in program order; empty when the call is denied.
    pub audits: Vec<Report>,
    /// For [`Outcome::Suppress`], which policy and transition suppressed the call and why.
    pub suppressed_by: Option<Report>,
}

/// The reason shown for a transition that fires with a deny, suppress or audit verdict:
/// its own text, or `transition at <origin>` when it has none.
pub fn transition_reason(t: &Transition) -> String {
    match &t.reason {
        Some(r) => r.clone(),
        None => format!("transition at {}", t.origin),
    }
}

/// The run-time state of one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PolicyState {
    state: StateId,
    vars: Vec<i64>,
    /// Members of each set, in insertion order.
    sets: Vec<Vec<i64>>,
}

/// The state of every policy of a [`Program`], stepped call by call, and the descriptor
/// table.
#[derive(Clone, Debug)]
pub struct Monitor {
    program: Arc<Program>,
    policies: Vec<PolicyState>,
    table: Descriptors,
    /// A component's file-system descriptors (WASI 0.2 `descriptor` handles), numbered
    /// apart from preview 1's: it starts empty and learns them from `get-directories`
    /// and `open-at` ([`Effect`]).
    component_table: Descriptors,
    /// A component's stream handles ([`crate::handles`]).
    handles: Handles,
    /// Set while a call with post-phase work is under way, and for good after a deny.
    busy: bool,
    /// Per event, [`Program::monitors`]: calls of other events are not decided.
    monitored: Vec<bool>,
    /// Per event, what its successful calls do to the tables (computed once: each asks
    /// whether the program tracks, which walks every transition).
    effects: Vec<Effects>,
}

/// What a call of one event does to the monitor's tables.
#[derive(Clone, Copy, Debug)]
struct Effects {
    grants: &'static [handles::Grant],
    drop: Option<handles::Stream>,
    descriptor: Option<Effect>,
}

/// What one policy decided in one step, before composition.
enum PolicyStep {
    /// No transition fired: allow, keep state.
    Quiet,
    Fired {
        transition: usize,
        verdict: IrVerdict,
        next: PolicyState,
    },
    Fault(Report),
}

/// The inputs of one step, shared by every policy.
struct Call<'a> {
    program: &'a Program,
    event: EventId,
    args: &'a [Value],
    result: Option<i64>,
    table: &'a Descriptors,
    handles: &'a Handles,
}

impl Call<'_> {
    fn param_type(&self, param: ParamId) -> Option<ParamType> {
        self.program
            .events
            .get(self.event as usize)
            .and_then(|e| e.params.get(param as usize))
            .map(|p| p.ty)
    }

    /// What descriptor or stream handle parameter `param` is.
    fn kind(&self, param: ParamId) -> Kind {
        let h = self.int_arg(param);
        let event = &self.program.events[self.event as usize];
        match event
            .params
            .get(param as usize)
            .and_then(|p| handles::stream_param(event, &p.name))
        {
            Some(stream) => self.handles.kind(stream, h),
            None => self.table.kind(h),
        }
    }

    fn int_arg(&self, param: ParamId) -> i64 {
        let raw = Value::int(self.args.get(param as usize));
        match self.param_type(param) {
            Some(ParamType::I32) => raw as i32 as i64,
            _ => raw,
        }
    }

    fn str_arg(&self, param: ParamId) -> Option<&[u8]> {
        match self.args.get(param as usize) {
            Some(Value::Str(Some(bytes))) => Some(bytes),
            _ => None,
        }
    }

    /// The parameter of this event named `name`.
    fn param_named(&self, name: &str) -> Option<ParamId> {
        let e = self.program.events.get(self.event as usize)?;
        e.params
            .iter()
            .position(|p| p.name == name)
            .map(|i| i as ParamId)
    }

    /// The catalogue role of parameter `param`, for WASI events.
    fn role(&self, param: ParamId) -> Option<Role> {
        let e = self.program.events.get(self.event as usize)?;
        wasi::event_role(&e.module, &e.field, &e.params.get(param as usize)?.name)
    }

    /// Path parameter `param` resolved (`crate::ir` docs, "Resources").
    fn resolved(&self, param: ParamId) -> Result<Vec<u8>, RuntimeFault> {
        let raw = self
            .str_arg(param)
            .ok_or(RuntimeFault::StringOutOfBounds { param })?;
        let too_long = |_: ResolveError| RuntimeFault::PathTooLong { param };
        if raw.starts_with(b"/") {
            return path::normalize(raw).map_err(too_long);
        }
        match self.role(param) {
            Some(Role::Path { dir }) => {
                let fd = self.param_named(dir).map_or(0, |d| self.int_arg(d));
                let base = self
                    .table
                    .get(fd)
                    .and_then(|d| d.path.as_deref())
                    .ok_or(RuntimeFault::UnresolvedPath { param, fd })?;
                path::resolve(base, raw).map_err(too_long)
            }
            Some(Role::LinkTarget { link }) => {
                let link = self.param_named(link);
                let dir_fd = link
                    .and_then(|l| match self.role(l) {
                        Some(Role::Path { dir }) => self.param_named(dir),
                        _ => None,
                    })
                    .map_or(0, |d| self.int_arg(d));
                let at = link
                    .ok_or(())
                    .and_then(|l| self.resolved(l).map_err(|_| ()))
                    .map_err(|_| RuntimeFault::UnresolvedPath { param, fd: dir_fd })?;
                path::resolve(path::parent(&at), raw).map_err(too_long)
            }
            // Not a path: the lowering never resolves such a parameter.
            _ => Err(RuntimeFault::UnresolvedPath { param, fd: -1 }),
        }
    }

    /// The path of the descriptor in parameter `param`: empty for streams and sockets.
    fn fd_path(&self, param: ParamId) -> Result<Vec<u8>, RuntimeFault> {
        let fd = self.int_arg(param);
        let fault = RuntimeFault::UnknownDescriptor { param, fd };
        let d = self.table.get(fd).ok_or(fault.clone())?;
        match d.kind {
            Kind::File | Kind::Directory => d.path.clone().ok_or(fault),
            _ => Ok(Vec::new()),
        }
    }

    fn result(&self) -> i64 {
        let raw = self.result.unwrap_or(0);
        let event = self.program.events.get(self.event as usize);
        event.map_or(raw, |e| e.narrow_result(raw))
    }
}

/// Evaluates `e`; booleans are `0` / `1`. The compiler guarantees well-typedness, so
/// any non-zero value is true.
fn eval(e: &Expr, call: &Call<'_>, st: &PolicyState) -> Result<i64, RuntimeFault> {
    Ok(match e {
        Expr::Bool(b) => *b as i64,
        Expr::Int(v) => *v,
        Expr::Param(p) => call.int_arg(*p),
        Expr::Result => call.result(),
        Expr::Var(v) => st.vars.get(*v as usize).copied().unwrap_or(0),
        Expr::Unary(op, a) => op.apply(eval(a, call, st)?),
        Expr::Binary(op, a, b) => {
            let a = eval(a, call, st)?;
            // Short-circuit: the right operand is not evaluated, so it cannot fault.
            match op {
                BinOp::And if a == 0 => return Ok(0),
                BinOp::Or if a != 0 => return Ok(1),
                _ => {}
            }
            let b = eval(b, call, st)?;
            op.apply(a, b).ok_or(RuntimeFault::DivisionByZero)?
        }
        Expr::Str(subject, pattern) => {
            let bytes = match *subject {
                Subject::Raw(p) => call
                    .str_arg(p)
                    .map(<[u8]>::to_vec)
                    .ok_or(RuntimeFault::StringOutOfBounds { param: p })?,
                Subject::Resolved(p) => call.resolved(p)?,
                Subject::FdPath(p) => call.fd_path(p)?,
            };
            pattern.matches(&bytes) as i64
        }
        Expr::FdIs(p, mask) => (call.kind(*p).bit() & mask != 0) as i64,
        Expr::FdWritable(p) => call.table.get(call.int_arg(*p)).is_some_and(|d| d.writable) as i64,
        Expr::SetHas(s, v) => {
            let v = eval(v, call, st)?;
            st.sets.get(*s as usize).is_some_and(|m| m.contains(&v)) as i64
        }
        Expr::SetLen(s) => st.sets.get(*s as usize).map_or(0, |m| m.len() as i64),
    })
}

impl Monitor {
    /// Every policy in its initial state with its variables at their initial values.
    pub fn new(program: &Program) -> Monitor {
        Monitor::from_arc(Arc::new(program.clone()))
    }

    /// Like [`Monitor::new`] without copying the program. The descriptor table starts
    /// with the three standard streams, as a host without preopens reports them.
    pub fn from_arc(program: Arc<Program>) -> Monitor {
        Monitor::with_descriptors(program, Descriptors::standard_streams())
    }

    /// A monitor whose descriptor table starts as `table` (what the host reported).
    pub fn with_descriptors(program: Arc<Program>, table: Descriptors) -> Monitor {
        let policies = program
            .policies
            .iter()
            .map(|p| PolicyState {
                state: p.initial,
                vars: p.vars.iter().map(|v| v.init).collect(),
                sets: vec![Vec::new(); p.sets.len()],
            })
            .collect();
        let monitored = (0..program.events.len() as EventId)
            .map(|e| program.monitors(e))
            .collect();
        let effects = (0..program.events.len() as EventId)
            .map(|e| Effects {
                grants: program.stream_grants(e),
                drop: program.stream_drop(e),
                descriptor: program.descriptor_effect(e),
            })
            .collect();
        Monitor {
            program,
            policies,
            table,
            component_table: Descriptors::default(),
            handles: Handles::default(),
            monitored,
            effects,
            busy: false,
        }
    }

    /// The descriptor table as the monitor knows it.
    pub fn descriptors(&self) -> &Descriptors {
        &self.table
    }

    /// A component's file-system descriptors as the monitor knows them.
    pub fn component_descriptors(&self) -> &Descriptors {
        &self.component_table
    }

    /// The table `event`'s descriptor parameters index: a component's for a WIT-named
    /// import, preview 1's otherwise.
    fn table_for(&self, event: EventId) -> &Descriptors {
        match self.program.events.get(event as usize) {
            Some(e) if crate::wit::split_interface(&e.module).is_some() => &self.component_table,
            _ => &self.table,
        }
    }

    /// What a call of `event` does to the tables (nothing for an unknown event).
    fn effects_of(&self, event: EventId) -> Effects {
        self.effects
            .get(event as usize)
            .copied()
            .unwrap_or(Effects {
                grants: &[],
                drop: None,
                descriptor: None,
            })
    }

    /// A component's stream handles as the monitor knows them.
    pub fn handles(&self) -> &Handles {
        &self.handles
    }

    /// Members of set `set` of policy `policy`, in insertion order.
    ///
    /// # Panics
    /// If either index is out of range.
    pub fn set(&self, policy: usize, set: u32) -> &[i64] {
        &self.policies[policy].sets[set as usize]
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Current state of policy `policy`.
    ///
    /// # Panics
    /// If `policy` is not an index into [`Program::policies`].
    pub fn state(&self, policy: usize) -> StateId {
        self.policies[policy].state
    }

    /// Current value of variable `var` of policy `policy`.
    ///
    /// # Panics
    /// If either index is out of range.
    pub fn var(&self, policy: usize, var: VarId) -> i64 {
        self.policies[policy].vars[var as usize]
    }

    /// The pre phase of a call of `event` with `args` (one per [`crate::ir::Event::params`]).
    pub fn pre(&mut self, event: EventId, args: &[Value]) -> Step {
        self.step(event, Phase::Pre, args, None)
    }

    /// The post phase, after the import returned `result` (`None` if it has no result),
    /// with no descriptor handed out.
    pub fn post(&mut self, event: EventId, args: &[Value], result: Option<i64>) -> Step {
        self.post_opened(event, args, result, None)
    }

    /// The post phase of a call that handed out `opened` (a successful `path_open` or
    /// `sock_accept`: the descriptor written to its out-pointer and its file type).
    pub fn post_opened(
        &mut self,
        event: EventId,
        args: &[Value],
        result: Option<i64>,
        opened: Option<Opened>,
    ) -> Step {
        // A trace's `opens N` of a component call: its streams are N, N + 1, ...
        let n = self.effects_of(event).grants.len() as u32;
        let handed: Option<Vec<u32>> = opened
            .filter(|_| n > 0)
            .map(|o| (0..n).map(|i| o.fd.wrapping_add(i)).collect());
        self.post_inner(event, args, result, opened, handed.as_deref(), &[])
    }

    /// The post phase of a component's `get-directories`: `directories` are the handles
    /// and names of the list the host returned, in order.
    pub fn post_directories(
        &mut self,
        event: EventId,
        args: &[Value],
        directories: &[(u32, Vec<u8>)],
    ) -> Step {
        self.post_inner(event, args, None, None, None, directories)
    }

    /// The post phase of a component call that hands out streams behind `retptr`
    /// ([`crate::handles`]): `handed` are the handles the host wrote there, in the order
    /// of the call's grants, or `None` when it returned an error.
    pub fn post_streams(
        &mut self,
        event: EventId,
        args: &[Value],
        result: Option<i64>,
        handed: Option<&[u32]>,
    ) -> Step {
        self.post_inner(event, args, result, None, handed, &[])
    }

    fn post_inner(
        &mut self,
        event: EventId,
        args: &[Value],
        result: Option<i64>,
        opened: Option<Opened>,
        handed: Option<&[u32]>,
        directories: &[(u32, Vec<u8>)],
    ) -> Step {
        // The mark is cleared by the call that set it: a call the weaver leaves alone
        // never sets it.
        if self.monitored[event as usize] {
            self.busy = false;
        }
        let mut step = self.step(event, Phase::Post, args, result);
        if matches!(step.outcome, Outcome::Deny(_)) {
            self.busy = true;
            return step;
        }
        let effects = self.effects_of(event);
        if let Some(stream) = effects.drop {
            let h = args
                .first()
                .map_or(-1, |a| Value::int(Some(a)) as i32 as i64);
            self.handles.forget(stream, h);
            return step;
        }
        let grants = effects.grants;
        if !grants.is_empty() {
            // A grant behind `retptr` hands out `handed` in order, none when it failed;
            // a flat one hands out its result.
            for (i, g) in grants.iter().enumerate() {
                let h = match g.at {
                    Place::Result => result.map(|r| r as i32 as u32),
                    Place::Ok(_) => handed.and_then(|h| h.get(i).copied()),
                };
                if let Some(h) = h {
                    if let Err(h) = self.handles.grant(g.stream, h, g.kind) {
                        return self
                            .call_fault(event, RuntimeFault::DescriptorLimit { fd: h.into() });
                    }
                }
            }
            return step;
        }
        if result.unwrap_or(0) as i32 != 0 {
            return step;
        }
        if let Err(fd) = self.apply_effect(event, args, opened, directories) {
            step = self.call_fault(event, RuntimeFault::DescriptorLimit { fd });
        }
        step
    }

    /// A deny of the whole call by the event's owner.
    fn call_fault(&mut self, event: EventId, fault: RuntimeFault) -> Step {
        self.busy = true;
        let policy = self.program.owner(event);
        let reason = fault.reason(&self.program, event, policy, None);
        Step {
            outcome: Outcome::Deny(Report {
                policy,
                transition: None,
                fault: Some(fault),
                reason,
            }),
            audits: Vec::new(),
            suppressed_by: None,
        }
    }

    /// The change a successful call makes to the table; `Err(fd)` past the limit.
    fn apply_effect(
        &mut self,
        event: EventId,
        args: &[Value],
        opened: Option<Opened>,
        directories: &[(u32, Vec<u8>)],
    ) -> Result<(), i64> {
        let Some(effect) = self.effects_of(event).descriptor else {
            return Ok(());
        };
        let program = Arc::clone(&self.program);
        let call = Call {
            program: &program,
            event,
            args,
            result: None,
            table: self.table_for(event),
            handles: &self.handles,
        };
        let arg = |name: &str| call.param_named(name).map_or(0, |p| call.int_arg(p));
        let change = match effect {
            Effect::Open => {
                let Some(o) = opened else { return Ok(()) };
                let path = call.param_named("path").and_then(|p| call.resolved(p).ok());
                Change::Add {
                    fd: o.fd,
                    descriptor: Descriptor {
                        kind: Kind::from_filetype(o.filetype),
                        path,
                        writable: descriptors::opens_for_writing(
                            arg("oflags"),
                            arg("fs_rights_base"),
                            arg("fdflags"),
                        ),
                    },
                }
            }
            Effect::Accept => {
                let Some(o) = opened else { return Ok(()) };
                Change::Add {
                    fd: o.fd,
                    descriptor: Descriptor {
                        kind: Kind::Socket,
                        path: None,
                        writable: true,
                    },
                }
            }
            // Descriptors are WASI's `u32`: an `i32` argument of -1 is 4294967295.
            Effect::Close => Change::Remove {
                fd: arg("fd") as i32 as u32,
            },
            Effect::Renumber => Change::Renumber {
                from: arg("fd") as i32 as u32,
                to: arg("to") as i32 as u32,
            },
            Effect::OpenAt => {
                let Some(o) = opened else { return Ok(()) };
                let path = call.param_named("path").and_then(|p| call.resolved(p).ok());
                let open_flags = arg("open_flags");
                Change::Add {
                    fd: o.fd,
                    descriptor: Descriptor {
                        kind: descriptors::opened_at_kind(open_flags),
                        path,
                        writable: descriptors::opens_at_for_writing(open_flags, arg("flags")),
                    },
                }
            }
            Effect::Preopens => {
                for (h, name) in directories {
                    let change = Change::Add {
                        fd: *h,
                        descriptor: descriptors::preopened_directory(name),
                    };
                    self.component_table.apply(change).map_err(i64::from)?;
                }
                return Ok(());
            }
            Effect::Drop => Change::Remove {
                fd: arg("self") as i32 as u32,
            },
        };
        let table = match effect {
            Effect::OpenAt | Effect::Preopens | Effect::Drop => &mut self.component_table,
            _ => &mut self.table,
        };
        table.apply(change).map_err(i64::from)
    }

    fn step(&mut self, event: EventId, phase: Phase, args: &[Value], result: Option<i64>) -> Step {
        // A call no acting policy mentions is left alone by the weaver: its policies
        // still step (they can only allow), but no call-level check applies to it.
        let monitored = self.monitored[event as usize];
        let program = Arc::clone(&self.program);
        if phase == Phase::Pre && self.busy && monitored {
            return self.call_fault(event, RuntimeFault::Interrupted);
        }
        let call = Call {
            program: &program,
            event,
            args,
            result,
            table: self.table_for(event),
            handles: &self.handles,
        };
        let steps: Vec<PolicyStep> = program
            .policies
            .iter()
            .zip(&self.policies)
            .enumerate()
            .map(|(i, (policy, current))| step_policy(&call, i, policy, current, phase))
            .collect();

        let mut deny: Option<Report> = None;
        let mut suppress: Option<(Option<i64>, Report)> = None;
        let mut audits = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            match s {
                PolicyStep::Quiet => {}
                PolicyStep::Fault(report) => {
                    deny.get_or_insert_with(|| report.clone());
                }
                PolicyStep::Fired {
                    transition,
                    verdict,
                    ..
                } => {
                    let t = &program.policies[i].transitions[*transition];
                    let report = || Report {
                        policy: i,
                        transition: Some(*transition),
                        fault: None,
                        reason: transition_reason(t),
                    };
                    match verdict {
                        IrVerdict::Allow => {}
                        IrVerdict::Audit => audits.push(report()),
                        IrVerdict::Suppress(v) if phase == Phase::Pre => {
                            if suppress.is_none() {
                                suppress = Some((*v, report()));
                            }
                        }
                        IrVerdict::Suppress(_) => {}
                        IrVerdict::Deny => {
                            deny.get_or_insert_with(report);
                        }
                    }
                }
            }
        }

        // An audit needs the stderr found at start to report to.
        if deny.is_none() && self.table.kind(2) != Kind::Stderr {
            if let Some(a) = audits
                .iter()
                .find(|a| !program.policies[a.policy].allow_undelivered_audits)
            {
                let f = RuntimeFault::AuditUndelivered;
                deny = Some(Report {
                    policy: a.policy,
                    transition: a.transition,
                    reason: f.reason(&program, event, a.policy, a.transition),
                    fault: Some(f),
                });
            }
        }
        // The import will be called: the host must be able to write its results.
        if deny.is_none() && suppress.is_none() && phase == Phase::Pre && monitored {
            if let Some(param) = args
                .iter()
                .position(|a| matches!(a, Value::BadPointer(_)))
                .filter(|&p| matches!(call.role(p as ParamId), Some(Role::Out { .. })))
            {
                let f = RuntimeFault::OutPointer {
                    param: param as ParamId,
                };
                let policy = program.owner(event);
                deny = Some(Report {
                    policy,
                    transition: None,
                    reason: f.reason(&program, event, policy, None),
                    fault: Some(f),
                });
            }
        }

        for (current, s) in self.policies.iter_mut().zip(steps) {
            if let PolicyStep::Fired { verdict, next, .. } = s {
                if verdict != IrVerdict::Deny {
                    *current = next;
                }
            }
        }

        match (deny, suppress) {
            (Some(report), _) => {
                self.busy = true;
                Step {
                    outcome: Outcome::Deny(report),
                    audits: Vec::new(),
                    suppressed_by: None,
                }
            }
            (None, Some((value, report))) => Step {
                outcome: Outcome::Suppress(value),
                audits,
                suppressed_by: Some(report),
            },
            (None, None) => {
                if phase == Phase::Pre && program.has_post_work(event) {
                    self.busy = true;
                }
                Step {
                    outcome: Outcome::Proceed,
                    audits,
                    suppressed_by: None,
                }
            }
        }
    }
}

/// One policy's step: first matching transition whose guard holds, then its updates.
fn step_policy(
    call: &Call<'_>,
    index: usize,
    policy: &Policy,
    current: &PolicyState,
    phase: Phase,
) -> PolicyStep {
    let fault = |ti: usize, fault: RuntimeFault| {
        PolicyStep::Fault(Report {
            policy: index,
            transition: Some(ti),
            reason: fault.reason(call.program, call.event, index, Some(ti)),
            fault: Some(fault),
        })
    };
    for (ti, t) in policy.candidates(current.state, call.event, phase) {
        match eval(&t.guard, call, current) {
            Err(f) => return fault(ti, f),
            Ok(0) => continue,
            Ok(_) => {}
        }
        let mut next = PolicyState {
            state: t.next.unwrap_or(current.state),
            vars: current.vars.clone(),
            sets: current.sets.clone(),
        };
        if t.verdict != IrVerdict::Deny {
            for u in &t.updates {
                let value = match eval(&u.value, call, current) {
                    Ok(v) => v,
                    Err(f) => return fault(ti, f),
                };
                let Some(decl) = policy.vars.get(u.var as usize) else {
                    continue;
                };
                if value < decl.min || value > decl.max {
                    return fault(ti, RuntimeFault::VarOutOfRange { var: u.var, value });
                }
                next.vars[u.var as usize] = value;
            }
            let mut values = Vec::with_capacity(t.set_updates.len());
            for u in &t.set_updates {
                match eval(&u.value, call, current) {
                    Ok(v) => values.push(v),
                    Err(f) => return fault(ti, f),
                }
            }
            for (u, v) in t.set_updates.iter().zip(values) {
                let (Some(members), Some(decl)) = (
                    next.sets.get_mut(u.set as usize),
                    policy.sets.get(u.set as usize),
                ) else {
                    continue;
                };
                let at = members.iter().position(|m| *m == v);
                match (u.insert, at) {
                    (true, Some(_)) => {}
                    (true, None) if members.len() >= decl.capacity as usize => {
                        return fault(ti, RuntimeFault::SetFull { set: u.set });
                    }
                    (true, None) => members.push(v),
                    (false, Some(i)) => {
                        members.remove(i);
                    }
                    (false, None) => {}
                }
            }
        }
        return PolicyStep::Fired {
            transition: ti,
            verdict: t.verdict.clone(),
            next,
        };
    }
    PolicyStep::Quiet
}

/// One call in a trace: the event, its arguments and what the import returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraceEvent {
    pub event: EventId,
    /// One per [`crate::ir::Event::params`].
    pub args: Vec<Value>,
    /// The import's result when it runs; `None` reads as `0` for imports with a result.
    pub result: Option<i64>,
    /// What the import handed out when it succeeded (a `path_open` or `sock_accept`):
    /// the descriptor it wrote to the out-pointer and its file type.
    pub opened: Option<Opened>,
    /// The import trapped (or otherwise did not return): its side effects may have
    /// happened, but there is no result and no post phase.
    pub trapped: bool,
}

/// The host's side of a trace: descriptors 0, 1 and 2 are the standard streams and
/// `preopens` are directories at 3, 4, ... in order, named as the host names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct World {
    pub preopens: Vec<Vec<u8>>,
}

impl World {
    /// A world preopening `dirs` (guest paths) in order.
    pub fn with_preopens<S: AsRef<[u8]>>(dirs: &[S]) -> World {
        World {
            preopens: dirs.iter().map(|d| d.as_ref().to_vec()).collect(),
        }
    }

    /// The descriptor of the `i`th preopen.
    pub fn preopen_fd(i: usize) -> u32 {
        3 + i as u32
    }

    /// What the host reports for each open descriptor at start, in number order.
    pub fn initial(&self) -> Vec<descriptors::Initial> {
        let stream = descriptors::Initial::stream;
        let mut out = vec![stream(0), stream(1), stream(2)];
        out.extend(
            self.preopens
                .iter()
                .enumerate()
                .map(|(i, name)| descriptors::Initial {
                    fd: World::preopen_fd(i),
                    filetype: Some(descriptors::FILETYPE_DIRECTORY),
                    rights: u64::MAX >> 35,
                    preopen: Some(name.clone()),
                }),
        );
        out
    }

    /// What a component's `get-directories` returns in this world: the preopens, handed
    /// out as `first`, `first` + 1, ... (a trace's `opens N`); an empty list without it.
    pub fn directories(&self, first: Option<Opened>) -> Vec<(u32, Vec<u8>)> {
        let Some(first) = first else {
            return Vec::new();
        };
        let handles = (0..).map(|i| first.fd.wrapping_add(i));
        handles.zip(self.preopens.iter().cloned()).collect()
    }

    /// The monitor's table at start in this world.
    pub fn descriptors(&self) -> Descriptors {
        Descriptors::from_world(&self.initial()).expect("a trace world has few preopens")
    }
}

/// The first violation of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// 1-based index of the call in the trace.
    pub step: usize,
    pub phase: Phase,
    /// Name of the denying policy.
    pub policy: String,
    pub reason: String,
    /// Set when the deny came from an evaluation error rather than a `deny` transition.
    pub fault: Option<RuntimeFault>,
}

/// A reported but non-fatal decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObservationKind {
    Audit,
    Suppress(Option<i64>),
}

/// An audit or suppression seen while running a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// 1-based index of the call in the trace.
    pub step: usize,
    pub phase: Phase,
    pub policy: String,
    pub kind: ObservationKind,
    pub reason: String,
}

/// How a whole trace is decided. Judges other than the interpreter (a woven module, the
/// host-side monitor) produce the same structure so verdicts can be compared directly.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// `None`: the trace is accepted.
    pub violation: Option<Violation>,
    /// In order of occurrence; nothing after the violation.
    pub observations: Vec<Observation>,
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        self.violation.is_none()
    }
}

/// Runs `trace` from the initial state: each call takes a pre step, then (unless
/// suppressed) a post step with its result; the first deny ends the trace.
pub fn run_trace(program: &Program, trace: &[TraceEvent]) -> Verdict {
    run_trace_in(program, &World::default(), trace)
}

/// Runs `trace` in `world`: like [`run_trace`], with the monitor's descriptor table
/// starting from what the world's host reports, the descriptors each call handed out
/// recorded, and no post phase for a call that trapped. The audits of a call's pre phase
/// are reported when the import returns (at once for a suppressed call), as the woven
/// monitor delivers them.
pub fn run_trace_in(program: &Program, world: &World, trace: &[TraceEvent]) -> Verdict {
    let mut monitor = Monitor::with_descriptors(Arc::new(program.clone()), world.descriptors());
    let mut verdict = Verdict::default();
    let policy_name = |i: usize| program.policies[i].name.clone();
    let audit = |step: usize, phase: Phase, a: Report| Observation {
        step,
        phase,
        policy: policy_name(a.policy),
        kind: ObservationKind::Audit,
        reason: a.reason,
    };
    for (i, call) in trace.iter().enumerate() {
        let step_no = i + 1;
        let has_result = program
            .events
            .get(call.event as usize)
            .is_some_and(|e| !e.results.is_empty());
        let pre = monitor.pre(call.event, &call.args);
        match pre.outcome {
            Outcome::Proceed => {}
            Outcome::Suppress(value) => {
                // Reported at once: the import never runs.
                for a in pre.audits {
                    verdict.observations.push(audit(step_no, Phase::Pre, a));
                }
                if let Some(by) = pre.suppressed_by {
                    verdict.observations.push(Observation {
                        step: step_no,
                        phase: Phase::Pre,
                        policy: policy_name(by.policy),
                        kind: ObservationKind::Suppress(value),
                        reason: by.reason,
                    });
                }
                continue;
            }
            Outcome::Deny(report) => {
                verdict.violation = Some(Violation {
                    step: step_no,
                    phase: Phase::Pre,
                    policy: policy_name(report.policy),
                    reason: report.reason,
                    fault: report.fault,
                });
                return verdict;
            }
        }
        // The import runs. The pre phase's audits are delivered when it returns (nothing
        // may run between the guards and the import), so a call that trapped reports none.
        if call.trapped {
            continue;
        }
        for a in pre.audits {
            verdict.observations.push(audit(step_no, Phase::Pre, a));
        }
        let result = has_result.then(|| call.result.unwrap_or(0));
        let post = match program.descriptor_effect(call.event) {
            Some(Effect::Preopens) => {
                let directories = world.directories(call.opened);
                monitor.post_directories(call.event, &call.args, &directories)
            }
            _ => monitor.post_opened(call.event, &call.args, result, call.opened),
        };
        for a in post.audits {
            verdict.observations.push(audit(step_no, Phase::Post, a));
        }
        if let Outcome::Deny(report) = post.outcome {
            verdict.violation = Some(Violation {
                step: step_no,
                phase: Phase::Post,
                policy: policy_name(report.policy),
                reason: report.reason,
                fault: report.fault,
            });
            return verdict;
        }
    }
    verdict
}
