//! State integrity: the monitor's own state is reachable by the monitor alone.
//!
//! The monitor's state is derived from its members' code (never from names or the
//! manifest): every global a member names, every memory a member names except the one
//! the host reads, and every data segment a member names. Then:
//! * no function outside the members names any of them (reads included: a decision must
//!   not leak through a global the module can read, and a write is a forgery);
//! * none is imported (whoever provides it could write it);
//! * a monitor memory is not exported; a monitor global is exported only if the members
//!   never read it (a diagnostic such as `irm:violation`: whatever another module or the
//!   embedder writes there cannot change a decision);
//! * no constant expression reads a monitor global.
//!
//! Active data segments into a monitor memory are part of its initial contents, which
//! the behaviour check runs from; they are not a route in once the module runs.
use std::collections::BTreeSet;

use wasmparser::ExternalKind;

use crate::mediation::Mediation;
use crate::module::Module;
use crate::scan::Names;
use crate::Finding;

/// What the monitor owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub globals: BTreeSet<u32>,
    pub memories: BTreeSet<u32>,
    pub data: BTreeSet<u32>,
}

/// Derives the monitor's state from its members and checks nothing else can reach it.
pub fn check(m: &Module, names: &[Names], med: &Mediation) -> (State, Vec<Finding>) {
    let imports = m.num_imports();
    let mut state = State::default();
    let mut member_reads = BTreeSet::new();
    let members = med.members.iter().filter_map(|&f| f.checked_sub(imports));
    for n in members.filter_map(|d| names.get(d as usize)) {
        state.globals.extend(n.globals.iter().map(|g| g.0));
        member_reads.extend(n.global_reads.iter().map(|g| g.0));
        state.memories.extend(n.memories.iter().map(|x| x.0));
        state.data.extend(n.data.iter().map(|x| x.0));
    }
    if let Some(host) = m.host_memory() {
        state.memories.remove(&host);
    }

    let mut findings = Vec::new();
    for (func, n) in (imports..).zip(names) {
        if med.members.contains(&func) {
            continue;
        }
        let copied = ", which the monitor copies from,";
        for (used, owned, what, also) in [
            (&n.globals, &state.globals, "monitor global", ""),
            (&n.memories, &state.memories, "monitor memory", ""),
            (&n.data, &state.data, "data segment", copied),
        ] {
            for &(x, offset) in used.iter().filter(|(x, _)| owned.contains(x)) {
                let message =
                    format!("{what} {x}{also} is used by a function that is not the monitor's");
                findings.push(Finding::in_function(func, offset, message));
            }
        }
    }
    let globals = state
        .globals
        .iter()
        .filter_map(|&g| Some(("global", g, m.globals.get(g as usize)?.import?)));
    let memories = state
        .memories
        .iter()
        .filter_map(|&x| Some(("memory", x, m.memories.get(x as usize)?.import?)));
    for (what, x, offset) in globals.chain(memories) {
        let message = format!("monitor {what} {x} is imported");
        findings.push(Finding::at(offset, message));
    }
    for (offset, e) in &m.exports {
        let (x, name) = (e.index, e.name);
        let message = match e.kind {
            ExternalKind::Global if member_reads.contains(&x) => {
                format!("monitor global {x} is exported as `{name}` and the monitor reads it")
            }
            ExternalKind::Memory if state.memories.contains(&x) => {
                format!("monitor memory {x} is exported as `{name}`")
            }
            _ => continue,
        };
        findings.push(Finding::at(*offset, message));
    }
    for &(g, offset) in &m.const_global_reads {
        if state.globals.contains(&g) {
            let message = format!("monitor global {g} is read by a constant expression");
            findings.push(Finding::at(offset, message));
        }
    }
    (state, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::module_names;
    use wasmparser::WasmFeatures;

    const POLICY: &str = r#"policy p { on proc_exit when rval == 3 -> deny "no 3"; }"#;

    fn run(wat: &str) -> (State, Vec<String>) {
        let program = policy_lang::compile(&[policy_lang::Source {
            name: "p.pol".into(),
            text: POLICY.into(),
        }])
        .expect("policy compiles")
        .program;
        let wasm = wat::parse_str(wat).unwrap();
        let m = Module::read(&wasm, WasmFeatures::WASM3).unwrap();
        let names = module_names(&m).unwrap();
        let (med, found) = crate::mediation::check(&m, &names, &program);
        assert!(found.is_empty(), "{found:?}");
        let (state, findings) = check(&m, &names, &med);
        (state, findings.iter().map(|f| f.to_string()).collect())
    }

    /// A monitor keeping a count in global 0 and a byte in memory 1, reporting through
    /// global 1 (written, never read).
    const MONITORED: &str = r#"
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (memory $private 1)
        (global $count (mut i32) (i32.const 0))
        (global $violation (mut i32) (i32.const 0))
        (func $monitor (param i32)
          (global.set $count (i32.add (global.get $count) (i32.const 1)))
          (i32.store8 $private (i32.const 0) (i32.const 1))
          (if (i32.eq (local.get 0) (i32.const 3))
            (then (global.set $violation (i32.const 1)) unreachable))
          local.get 0
          call $exit)
    "#;

    #[test]
    fn the_state_is_what_the_monitor_names_except_the_host_memory() {
        let (state, findings) = run(&format!("(module {MONITORED})"));
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(state.globals.into_iter().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(state.memories.into_iter().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn a_write_to_a_monitor_global_from_original_code_is_a_finding() {
        let (_, findings) = run(&format!(
            "(module {MONITORED} (func $main (global.set $count (i32.const 0))))"
        ));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].contains("in function 2"), "{findings:?}");
        assert!(findings[0].contains("monitor global 0"), "{findings:?}");
    }

    #[test]
    fn a_read_of_a_monitor_global_from_original_code_is_a_finding() {
        let (_, findings) = run(&format!(
            "(module {MONITORED} (func $main (result i32) (global.get $count)))"
        ));
        assert!(
            findings.iter().any(|f| f.contains("monitor global 0")),
            "{findings:?}"
        );
    }

    #[test]
    fn original_code_storing_into_the_private_memory_is_a_finding() {
        let (_, findings) = run(&format!(
            "(module {MONITORED} (func $main (i32.store8 $private (i32.const 0) (i32.const 0))))"
        ));
        assert!(
            findings.iter().any(|f| f.contains("monitor memory 1")),
            "{findings:?}"
        );
    }

    #[test]
    fn original_code_copying_into_the_private_memory_is_a_finding() {
        let (_, findings) = run(&format!(
            "(module {MONITORED} (func $main (memory.copy $private 0 (i32.const 0) (i32.const 0) (i32.const 1))))"
        ));
        assert!(
            findings.iter().any(|f| f.contains("monitor memory 1")),
            "{findings:?}"
        );
    }

    #[test]
    fn a_write_only_global_may_be_exported_but_a_read_one_may_not() {
        let (_, findings) = run(&format!(
            "(module {MONITORED} (export \"irm:violation\" (global $violation)))"
        ));
        assert!(findings.is_empty(), "{findings:?}");
        let (_, findings) = run(&format!(
            "(module {MONITORED} (export \"count\" (global $count)))"
        ));
        assert!(
            findings
                .iter()
                .any(|f| f.contains("exported as `count` and the monitor reads it")),
            "{findings:?}"
        );
    }

    #[test]
    fn an_exported_private_memory_is_a_finding() {
        let (_, findings) = run(&format!(
            "(module {MONITORED} (export \"m2\" (memory $private)))"
        ));
        assert!(
            findings.iter().any(|f| f.contains("exported as `m2`")),
            "{findings:?}"
        );
    }

    #[test]
    fn a_monitor_global_that_is_imported_is_a_finding() {
        let (_, findings) = run(r#"(module
                 (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                 (import "env" "g" (global $g (mut i32)))
                 (func $monitor (param i32)
                   (if (global.get $g) (then unreachable))
                   local.get 0
                   call $exit))"#);
        assert!(
            findings
                .iter()
                .any(|f| f.contains("monitor global 0 is imported")),
            "{findings:?}"
        );
    }

    #[test]
    fn original_code_dropping_a_segment_the_monitor_copies_is_a_finding() {
        let (_, findings) = run(r#"(module
                 (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                 (memory (export "memory") 1)
                 (memory $private 1)
                 (data $table "\01\02")
                 (func $monitor (param i32)
                   (memory.init $private $table (i32.const 0) (i32.const 0) (i32.const 2))
                   local.get 0
                   call $exit)
                 (func $main (data.drop $table)))"#);
        assert!(
            findings.iter().any(|f| f.contains("data segment 0")),
            "{findings:?}"
        );
    }
}
