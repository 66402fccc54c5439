//! Complete mediation: every reference to a monitored import is a call from the monitor.
//!
//! The monitor of an import is derived from the code alone (never from `irm.monitor`): a
//! defined function of the import's exact type that passes its own parameters, in order,
//! straight to the import (`local.get 0 .. local.get n-1; call import`). What such a
//! function then does is for the behaviour check to establish; this module only finds it
//! and checks that nothing else can reach the import. An import no function monitors is
//! left to the behaviour check, which runs its calls raw (the weaver leaves alone the
//! imports of policies the module cannot violate), and an import of an event the policies
//! do not [monitor](Program::monitors) is not looked at; one whose calls a policy denies,
//! suppresses or audits must have a monitor. The monitor's *members* are the
//! monitors and every defined function they call, transitively; helpers (members that
//! are not monitors) may be reached only from members.
use std::collections::BTreeSet;

use policy_lang::ir::{EventId, Policy, Program, Verdict};
use wasmparser::Operator;

use crate::module::Module;
use crate::scan::{FuncUse, Names};
use crate::Finding;

/// A monitored import and the functions found to monitor it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Monitored {
    pub import: u32,
    pub event: EventId,
    pub monitors: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mediation {
    pub monitored: Vec<Monitored>,
    /// Monitors and the defined functions they call, transitively.
    pub members: BTreeSet<u32>,
}

/// Finds the monitors of every import bound to an event of `program` and checks that
/// they are the only way to reach it. `names[i]` is what defined function `i` names.
pub fn check(m: &Module, names: &[Names], program: &Program) -> (Mediation, Vec<Finding>) {
    let mut out = Mediation::default();
    let mut findings = Vec::new();
    let imports = m.num_imports();
    for (i, (offset, imp)) in m.imports.iter().enumerate() {
        let (import, name) = (i as u32, format!("{}.{}", imp.module, imp.name));
        let event = match program.event_for_spelling(imp.module, imp.name) {
            Ok(Some((e, _))) => e,
            Ok(None) => continue,
            Err(()) => {
                let message =
                    format!("import {name} has no WASI preview 0 meaning for the policies' event");
                findings.push(Finding::at(*offset, message));
                continue;
            }
        };
        if !program.monitors(event) {
            // No policy that can act names it: the import may be used anywhere.
            continue;
        }
        let monitors: Vec<u32> = (imports..)
            .zip(names)
            .filter(|&(f, n)| {
                n.calls().any(|g| g == import)
                    && m.func_types[f as usize] == m.func_types[i]
                    && passes_parameters_to(m, f, import)
            })
            .map(|(f, _)| f)
            .collect();
        // Named nowhere, the import is never called: it needs no monitor.
        let referenced = names.iter().any(|n| n.funcs.iter().any(|f| f.0 == import))
            || m.func_refs.iter().any(|r| r.func == import);
        if monitors.is_empty() && referenced && acts_on(program, event) {
            let message = format!(
                "no function monitors import {import} ({name}): none passes its parameters to it"
            );
            findings.push(Finding::at(*offset, message));
        }
        if monitors.is_empty() && !referenced {
            continue;
        }
        out.monitored.push(Monitored {
            import,
            event,
            monitors,
        });
    }
    // The members: the monitors' call closure over defined functions.
    let found = out.monitored.iter().flat_map(|x| x.monitors.clone());
    let monitors: BTreeSet<u32> = found.collect();
    let mut todo: Vec<u32> = monitors.iter().copied().collect();
    while let Some(f) = todo.pop() {
        if !out.members.insert(f) {
            continue;
        }
        if let Some(n) = f.checked_sub(imports).and_then(|d| names.get(d as usize)) {
            todo.extend(n.calls().filter(|&g| g >= imports));
        }
    }
    // An import without a monitor is called raw wherever the module calls it.
    let guarded = |f: u32| {
        out.monitored
            .iter()
            .any(|x| x.import == f && !x.monitors.is_empty())
            || (out.members.contains(&f) && !monitors.contains(&f))
    };
    let what = |f: u32| {
        if f < imports {
            format!("monitored import {f}")
        } else {
            format!("monitor helper {f}")
        }
    };
    for (func, n) in (imports..).zip(names) {
        let from_member = out.members.contains(&func);
        for &(g, how, offset) in &n.funcs {
            // Members may only call a monitored import, and use a helper in any way.
            if guarded(g) && !(from_member && (g >= imports || how == FuncUse::Call)) {
                let how = match how {
                    FuncUse::Call => "call",
                    FuncUse::Other => "return_call or ref.func",
                };
                let message = format!(
                    "{} is referenced ({how}) by a function that is not the monitor's",
                    what(g)
                );
                findings.push(Finding::in_function(func, offset, message));
            }
        }
    }
    // References outside code: initialisers, element segments, exports, the start function.
    for r in m.func_refs.iter().filter(|r| guarded(r.func)) {
        let message = format!("{} {}", what(r.func), r.what);
        findings.push(Finding::at(r.offset, message));
    }
    (out, findings)
}

/// Whether a transition on `event` that can fire decides the call itself (deny,
/// suppress, audit): such an import needs a monitor, whatever the sampling says. Whether
/// the others may go unmonitored (transitions that only move state, a descriptor table
/// nobody reads) is for the behaviour check to establish.
fn acts_on(program: &Program, event: EventId) -> bool {
    let mut live = program.policies.iter().flat_map(Policy::live);
    live.any(|t| t.event == event && t.verdict != Verdict::Allow)
}

