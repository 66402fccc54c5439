//! Global declarations (`event`, `const`, `set`) and the events transitions name.
use super::{Checker, Decl, Resolved};
use crate::ast::{self, EventBody, Item, Span};
use crate::diag::suggest;
use crate::display::signature;
use crate::ir::{self, ParamType, ValType};
use crate::lower::Lowerer;
use crate::wasi;
use crate::wit;

/// The catalogue's event for import `module.field` (`module` canonical): WASI preview 1
/// or 0.2.
fn catalogue_function(module: &str, field: &str) -> Option<ir::Event> {
    if module == wasi::MODULE {
        return wasi::function(field);
    }
    wit::function(module, field).map(|f| f.event)
}

impl Checker<'_> {
    /// The span of an existing global declaration named `name`, if any.
    fn global(&self, name: &str) -> Option<Span> {
        if let Some(d) = self.events.get(name) {
            return Some(match d {
                Decl::Import(_, s) | Decl::Alias(_, s) => *s,
            });
        }
        self.sets.get(name).map(|(_, s)| *s)
    }

    pub(super) fn declare(&mut self, item: &Item) {
        match item {
            Item::Include(_) | Item::Policy(_) => {}
            Item::Event(e) => self.declare_event(e),
            Item::Const(k) => self.declare_const(k),
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

    fn declare_event(&mut self, e: &ast::EventDecl) {
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
                let ev = match params {
                    Some(params) => {
                        self.import_sig(&e.name.name, module, field, params, result.as_ref())
                    }
                    None => self.catalogue_import(&e.name.name, module, field),
                };
                let Some(ev) = ev.filter(|ev| self.agrees_with_other_declarations(e, ev)) else {
                    self.poisoned.insert(e.name.name.clone());
                    return;
                };
                Decl::Import(ev, e.name.span)
            }
        };
        self.events.insert(e.name.name.clone(), decl);
        self.event_order.push(e.name.name.clone());
    }

    /// Whether `ev`, declared by `e`, has the signature of every earlier declaration of
    /// the same import and of the WASI catalogue; reports the first that differs.
    fn agrees_with_other_declarations(&mut self, e: &ast::EventDecl, ev: &ir::Event) -> bool {
        let key = (ev.module.clone(), ev.field.clone());
        let conflict = format!("conflicting declarations of import `{}.{}`", key.0, key.1);
        for other in self.event_order.clone() {
            if let Some(Decl::Import(o, ospan)) = self.events.get(&other) {
                if (o.module.clone(), o.field.clone()) == key && !same_signature(o, ev) {
                    let first =
                        self.label(*ospan, format!("`{other}` declares it as {}", signature(o)));
                    let d = self.err(e.span, conflict);
                    d.labels.push(first);
                    d.hint =
                        Some("one import has one signature; make the declarations agree".into());
                    return false;
                }
            }
        }
        if let Some(cat) = catalogue_function(&key.0, &key.1) {
            if !same_signature(&cat, ev) {
                let d = self.err(e.span, conflict);
                d.notes.push(format!(
                    "the WASI catalogue declares it as {}",
                    signature(&cat)
                ));
                d.hint = Some(format!(
                    "use the catalogue's `{}` directly, or alias it: `event {} = {};`",
                    key.1, e.name.name, key.1
                ));
                return false;
            }
        }
        true
    }

    fn declare_const(&mut self, k: &ast::ConstDecl) {
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
        let scope = super::expressions::const_scope(&self.consts);
        let v = lw.const_int(&k.value, &scope, "a constant's value");
        self.diags.extend(lw.errors);
        // After an error a placeholder keeps uses of the constant from adding more.
        self.consts.insert(k.name.name.clone(), v.unwrap_or(0));
        self.const_spans.insert(k.name.name.clone(), k.name.span);
    }

    /// `event name = module.field;`: the catalogue's signature of `module.field`.
    fn catalogue_import(
        &mut self,
        name: &str,
        module: &ast::StrLit,
        field: &ast::StrLit,
    ) -> Option<ir::Event> {
        let canonical = self.import_module(module)?;
        if let Some((iface, None)) = wit::split_interface(&module.value) {
            if wit::functions_of(iface).next().is_some() {
                let d = self.err(
                    module.span,
                    format!("WASI interface `{iface}` is named without a version"),
                );
                d.hint = Some(format!(
                    "components import WASI interfaces with a version: write `\"{iface}@0.2.x\"` (every 0.2 release)"
                ));
                return None;
            }
        }
        if let Some(mut ev) = catalogue_function(&canonical, &field.value) {
            ev.name = name.to_string();
            return Some(ev);
        }
        let span = Span {
            start: module.span.start,
            ..field.span
        };
        let (msg, hint) = if let Some((iface, _)) = wit::split_interface(&module.value) {
            let known: Vec<&str> = wit::functions_of(iface).map(|f| f.name.as_str()).collect();
            if known.is_empty() {
                (
                    format!(
                        "`{iface}` is not a WASI {} interface, so the signature of `{}` must be declared",
                        wit::VERSION, field.value
                    ),
                    format!(
                        "write its parameters and result: `event {name} = \"{}\".\"{}\"(a: i32) -> i32;`",
                        module.value, field.value
                    ),
                )
            } else {
                (
                    format!("`{iface}` has no function `{}`", field.value),
                    match suggest(&field.value, known.iter().copied()) {
                        Some(s) => format!("did you mean `\"{s}\"`?"),
                        None => format!("its functions: {}", known.join(", ")),
                    },
                )
            }
        } else if module.value == wasi::PREVIEW0_MODULE {
            (
                format!(
                    "the preview 0 spelling `{}.{}` is not an event name of its own",
                    module.value, field.value
                ),
                format!(
                    "name the preview 1 function, which also covers its `{}` imports: `event {name} = {};`",
                    module.value, field.value
                ),
            )
        } else if wasi::is_wasi_module(&module.value) {
            (
                format!("`{}` is not a WASI preview 1 function", field.value),
                match suggest(&field.value, wasi::function_names()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "see `irm compile --help` for the catalogue".into(),
                },
            )
        } else {
            (
                format!(
                    "`{}.{}` is not a catalogue function, so its signature must be declared",
                    module.value, field.value
                ),
                format!(
                    "write its parameters and result: `event {name} = {}.{}(a: i32) -> i32;`",
                    module.value, field.value
                ),
            )
        };
        self.err(span, msg).hint = Some(hint);
        None
    }

    /// The canonical spelling of an import module a policy writes ([`wit::canonical_module`]);
    /// an error for a WIT interface whose version is no version.
    fn import_module(&mut self, module: &ast::StrLit) -> Option<String> {
        if let Some((_, Some(v))) = wit::split_interface(&module.value) {
            if wit::canonical_version(v).is_none() {
                let d = self.err(
                    module.span,
                    format!("`{v}` is not a version of interface `{}`", module.value),
                );
                d.hint = Some(
                    "write a semantic version or its compatibility class, e.g. `@0.2.x` (every 0.2 release)"
                        .into(),
                );
                return None;
            }
        }
        Some(wit::canonical_module(&module.value))
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
        for (i, p) in params.iter().enumerate() {
            if let Some(first) = params[..i].iter().find(|q| q.name.name == p.name.name) {
                self.duplicate("parameter", &p.name, first.name.span);
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
        let module = self.import_module(module);
        (ok && module.is_some()).then(|| ir::Event {
            name: name.to_string(),
            module: module.unwrap_or_default(),
            field: field.value.clone(),
            params: out,
            results,
        })
    }

    /// Reports every alias that does not lead to an import: cycles once, at their first
    /// alias; dangling aliases at their unknown target.
    pub(super) fn check_aliases(&mut self) {
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
            } else {
                self.unknown_event(&target);
            }
            self.poisoned.extend(chain);
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
    /// one, or a built-in access set) in order, and the set's name.
    pub(super) fn expand(&mut self, id: &ast::Ident) -> Option<(Vec<Resolved>, Option<String>)> {
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
    pub(super) fn use_event(&mut self, r: &Resolved, at: Span) -> Option<ir::EventId> {
        if let Some(&id) = self.by_key.get(&r.key) {
            let existing = &self.program_events[id as usize];
            if !same_signature(existing, &r.event) {
                let first = match self.program_event_decl[id as usize] {
                    Some(s) => Ok(self.label(
                        s,
                        format!("`{}` declares it as {}", existing.name, signature(existing)),
                    )),
                    None => Err(format!(
                        "the WASI catalogue declares it as {}",
                        signature(existing)
                    )),
                };
                let d = self.err(
                    at,
                    format!(
                        "conflicting declarations of import `{}.{}`",
                        r.key.0, r.key.1
                    ),
                );
                match first {
                    Ok(label) => d.labels.push(label),
                    Err(note) => d.notes.push(note),
                }
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
}

fn same_signature(a: &ir::Event, b: &ir::Event) -> bool {
    a.params
        .iter()
        .map(|p| p.ty)
        .eq(b.params.iter().map(|p| p.ty))
        && a.results == b.results
}
