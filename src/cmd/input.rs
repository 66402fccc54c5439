//! Inputs every subcommand shares: policy files and Wasm modules (binary or text).
//!
//! Both return errors that name the file and, for text, the line and column, so a user
//! never has to guess which of several inputs was wrong.
use anyhow::{bail, Context, Result};
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

/// Reads a module: the binary format as is, the text format (`.wat`, or any file that
/// does not start with the Wasm magic) parsed with `wat`.
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read module `{}`", path.display()))?;
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes);
    }
    let looks_textual = path.extension().is_some_and(|e| e == "wat" || e == "wast")
        || std::str::from_utf8(&bytes).is_ok_and(|s| s.trim_start().starts_with('('));
    if !looks_textual {
        bail!(
            "`{}` is neither a WebAssembly binary (it does not start with \\0asm) nor the text format",
            path.display()
        );
    }
    let text = std::str::from_utf8(&bytes)
        .with_context(|| format!("`{}` is not valid UTF-8 text", path.display()))?;
    let buf = wat::Parser::new();
    match buf.parse_str(Some(path), text) {
        Ok(b) => Ok(b),
        // wat's error already carries `--> file:line:col` and the source line.
        Err(e) => bail!("cannot parse the text module: {e}"),
    }
}

/// The plural suffix for `n` things.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
