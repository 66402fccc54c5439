//! From parsed files to the [`ir::Program`]: loading, name resolution, checks, lowering.
//!
//! * [`load`](load()): the given sources and every file they include, parsed once each;
//! * `declarations`: `event`, `const` and `set` declarations, global to one compilation,
//!   and resolving the events a transition names;
//! * `transitions`: each policy's states, variables and transitions, lowered to the IR;
//! * `expressions`: the values of updates and suppressed calls;
//! * `analysis`: what the lowered transitions show: nondeterminism (an error), dead
//!   transitions, unreachable states and unread variables (warnings).
//!
//! Errors stop the compilation; warnings are returned with the program. Every diagnostic
//! of one compilation is collected, in source order, and a location gets one message.
mod analysis;
mod declarations;
mod expressions;
mod load;
mod transitions;

pub use load::{io_reason, load, Loaded, MAX_FILES, MAX_INCLUDE_DEPTH};

use crate::ast::{self, FileId, Item, Span};
use crate::diag::{Diagnostic, Label, LineIndex, Severity, Source};
use crate::ir::{self, Program};
use crate::wasi;
use std::collections::{HashMap, HashSet};

/// An event as a transition names it.
#[derive(Clone)]
struct Resolved {
    /// The name written (or the set member name).
    name: String,
    /// `(module, field)`.
    key: (String, String),
    /// The signature with the parameter names of the declaration used.
    event: ir::Event,
    /// Where the declaration is; `None` for the WASI catalogue.
    decl: Option<Span>,
}

/// A global `event` declaration.
enum Decl {
    Import(ir::Event, Span),
    Alias(ast::Ident, Span),
}

struct Checker<'a> {
    sources: &'a [Source],
    diags: Vec<Diagnostic>,
    events: HashMap<String, Decl>,
    event_order: Vec<String>,
    sets: HashMap<String, (Vec<ast::Ident>, Span)>,
    consts: HashMap<String, i64>,
    const_spans: HashMap<String, Span>,
    /// The program's events by import, in order of first use.
    program_events: Vec<ir::Event>,
    program_event_decl: Vec<Option<Span>>,
    by_key: HashMap<(String, String), ir::EventId>,
    /// Names whose declaration already failed with an error: later uses report nothing
    /// more, so one mistake gives one message.
    poisoned: HashSet<String>,
    /// Per source, for [`Checker::loc`].
    line_index: Vec<LineIndex>,
}

/// Checks the loaded files and builds the program; `Err` holds every diagnostic (at least
/// one error), `Ok` the program and the warnings.
pub fn check(
    sources: &[Source],
    files: &[(FileId, ast::File)],
) -> Result<(Program, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut c = Checker {
        sources,
        diags: Vec::new(),
        events: HashMap::new(),
        event_order: Vec::new(),
        sets: HashMap::new(),
        consts: HashMap::new(),
        const_spans: HashMap::new(),
        program_events: Vec::new(),
        program_event_decl: Vec::new(),
        by_key: HashMap::new(),
        poisoned: HashSet::new(),
        line_index: sources.iter().map(|s| LineIndex::new(&s.text)).collect(),
    };
    for (_, f) in files {
        for item in &f.items {
            c.declare(item);
        }
    }
    c.check_aliases();
    let mut policies = Vec::new();
    let mut policy_names: HashMap<String, Span> = HashMap::new();
    for (_, f) in files {
        for item in &f.items {
            if let Item::Policy(p) = item {
                if let Some(first) = policy_names.get(&p.name.name).copied() {
                    c.duplicate("policy", &p.name, first);
                    continue;
                }
                policy_names.insert(p.name.name.clone(), p.name.span);
                if let Some(ir) = c.policy(p) {
                    policies.push(ir);
                }
            }
        }
    }
    // One message per location: a set transition reports a shared problem once.
    let mut seen = HashSet::new();
    let diags: Vec<Diagnostic> = c
        .diags
        .into_iter()
        .filter(|d| seen.insert((d.file.clone(), d.span.clone(), d.message.clone())))
        .collect();
    if diags.iter().any(|d| d.is_error()) {
        return Err(diags);
    }
    let mut program = Program {
        version: ir::IR_VERSION,
        events: c.program_events,
        policies,
    };
    // A tracking program monitors every call that changes the descriptor table.
    if program.tracks() {
        for f in crate::descriptors::Effect::FUNCTIONS {
            if program.event_for_import(wasi::MODULE, f).is_none() {
                program
                    .events
                    .push(wasi::function(f).expect("effect functions are WASI"));
            }
        }
        // And, when it names component imports, every call that hands out or drops a
        // stream or a descriptor.
        if program
            .events
            .iter()
            .any(|e| crate::wit::split_interface(&e.module).is_some())
        {
            for ev in crate::handles::tracked_events() {
                if program.event_for_import(&ev.module, &ev.field).is_none() {
                    program.events.push(ev);
                }
            }
        }
    }
    Ok((program, diags))
}

impl Checker<'_> {
    fn err(&mut self, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::at(Severity::Error, self.sources, span, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn warn(&mut self, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::at(Severity::Warning, self.sources, span, msg));
        self.diags.last_mut().expect("just pushed")
    }

    fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    /// `file:line:col` of `span`, as [`Diagnostic::location`] gives it.
    fn loc(&self, span: Span) -> String {
        match (self.sources.get(span.file), self.line_index.get(span.file)) {
            (Some(src), Some(index)) => {
                let (line, col) = index.line_col(&src.text, span.start);
                format!("{}:{line}:{col}", src.name)
            }
            _ => String::new(),
        }
    }

    /// A label at `span` for a diagnostic of this compilation.
    fn label(&self, span: Span, message: impl Into<String>) -> Label {
        Label::at(self.sources, span, message)
    }

    /// `name` is declared a second time; `first` is the declaration that stands.
    fn duplicate(&mut self, what: &str, name: &ast::Ident, first: Span) {
        let first = self.label(first, "first declared here");
        self.err(name.span, format!("duplicate {what} `{}`", name.name))
            .labels
            .push(first);
    }
}
