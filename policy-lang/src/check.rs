//! Loading (includes), name resolution, checks and assembly of the [`ir::Program`].
//!
//! Declarations (`event`, `const`, `set`) are global to one compilation; policies are
//! checked one by one. Errors stop the compilation; warnings are returned with the
//! program. The analyses at the end (overlapping and dead transitions, unreachable
//! states, unused variables) run on the lowered transitions.
use crate::ast::{self, EventBody, FileId, Item, Span, Target};
use crate::diag::{suggest, Diagnostic, LineIndex, Severity, Source};
use crate::display::signature;
use crate::ir::{self, Expr, ParamType, Phase, Program, ValType, Verdict};
use crate::lower::{fold_binary, Lowerer, Scope, Ty};
use crate::parse;
use crate::wasi;
use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

/// The parsed files of one compilation, included files before the files including them.
pub struct Loaded {
    pub sources: Vec<Source>,
    pub files: Vec<(FileId, ast::File)>,
    pub errors: Vec<Diagnostic>,
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
            let base = Path::new(&self.sources[id].name)
                .parent()
                .unwrap_or(Path::new(""));
            let path = normalize(&base.join(&inc.value));
            let existing = self
                .sources
                .iter()
                .position(|s| normalize(Path::new(&s.name)) == path);
            // Bounds against include chains that never end (a symbolic link to its own
            // directory makes `include "self/x.pol"` a new path every time).
            if existing.is_none()
                && (stack.len() >= MAX_INCLUDE_DEPTH || self.sources.len() >= MAX_FILES)
            {
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
                continue;
            }
            let target = match existing {
                Some(t) => t,
                None => match (self.read)(&path) {
                    Ok(text) => {
                        self.sources.push(Source {
                            name: path.to_string_lossy().into_owned(),
                            text,
                        });
                        self.state.push(LoadState::New);
                        self.sources.len() - 1
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
                        continue;
                    }
                },
            };
            match self.state[target] {
                LoadState::Done => {}
                LoadState::InProgress => {
                    let start = stack.iter().position(|&f| f == target).unwrap_or(0);
                    let mut chain: Vec<&str> = stack[start..]
                        .iter()
                        .map(|&f| self.sources[f].name.as_str())
                        .collect();
                    chain.push(&self.sources[target].name);
                    let d = Diagnostic::at(
                        Severity::Error,
                        &self.sources,
                        inc.span,
                        format!("include cycle: {}", chain.join(" -> ")),
                    )
                    .with_hint("move the shared declarations into a file that includes neither");
                    self.errors.push(d);
                }
                LoadState::New => self.visit(target, stack),
            }
        }
        stack.pop();
        self.state[id] = LoadState::Done;
        self.files.push((id, file));
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
                if let Some(first) = policy_names.get(&p.name.name) {
                    let note = format!("first declared at {}", c.loc(*first));
                    c.err(p.name.span, format!("duplicate policy `{}`", p.name.name))
                        .notes
                        .push(note);
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
    }
    Ok((program, diags))
}

impl<'a> Checker<'a> {
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

    fn duplicate(&mut self, what: &str, name: &ast::Ident, first: Span) {
        let note = format!("first declared at {}", self.loc(first));
        self.err(name.span, format!("duplicate {what} `{}`", name.name))
            .notes
            .push(note);
    }

    /// The span of an existing global declaration named `name`, if any.
    fn global(&self, name: &str) -> Option<Span> {
        if let Some(d) = self.events.get(name) {
            return Some(match d {
                Decl::Import(_, s) | Decl::Alias(_, s) => *s,
            });
        }
        self.sets.get(name).map(|(_, s)| *s)
    }

