//! Running WebAssembly components (WASI 0.2) on wasmtime: the `wasi:cli/run` export of a
//! component woven in memory with host hooks, the WASI 0.2 interfaces the wasmtime CLI
//! provides, and the hooks (the component import `irm:monitor/hooks`) feeding the same
//! observer core modules feed, so violations and audits read alike.
pub(crate) mod forward;
pub(crate) mod host;

use std::sync::{Arc, Mutex};

use instrumenter::manifest::{HookLayout, Manifest};
use policy_lang::interp::Value;
use policy_lang::ir::{EventId, ParamType, Program};
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{Store, WasmBacktrace};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::error::{backtrace_text, classify};
use crate::hooks::HookContext;
use crate::observe::{self, lock};
use crate::{CacheUse, Enforcement, Finished, InvokeError, RunError, RunnerBuilder};

/// The data of a component run's store.
pub(crate) struct ComponentState {
    pub(crate) ctx: WasiCtx,
    pub(crate) table: ResourceTable,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Refuses the configurations only core modules support.
pub(crate) fn check_config(cfg: &RunnerBuilder) -> Result<(), RunError> {
    let refuse = |what, instead| Err(RunError::ComponentUnsupported { what, instead });
    if cfg.certified_only {
        return refuse(
            "certifying a pre-woven component (`irm check`)",
            "give the original component and its policies: `irm run --policy P app.wasm` weaves it",
        );
    }
    if cfg.invoke.is_some() {
        return refuse(
            "`--invoke`",
            "a component runs through its `wasi:cli/run` export",
        );
    }
    if !cfg.host_fns.is_empty() || !cfg.stubs.is_empty() {
        return refuse(
            "host functions and stubs for core imports",
            "provide a component's imports by composing it with another component",
        );
    }
    Ok(())
}

/// Runs `component` (woven with host hooks when `manifest` says so).
pub(crate) fn run(
    runner: &crate::Runner,
    component: &Component,
    manifest: Option<&Manifest>,
    name: &str,
    cache: CacheUse,
) -> Result<Finished, RunError> {
    let cfg = &runner.cfg;
    let ctx = crate::link::wasi_builder(cfg, name)?.build();
    let mut store = Store::new(
        &runner.engine,
        ComponentState {
            ctx,
            table: ResourceTable::new(),
        },
    );
    let mut linker: Linker<ComponentState> = Linker::new(&runner.engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(RunError::Wasi)?;

    // The program whose events the runtime observes: the host-enforced one, else the
    // one a woven component carries.
    let host_enforced = match cfg.enforcement {
        Enforcement::Host => runner.program.as_ref(),
        Enforcement::Inline => None,
    };
    let observed = match (host_enforced, manifest) {
        (Some(p), _) => Some(Arc::clone(p)),
        (None, Some(m)) => Some(Arc::new(m.program.clone())),
        (None, None) => None,
    };
    let observer = observed.map(|p| {
        Arc::new(Mutex::new(observe::Observer::new(
            p,
            cfg.audit_sink.clone(),
            cfg.record.is_some(),
        )))
    });
    if let (Some(m), Some(obs)) = (manifest, &observer) {
        if let Some(hooks) = &m.hooks {
            define_hooks(&mut linker, m, hooks, obs)?;
        }
    }
    if let (Some(p), Some(obs)) = (host_enforced, &observer) {
        let mut wasi: Linker<ComponentState> = Linker::new(&runner.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut wasi).map_err(RunError::Wasi)?;
        host::wrap_imports(&mut linker, &mut store, component, p, obs, &wasi)?;
    }

    let instance = linker.instantiate(&mut store, component).map_err(|e| {
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(_) => classify(e).unwrap_or_else(|| RunError::Host("instantiation".into())),
            None => RunError::Link(vec![format!("  {e:#}")]),
        }
    })?;
    let command = Command::new(&mut store, &instance)
        .map_err(|_| RunError::Invoke(InvokeError::MissingExport("wasi:cli/run".into())))?;
    let err = match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => None,
        Ok(Err(())) => Some(wasmtime::Error::new(wasmtime_wasi::I32Exit(1))),
        Err(e) => Some(e),
    };

    let mut guard = observer.as_ref().map(|o| lock(o));
    if let Some(o) = &mut guard {
        o.finish();
    }
    let mut violation = guard.as_mut().and_then(|o| o.violation.take());
    if violation.is_none() {
        violation = err.as_ref().and_then(unreported_deny);
    }
    if let Some(v) = &mut violation {
        if let Some(bt) = err.as_ref().and_then(|e| e.downcast_ref::<WasmBacktrace>()) {
            v.backtrace = Some(backtrace_text(bt));
        }
    }
    if let (Some(path), Some(o)) = (&cfg.record, guard.as_deref()) {
        runner.write_record(path, name, o, violation.as_ref())?;
    }
    let audits = guard
        .map(|mut o| std::mem::take(&mut o.audits))
        .unwrap_or_default();
    if let Some(v) = violation {
        return Err(RunError::Violation(Box::new(v)));
    }
    match err.and_then(classify) {
        None => Ok(Finished {
            audits,
            results: Vec::new(),
            cache,
        }),
        Some(e) => Err(e),
    }
}

