//! The irm entry points the harness measures, in one place so the sections stay independent
//! of how the crates spell them.

use anyhow::{anyhow, Result};
use policy_lang::ir::Program;
use policy_lang::Source;
use std::path::{Path, PathBuf};

/// Compiles policy files into one program (the same call `irm weave --policy` makes).
pub fn compile_policies(paths: &[PathBuf]) -> Result<Program> {
    policy_lang::compile_files(paths)
        .map(|c| c.program)
        .map_err(|d| anyhow!("policy compilation failed:\n{}", d.render()))
}

/// Weaves `program` into `wasm` in the default mode (no host hooks): what `irm weave` ships.
pub fn weave(wasm: &[u8], program: &Program) -> Result<Vec<u8>> {
    weave_on(wasm, program, 0)
}

/// [`weave`] with `threads` validating threads (0: one per core, the default).
pub fn weave_on(wasm: &[u8], program: &Program, threads: usize) -> Result<Vec<u8>> {
    let options = instrumenter::WeaveOptions {
        threads,
        ..instrumenter::WeaveOptions::default()
    };
    instrumenter::weave(wasm, program, &options)
        .map(|w| w.wasm)
        .map_err(|e| anyhow!("weave failed: {e}"))
}

/// Compiles one policy source text.
pub fn compile_source(name: &str, text: &str) -> Result<Program> {
    let sources = [Source {
        name: name.to_string(),
        text: text.to_string(),
    }];
    policy_lang::compile(&sources)
        .map(|c| c.program)
        .map_err(|d| anyhow!("policy compilation failed:\n{}", d.render()))
}

/// The policy file for a workspace-relative path. The project's `policies/no-exfil.pol` is
/// preferred; the harness carries a copy (`bench/policies/no-exfil.pol`) for trees where
/// it is absent. Returns the path and the label the report shows.
pub fn policy_file(workspace: &Path, rel: &str) -> (PathBuf, String) {
    if rel == NO_EXFIL {
        let project = workspace.join("policies/no-exfil.pol");
        if project.exists() {
            return (project, "policies/no-exfil.pol".into());
        }
        return (workspace.join(NO_EXFIL), NO_EXFIL.into());
    }
    (workspace.join(rel), rel.into())
}

/// The harness's copy of no-exfil; see [`policy_file`].
pub const NO_EXFIL: &str = "bench/policies/no-exfil.pol";