    fn declare(&mut self, item: &Item) {
        match item {
            Item::Include(_) | Item::Policy(_) => {}
            Item::Event(e) => {
                if let Some(first) = self.global(&e.name.name) {
                    self.duplicate("event", &e.name, first);
                    return;
                }
                let decl = match &e.body {
                    EventBody::Alias(target) => Decl::Alias(target.clone(), e.name.span),
                    EventBody::Import {
                        module,
                        field,
                        params,
                        result,
                    } => {
                        let Some(ev) =
                            self.import_sig(&e.name.name, module, field, params, result.as_ref())
                        else {
                            self.poisoned.insert(e.name.name.clone());
                            return;
                        };
                        // Two declarations of one import must agree on the signature.
                        let key = (ev.module.clone(), ev.field.clone());
                        for other in self.event_order.clone() {
                            if let Some(Decl::Import(o, ospan)) = self.events.get(&other) {
                                if (o.module.clone(), o.field.clone()) == key
                                    && !same_signature(o, &ev)
                                {
                                    let note =
                                        format!("`{other}` declares it at {}", self.loc(*ospan));
                                    let d = self.err(
                                        e.span,
                                        format!(
                                            "conflicting declarations of import `{}.{}`",
                                            key.0, key.1
                                        ),
                                    );
                                    d.notes.push(note);
                                    d.hint = Some(
                                        "one import has one signature; make the declarations agree"
                                            .into(),
                                    );
                                    self.poisoned.insert(e.name.name.clone());
                                    return;
                                }
                            }
                        }
                        if let Some(cat) = (key.0 == wasi::MODULE)
                            .then(|| wasi::function(&key.1))
                            .flatten()
                        {
                            if !same_signature(&cat, &ev) {
                                let d = self.err(
                                    e.span,
                                    format!(
                                        "conflicting declarations of import `{}.{}`",
                                        key.0, key.1
                                    ),
                                );
                                d.notes.push(format!(
                                    "the WASI catalogue declares it as {}",
                                    signature(&cat)
                                ));
                                d.hint = Some(format!("use the catalogue's `{}` directly, or alias it: `event {} = {};`", key.1, e.name.name, key.1));
                                self.poisoned.insert(e.name.name.clone());
                                return;
                            }
                        }
                        Decl::Import(ev, e.name.span)
                    }
                };
                self.events.insert(e.name.name.clone(), decl);
                self.event_order.push(e.name.name.clone());
            }
            Item::Const(k) => {
                if let Some(first) = self.const_spans.get(&k.name.name).copied() {
                    self.duplicate("constant", &k.name, first);
                    return;
                }
                if wasi::constant(&k.name.name).is_some() {
                    self.err(k.name.span, format!("duplicate constant `{}`", k.name.name))
                        .notes
                        .push("it is a built-in WASI constant".into());
                    return;
                }
                let mut lw = Lowerer::new(self.sources);
                let scope = const_scope(&self.consts);
                let v = lw.const_int(&k.value, &scope, "a constant's value");
                self.diags.extend(lw.errors);
                match v {
                    Some(v) => {
                        self.consts.insert(k.name.name.clone(), v);
                        self.const_spans.insert(k.name.name.clone(), k.name.span);
                    }
                    // The error is reported; a placeholder keeps uses from adding more.
                    None => {
                        self.consts.insert(k.name.name.clone(), 0);
                        self.const_spans.insert(k.name.name.clone(), k.name.span);
                    }
                }
            }
            Item::Set(s) => {
                if let Some(first) = self.global(&s.name.name) {
                    self.duplicate("set", &s.name, first);
                    return;
                }
                self.sets
                    .insert(s.name.name.clone(), (s.members.clone(), s.name.span));
            }
        }
    }

    fn import_sig(
        &mut self,
        name: &str,
        module: &ast::StrLit,
        field: &ast::StrLit,
        params: &[ast::ParamDecl],
        result: Option<&ast::Ident>,
    ) -> Option<ir::Event> {
        let mut ok = true;
        let mut out: Vec<ir::Param> = Vec::new();
        for p in params {
            if out.iter().any(|q| q.name == p.name.name) {
                self.err(
                    p.name.span,
                    format!("duplicate parameter `{}`", p.name.name),
                );
                ok = false;
                continue;
            }
            if p.name.name == "result" {
                self.err(p.name.span, "a parameter cannot be named `result`")
                    .hint =
                    Some("`result` refers to the call's result in `after` transitions".into());
                ok = false;
                continue;
            }
            let ty = match p.ty.name.as_str() {
                "i32" => ParamType::I32,
                "i64" => ParamType::I64,
                "f32" => ParamType::F32,
                "f64" => ParamType::F64,
                "string" => ParamType::Str,
                other => {
                    let hint = suggest(other, ["i32", "i64", "f32", "f64", "string"])
                        .map(|s| format!("did you mean `{s}`?"));
                    let d = self.err(p.ty.span, format!("unknown parameter type `{other}`"));
                    d.hint = hint.or_else(|| {
                        Some("parameter types: `i32`, `i64`, `f32`, `f64`, `string`".into())
                    });
                    ok = false;
                    continue;
                }
            };
            out.push(ir::Param {
                name: p.name.name.clone(),
                ty,
            });
        }
        let results = match result {
            None => Vec::new(),
            Some(r) => match r.name.as_str() {
                "i32" => vec![ValType::I32],
                "i64" => vec![ValType::I64],
                "f32" => vec![ValType::F32],
                "f64" => vec![ValType::F64],
                other => {
                    let d = self.err(r.span, format!("unknown result type `{other}`"));
                    d.hint = Some("result types: `i32`, `i64`, `f32`, `f64`".into());
                    ok = false;
                    Vec::new()
                }
            },
        };
        ok.then(|| ir::Event {
            name: name.to_string(),
            module: module.value.clone(),
            field: field.value.clone(),
            params: out,
            results,
        })
    }