/// Defines the functions of `irm:monitor/hooks`: each feeds the observer, with the string
/// arguments the monitor passes as `list<u8>` (empty when the string lies outside the
/// memory, which the observer then shows as such).
fn define_hooks(
    linker: &mut Linker<ComponentState>,
    m: &Manifest,
    hooks: &HookLayout,
    obs: &Arc<Mutex<observe::Observer>>,
) -> Result<(), RunError> {
    let ctx = HookContext::new(m, obs);
    let define_error = |field: &str, error| RunError::DefineHook {
        module: instrumenter::component::HOOK_INTERFACE.into(),
        field: field.to_string(),
        error,
    };
    let mut inst = linker
        .instance(instrumenter::component::HOOK_INTERFACE)
        .map_err(|e| define_error("", e))?;
    for hook in &hooks.hooks {
        let event = hook.event;
        let name = instrumenter::component::hook_name(event);
        let slots = match m.program.events.get(event as usize) {
            Some(e) => instrumenter::manifest::packed_slots(&e.wasm_params()).0,
            None => Vec::new(),
        };
        let ctx = ctx.clone();
        inst.func_new(&name, move |_store, _ty, params, _results| {
            // The strings come last, as lists (none when the monitor reads no memory).
            let strings = params
                .iter()
                .rev()
                .take_while(|v| matches!(v, Val::List(_)))
                .count();
            let ints = params.len() - strings;
            let int = |v: &Val| match v {
                Val::S32(x) => *x as i64,
                Val::S64(x) => *x,
                _ => 0,
            };
            let kind = params.first().map(int).unwrap_or(-1) as i32;
            let code = params.get(1).map(int).unwrap_or(0) as u32;
            let extra = params.get(ints.saturating_sub(1)).map(int).unwrap_or(0);
            let words: Vec<i64> = params
                .get(2..ints.saturating_sub(1))
                .unwrap_or(&[])
                .iter()
                .map(int)
                .collect();
            let wasm: Vec<i64> = slots
                .iter()
                .map(|&(w, half)| {
                    let word = words.get(w).copied().unwrap_or(0);
                    match half {
                        Some(false) => word as i32 as i64,
                        Some(true) => (word >> 32) as i32 as i64,
                        None => word,
                    }
                })
                .collect();
            let lists = params.get(ints..).unwrap_or(&[]);
            ctx.call(event, kind, code, &wasm, extra, |wasm| {
                args_with_strings(&ctx.program, event, wasm, lists)
            });
            Ok(())
        })
        .map_err(|e| define_error(&name, e))?;
    }
    Ok(())
}

/// The call's arguments, strings from `lists` (one `list<u8>` per string parameter): an
/// empty list for a non-empty string means the string lay outside the memory.
fn args_with_strings(program: &Program, event: EventId, wasm: &[i64], lists: &[Val]) -> Vec<Value> {
    let mut args = observe::decode_args(program, event, wasm, None);
    let Some(e) = program.events.get(event as usize) else {
        return args;
    };
    let mut lists = lists.iter();
    let mut at = 0usize;
    for (p, v) in e.params.iter().zip(args.iter_mut()) {
        if p.ty == ParamType::Str {
            let len = wasm.get(at + 1).copied().unwrap_or(0) as u32;
            let bytes: Vec<u8> = match lists.next() {
                Some(Val::List(items)) => items
                    .iter()
                    .filter_map(|b| match b {
                        Val::U8(b) => Some(*b),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            *v = Value::Str((bytes.len() == len as usize).then_some(bytes));
            at += 2;
        } else {
            at += 1;
        }
    }
    args
}

/// A deny of a component woven without host hooks (by `irm weave`): its monitor traps
/// in a wrapper, which its name section calls `irm:wrapper:MODULE.FIELD`; which policy
/// denied is not known outside the component.
fn unreported_deny(e: &wasmtime::Error) -> Option<crate::ViolationReport> {
    let trap = e.downcast_ref::<wasmtime::Trap>()?;
    if *trap != wasmtime::Trap::UnreachableCodeReached {
        return None;
    }
    let bt = e.downcast_ref::<WasmBacktrace>()?;
    let import = bt
        .frames()
        .first()?
        .func_name()?
        .strip_prefix("irm:wrapper:")?
        .to_string();
    Some(crate::ViolationReport {
        policy: "(a policy woven into the component)".into(),
        event: import.clone(),
        import,
        args: Vec::new(),
        result: None,
        reason: "the component's monitor denied the call; run the original with `irm run --policy` to see which policy and why".into(),
        phase: policy_lang::ir::Phase::Pre,
        fault: None,
        origin: None,
        recent: Vec::new(),
        backtrace: Some(backtrace_text(bt)),
    })
}
