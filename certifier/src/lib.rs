//! Certifies that a woven module enforces a set of irm policies, without trusting the
//! weaver (`instrumenter`) or the module's `irm.monitor` section.
//!
//! This crate is the checker's trusted base: it depends on `wasmparser` and on the policy
//! IR, interpreter and fake WASI host (`policy-lang`), never on `instrumenter`.
//!
//! What a certificate establishes, for every import bound to an event of the policy set
//! (duplicates, aliases and WASI preview 0 spellings included), derived from the module
//! and the policies alone:
//! 1. complete mediation ([`mediation`]): the import is reached only by calls from the
//!    function found to monitor it (the one passing its own parameters to it);
//! 2. state integrity ([`integrity`]): the globals, memories and data segments the
//!    monitor's functions name are named by nothing else, imported by nothing, and
//!    exported only as values the monitor never reads;
//! 3. behaviour ([`behaviour`]): on sampled traces the monitors, run by a small
//!    interpreter of the Wasm subset they use ([`exec`]), decide every call as
//!    `policy_lang::interp` does. This part is sampled, not proven.
//!
//! Anything the checker does not understand (an instruction outside the subset, a memory
//! it cannot model, an import call the policies do not explain) is a finding: it never
//! passes by default.
pub mod behaviour;
pub mod exec;
pub mod generate;
pub mod integrity;
pub mod mediation;
pub mod module;
pub mod scan;

use std::collections::BTreeSet;
use std::fmt;

use policy_lang::ir::{EventId, Program};
use wasmparser::WasmFeatures;

pub use behaviour::{Sample, Sampled};
pub use mediation::Monitored;

/// Generated traces per check, on top of the ones given.
pub const GENERATED_TRACES: usize = 2000;

/// What a module was certified with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    pub monitored: Vec<Monitored>,
    pub state: integrity::State,
    pub sampled: Sampled,
}

/// Decides whether `wasm` enforces `program`. `traces` are run on top of the generated
/// ones (the policies' `.traces` files, say). On refusal, the findings are in module
/// order of the checks: mediation, integrity, behaviour.
pub fn certify(
    wasm: &[u8],
    program: &Program,
    traces: &[Sample],
) -> Result<Certificate, Vec<Finding>> {
    certify_sampling(wasm, program, traces, GENERATED_TRACES)
}

/// [`certify`] with `generated` traces generated from the policies (about that many; at
/// least one per parameter candidate of every monitored event).
pub fn certify_sampling(
    wasm: &[u8],
    program: &Program,
    traces: &[Sample],
    generated: usize,
) -> Result<Certificate, Vec<Finding>> {
    let mut m = module::Module::read(wasm, WasmFeatures::WASM3).map_err(|f| vec![f])?;
    // Judged as the module sees the policies: a transition on an event it does not
    // import never fires, and a policy that cannot act there is not monitored.
    let view = program.restricted_to_imports(m.imports.iter().map(|(_, i)| (i.module, i.name)));
    let program = &view;
    let names = scan::module_names(&m).map_err(|f| vec![f])?;
    let (med, mut findings) = mediation::check(&m, &names, program);
    // Only the monitor's bodies are validated here: an engine refuses a module with any
    // invalid body, so a certificate speaks only of modules an engine loads.
    let to_validate = std::mem::take(&mut m.to_validate);
    for (index, (f, body)) in (m.num_imports()..).zip(to_validate.into_iter().zip(&m.bodies)) {
        if !med.members.contains(&index) {
            continue;
        }
        let mut v = f.into_validator(Default::default());
        if let Err(e) = v.validate(body) {
            let message = format!("monitor function {index} is not valid: {}", e.message());
            findings.push(Finding::in_function(index, e.offset(), message));
        }
    }
    let (state, integrity) = integrity::check(&m, &names, &med);
    findings.extend(integrity);
    if !findings.is_empty() {
        return Err(findings);
    }
    let events: BTreeSet<EventId> = med.monitored.iter().map(|x| x.event).collect();
    let events: Vec<EventId> = events.into_iter().collect();
    let mut samples = traces.to_vec();
    samples.extend(generate::generate(&m, program, &events, generated));
    let (sampled, behaviour) = behaviour::check(&m, &med, &state.memories, program, &samples);
    if !behaviour.is_empty() {
        return Err(behaviour);
    }
    Ok(Certificate {
        monitored: med.monitored,
        state,
        sampled,
    })
}

/// Where a finding is located in the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Where {
    /// A byte offset in the module.
    Offset(usize),
    /// A byte offset inside a function's body, with the function's index.
    Function { index: u32, offset: usize },
}

/// One reason a module is not certified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub at: Where,
    pub message: String,
}

impl Finding {
    /// A finding at byte `offset` of the module.
    pub fn at(offset: usize, message: String) -> Finding {
        let at = Where::Offset(offset);
        Finding { at, message }
    }

    /// A finding at byte `offset` of function `index`'s body.
    pub fn in_function(index: u32, offset: usize, message: String) -> Finding {
        let at = Where::Function { index, offset };
        Finding { at, message }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.message;
        match self.at {
            Where::Offset(o) => write!(f, "at byte {o:#x}: {m}"),
            Where::Function { index, offset } => {
                write!(f, "in function {index} at byte {offset:#x}: {m}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::module::Module;
    use wasmparser::WasmFeatures;

    fn read(wat: &str) -> Result<(), super::Finding> {
        let wasm = wat::parse_str(wat).unwrap();
        Module::read(&wasm, WasmFeatures::WASM3).map(|_| ())
    }

    #[test]
    fn the_reader_finds_imports_exports_and_function_references_outside_code() {
        let wasm = wat::parse_str(
            r#"(module
                 (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
                 (memory (export "memory") 1)
                 (table 2 funcref)
                 (global $g (mut i32) (i32.const 7))
                 (elem (i32.const 0) func $w $f)
                 (func $f)
                 (export "w" (func $w)))"#,
        )
        .unwrap();
        let m = Module::read(&wasm, WasmFeatures::WASM3).unwrap();
        assert_eq!(m.imports.len(), 1);
        assert_eq!(m.imports[0].1.name, "fd_write");
        assert_eq!(m.host_memory(), Some(0));
        assert_eq!(m.globals[0].init, Some(7));
        let funcs: Vec<u32> = m.func_refs.iter().map(|r| r.func).collect();
        assert_eq!(funcs, vec![0, 1, 0]);
        assert_eq!(m.bodies.len(), 1);
        assert!(m.func_type(0).is_some());
    }

    #[test]
    fn an_invalid_module_section_is_a_finding_with_its_offset() {
        let e = read(r#"(module (export "f" (func 3)))"#).unwrap_err();
        assert!(e.message.contains("not a valid module"), "{e}");
    }

    #[test]
    fn function_bodies_are_kept_for_validation_later() {
        let wasm = wat::parse_str(r#"(module (func (result i32)))"#).unwrap();
        let m = Module::read(&wasm, WasmFeatures::WASM3).unwrap();
        assert_eq!(m.to_validate.len(), 1);
        let mut v = m
            .to_validate
            .into_iter()
            .next()
            .unwrap()
            .into_validator(Default::default());
        assert!(v.validate(&m.bodies[0]).is_err());
    }

    #[test]
    fn a_component_is_refused() {
        let e = read("(component)").unwrap_err();
        assert!(e.message.contains("component"), "{e}");
    }
}
