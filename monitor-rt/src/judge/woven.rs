//! The woven judge: the driver woven with the policies (host hooks on) and run in
//! wasmtime, so `irm test` checks the weaver against the reference interpreter on every
//! trace. The woven code decides; the hooks report each audit, suppression and deny, and
//! the verdict is built from them, with suppression values read back from the driver's
//! memory (what its caller received).
use std::sync::{Arc, Mutex};

use instrumenter::manifest::{self, hook_kind, CodeKind, Manifest};
use instrumenter::{weave, WeaveOptions};
use policy_lang::interp::{Observation, ObservationKind, TraceEvent, Verdict, Violation, World};
use policy_lang::ir::Program;
use wasmtime::{Linker, Store, Trap, Val};

use super::driver::{
    check_calls, check_ending, driver, fake_imports, run_steps, step_in_progress, Received, Seen,
};
use super::{shared_engine, JudgeError};

/// Runs `trace` through the woven driver and reports the woven monitor's verdict.
pub fn woven(
    program: &Program,
    world: &World,
    trace: &[TraceEvent],
) -> Result<Verdict, JudgeError> {
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
    for import in module
        .imports()
        .filter(|i| i.module() == manifest::HOOK_MODULE)
    {
        let Some(ty) = import.ty().func().cloned() else {
            continue;
        };
        let seen = Arc::clone(&seen);
        let cell = driver.layout.step_cell;
        linker
            .func_new(
                import.module(),
                import.name(),
                ty,
                move |mut caller, params, _| {
                    let step = step_in_progress(&mut caller, cell);
                    let kind = params.first().and_then(Val::i32).unwrap_or(-1);
                    let code = params.get(1).and_then(Val::i32).unwrap_or(0) as u32;
                    let extra = params.last().and_then(Val::i64).unwrap_or(0);
                    seen.lock().unwrap().hooks.push((step, kind, code, extra));
                    Ok(())
                },
            )
            .map_err(JudgeError::Wasm)?;
    }
    fake_imports(&mut linker, &module, program, world, trace, &driver, &seen)?;
    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(JudgeError::Wasm)?;
    let outcome = run_steps(&instance, &mut store, trace)?;
    let violation_code = instance
        .get_global(&mut store, manifest::VIOLATION_GLOBAL)
        .and_then(|g| g.get(&mut store).i32())
        .unwrap_or(0) as u32;
    let received = Received::read(&instance, &mut store, &driver, trace.len())?;
    let seen = std::mem::take(&mut *seen.lock().unwrap());

    let verdict =
        verdict_from_hook_list(program, &manifest, &seen.hooks, |step| received.at(step))?;
    check_ending(&outcome, &verdict)?;
    if let Err(e) = &outcome {
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
    check_calls(trace, &driver, &verdict, &seen)?;
    Ok(verdict)
}

/// Builds the verdict from the hooks, `(step, kind, code, extra)` in order: audits,
/// suppressions (with the value the driver received at a step) and the deny.
pub(super) fn verdict_from_hook_list(
    program: &Program,
    manifest: &Manifest,
    hooks: &[(usize, i32, u32, i64)],
    received: impl Fn(usize) -> i64,
) -> Result<Verdict, JudgeError> {
    let mut verdict = Verdict::default();
    for &(step, kind, code, extra) in hooks {
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
                let value = has_result.then(|| received(step));
                verdict.observations.push(Observation {
                    step,
                    phase: c.phase,
                    policy: c.policy_name.clone(),
                    kind: ObservationKind::Suppress(value),
                    reason: c.reason.clone(),
                });
            }
            hook_kind::DENY => {
                let fault = match c.kind {
                    CodeKind::Fault => c.fault.as_ref().map(|f| f.with_value(extra)),
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
