//! Inputs every subcommand shares: policy files and Wasm modules (binary or text).
//!
//! Both give errors that name the file and, for text, the line and column, so a user
//! never has to guess which of several inputs was wrong.
use crate::ui::Ui;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// `--policy/-p FILE`, spelled the same in every command (flattened into each `Args`).
/// Commands that take policy files positionally too put these first.
#[derive(clap::Args, Debug, Default)]
pub struct PolicyArgs {
    /// Policy file; repeat for several (a call is allowed only if every policy allows it).
    #[arg(id = "policy", long = "policy", short = 'p', value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

impl PolicyArgs {
    /// These files, then `more` (a command's positional files), in that order.
    pub fn with(&self, more: &[PathBuf]) -> Vec<PathBuf> {
        self.files.iter().chain(more).cloned().collect()
    }
}

/// `--policy/-p FILE` where at least one is required (`weave`, `check`).
#[derive(clap::Args, Debug, Default)]
pub struct RequiredPolicyArgs {
    /// Policy file; repeat for several (a call is allowed only if every policy allows it).
    #[arg(
        id = "policy",
        long = "policy",
        short = 'p',
        value_name = "FILE",
        required = true
    )]
    pub files: Vec<PathBuf>,
}

/// The policies of `compile` and `show`: `--policy` files, then positional ones, at least
/// one in all.
#[derive(clap::Args, Debug, Default)]
#[command(group = clap::ArgGroup::new("policies").args(["policy", "files"]).required(true).multiple(true))]
pub struct PolicyFiles {
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Policy files, compiled together (after those given with --policy).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

impl PolicyFiles {
    /// Every file, in order.
    pub fn all(&self) -> Vec<PathBuf> {
        self.policy.with(&self.files)
    }
}

/// Compiles policy files together, printing warnings to stderr. The error is the
/// [`policy_lang::Diagnostics`] themselves, so they are rendered with their sources.
pub fn compile_policies(paths: &[PathBuf], ui: &Ui) -> Result<policy_lang::Compiled> {
    let compiled = policy_lang::compile_files(paths)?;
    if !compiled.warnings.is_empty() {
        eprintln!("{}", compiled.render_warnings_styled(ui.style));
    }
    Ok(compiled)
}

/// The first bytes of every binary module (and component): `\0asm`.
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Reads a module: the binary format as is, the text format parsed by `wat` (whose
/// errors carry `file:line:col` and the source line). Anything else is refused by its
/// first bytes, before a text parser can call it a syntax error.
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    let shown = || format!("cannot read module `{}`", path.display());
    let bytes = std::fs::read(path).with_context(shown)?;
    if bytes.starts_with(WASM_MAGIC) {
        return Ok(bytes);
    }
    if !looks_like_text(&bytes) {
        bail!(
            "{}: it is neither WebAssembly binary (which starts with the bytes `00 61 73 6d`, \
             \"\\0asm\") nor WebAssembly text (which starts with `(`); it starts with `{}`",
            shown(),
            first_bytes(&bytes)
        );
    }
    let text = std::str::from_utf8(&bytes).expect("looks_like_text checked UTF-8");
    wat::Parser::new()
        .parse_str(Some(path), text)
        .with_context(shown)
}

/// Whether `bytes` can be WebAssembly text: UTF-8 whose first token (after blanks and
/// `;;` and `(; ;)` comments) opens a parenthesis, or that holds no token at all (an
/// empty module).
fn looks_like_text(bytes: &[u8]) -> bool {
    let Ok(mut rest) = std::str::from_utf8(bytes) else {
        return false;
    };
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(";;") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if rest.starts_with("(;") {
            // Block comments nest; an unterminated one is wat's error to report.
            let mut depth = 0usize;
            let mut i = 0;
            let b = rest.as_bytes();
            while i < b.len() {
                if b[i..].starts_with(b"(;") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b";)") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            if depth > 0 {
                return true;
            }
            rest = &rest[i..];
        } else {
            return rest.is_empty() || rest.starts_with('(');
        }
    }
}

/// Up to eight leading bytes in hex, for messages.
fn first_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing (the file is empty)".into();
    }
    let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}{}",
        shown.join(" "),
        if bytes.len() > 8 { " ..." } else { "" }
    )
}

/// The plural suffix for `n` things.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_starts_with_a_parenthesis_after_blanks_and_comments() {
        assert!(looks_like_text(b"(module)"));
        assert!(looks_like_text(
            b"  \n;; a module\n(; block (; nested ;) ;)\n(func)"
        ));
        assert!(looks_like_text(b""));
        assert!(looks_like_text(b";; only a comment"));
    }

    #[test]
    fn other_files_do_not_look_like_text() {
        assert!(!looks_like_text(b"\x7fELF\x02\x01"));
        assert!(!looks_like_text(b"policy p { }"));
        assert!(!looks_like_text(b"\xff\xfe(module)"));
    }

    #[test]
    fn first_bytes_are_shown_in_hex_with_an_ellipsis_past_eight() {
        assert_eq!(first_bytes(b"\x7fELF"), "7f 45 4c 46");
        assert_eq!(first_bytes(b"0123456789"), "30 31 32 33 34 35 36 37 ...");
        assert_eq!(first_bytes(b""), "nothing (the file is empty)");
    }
}
