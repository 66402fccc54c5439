//! The wasmtime judges of traces, so `irm test` checks the weaver and host enforcement
//! against the reference interpreter on every trace: both run a generated *driver*
//! module ([`driver`]) that makes the trace's calls, and turn what happened into an
//! [`policy_lang::interp::Verdict`], the structure the interpreter produces, so verdicts compare
//! directly ([`policy_lang::trace::disagreement`]).
//!
//! * [`woven`] ([`Woven`]): the driver woven with the policies; the woven code decides;
//! * [`host`] ([`Host`]): the driver as it is, under the runner's host enforcement;
//! * [`woven_component`] ([`WovenComponent`]) and [`host_component`] ([`HostComponent`]):
//!   for policies on WASI 0.2 functions, a driver *component* woven by the component
//!   weaver, and run under the component host enforcement ([`component`]).
//!
//! Both also check the run itself: every call the verdict lets through reached the
//! import once with the exact arguments, and the run stopped exactly at a deny.
mod component;
mod driver;
mod host;
mod woven;

pub use component::{host_component, woven_component};
pub use driver::{driver, Driver};
pub use host::host;
pub use woven::woven;

use instrumenter::WeaveError;
use policy_lang::interp::{TraceEvent, World};
use policy_lang::ir::Program;
use policy_lang::trace::{Judge, JudgeResult};
use thiserror::Error;
use wasmtime::Engine;

/// Why a wasmtime judge could not reach a verdict (as opposed to reaching a different
/// one).
#[derive(Debug, Error)]
pub enum JudgeError {
    #[error("trace step {step}: event #{event} is not an event of the program")]
    UnknownEvent { step: usize, event: u32 },
    #[error("the driver module could not be woven: {0}")]
    Weave(Box<WeaveError>),
    #[error("the woven driver has no readable irm.monitor manifest")]
    NoManifest,
    #[error("host enforcement cannot wrap the driver's imports: {0}")]
    Host(Box<crate::RunError>),
    #[error("the driver could not be run: {0:#}")]
    Wasm(wasmtime::Error),
    #[error("the driver misbehaved: {0}")]
    Inconsistent(String),
    /// The judge does not replay this trace faithfully, and says why.
    #[error("{0}")]
    NotApplicable(policy_lang::trace::NotApplicable),
}

impl JudgeError {
    /// As a [`Judge`]'s error: [`JudgeError::NotApplicable`] as the bare
    /// [`policy_lang::trace::NotApplicable`] that `irm test` reports as "not run".
    fn boxed(self) -> Box<dyn std::error::Error + Send + Sync> {
        match self {
            JudgeError::NotApplicable(n) => Box::new(n),
            e => Box::new(e),
        }
    }
}

impl From<WeaveError> for JudgeError {
    fn from(e: WeaveError) -> Self {
        JudgeError::Weave(Box::new(e))
    }
}

/// The woven judge ([`woven`]) as a [`Judge`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Woven;

impl Judge for Woven {
    fn name(&self) -> &str {
        "woven"
    }

    fn judge(&self, program: &Program, world: &World, trace: &[TraceEvent]) -> JudgeResult {
        Ok(woven(program, world, trace)?)
    }
}

/// The host-enforcement judge ([`host`]) as a [`Judge`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Host;

impl Judge for Host {
    fn name(&self) -> &str {
        "host"
    }

    fn judge(&self, program: &Program, world: &World, trace: &[TraceEvent]) -> JudgeResult {
        Ok(host(program, world, trace)?)
    }
}

/// The component woven judge ([`woven_component`]) as a [`Judge`].
#[derive(Clone, Copy, Debug, Default)]
pub struct WovenComponent;

impl Judge for WovenComponent {
    fn name(&self) -> &str {
        "woven component"
    }

    fn applies(&self, program: &Program) -> bool {
        component::applies(program)
    }

    fn judge(&self, program: &Program, world: &World, trace: &[TraceEvent]) -> JudgeResult {
        woven_component(program, world, trace).map_err(JudgeError::boxed)
    }
}

/// The component host-enforcement judge ([`host_component`]) as a [`Judge`].
#[derive(Clone, Copy, Debug, Default)]
pub struct HostComponent;

impl Judge for HostComponent {
    fn name(&self) -> &str {
        "host component"
    }

    fn applies(&self, program: &Program) -> bool {
        component::applies(program)
    }

    fn judge(&self, program: &Program, world: &World, trace: &[TraceEvent]) -> JudgeResult {
        host_component(program, world, trace).map_err(JudgeError::boxed)
    }
}

/// One engine for every trace: creating an engine is far costlier than the tiny driver
/// modules it compiles, and `irm test` judges every trace of every policy.
fn shared_engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_lang::interp::{self, Value};
    use policy_lang::ir::{
        BinOp, Event, Expr, Param, ParamType, Pattern, Phase, Policy, State, Subject, Transition,
        Update, ValType, Var, Verdict as Ir, IR_VERSION,
    };
    use policy_lang::trace::disagreement;

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
            set_updates: vec![],
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
            sets: vec![],
            transitions,
            allow_shared_memory_strings: false,
            allow_undelivered_audits: false,
        }
    }

    fn call(event: u32, args: Vec<Value>, result: Option<i64>) -> TraceEvent {
        TraceEvent {
            event,
            args,
            result,
            ..TraceEvent::default()
        }
    }

    fn s(text: &str) -> Value {
        Value::Str(Some(text.as_bytes().to_vec()))
    }

    /// Both wasmtime judges reach a verdict and it equals the interpreter's.
    fn assert_agrees(program: &Program, trace: &[TraceEvent]) -> interp::Verdict {
        let reference = interp::run_trace(program, trace);
        for judge in [&Woven as &dyn Judge, &Host] {
            let name = judge.name();
            let v = judge
                .judge(program, &World::default(), trace)
                .unwrap_or_else(|e| panic!("the {name} judge failed: {e}"));
            if let Some(d) = disagreement(program, trace, &reference, &v) {
                panic!("{d:?}\ninterpreter: {reference:?}\n{name}: {v:?}");
            }
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
    fn accepted_trace_is_accepted_by_every_judge() {
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
                Expr::Str(Subject::Raw(0), Pattern::Glob("/etc/**".into())),
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
    fn out_of_bounds_string_is_a_fault_in_every_judge() {
        let p = program(vec![policy(
            "paths",
            1,
            vec![],
            vec![t(
                2,
                Phase::Pre,
                0,
                Expr::Str(Subject::Raw(0), Pattern::Prefix("/tmp/".into())),
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
    fn variable_leaving_its_range_is_a_fault_in_every_judge() {
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
}