/// Whether `func`'s body contains `local.get 0 .. local.get n-1; call import`, `n` the
/// import's parameter count.
fn passes_parameters_to(m: &Module, func: u32, import: u32) -> bool {
    let (Some(body), Some(ty)) = (m.body(func), m.func_type(import)) else {
        return false;
    };
    let n = ty.params().len() as u32;
    let Ok(mut ops) = body.get_operators_reader() else {
        return false;
    };
    // How many of the parameters, in order, the last operators pushed.
    let mut run = 0u32;
    while !ops.eof() {
        let Ok(op) = ops.read() else {
            return false;
        };
        run = match op {
            Operator::Call { function_index } if function_index == import && run == n => {
                return true
            }
            Operator::LocalGet { local_index } if local_index == run && run < n => run + 1,
            Operator::LocalGet { local_index: 0 } => 1,
            _ => 0,
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::module_names;
    use wasmparser::WasmFeatures;

    const POLICY: &str = r#"policy p { on proc_exit when rval == 3 -> deny "no 3"; }"#;

    fn run(wat: &str) -> (Mediation, Vec<String>) {
        let program = policy_lang::compile(&[policy_lang::Source {
            name: "p.pol".into(),
            text: POLICY.into(),
        }])
        .expect("policy compiles")
        .program;
        let wasm = wat::parse_str(wat).unwrap();
        let m = Module::read(&wasm, WasmFeatures::WASM3).unwrap();
        let names = module_names(&m).unwrap();
        let (med, findings) = check(&m, &names, &program);
        (med, findings.iter().map(|f| f.to_string()).collect())
    }

    const MONITORED: &str = r#"
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (func $monitor (param i32)
          (if (i32.eq (local.get 0) (i32.const 3)) (then (call $helper) unreachable))
          local.get 0
          call $exit)
        (func $helper)
    "#;

    #[test]
    fn the_function_passing_its_parameters_to_the_import_is_its_monitor() {
        let (med, findings) = run(&format!(
            "(module {MONITORED} (func $main (call $monitor (i32.const 0))) (export \"_start\" (func $main)))"
        ));
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(med.monitored[0].monitors, vec![1]);
        assert_eq!(med.members.iter().copied().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn a_call_of_the_import_from_original_code_is_a_finding() {
        let (_, findings) = run(&format!(
            "(module {MONITORED} (func $main (call $exit (i32.const 3))))"
        ));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].contains("in function 3"), "{findings:?}");
        assert!(findings[0].contains("monitored import 0"), "{findings:?}");
    }

    #[test]
    fn the_import_in_an_element_segment_is_a_finding() {
        let (_, findings) = run(&format!(
            "(module {MONITORED} (table 1 funcref) (elem (i32.const 0) func $exit))"
        ));
        assert!(
            findings.iter().any(|f| f.contains("an element segment")),
            "{findings:?}"
        );
    }

    #[test]
    fn the_import_in_a_global_or_table_initialiser_is_a_finding() {
        let (_, findings) = run(&format!(
            "(module {MONITORED} (global funcref (ref.func $exit)) (table 1 funcref (ref.func $exit)))"
        ));
        assert!(
            findings.iter().any(|f| f.contains("a global initialiser")),
            "{findings:?}"
        );
        assert!(
            findings.iter().any(|f| f.contains("a table initialiser")),
            "{findings:?}"
        );
    }

    #[test]
    fn a_tail_call_of_the_import_even_from_the_monitor_is_a_finding() {
        let (_, findings) = run(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                 (func $monitor (param i32) local.get 0 call $exit local.get 0 return_call $exit))"#,
        );
        assert!(
            findings
                .iter()
                .any(|f| f.contains("return_call or ref.func")),
            "{findings:?}"
        );
    }

    #[test]
    fn the_import_exported_or_as_start_is_a_finding() {
        let (_, findings) = run(&format!(
            "(module {MONITORED} (export \"exit\" (func $exit)))"
        ));
        assert!(
            findings.iter().any(|f| f.contains("exported as `exit`")),
            "{findings:?}"
        );
        let (_, findings) = run(&format!("(module {MONITORED} (func $s) (start $helper))"));
        assert!(
            findings.iter().any(|f| f.contains("start function")),
            "{findings:?}"
        );
    }

    #[test]
    fn a_helper_called_from_original_code_is_a_finding() {
        let (_, findings) = run(&format!("(module {MONITORED} (func $main (call $helper)))"));
        assert!(
            findings.iter().any(|f| f.contains("monitor helper 2")),
            "{findings:?}"
        );
    }

    #[test]
    fn an_import_without_a_monitor_is_a_finding() {
        let (_, findings) = run(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                 (func $main (call $exit (i32.const 3))))"#,
        );
        assert!(
            findings.iter().any(|f| f.contains("no function monitors")),
            "{findings:?}"
        );
    }

    #[test]
    fn an_unmonitored_import_of_an_event_no_policy_decides_may_be_referenced_anywhere() {
        let program = policy_lang::compile(&[policy_lang::Source {
            name: "p.pol".into(),
            text: "policy p { initial state a; state b; on proc_exit -> b; }".into(),
        }])
        .unwrap()
        .program;
        let wasm = wat::parse_str(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                 (export "exit" (func $exit)) (func (call $exit (i32.const 1))))"#,
        )
        .unwrap();
        let m = Module::read(&wasm, WasmFeatures::WASM3).unwrap();
        let names = module_names(&m).unwrap();
        let (med, findings) = check(&m, &names, &program);
        assert!(findings.is_empty(), "{findings:?}");
        assert!(med.monitored.is_empty(), "{med:?}");
    }

    #[test]
    fn an_import_nothing_references_needs_no_monitor() {
        let (med, findings) = run(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32))))"#,
        );
        assert!(findings.is_empty(), "{findings:?}");
        assert!(med.monitored.is_empty());
    }
}
