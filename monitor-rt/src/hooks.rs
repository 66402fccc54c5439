//! Inline enforcement's side of the runtime. The woven code decides; the `irm` hook
//! imports of a module woven with host hooks, or the `irm:violation` global of one woven
//! without them, only tell the runtime what happened so that it can report it.
use std::sync::{Arc, Mutex};

use instrumenter::manifest::{self, hook_kind, CodeKind, Manifest};
use policy_lang::interp::Value;
use policy_lang::ir::{EventId, Phase, Program, RuntimeFault, Verdict as IrVerdict};
use wasmtime::{ExternType, Func, Linker, Module, Store};

use crate::link::{args_from_caller, val_i64};
use crate::observe::{self, lock};
use crate::{RunError, RunState, ViolationReport};

/// What a hook needs to tell the observer what happened: the woven program and its
/// violation codes.
#[derive(Clone)]
pub(crate) struct HookContext {
    pub program: Arc<Program>,
    pub codes: Arc<Vec<manifest::Code>>,
    pub obs: Arc<Mutex<observe::Observer>>,
}

impl HookContext {
    pub fn new(m: &Manifest, obs: &Arc<Mutex<observe::Observer>>) -> HookContext {
        HookContext {
            program: Arc::new(m.program.clone()),
            codes: Arc::new(m.codes.clone()),
            obs: Arc::clone(obs),
        }
    }

    /// One call of event `event`'s hook: `kind`, `code`, the call's Wasm arguments
    /// widened to i64, and `extra` (see [`manifest::HookLayout`]). `args` decodes the
    /// arguments the way this kind of module can (only a `PRE` call needs them).
    pub fn call(
        &self,
        event: EventId,
        kind: i32,
        code: u32,
        wasm: &[i64],
        extra: i64,
        args: impl FnOnce(&[i64]) -> Vec<Value>,
    ) {
        let program = &self.program;
        let code_of = |c: u32| self.codes.iter().find(|x| x.code == c);
        let has_result = program
            .events
            .get(event as usize)
            .is_some_and(|e| !e.results.is_empty());
        match kind {
            hook_kind::PRE => {
                let args = args(wasm);
                lock(&self.obs).begin(event, args);
            }
            hook_kind::POST if has_result => lock(&self.obs).returned(Some(extra)),
            // A call answering behind `retptr`: `extra` is the first handle it handed
            // out, or -1 (see the weaver's hook layout).
            hook_kind::POST => {
                let mut o = lock(&self.obs);
                o.returned(None);
                let e = program.events.get(event as usize);
                if e.is_some_and(policy_lang::handles::hands_out_behind_retptr) {
                    o.opened(u32::try_from(extra).ok());
                }
            }
            hook_kind::AUDIT => {
                if let Some(c) = code_of(code) {
                    lock(&self.obs).audit(c.policy, c.phase, c.reason.clone());
                }
            }
            hook_kind::SUPPRESS => {
                if let Some(c) = code_of(code) {
                    let value = match program
                        .policies
                        .get(c.policy)
                        .and_then(|p| p.transitions.get(c.transition?))
                    {
                        Some(t) => match t.verdict {
                            IrVerdict::Suppress(v) => v,
                            _ => None,
                        },
                        None => None,
                    };
                    lock(&self.obs).suppress(
                        c.policy,
                        c.reason.clone(),
                        if has_result { value.or(Some(0)) } else { None },
                    );
                }
            }
            hook_kind::DENY => {
                let mut o = lock(&self.obs);
                match code_of(code) {
                    Some(c) => {
                        let (fault, reason) = fault_of(c, extra);
                        o.deny(c.policy, c.phase, reason, fault, Some(c.origin.clone()));
                    }
                    None => o.deny(
                        usize::MAX,
                        Phase::Pre,
                        format!("the module reports violation code {code}, which its manifest does not list"),
                        None,
                        None,
                    ),
                }
            }
            _ => {}
        }
    }
}

/// Defines the `irm` hook imports of a module woven with host hooks: they feed the
/// observer; the woven code decides.
pub(crate) fn define_hooks(
    linker: &mut Linker<RunState>,
    store: &mut Store<RunState>,
    module: &Module,
    m: &Manifest,
    hooks: &manifest::HookLayout,
    obs: &Arc<Mutex<observe::Observer>>,
) -> Result<(), RunError> {
    let ctx = HookContext::new(m, obs);
    for import in module.imports() {
        if import.module() != hooks.module {
            continue;
        }
        let Some(hook) = hooks.hooks.iter().find(|h| h.field == import.name()) else {
            continue;
        };
        let ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let (event, ctx) = (hook.event, ctx.clone());
        let func = Func::new(&mut *store, ty, move |mut caller, params, _results| {
            let kind = params.first().map(val_i64).unwrap_or(-1) as i32;
            let code = params.get(1).map(val_i64).unwrap_or(0) as u32;
            let extra = params.last().map(val_i64).unwrap_or(0);
            let wasm: Vec<i64> = params
                .get(2..params.len().saturating_sub(1))
                .unwrap_or(&[])
                .iter()
                .map(val_i64)
                .collect();
            // The hook is per event; the spelling of the import is not known here.
            ctx.call(event, kind, code, &wasm, extra, |wasm| {
                args_from_caller(&mut caller, &ctx.program, event, false, wasm)
            });
            Ok(())
        });
        linker
            .define(&*store, import.module(), import.name(), func)
            .map_err(|error| RunError::DefineHook {
                module: import.module().to_string(),
                field: import.name().to_string(),
                error,
            })?;
    }
    Ok(())
}

/// The violation a module woven without hooks reports through its `irm:violation` global.
pub(crate) fn violation_from_manifest(
    m: &Manifest,
    code: u32,
    obs: Option<&observe::Observer>,
) -> ViolationReport {
    let recent = obs.map(|o| o.recent_calls()).unwrap_or_default();
    match m.code(code) {
        Some(c) => {
            let event = m.program.events.get(c.event as usize);
            ViolationReport {
                policy: c.policy_name.clone(),
                event: event.map_or_else(String::new, |e| e.name.clone()),
                import: c.import.clone(),
                args: Vec::new(),
                result: None,
                reason: c.reason.clone(),
                phase: c.phase,
                fault: None,
                origin: Some(c.origin.clone()),
                recent,
                backtrace: None,
            }
        }
        None => ViolationReport {
            policy: "(unknown)".into(),
            event: String::new(),
            import: String::new(),
            args: Vec::new(),
            result: None,
            reason: format!("the module reports violation code {code}, which its irm.monitor manifest does not list"),
            phase: Phase::Pre,
            fault: None,
            origin: None,
            recent,
            backtrace: None,
        },
    }
}

/// The fault of a deny code, its run-time value (`extra`) put back, and its reason:
/// the manifest's, which the weaver took from [`RuntimeFault::reason`], the interpreter's
/// wording, so reports do not depend on the enforcement mode.
fn fault_of(c: &manifest::Code, extra: i64) -> (Option<RuntimeFault>, String) {
    let fault = match c.kind {
        CodeKind::Fault => c.fault.as_ref().map(|f| f.with_value(extra)),
        _ => None,
    };
    (fault, c.reason.clone())
}
