//! Inputs every subcommand shares: policy files and Wasm modules (binary or text).
//!
//! Both return errors that name the file and, for text, the line and column, so a user
//! never has to guess which of several inputs was wrong.
use anyhow::{Context, Result};
use std::path::Path;

/// Compiles policy files together, printing warnings to stderr. On errors the rendered
/// diagnostics are printed and `Err(exit code)` is returned: the diagnostics already say
/// everything, so no further context is added.
pub fn compile_policies(
    paths: &[impl AsRef<Path>],
) -> std::result::Result<policy_lang::Compiled, u8> {
    match policy_lang::compile_files(paths) {
        Ok(c) => {
            if !c.warnings.is_empty() {
                eprintln!("{}", c.render_warnings());
            }
            Ok(c)
        }
        Err(diags) => {
            eprint!("{}", diags.render());
            let n = diags.errors().count();
            eprintln!("irm: {n} error{} in the policies", plural(n));
            Err(1)
        }
    }
}

/// Reads a module: the binary format as is, the text format parsed by `wat` (whose
/// errors carry `file:line:col` and the source line).
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    wat::parse_file(path).with_context(|| format!("cannot read module `{}`", path.display()))
}

/// The plural suffix for `n` things.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