    fn check_aliases(&mut self) {
        for name in self.event_order.clone() {
            if self.poisoned.contains(&name) {
                continue;
            }
            let Some(Decl::Alias(target, span)) = self.events.get(&name) else {
                continue;
            };
            let (target, span) = (target.clone(), *span);
            if self.resolve_event(&name).is_some() {
                continue;
            }
            // Follow the chain: a cycle is reported once, at its first alias; a dangling
            // alias at its unknown target.
            let mut chain = vec![name.clone()];
            let mut cur = target.name.clone();
            let cycle = loop {
                if chain.contains(&cur) {
                    break true;
                }
                match self.events.get(&cur) {
                    Some(Decl::Alias(t, _)) => {
                        chain.push(cur.clone());
                        cur = t.name.clone();
                    }
                    _ => break false,
                }
            };
            if cycle {
                let start = chain.iter().position(|c| *c == cur).unwrap_or(0);
                let mut shown: Vec<String> = chain[start..].to_vec();
                shown.push(cur.clone());
                self.err(span, format!("event alias cycle: {}", shown.join(" -> ")))
                    .hint = Some("an alias must lead to an `event NAME = module.field(...)` declaration or a WASI function".into());
                self.poisoned.extend(chain);
            } else {
                self.unknown_event(&target);
                self.poisoned.extend(chain);
            }
        }
    }

    /// Follows aliases to an import declaration or a catalogue function.
    fn resolve_event(&self, name: &str) -> Option<Resolved> {
        let mut cur = name.to_string();
        for _ in 0..=self.event_order.len() {
            match self.events.get(&cur) {
                Some(Decl::Import(ev, span)) => {
                    return Some(Resolved {
                        name: name.to_string(),
                        key: (ev.module.clone(), ev.field.clone()),
                        event: ev.clone(),
                        decl: Some(*span),
                    })
                }
                Some(Decl::Alias(t, _)) => cur = t.name.clone(),
                None => {
                    let ev = wasi::function(&cur)?;
                    return Some(Resolved {
                        name: name.to_string(),
                        key: (ev.module.clone(), ev.field.clone()),
                        event: ev,
                        decl: None,
                    });
                }
            }
        }
        None // alias cycle
    }

    fn unknown_event(&mut self, id: &ast::Ident) {
        if self.poisoned.contains(&id.name) {
            return;
        }
        let mut names: Vec<String> = self.event_order.clone();
        names.extend(self.sets.keys().cloned());
        names.extend(wasi::function_names().map(String::from));
        let hint = suggest(&id.name, names.iter().map(|s| s.as_str()));
        let is_alias_cycle = matches!(self.events.get(&id.name), Some(Decl::Alias(..)));
        let d = self.err(
            id.span,
            if is_alias_cycle {
                format!("event alias `{}` refers to itself", id.name)
            } else {
                format!("unknown event `{}`", id.name)
            },
        );
        d.hint = Some(match hint {
            Some(s) => format!("did you mean `{s}`?"),
            None => "declare it: `event name = module.field(param: i32, ...) -> i32;`".into(),
        });
    }

    /// The events a transition names: one event, or the members of a set (a declared
    /// one, or a built-in access set) in order.
    fn expand(&mut self, id: &ast::Ident) -> Option<(Vec<Resolved>, Option<String>)> {
        if self.sets.contains_key(&id.name) {
            let mut out: Vec<Resolved> = Vec::new();
            let mut ok = true;
            let mut visiting = vec![id.name.clone()];
            self.expand_set(&id.name, &mut out, &mut visiting, &mut ok);
            return ok.then_some((out, Some(id.name.clone())));
        }
        if let Some(set) = crate::access::set(&id.name) {
            let out = set
                .functions()
                .into_iter()
                .filter_map(|f| self.resolve_event(f))
                .collect();
            return Some((out, Some(id.name.clone())));
        }
        match self.resolve_event(&id.name) {
            Some(r) => Some((vec![r], None)),
            None => {
                self.unknown_event(id);
                None
            }
        }
    }

    fn expand_set(
        &mut self,
        set: &str,
        out: &mut Vec<Resolved>,
        visiting: &mut Vec<String>,
        ok: &mut bool,
    ) {
        let members = self.sets[set].0.clone();
        for m in &members {
            if self.sets.contains_key(&m.name) {
                if visiting.contains(&m.name) {
                    self.err(m.span, format!("set `{}` contains itself", m.name));
                    *ok = false;
                    continue;
                }
                visiting.push(m.name.clone());
                self.expand_set(&m.name.clone(), out, visiting, ok);
                visiting.pop();
            } else if let Some(r) = self.resolve_event(&m.name) {
                if !out.iter().any(|o| o.key == r.key) {
                    out.push(r);
                }
            } else {
                self.unknown_event(m);
                *ok = false;
            }
        }
    }

