//! Certifies that a woven module enforces a set of irm policies, without trusting the
//! weaver (`instrumenter`) or the module's `irm.monitor` section.
//!
//! This crate is the checker's trusted base: it depends on `wasmparser` and on the policy
//! IR and interpreter (`policy-lang`), never on `instrumenter`.
//!
//! Status: the module reader ([`module`]), the per-body scan of what code names
//! ([`scan`]) and complete mediation ([`mediation`]: monitors derived from the code, every
//! other reference to a monitored import or a monitor helper a located finding) are in
//! place. State integrity and monitor behaviour against `policy_lang::interp` are not
//! written yet, so nothing here issues a certificate and no command calls it.
pub mod mediation;
pub mod module;
pub mod scan;

use std::fmt;

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
    pub fn new(at: Where, message: String) -> Finding {
        Finding { at, message }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Where::Offset(o) => write!(f, "at byte {o:#x}: {}", self.message),
            Where::Function { index, offset } => {
                write!(
                    f,
                    "in function {index} at byte {offset:#x}: {}",
                    self.message
                )
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
        assert_eq!(m.imports[0].field, "fd_write");
        assert_eq!(m.host_memory(), Some(0));
        assert_eq!(m.globals[0].init, Some(7));
        let funcs: Vec<u32> = m.const_refs.iter().map(|r| r.func).collect();
        assert_eq!(funcs, vec![0, 1]);
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
