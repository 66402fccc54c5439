//! irm's policy language.
//!
//! * [`ir`]: the compiled automaton, the contract every other crate consumes;
//! * [`pattern`]: string patterns (exact, prefix, glob) and their DFA;
//! * [`path`] and [`descriptors`]: the resource model guards speak about (resolved guest
//!   paths, what each descriptor is).
//! * [`fake_host`]: the fake WASI host monitors run against on traces (the certifier's
//!   behaviour check, the wasmtime judges).
pub mod access;
pub mod ast;
pub mod check;
pub mod descriptors;
pub mod diag;
pub mod display;
pub mod dot;
pub mod fake_host;
pub mod handles;
pub mod interp;
pub mod ir;
pub mod lower;
pub mod parse;
pub mod path;
pub mod pattern;
pub mod trace;
pub mod wasi;
pub mod wit;

pub use diag::{Diagnostic, Diagnostics, Label, Severity, Source, Style};

use std::path::Path;

/// A successful compilation: the program, any warnings, and the sources they refer to
/// (including every included file), for rendering.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub program: ir::Program,
    pub warnings: Vec<Diagnostic>,
    pub sources: Vec<Source>,
}

impl Compiled {
    /// The warnings rendered like errors, separated by blank lines.
    pub fn render_warnings(&self) -> String {
        self.render_warnings_styled(Style::Plain)
    }

    /// [`Compiled::render_warnings`] in `style`.
    pub fn render_warnings_styled(&self, style: Style) -> String {
        diag::render_all(&self.warnings, &self.sources, style)
    }
}

/// Compiles policy sources. `include`s are resolved relative to each source's name as a
/// path: first among `sources`, then on disk.
pub fn compile(sources: &[Source]) -> Result<Compiled, Diagnostics> {
    compile_with(sources.to_vec(), &|p: &Path| std::fs::read_to_string(p))
}

/// Compiles policy files read from disk.
pub fn compile_files(paths: &[impl AsRef<Path>]) -> Result<Compiled, Diagnostics> {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let p = p.as_ref();
        match std::fs::read_to_string(p) {
            Ok(text) => sources.push(Source {
                name: p.to_string_lossy().into_owned(),
                text,
            }),
            Err(e) => errors.push(Diagnostic::unlocated(
                Severity::Error,
                format!(
                    "cannot read policy file `{}`: {}",
                    p.display(),
                    check::io_reason(&e)
                ),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics {
            diagnostics: errors,
            sources,
        });
    }
    compile(&sources)
}

/// [`compile`] with a custom reader for included files (tests use an in-memory one).
pub fn compile_with(
    sources: Vec<Source>,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Compiled, Diagnostics> {
    if sources.is_empty() {
        return Err(Diagnostics {
            diagnostics: vec![Diagnostic::unlocated(
                Severity::Error,
                "no policy sources given",
            )],
            sources,
        });
    }
    let loaded = check::load(sources, read);
    if !loaded.errors.is_empty() {
        return Err(Diagnostics {
            diagnostics: loaded.errors,
            sources: loaded.sources,
        });
    }
    match check::check(&loaded.sources, &loaded.files) {
        Ok((program, warnings)) => Ok(Compiled {
            program,
            warnings,
            sources: loaded.sources,
        }),
        Err(diagnostics) => Err(Diagnostics {
            diagnostics,
            sources: loaded.sources,
        }),
    }
}