    /// The program's id for an event, adding it on first use.
    fn use_event(&mut self, r: &Resolved, at: Span) -> Option<ir::EventId> {
        if let Some(&id) = self.by_key.get(&r.key) {
            let existing = &self.program_events[id as usize];
            if !same_signature(existing, &r.event) {
                let first = self.program_event_decl[id as usize];
                let note = match first {
                    Some(s) => format!(
                        "`{}` declares it as {} at {}",
                        existing.name,
                        signature(existing),
                        self.loc(s)
                    ),
                    None => format!("the WASI catalogue declares it as {}", signature(existing)),
                };
                let d = self.err(
                    at,
                    format!(
                        "conflicting declarations of import `{}.{}`",
                        r.key.0, r.key.1
                    ),
                );
                d.notes.push(note);
                return None;
            }
            return Some(id);
        }
        let id = self.program_events.len() as ir::EventId;
        let mut ev = r.event.clone();
        ev.name = r.name.clone();
        self.program_events.push(ev);
        self.program_event_decl.push(r.decl);
        self.by_key.insert(r.key.clone(), id);
        Some(id)
    }

    fn policy(&mut self, p: &ast::PolicyDecl) -> Option<ir::Policy> {
        let errors_before = self.error_count();
        // States.
        let mut states: Vec<ir::State> = Vec::new();
        let mut state_spans: Vec<Span> = Vec::new();
        let mut initial: Option<(usize, Span)> = None;
        for s in &p.states {
            if let Some(i) = states.iter().position(|x| x.name == s.name.name) {
                self.duplicate("state", &s.name, state_spans[i]);
                continue;
            }
            if let Some(kw) = s.initial {
                if let Some((first, _)) = initial {
                    let note = format!(
                        "`{}` is already initial, at {}",
                        states[first].name,
                        self.loc(state_spans[first])
                    );
                    let d = self.err(kw.to(s.name.span), "a policy has exactly one initial state");
                    d.notes.push(note);
                    d.hint = Some(format!(
                        "remove `initial` from `{}` or from `{}`",
                        states[first].name, s.name.name
                    ));
                } else {
                    initial = Some((states.len(), s.name.span));
                }
            }
            states.push(ir::State {
                name: s.name.name.clone(),
            });
            state_spans.push(s.name.span);
        }
        let implicit = states.is_empty();
        if implicit {
            states.push(ir::State {
                name: "start".into(),
            });
            state_spans.push(p.name.span);
            initial = Some((0, p.name.span));
        }
        let Some((initial, _)) = initial else {
            let first = states[0].name.clone();
            self.err(
                p.name.span,
                format!("policy `{}` has no initial state", p.name.name),
            )
            .hint = Some(format!(
                "mark one state `initial`, e.g. `initial state {first};`"
            ));
            return None;
        };
        // Variables.
        let mut vars: Vec<ir::Var> = Vec::new();
        let mut var_spans: Vec<Span> = Vec::new();
        for v in &p.vars {
            if let Some(i) = vars.iter().position(|x| x.name == v.name.name) {
                self.duplicate("variable", &v.name, var_spans[i]);
                continue;
            }
            let mut lw = Lowerer::new(self.sources);
            let scope = const_scope(&self.consts);
            let min = lw.const_int(&v.min, &scope, "a range bound");
            let max = lw.const_int(&v.max, &scope, "a range bound");
            let init = lw.const_int(&v.init, &scope, "an initial value");
            self.diags.extend(lw.errors);
            // After an error the variable is still declared (with any value allowed), so
            // its uses do not add "unknown variable" errors; the policy is not produced.
            let placeholder = ir::Var {
                name: v.name.name.clone(),
                min: i64::MIN,
                max: i64::MAX,
                init: 0,
            };
            let var = match (min, max, init) {
                (Some(min), Some(max), Some(init)) => {
                    if min > max {
                        self.err(
                            v.min.span.to(v.max.span),
                            format!("empty range {min}..{max} for variable `{}`", v.name.name),
                        )
                        .hint = Some(
                            "ranges are inclusive and written `min..max` with min <= max".into(),
                        );
                        placeholder
                    } else if init < min || init > max {
                        self.err(
                            v.init.span,
                            format!(
                                "initial value {init} is outside the range {min}..{max} of `{}`",
                                v.name.name
                            ),
                        );
                        placeholder
                    } else {
                        ir::Var {
                            name: v.name.name.clone(),
                            min,
                            max,
                            init,
                        }
                    }
                }
                _ => placeholder,
            };
            vars.push(var);
            var_spans.push(v.name.span);
        }
        // Set variables.
        let mut sets: Vec<ir::SetVar> = Vec::new();
        for sv in &p.set_vars {
            if let Some(i) = vars.iter().position(|x| x.name == sv.name.name) {
                self.duplicate("variable", &sv.name, var_spans[i]);
                continue;
            }
            if sets.iter().any(|x| x.name == sv.name.name) {
                self.err(
                    sv.name.span,
                    format!("duplicate variable `{}`", sv.name.name),
                );
                continue;
            }
            let mut lw = Lowerer::new(self.sources);
            let scope = const_scope(&self.consts);
            let capacity = lw.const_int(&sv.capacity, &scope, "a set capacity");
            self.diags.extend(lw.errors);
            let capacity = match capacity {
                Some(c) if (1..=ir::MAX_SET_CAPACITY as i64).contains(&c) => c as u32,
                Some(c) => {
                    self.err(
                        sv.capacity.span,
                        format!("set capacity {c} is outside 1..{}", ir::MAX_SET_CAPACITY),
                    )
                    .hint = Some("a set holds at least one and at most 64 integers".into());
                    1
                }
                None => 1,
            };
            sets.push(ir::SetVar {
                name: sv.name.name.clone(),
                capacity,
            });
        }
        // Transitions.
        let mut transitions: Vec<ir::Transition> = Vec::new();
        // For each lowered transition: index of its source transition and whether it named states.
        let mut source_of: Vec<(usize, bool)> = Vec::new();
        let mut vars_read: HashSet<ir::VarId> = HashSet::new();
        for (ti, t) in p.transitions.iter().enumerate() {
            let Some((members, set_name)) = self.expand(&t.event) else {
                continue;
            };
            let from: Vec<ir::StateId> = match &t.from {
                None => (0..states.len() as u32).collect(),
                Some(list) => {
                    let mut out = Vec::new();
                    for s in list {
                        match states.iter().position(|x| x.name == s.name) {
                            Some(i) => {
                                if !out.contains(&(i as u32)) {
                                    out.push(i as u32)
                                }
                            }
                            None => self.unknown_state(s, &states, implicit),
                        }
                    }
                    out
                }
            };
            let post = t.phase == ast::Phase::After;
            let (verdict_kind, next, reason) = match &t.target {
                None => (TargetKind::Allow, None, None),
                Some(Target::Deny { reason, .. }) => {
                    (TargetKind::Deny, None, Some(reason.value.clone()))
                }
                Some(Target::Audit { reason, .. }) => (
                    TargetKind::Audit,
                    None,
                    reason.as_ref().map(|r| r.value.clone()),
                ),
                Some(Target::Suppress {
                    value,
                    reason,
                    span,
                }) => {
                    if post {
                        self.err(*span, "`suppress` is not allowed in `after` transitions")
                            .hint = Some(
                            "the call has already happened; use `on` to suppress it before it runs"
                                .into(),
                        );
                    }
                    (
                        TargetKind::Suppress(value.as_ref(), *span),
                        None,
                        reason.as_ref().map(|r| r.value.clone()),
                    )
                }
                Some(Target::State { state, audit }) => {
                    let next = match states.iter().position(|x| x.name == state.name) {
                        Some(i) => Some(i as u32),
                        None => {
                            self.unknown_state(state, &states, implicit);
                            None
                        }
                    };
                    let kind = if audit.is_some() {
                        TargetKind::Audit
                    } else {
                        TargetKind::Allow
                    };
                    (kind, next, audit.as_ref().map(|r| r.value.clone()))
                }
            };
            let all_params: Vec<String> = members
                .iter()
                .flat_map(|m| m.event.params.iter().map(|p| p.name.clone()))
                .collect();
            for m in &members {
                let Some(event) = self.use_event(m, t.event.span) else {
                    continue;
                };
                let mut lw = Lowerer::new(self.sources);
                let scope = Scope {
                    event: Some(&m.event),
                    event_name: &m.name,
                    set_name: set_name.as_deref(),
                    set_params: &all_params,
                    post: Some(post),
                    vars: &vars,
                    sets: &sets,
                    consts: &self.consts,
                };
                let access = set_name.as_deref().and_then(crate::access::set);
                let guard = match (access, &t.guard) {
                    (Some(a), g) => {
                        match a.member_guard(&m.event.field, g.as_ref(), t.event.span) {
                            Ok(g) => lw.typed(&g, &scope, Ty::Bool, "a guard"),
                            Err(msg) => {
                                let at = t.guard.as_ref().map_or(t.event.span, |g| g.span);
                                lw_err(&mut lw, at, msg);
                                None
                            }
                        }
                    }
                    (None, None) => Some(Expr::Bool(true)),
                    (None, Some(g)) => lw.typed(g, &scope, Ty::Bool, "a guard"),
                };
                let mut set_updates: Vec<ir::SetUpdate> = Vec::new();
                let mut updates: Vec<ir::Update> = Vec::new();
                let mut updates_ok = true;
                for u in &t.updates {
                    if let Some(si) = sets.iter().position(|x| x.name == u.var.name) {
                        let insert = match u.op {
                            ast::UpdateOp::Add => true,
                            ast::UpdateOp::Sub => false,
                            ast::UpdateOp::Assign => {
                                lw_err(
                                    &mut lw,
                                    u.span,
                                    format!("set `{}` cannot be assigned", u.var.name),
                                )
                                .hint = Some(format!(
                                    "add a member with `{0} += x`, remove one with `{0} -= x`",
                                    u.var.name
                                ));
                                updates_ok = false;
                                continue;
                            }
                        };
                        match lw.typed(&u.value, &scope, Ty::Int, "a set member") {
                            Some(value) => set_updates.push(ir::SetUpdate {
                                set: si as u32,
                                insert,
                                value,
                            }),
                            None => updates_ok = false,
                        }
                        continue;
                    }
                    let Some(vi) = vars.iter().position(|v| v.name == u.var.name) else {
                        let hint = suggest(&u.var.name, vars.iter().map(|v| v.name.as_str()));
                        let d = lw_err(
                            &mut lw,
                            u.var.span,
                            format!("unknown variable `{}`", u.var.name),
                        );
                        d.hint = Some(match hint {
                            Some(h) => format!("did you mean `{h}`?"),
                            None => format!(
                                "declare it in the policy: `var {}: 0..10 = 0;`",
                                u.var.name
                            ),
                        });
                        updates_ok = false;
                        continue;
                    };
                    if updates.iter().any(|x| x.var == vi as u32) {
                        lw_err(
                            &mut lw,
                            u.var.span,
                            format!(
                                "variable `{}` is updated twice in one transition",
                                u.var.name
                            ),
                        )
                        .hint = Some("updates are simultaneous; combine them into one".into());
                        updates_ok = false;
                        continue;
                    }
                    let Some(value) = lw.typed(&u.value, &scope, Ty::Int, "an update value") else {
                        updates_ok = false;
                        continue;
                    };
                    let var = Expr::Var(vi as u32);
                    let value = match u.op {
                        ast::UpdateOp::Assign => value,
                        ast::UpdateOp::Add => fold_binary(ir::BinOp::Add, var, value),
                        ast::UpdateOp::Sub => fold_binary(ir::BinOp::Sub, var, value),
                    };
                    let v = &vars[vi];
                    if let Expr::Int(c) = value {
                        if c < v.min || c > v.max {
                            lw_err(
                                &mut lw,
                                u.value.span,
                                format!(
                                    "value {c} is outside the range {}..{} of `{}`",
                                    v.min, v.max, v.name
                                ),
                            );
                            updates_ok = false;
                            continue;
                        }
                    }
                    updates.push(ir::Update {
                        var: vi as u32,
                        value,
                    });
                }
                let verdict = match verdict_kind {
                    TargetKind::Allow => Some(Verdict::Allow),
                    TargetKind::Audit => Some(Verdict::Audit),
                    TargetKind::Deny => Some(Verdict::Deny),
                    TargetKind::Suppress(value, span) => {
                        suppress_value(&mut lw, &self.consts, &m.event, &m.name, value, span)
                            .map(Verdict::Suppress)
                    }
                };
                vars_read.extend(lw.vars_read.iter().copied());
                self.diags.extend(lw.errors);
                let (Some(guard), Some(verdict), true) = (guard, verdict, updates_ok) else {
                    continue;
                };
                if t.from.is_some() && from.is_empty() {
                    continue;
                }
                transitions.push(ir::Transition {
                    event,
                    phase: if post { Phase::Post } else { Phase::Pre },
                    from: from.clone(),
                    guard,
                    updates,
                    set_updates,
                    verdict,
                    next: if matches!(verdict_kind, TargetKind::Deny) {
                        None
                    } else {
                        next
                    },
                    reason: reason.clone(),
                    origin: self.loc(t.span),
                });
                source_of.push((ti, t.from.is_some()));
            }
        }
        if self.error_count() > errors_before {
            return None;
        }
        let policy = ir::Policy {
            name: p.name.name.clone(),
            states,
            initial: initial as u32,
            vars,
            sets,
            transitions,
            allow_shared_memory_strings: !p.allow_shared.is_empty(),
            allow_undelivered_audits: !p.allow_undelivered.is_empty(),
        };
        self.analyse(
            p,
            &policy,
            &source_of,
            &state_spans,
            &var_spans,
            &vars_read,
            implicit,
        );
        Some(policy)
    }

