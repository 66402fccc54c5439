//! The irm entry points the harness measures, in one place so the sections stay independent
//! of how the crates spell them.

use anyhow::{anyhow, Result};
use policy_lang::ir::Program;
use std::path::PathBuf;

/// Compiles policy files into one program (the same call `irm weave --policy` makes).
pub fn compile_policies(paths: &[PathBuf]) -> Result<Program> {
    let _ = paths;
    Err(anyhow!("policy_lang::compile_files has not landed yet"))
}

/// Weaves `program` into `wasm` in the default mode (no host hooks): what `irm weave` ships.
pub fn weave(wasm: &[u8], program: &Program) -> Result<Vec<u8>> {
    let _ = (wasm, program);
    Err(anyhow!("instrumenter::weave has not landed yet"))
}

/// Compiles one policy source text.
pub fn compile_source(name: &str, text: &str) -> Result<Program> {
    let _ = (name, text);
    Err(anyhow!("policy_lang::compile has not landed yet"))
}
