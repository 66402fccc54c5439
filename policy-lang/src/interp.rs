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
//!   variables, even when another policy denied (the program stops on a deny, so this
//!   is never observable; it keeps [`Monitor::state`] meaningful after a deny).
use std::sync::Arc;

use crate::ir::{
    BinOp, EventId, Expr, ParamId, ParamType, Phase, Policy, Program, RuntimeFault, StateId,
    Transition, UnOp, ValType, VarId, Verdict as IrVerdict,
};

/// One argument of a monitored call, as the monitor sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer parameter; `i32` parameters are sign-extended from the low 32 bits.
    Int(i64),
    /// The bytes of a string parameter; `None` when pointer and length lie outside memory 0.
    Str(Option<Vec<u8>>),
    /// A float parameter (never read by guards, carried for completeness).
    Float(f64),
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

/// Where in a transition an evaluation fault happened; only changes the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultSite {
    Guard,
    Update,
}

impl FaultSite {
    fn word(self) -> &'static str {
        match self {
            FaultSite::Guard => "guard",
            FaultSite::Update => "update",
        }
    }
}

/// The reason shown for a transition that fires with a deny, suppress or audit verdict:
/// its own text, or `transition at <origin>` when it has none.
pub fn transition_reason(t: &Transition) -> String {
    match &t.reason {
        Some(r) => r.clone(),
        None => format!("transition at {}", t.origin),
    }
}

/// The generated reason for a runtime fault in transition `t` of `policy` on `event`.
pub fn fault_reason(
    program: &Program,
    policy: &Policy,
    t: &Transition,
    fault: &RuntimeFault,
    site: FaultSite,
) -> String {
    match fault {
        RuntimeFault::StringOutOfBounds { param } => {
            let name = program
                .events
                .get(t.event as usize)
                .and_then(|e| e.params.get(*param as usize))
                .map_or_else(|| format!("#{param}"), |p| p.name.clone());
            format!(
                "string argument `{name}` is outside memory ({} at {})",
                site.word(),
                t.origin
            )
        }
        RuntimeFault::DivisionByZero => {
            format!("division by zero in {} at {}", site.word(), t.origin)
        }
        RuntimeFault::VarOutOfRange { var, value } => match policy.vars.get(*var as usize) {
            Some(v) => format!(
                "variable `{}` would become {value}, outside {}..{} ({} at {})",
                v.name,
                v.min,
                v.max,
                site.word(),
                t.origin
            ),
            None => format!(
                "variable #{var} would become {value} (update at {})",
                t.origin
            ),
        },
    }
}

/// The run-time state of one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PolicyState {
    state: StateId,
    vars: Vec<i64>,
}

/// The state of every policy of a [`Program`], stepped call by call.
#[derive(Clone, Debug)]
pub struct Monitor {
    program: Arc<Program>,
    policies: Vec<PolicyState>,
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
}

impl Call<'_> {
    fn param_type(&self, param: ParamId) -> Option<ParamType> {
        self.program
            .events
            .get(self.event as usize)
            .and_then(|e| e.params.get(param as usize))
            .map(|p| p.ty)
    }

    fn int_arg(&self, param: ParamId) -> i64 {
        let raw = match self.args.get(param as usize) {
            Some(Value::Int(v)) => *v,
            _ => 0,
        };
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

    fn result(&self) -> i64 {
        let raw = self.result.unwrap_or(0);
        match self
            .program
            .events
            .get(self.event as usize)
            .and_then(|e| e.results.first())
        {
            Some(ValType::I32) => raw as i32 as i64,
            _ => raw,
        }
    }
}

/// Evaluates `e`; booleans are `0` / `1`. The compiler guarantees well-typedness, so
/// any non-zero value is true.
fn eval(e: &Expr, call: &Call<'_>, vars: &[i64]) -> Result<i64, RuntimeFault> {
    Ok(match e {
        Expr::Bool(b) => *b as i64,
        Expr::Int(v) => *v,
        Expr::Param(p) => call.int_arg(*p),
        Expr::Result => call.result(),
        Expr::Var(v) => vars.get(*v as usize).copied().unwrap_or(0),
        Expr::Unary(op, a) => {
            let a = eval(a, call, vars)?;
            match op {
                UnOp::Neg => a.wrapping_neg(),
                UnOp::Not => (a == 0) as i64,
                UnOp::BitNot => !a,
            }
        }
        Expr::Binary(op, a, b) => {
            let a = eval(a, call, vars)?;
            // Short-circuit: the right operand is not evaluated, so it cannot fault.
            match op {
                BinOp::And if a == 0 => return Ok(0),
                BinOp::Or if a != 0 => return Ok(1),
                _ => {}
            }
            let b = eval(b, call, vars)?;
            match op {
                BinOp::Add => a.wrapping_add(b),
                BinOp::Sub => a.wrapping_sub(b),
                BinOp::Mul => a.wrapping_mul(b),
                BinOp::Div if b == 0 => return Err(RuntimeFault::DivisionByZero),
                BinOp::Rem if b == 0 => return Err(RuntimeFault::DivisionByZero),
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
                BinOp::And | BinOp::Or => (b != 0) as i64,
            }
        }
        Expr::Str(p, pattern) => match call.str_arg(*p) {
            Some(bytes) => pattern.matches(bytes) as i64,
            None => return Err(RuntimeFault::StringOutOfBounds { param: *p }),
        },
    })
}

