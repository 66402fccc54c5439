//! Loading: parsing the given sources and, transitively, the files they include.
use crate::ast::{self, FileId, Item};
use crate::diag::{Diagnostic, Severity, Source};
use crate::parse;
use std::path::{Component, Path, PathBuf};

/// The parsed files of one compilation, included files before the files including them.
pub struct Loaded {
    pub sources: Vec<Source>,
    pub files: Vec<(FileId, ast::File)>,
    pub errors: Vec<Diagnostic>,
}

/// Deepest chain of includes.
pub const MAX_INCLUDE_DEPTH: usize = 32;
/// Most files one compilation loads.
pub const MAX_FILES: usize = 512;

/// Parses `sources` and, transitively, the files they include. Includes are resolved
/// relative to the including source's name; a name matching a given source uses that
/// source, anything else is read with `read`. Each file is loaded once.
pub fn load(sources: Vec<Source>, read: &dyn Fn(&Path) -> std::io::Result<String>) -> Loaded {
    let mut l = Loader {
        sources,
        files: Vec::new(),
        errors: Vec::new(),
        state: Vec::new(),
        read,
    };
    l.state = vec![LoadState::New; l.sources.len()];
    for i in 0..l.sources.len() {
        if l.state[i] == LoadState::New {
            let mut stack = Vec::new();
            l.visit(i, &mut stack);
        }
    }
    Loaded {
        sources: l.sources,
        files: l.files,
        errors: l.errors,
    }
}

/// The reason of an I/O error without Rust's "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Lexically normalised path (`.` removed, `..` applied where possible).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            c => out.push(c.as_os_str()),
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LoadState {
    New,
    InProgress,
    Done,
}

struct Loader<'r> {
    sources: Vec<Source>,
    files: Vec<(FileId, ast::File)>,
    errors: Vec<Diagnostic>,
    state: Vec<LoadState>,
    read: &'r dyn Fn(&Path) -> std::io::Result<String>,
}

impl Loader<'_> {
    fn visit(&mut self, id: FileId, stack: &mut Vec<FileId>) {
        self.state[id] = LoadState::InProgress;
        stack.push(id);
        let file = match parse::parse_file(&self.sources, id) {
            Ok(f) => f,
            Err(errs) => {
                self.errors.extend(errs);
                ast::File::default()
            }
        };
        for item in &file.items {
            let Item::Include(inc) = item else { continue };
            let Some(target) = self.include(id, inc, stack.len()) else {
                continue;
            };
            match self.state[target] {
                LoadState::Done => {}
                LoadState::InProgress => self.cycle(stack, target, inc.span),
                LoadState::New => self.visit(target, stack),
            }
        }
        stack.pop();
        self.state[id] = LoadState::Done;
        self.files.push((id, file));
    }

    /// The source `inc` of file `id` names, read on first mention; `None` (reported)
    /// when it cannot be read or the bounds are reached.
    fn include(&mut self, id: FileId, inc: &ast::StrLit, depth: usize) -> Option<FileId> {
        let base = Path::new(&self.sources[id].name)
            .parent()
            .unwrap_or(Path::new(""));
        let path = normalize(&base.join(&inc.value));
        let existing = self
            .sources
            .iter()
            .position(|s| normalize(Path::new(&s.name)) == path);
        if let Some(t) = existing {
            return Some(t);
        }
        // Bounds against include chains that never end (a symbolic link to its own
        // directory makes `include "self/x.pol"` a new path every time).
        if depth >= MAX_INCLUDE_DEPTH || self.sources.len() >= MAX_FILES {
            let d = Diagnostic::at(
                Severity::Error,
                &self.sources,
                inc.span,
                format!(
                    "too many included files: includes nest at most {MAX_INCLUDE_DEPTH} deep and load at most {MAX_FILES} files"
                ),
            )
            .with_hint("does a file include itself through a different path?");
            self.errors.push(d);
            return None;
        }
        match (self.read)(&path) {
            Ok(text) => {
                self.sources.push(Source {
                    name: path.to_string_lossy().into_owned(),
                    text,
                });
                self.state.push(LoadState::New);
                Some(self.sources.len() - 1)
            }
            Err(e) => {
                let d = Diagnostic::at(
                    Severity::Error,
                    &self.sources,
                    inc.span,
                    format!(
                        "cannot read included file `{}`: {}",
                        path.display(),
                        io_reason(&e)
                    ),
                )
                .with_hint("include paths are relative to the file that includes them");
                self.errors.push(d);
                None
            }
        }
    }

    /// Reports the include cycle that reaching `target` again (from the top of `stack`)
    /// closes.
    fn cycle(&mut self, stack: &[FileId], target: FileId, at: ast::Span) {
        let start = stack.iter().position(|&f| f == target).unwrap_or(0);
        let mut chain: Vec<&str> = stack[start..]
            .iter()
            .map(|&f| self.sources[f].name.as_str())
            .collect();
        chain.push(&self.sources[target].name);
        let d = Diagnostic::at(
            Severity::Error,
            &self.sources,
            at,
            format!("include cycle: {}", chain.join(" -> ")),
        )
        .with_hint("move the shared declarations into a file that includes neither");
        self.errors.push(d);
    }
}