    fn error_count(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    fn unknown_state(&mut self, s: &ast::Ident, states: &[ir::State], implicit: bool) {
        let hint = suggest(&s.name, states.iter().map(|x| x.name.as_str()));
        let d = self.err(s.span, format!("unknown state `{}`", s.name));
        d.hint = Some(match hint {
            Some(h) => format!("did you mean `{h}`?"),
            None if implicit => format!(
                "declare it in the policy: `state {};` (and mark one state `initial`)",
                s.name
            ),
            None => format!("declare it in the policy: `state {};`", s.name),
        });
    }

    /// Overlapping and dead transitions, unreachable states, unused variables.
    #[allow(clippy::too_many_arguments)]
    fn analyse(
        &mut self,
        p: &ast::PolicyDecl,
        policy: &ir::Policy,
        source_of: &[(usize, bool)],
        state_spans: &[Span],
        var_spans: &[Span],
        vars_read: &HashSet<ir::VarId>,
        implicit: bool,
    ) {
        let ts = &policy.transitions;
        // Lowered transitions grouped by (event, phase), in order.
        let mut groups: HashMap<(ir::EventId, Phase), Vec<usize>> = HashMap::new();
        for (i, t) in ts.iter().enumerate() {
            groups.entry((t.event, t.phase)).or_default().push(i);
        }
        let mut reported: HashSet<usize> = HashSet::new();
        let mut dead: Vec<bool> = vec![false; ts.len()];
        let mut group_keys: Vec<_> = groups.keys().copied().collect();
        group_keys.sort_by_key(|(e, ph)| (*e, *ph == Phase::Post));
        // Comparing guards pair by pair is quadratic; a fingerprint per guard makes the
        // common case (different guards) one integer comparison.
        let hasher = std::collections::hash_map::RandomState::new();
        let fingerprint: Vec<u64> = ts
            .iter()
            .map(|t| std::hash::BuildHasher::hash_one(&hasher, &t.guard))
            .collect();
        for key in group_keys {
            let members = &groups[&key];
            for (jpos, &j) in members.iter().enumerate() {
                let tj = &ts[j];
                if tj.guard == Expr::Bool(false) {
                    dead[j] = true;
                    continue;
                }
                let mut covered: HashSet<ir::StateId> = HashSet::new();
                for &i in &members[..jpos] {
                    let ti = &ts[i];
                    let same_guard = fingerprint[i] == fingerprint[j] && ti.guard == tj.guard;
                    let covers = ti.guard == Expr::Bool(true) || same_guard;
                    if !covers {
                        continue;
                    }
                    let overlap: Vec<ir::StateId> = tj
                        .from
                        .iter()
                        .copied()
                        .filter(|s| ti.from.contains(s))
                        .collect();
                    if overlap.is_empty() {
                        continue;
                    }
                    let (si, explicit_i) = source_of[i];
                    let (sj, explicit_j) = source_of[j];
                    if same_guard && si != sj && explicit_i == explicit_j && !reported.contains(&sj)
                    {
                        reported.insert(sj);
                        let state = &policy.states[overlap[0] as usize].name;
                        let ev = &self.program_events[tj.event as usize].name;
                        let cond = if tj.guard == Expr::Bool(true) {
                            "without a guard".to_string()
                        } else {
                            "with the same guard".to_string()
                        };
                        let first = ti.origin.clone();
                        let d = self.err(p.transitions[sj].span, format!(
                            "nondeterministic transitions: two transitions on `{ev}` from state `{state}` {cond}"
                        ));
                        d.notes.push(format!("the other transition is at {first}"));
                        d.hint = Some(
                            "add a guard that tells them apart, or restrict one with `in STATE`"
                                .into(),
                        );
                    }
                    covered.extend(overlap);
                }
                if tj.from.iter().all(|s| covered.contains(s)) {
                    dead[j] = true;
                }
            }
        }
        // A source transition is dead when all of its lowered transitions are.
        let mut by_source: HashMap<usize, (bool, bool)> = HashMap::new(); // (all dead, any const false)
        for (i, &(s, _)) in source_of.iter().enumerate() {
            let e = by_source.entry(s).or_insert((true, false));
            e.0 &= dead[i];
            e.1 |= ts[i].guard == Expr::Bool(false);
        }
        let mut sources: Vec<_> = by_source.into_iter().collect();
        sources.sort_by_key(|(s, _)| *s);
        for (s, (all_dead, const_false)) in sources {
            if !all_dead || reported.contains(&s) {
                continue;
            }
            let span = p.transitions[s].span;
            if const_false {
                self.warn(
                    span,
                    "this transition never fires: its guard is always false",
                );
            } else {
                self.warn(span, "this transition never fires: earlier transitions match first")
                    .hint = Some("transitions are tried in order and the first whose guard holds fires; move it up or remove it".into());
            }
        }
        // Reachability over the transition graph (guards other than `false` ignored).
        let n = policy.states.len();
        let mut reach = vec![false; n];
        reach[policy.initial as usize] = true;
        let mut work = vec![policy.initial];
        while let Some(s) = work.pop() {
            for t in ts {
                if t.verdict == Verdict::Deny
                    || t.guard == Expr::Bool(false)
                    || !t.from.contains(&s)
                {
                    continue;
                }
                if let Some(nx) = t.next {
                    if !reach[nx as usize] {
                        reach[nx as usize] = true;
                        work.push(nx);
                    }
                }
            }
        }
        if !implicit {
            for (i, r) in reach.iter().enumerate() {
                if !r {
                    let init = &policy.states[policy.initial as usize].name;
                    self.warn(
                        state_spans[i],
                        format!(
                            "state `{}` is unreachable from the initial state `{init}`",
                            policy.states[i].name
                        ),
                    )
                    .hint = Some(format!(
                        "no transition leads to `{}`",
                        policy.states[i].name
                    ));
                }
            }
        }
        for (i, v) in policy.vars.iter().enumerate() {
            if !vars_read.contains(&(i as u32)) {
                self.warn(var_spans[i], format!("variable `{}` is never read", v.name))
                    .hint = Some("use it in a guard, or remove it".into());
            }
        }
    }
}

fn lw_err<'l>(lw: &'l mut Lowerer, span: Span, msg: String) -> &'l mut Diagnostic {
    lw.errors
        .push(Diagnostic::at(Severity::Error, lw.sources, span, msg));
    lw.errors.last_mut().expect("just pushed")
}