impl Monitor {
    /// Every policy in its initial state with its variables at their initial values.
    pub fn new(program: &Program) -> Monitor {
        Monitor::from_arc(Arc::new(program.clone()))
    }

    /// Like [`Monitor::new`] without copying the program.
    pub fn from_arc(program: Arc<Program>) -> Monitor {
        let policies = program
            .policies
            .iter()
            .map(|p| PolicyState {
                state: p.initial,
                vars: p.vars.iter().map(|v| v.init).collect(),
            })
            .collect();
        Monitor { program, policies }
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

    /// The post phase, after the import returned `result` (`None` if it has no result).
    pub fn post(&mut self, event: EventId, args: &[Value], result: Option<i64>) -> Step {
        self.step(event, Phase::Post, args, result)
    }

    fn step(&mut self, event: EventId, phase: Phase, args: &[Value], result: Option<i64>) -> Step {
        let program = Arc::clone(&self.program);
        let call = Call {
            program: &program,
            event,
            args,
            result,
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

        for (current, s) in self.policies.iter_mut().zip(steps) {
            if let PolicyStep::Fired { verdict, next, .. } = s {
                if verdict != IrVerdict::Deny {
                    *current = next;
                }
            }
        }

        match (deny, suppress) {
            (Some(report), _) => Step {
                outcome: Outcome::Deny(report),
                audits: Vec::new(),
                suppressed_by: None,
            },
            (None, Some((value, report))) => Step {
                outcome: Outcome::Suppress(value),
                audits,
                suppressed_by: Some(report),
            },
            (None, None) => Step {
                outcome: Outcome::Proceed,
                audits,
                suppressed_by: None,
            },
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
    let fault = |ti: usize, t: &Transition, fault: RuntimeFault, site: FaultSite| {
        PolicyStep::Fault(Report {
            policy: index,
            transition: Some(ti),
            reason: fault_reason(call.program, policy, t, &fault, site),
            fault: Some(fault),
        })
    };
    for (ti, t) in policy.candidates(current.state, call.event, phase) {
        match eval(&t.guard, call, &current.vars) {
            Err(f) => return fault(ti, t, f, FaultSite::Guard),
            Ok(0) => continue,
            Ok(_) => {}
        }
        let mut next = PolicyState {
            state: t.next.unwrap_or(current.state),
            vars: current.vars.clone(),
        };
        if t.verdict != IrVerdict::Deny {
            for u in &t.updates {
                let value = match eval(&u.value, call, &current.vars) {
                    Ok(v) => v,
                    Err(f) => return fault(ti, t, f, FaultSite::Update),
                };
                let Some(decl) = policy.vars.get(u.var as usize) else {
                    continue;
                };
                if value < decl.min || value > decl.max {
                    let f = RuntimeFault::VarOutOfRange { var: u.var, value };
                    return fault(ti, t, f, FaultSite::Update);
                }
                next.vars[u.var as usize] = value;
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
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEvent {
    pub event: EventId,
    /// One per [`crate::ir::Event::params`].
    pub args: Vec<Value>,
    /// The import's result when it runs; `None` reads as `0` for imports with a result.
    pub result: Option<i64>,
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
    let mut monitor = Monitor::new(program);
    let mut verdict = Verdict::default();
    let policy_name = |i: usize| program.policies[i].name.clone();
    for (i, call) in trace.iter().enumerate() {
        let step_no = i + 1;
        let has_result = program
            .events
            .get(call.event as usize)
            .is_some_and(|e| !e.results.is_empty());
        for phase in [Phase::Pre, Phase::Post] {
            let step = match phase {
                Phase::Pre => monitor.pre(call.event, &call.args),
                Phase::Post => {
                    let result = has_result.then(|| call.result.unwrap_or(0));
                    monitor.post(call.event, &call.args, result)
                }
            };
            for a in step.audits {
                verdict.observations.push(Observation {
                    step: step_no,
                    phase,
                    policy: policy_name(a.policy),
                    kind: ObservationKind::Audit,
                    reason: a.reason,
                });
            }
            match step.outcome {
                Outcome::Proceed => {}
                Outcome::Suppress(value) => {
                    if let Some(by) = step.suppressed_by {
                        verdict.observations.push(Observation {
                            step: step_no,
                            phase,
                            policy: policy_name(by.policy),
                            kind: ObservationKind::Suppress(value),
                            reason: by.reason,
                        });
                    }
                    // The import never ran, so there is no post phase.
                    break;
                }
                Outcome::Deny(report) => {
                    verdict.violation = Some(Violation {
                        step: step_no,
                        phase,
                        policy: policy_name(report.policy),
                        reason: report.reason,
                        fault: report.fault,
                    });
                    return verdict;
                }
            }
        }
    }
    verdict
}
