//! The in-process tools of the weave-throughput section, run inside a measurement child.
//!
//! Each tool reads the module, does its work once (timed), and reports how long the work
//! alone took and how large its output is. Reading the file and compiling policies are not
//! timed: the comparison is about processing a module that is already in memory.

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A tool that processes a whole module in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InProcTool {
    /// wasmparser validation with the feature set wasmtime enables: the floor.
    Validate,
    /// wasm-encoder's `RoundtripReencoder`: parse and re-encode every section and body.
    Reencode,
    /// walrus: parse into its IR and emit.
    Walrus,
    /// irm: compile the policies (untimed), then `instrumenter::weave` (timed), validating
    /// bodies on one thread: the single-core number the brief's targets are stated for.
    Weave,
    /// The same with irm's default of one validating thread per core.
    WeaveAllCores,
    /// irm: weave the policies (untimed), then `certifier::certify` the output (timed),
    /// as `irm check` and `irm weave --check` do.
    Check,
}

/// What a measurement child prints on stdout, as one JSON line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Measurement {
    pub secs: f64,
    pub out_bytes: u64,
}

/// Runs `tool` on `module` once and returns the timing of the work itself.
pub fn measure(tool: InProcTool, module: &Path, policies: &[PathBuf]) -> Result<Measurement> {
    let bytes = std::fs::read(module).with_context(|| format!("reading {}", module.display()))?;
    let program = if matches!(
        tool,
        InProcTool::Weave | InProcTool::WeaveAllCores | InProcTool::Check
    ) {
        Some(crate::irm::compile_policies(policies)?)
    } else {
        None
    };
    let woven = match (tool, &program) {
        (InProcTool::Check, Some(program)) => crate::irm::weave_on(&bytes, program, 0)?,
        _ => Vec::new(),
    };
    let start = Instant::now();
    let out_bytes = match tool {
        InProcTool::Validate => {
            validator()
                .validate_all(&bytes)
                .map_err(|e| anyhow!("validation failed: {e}"))?;
            0
        }
        InProcTool::Reencode => {
            use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
            let mut out = wasm_encoder::Module::new();
            RoundtripReencoder
                .parse_core_module(&mut out, wasmparser::Parser::new(0), &bytes)
                .map_err(|e| anyhow!("reencode failed: {e}"))?;
            out.finish().len() as u64
        }
        InProcTool::Walrus => {
            let mut m =
                walrus::Module::from_buffer(&bytes).map_err(|e| anyhow!("walrus parse: {e:#}"))?;
            m.emit_wasm().len() as u64
        }
        InProcTool::Weave | InProcTool::WeaveAllCores => {
            let program = program.expect("compiled above for weaving");
            let threads = if tool == InProcTool::Weave { 1 } else { 0 };
            crate::irm::weave_on(&bytes, &program, threads)?.len() as u64
        }
        InProcTool::Check => {
            let program = program.expect("compiled above for checking");
            certifier::certify(&woven, &program, &[])
                .map_err(|f| anyhow!("the woven module does not certify: {}", f[0]))?;
            0
        }
    };
    Ok(Measurement {
        secs: start.elapsed().as_secs_f64(),
        out_bytes,
    })
}

/// The validator every Wasm-consuming step of irm is compared against: wasmparser with its
/// default features, which match what wasmtime 48 accepts by default (exceptions, tail calls,
/// function references, GC, SIMD, threads, multi-memory, ...).
pub fn validator() -> wasmparser::Validator {
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_module() -> tempfile_path::TempWasm {
        tempfile_path::TempWasm::new(
            &wat::parse_str(r#"(module (func (export "f") (result i32) i32.const 7) (memory 1))"#)
                .unwrap(),
        )
    }

    /// A self-deleting file; the bench crate avoids a tempfile dependency for one use.
    mod tempfile_path {
        pub struct TempWasm(pub std::path::PathBuf);
        impl TempWasm {
            pub fn new(bytes: &[u8]) -> TempWasm {
                let p = std::env::temp_dir().join(format!(
                    "irm-bench-{}-{:?}.wasm",
                    std::process::id(),
                    std::thread::current().id()
                ));
                std::fs::write(&p, bytes).unwrap();
                TempWasm(p)
            }
        }
        impl Drop for TempWasm {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn reencode_output_is_a_valid_module() {
        let m = tiny_module();
        let r = measure(InProcTool::Reencode, &m.0, &[]).unwrap();
        assert!(r.out_bytes > 8);
    }

    #[test]
    fn walrus_round_trips_a_simple_module() {
        let m = tiny_module();
        let r = measure(InProcTool::Walrus, &m.0, &[]).unwrap();
        assert!(r.out_bytes > 8);
    }

    #[test]
    fn validation_rejects_garbage_with_an_error() {
        let m = tempfile_path::TempWasm::new(b"\0asm\x01\0\0\0\x7f");
        let err = measure(InProcTool::Validate, &m.0, &[]).unwrap_err();
        assert!(err.to_string().contains("validation failed"), "{err}");
    }
}