#[derive(Clone, Copy)]
enum TargetKind<'e> {
    Allow,
    Audit,
    Deny,
    Suppress(Option<&'e ast::Expr>, Span),
}

/// The value a suppressed call returns, checked against the import's result type.
fn suppress_value(
    lw: &mut Lowerer,
    consts: &HashMap<String, i64>,
    ev: &ir::Event,
    name: &str,
    value: Option<&ast::Expr>,
    span: Span,
) -> Option<Option<i64>> {
    match (ev.results.as_slice(), value) {
        ([], None) => Some(None),
        ([], Some(v)) => {
            lw_err(
                lw,
                v.span,
                format!("`{name}` has no result, so a suppressed call cannot return a value"),
            )
            .hint = Some("write `suppress` without a value".into());
            None
        }
        ([_], None) => {
            lw_err(
                lw,
                span,
                format!("`suppress` needs the value `{name}` returns instead"),
            )
            .hint = Some("e.g. `suppress ERRNO_ACCES \"reason\"`".into());
            None
        }
        ([ty], Some(v)) => {
            let c = lw.const_int(v, &const_scope(consts), "a suppress value")?;
            match ty {
                ValType::I32 => {
                    if !(i32::MIN as i64..=u32::MAX as i64).contains(&c) {
                        lw_err(
                            lw,
                            v.span,
                            format!("suppress value {c} does not fit the i32 result of `{name}`"),
                        );
                        return None;
                    }
                    // Stored as the i32 the caller sees, sign-extended like every i32.
                    Some(Some(c as i32 as i64))
                }
                ValType::I64 => Some(Some(c)),
                _ => {
                    lw_err(
                        lw,
                        span,
                        format!("cannot suppress `{name}`: its result is a float"),
                    );
                    None
                }
            }
        }
        _ => {
            lw_err(
                lw,
                span,
                format!("cannot suppress `{name}`: it has several results"),
            );
            None
        }
    }
}

fn const_scope(consts: &HashMap<String, i64>) -> Scope<'_> {
    Scope {
        event: None,
        event_name: "",
        set_name: None,
        set_params: &[],
        post: None,
        vars: &[],
        sets: &[],
        consts,
    }
}

fn same_signature(a: &ir::Event, b: &ir::Event) -> bool {
    a.params
        .iter()
        .map(|p| p.ty)
        .eq(b.params.iter().map(|p| p.ty))
        && a.results == b.results
}
