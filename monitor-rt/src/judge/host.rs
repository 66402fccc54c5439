//! The host judge: the driver, *not* woven, run under host enforcement (`Enforcement::Host`
//! of the runner): the runner's own wrappers around the driver's imports decide every
//! call with the reference interpreter, and call the fake imports through the
//! host-enforcement shim. The verdict is read from the runner's observer, the record
//! `irm run --record` writes, so this judge checks what host enforcement does around
//! the interpreter: decoding arguments from memory, forwarding calls, returning
//! suppression values, stopping at a deny, and what it reports of each.
use std::sync::{Arc, Mutex};

use policy_lang::interp::{Observation, ObservationKind, TraceEvent, Verdict, Violation, World};
use policy_lang::ir::{Phase, Program};
use wasmtime::{Linker, Store};
use wasmtime_wasi::WasiCtxBuilder;

use super::driver::{check_calls, check_ending, driver, fake_imports, run_steps, Received, Seen};
use super::{shared_engine, JudgeError};
use crate::observe::Observer;
use crate::record::{RecordedStep, StepNote};
use crate::{RunState, ViolationReport};

/// Runs `trace` through the driver under host enforcement and reports its verdict.
pub fn host(program: &Program, world: &World, trace: &[TraceEvent]) -> Result<Verdict, JudgeError> {
    let driver = driver(program, trace)?;
    let engine = shared_engine();
    let module = wasmtime::Module::new(engine, &driver.wasm).map_err(JudgeError::Wasm)?;
    let program = Arc::new(program.clone());
    let mut store = Store::new(
        engine,
        RunState {
            wasi: WasiCtxBuilder::new().build_p1(),
        },
    );
    let mut linker = Linker::new(engine);
    // The wrappers replace the fake imports they forward to, as they replace WASI's.
    linker.allow_shadowing(true);
    let seen = Arc::new(Mutex::new(Seen::default()));
    fake_imports(&mut linker, &module, &program, world, trace, &driver, &seen)?;
    let observer = Arc::new(Mutex::new(Observer::new(Arc::clone(&program), None, true)));
    let shim = crate::host::wrap_imports(&mut linker, &mut store, &module, &program, &observer)
        .map_err(|e| JudgeError::Host(Box::new(e)))?;

    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(JudgeError::Wasm)?;
    if let Some(shim) = &shim {
        shim.connect(&mut store, &instance)
            .map_err(JudgeError::Wasm)?;
    }
    let outcome = run_steps(&instance, &mut store, trace)?;
    let received = Received::read(&instance, &mut store, &driver, trace.len())?;

    let mut obs = observer.lock().unwrap_or_else(|p| p.into_inner());
    obs.finish();
    let steps = obs.recorded.as_deref().unwrap_or(&[]);
    let verdict = verdict_from_record(&program, steps, obs.violation.as_ref(), &received);
    check_ending(&outcome, &verdict)?;
    check_calls(trace, &driver, &verdict, &seen.lock().unwrap())?;
    Ok(verdict)
}

/// The verdict the observer recorded: one step per monitored call, each with its audits
/// and suppression in order, and the deny at the last call. A suppression's value is the
/// one the driver received, so the wrappers' results are judged, not the interpreter's.
fn verdict_from_record(
    program: &Program,
    steps: &[RecordedStep],
    violation: Option<&ViolationReport>,
    received: &Received,
) -> Verdict {
    let policy = |p: usize| {
        program
            .policies
            .get(p)
            .map_or_else(|| format!("#{p}"), |p| p.name.clone())
    };
    let observations = steps
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.notes.iter().map(move |n| (i + 1, n)))
        .map(|(step, n)| match n {
            StepNote::Audit {
                policy: p,
                phase,
                reason,
            } => Observation {
                step,
                phase: *phase,
                policy: policy(*p),
                kind: ObservationKind::Audit,
                reason: reason.clone(),
            },
            // A suppressed call never runs: suppression is always before it.
            StepNote::Suppress {
                policy: p,
                reason,
                value,
            } => Observation {
                step,
                phase: Phase::Pre,
                policy: policy(*p),
                kind: ObservationKind::Suppress(value.map(|_| received.at(step))),
                reason: reason.clone(),
            },
        })
        .collect();
    let violation = violation.map(|v| Violation {
        step: v.recent.last().map_or(steps.len(), |c| c.call),
        phase: v.phase,
        policy: v.policy.clone(),
        reason: v.reason.clone(),
        fault: v.fault.clone(),
    });
    Verdict {
        violation,
        observations,
    }
}
