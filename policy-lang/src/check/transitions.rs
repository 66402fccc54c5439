//! One policy: its states, its variables and its transitions, lowered to the IR (each
//! transition once per event it names).
use super::expressions::{const_scope, lower_updates, lw_err, suppress_value};
use super::{Checker, Resolved};
use crate::ast::{self, Span};
use crate::diag::suggest;
use crate::ir::{self, Expr, Phase, Verdict};
use crate::lower::{Lowerer, Scope, Ty};
use std::collections::HashSet;

/// A policy's states, as declared (or the one implicit state `start`).
struct States {
    list: Vec<ir::State>,
    spans: Vec<Span>,
    initial: ir::StateId,
    /// The policy declares no states.
    implicit: bool,
}

/// Where a policy's parts come from, for the analyses' messages.
pub(super) struct Origins {
    /// Per lowered transition: the index of its source transition, and whether that one
    /// names its states (`in ...`).
    pub source_of: Vec<(usize, bool)>,
    pub state_spans: Vec<Span>,
    pub var_spans: Vec<Span>,
    /// The variables a guard or an update reads.
    pub vars_read: HashSet<ir::VarId>,
    /// The policy declares no states.
    pub implicit: bool,
}

/// A transition's target before it is lowered per event.
#[derive(Clone, Copy)]
enum TargetKind<'e> {
    Allow,
    Audit,
    Deny,
    Suppress(Option<&'e ast::Expr>, Span),
}

/// One source transition with everything that is the same for each event it names.
struct Resolving<'t> {
    decl: &'t ast::TransitionDecl,
    set_name: Option<String>,
    /// The parameter names of every event it names (for messages about sets).
    set_params: Vec<String>,
    from: Vec<ir::StateId>,
    kind: TargetKind<'t>,
    next: Option<ir::StateId>,
    reason: Option<String>,
}

impl Checker<'_> {
    pub(super) fn policy(&mut self, p: &ast::PolicyDecl) -> Option<ir::Policy> {
        let errors_before = self.error_count();
        let states = self.states(p)?;
        let (vars, var_spans) = self.variables(p);
        let sets = self.set_variables(p, &vars, &var_spans);
        let mut origins = Origins {
            source_of: Vec::new(),
            state_spans: states.spans,
            var_spans,
            vars_read: HashSet::new(),
            implicit: states.implicit,
        };
        let transitions = self.transitions(p, &states.list, &vars, &sets, &mut origins);
        if self.error_count() > errors_before {
            return None;
        }
        let policy = ir::Policy {
            name: p.name.name.clone(),
            states: states.list,
            initial: states.initial,
            vars,
            sets,
            transitions,
            allow_shared_memory_strings: !p.allow_shared.is_empty(),
            allow_undelivered_audits: !p.allow_undelivered.is_empty(),
        };
        self.analyse(p, &policy, &origins);
        Some(policy)
    }

    /// `None` (reported) when the policy has states but none is initial.
    fn states(&mut self, p: &ast::PolicyDecl) -> Option<States> {
        let mut list: Vec<ir::State> = Vec::new();
        let mut spans: Vec<Span> = Vec::new();
        let mut initial: Option<usize> = None;
        for s in &p.states {
            if let Some(i) = list.iter().position(|x| x.name == s.name.name) {
                self.duplicate("state", &s.name, spans[i]);
                continue;
            }
            if let Some(kw) = s.initial {
                if let Some(first) = initial {
                    let label = self.label(
                        spans[first],
                        format!("`{}` is already initial", list[first].name),
                    );
                    let d = self.err(kw.to(s.name.span), "a policy has exactly one initial state");
                    d.labels.push(label);
                    d.hint = Some(format!(
                        "remove `initial` from `{}` or from `{}`",
                        list[first].name, s.name.name
                    ));
                } else {
                    initial = Some(list.len());
                }
            }
            list.push(ir::State {
                name: s.name.name.clone(),
            });
            spans.push(s.name.span);
        }
        let implicit = list.is_empty();
        if implicit {
            list.push(ir::State {
                name: "start".into(),
            });
            spans.push(p.name.span);
            initial = Some(0);
        }
        let Some(initial) = initial else {
            let first = list[0].name.clone();
            self.err(
                p.name.span,
                format!("policy `{}` has no initial state", p.name.name),
            )
            .hint = Some(format!(
                "mark one state `initial`, e.g. `initial state {first};`"
            ));
            return None;
        };
        Some(States {
            list,
            spans,
            initial: initial as ir::StateId,
            implicit,
        })
    }

    /// The variables and where each is declared. A variable whose range or initial value
    /// is wrong is still declared (with any value allowed), so its uses add no "unknown
    /// variable" errors; the error keeps the policy from being produced.
    fn variables(&mut self, p: &ast::PolicyDecl) -> (Vec<ir::Var>, Vec<Span>) {
        let mut vars: Vec<ir::Var> = Vec::new();
        let mut spans: Vec<Span> = Vec::new();
        for v in &p.vars {
            if let Some(i) = vars.iter().position(|x| x.name == v.name.name) {
                self.duplicate("variable", &v.name, spans[i]);
                continue;
            }
            let mut lw = Lowerer::new(self.sources);
            let scope = const_scope(&self.consts);
            let min = lw.const_int(&v.min, &scope, "a range bound");
            let max = lw.const_int(&v.max, &scope, "a range bound");
            let init = lw.const_int(&v.init, &scope, "an initial value");
            self.diags.extend(lw.errors);
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
            spans.push(v.name.span);
        }
        (vars, spans)
    }

    /// The set variables (`var s: set[N];`), whose names share the variables' namespace.
    fn set_variables(
        &mut self,
        p: &ast::PolicyDecl,
        vars: &[ir::Var],
        var_spans: &[Span],
    ) -> Vec<ir::SetVar> {
        let mut sets: Vec<ir::SetVar> = Vec::new();
        let mut spans: Vec<Span> = Vec::new();
        for sv in &p.set_vars {
            if let Some(i) = vars.iter().position(|x| x.name == sv.name.name) {
                self.duplicate("variable", &sv.name, var_spans[i]);
                continue;
            }
            if let Some(i) = sets.iter().position(|x| x.name == sv.name.name) {
                self.duplicate("variable", &sv.name, spans[i]);
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
                    .hint = Some(format!(
                        "a set holds at least one and at most {} integers",
                        ir::MAX_SET_CAPACITY
                    ));
                    1
                }
                None => 1,
            };
            sets.push(ir::SetVar {
                name: sv.name.name.clone(),
                capacity,
            });
            spans.push(sv.name.span);
        }
        sets
    }

    fn transitions(
        &mut self,
        p: &ast::PolicyDecl,
        states: &[ir::State],
        vars: &[ir::Var],
        sets: &[ir::SetVar],
        origins: &mut Origins,
    ) -> Vec<ir::Transition> {
        let mut out = Vec::new();
        for (ti, t) in p.transitions.iter().enumerate() {
            let Some((members, set_name)) = self.expand(&t.event) else {
                continue;
            };
            let from = self.source_states(t, states, origins.implicit);
            let (kind, next, reason) = self.target(t, states, origins.implicit);
            let r = Resolving {
                decl: t,
                set_name,
                set_params: members
                    .iter()
                    .flat_map(|m| m.event.params.iter().map(|p| p.name.clone()))
                    .collect(),
                from,
                kind,
                next,
                reason,
            };
            for m in &members {
                if let Some(lowered) = self.lower(&r, m, vars, sets, &mut origins.vars_read) {
                    out.push(lowered);
                    origins.source_of.push((ti, t.from.is_some()));
                }
            }
        }
        out
    }

    /// The states `in ...` names (each once), or every state.
    fn source_states(
        &mut self,
        t: &ast::TransitionDecl,
        states: &[ir::State],
        implicit: bool,
    ) -> Vec<ir::StateId> {
        let Some(list) = &t.from else {
            return (0..states.len() as ir::StateId).collect();
        };
        let mut out = Vec::new();
        for s in list {
            match states.iter().position(|x| x.name == s.name) {
                Some(i) => {
                    if !out.contains(&(i as ir::StateId)) {
                        out.push(i as ir::StateId)
                    }
                }
                None => self.unknown_state(s, states, implicit),
            }
        }
        out
    }

    /// What the transition does, the state it moves to, and its reason.
    fn target<'t>(
        &mut self,
        t: &'t ast::TransitionDecl,
        states: &[ir::State],
        implicit: bool,
    ) -> (TargetKind<'t>, Option<ir::StateId>, Option<String>) {
        let text = |r: &ast::StrLit| r.value.clone();
        match &t.target {
            None => (TargetKind::Allow, None, None),
            Some(ast::Target::Deny { reason, .. }) => (TargetKind::Deny, None, Some(text(reason))),
            Some(ast::Target::Audit { reason, .. }) => {
                (TargetKind::Audit, None, reason.as_ref().map(text))
            }
            Some(ast::Target::Suppress {
                value,
                reason,
                span,
            }) => {
                if t.phase == ast::Phase::After {
                    self.err(*span, "`suppress` is not allowed in `after` transitions")
                        .hint = Some(
                        "the call has already happened; use `on` to suppress it before it runs"
                            .into(),
                    );
                }
                (
                    TargetKind::Suppress(value.as_ref(), *span),
                    None,
                    reason.as_ref().map(text),
                )
            }
            Some(ast::Target::State { state, audit }) => {
                let next = match states.iter().position(|x| x.name == state.name) {
                    Some(i) => Some(i as ir::StateId),
                    None => {
                        self.unknown_state(state, states, implicit);
                        None
                    }
                };
                let kind = if audit.is_some() {
                    TargetKind::Audit
                } else {
                    TargetKind::Allow
                };
                (kind, next, audit.as_ref().map(text))
            }
        }
    }

    /// The transition `r` for event `m`: its guard, updates and verdict lowered; `None`
    /// when something is wrong (reported) or it names no state that exists.
    fn lower(
        &mut self,
        r: &Resolving,
        m: &Resolved,
        vars: &[ir::Var],
        sets: &[ir::SetVar],
        vars_read: &mut HashSet<ir::VarId>,
    ) -> Option<ir::Transition> {
        let t = r.decl;
        let event = self.use_event(m, t.event.span)?;
        let post = t.phase == ast::Phase::After;
        let mut lw = Lowerer::new(self.sources);
        let scope = Scope {
            event: Some(&m.event),
            event_name: &m.name,
            set_name: r.set_name.as_deref(),
            set_params: &r.set_params,
            post: Some(post),
            vars,
            sets,
            consts: &self.consts,
        };
        let access = r.set_name.as_deref().and_then(crate::access::set);
        let guard = match (access, &t.guard) {
            (Some(a), g) => match a.member_guard(&m.event.field, g.as_ref(), t.event.span) {
                Ok(g) => lw.typed(&g, &scope, Ty::Bool, "a guard"),
                Err(msg) => {
                    let at = t.guard.as_ref().map_or(t.event.span, |g| g.span);
                    lw_err(&mut lw, at, msg);
                    None
                }
            },
            (None, None) => Some(Expr::Bool(true)),
            (None, Some(g)) => lw.typed(g, &scope, Ty::Bool, "a guard"),
        };
        let updates = lower_updates(&mut lw, &scope, &t.updates, vars, sets);
        let verdict = match r.kind {
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
        let (guard, (updates, set_updates), verdict) = (guard?, updates?, verdict?);
        if t.from.is_some() && r.from.is_empty() {
            return None;
        }
        Some(ir::Transition {
            event,
            phase: if post { Phase::Post } else { Phase::Pre },
            from: r.from.clone(),
            guard,
            updates,
            set_updates,
            verdict,
            next: if matches!(r.kind, TargetKind::Deny) {
                None
            } else {
                r.next
            },
            reason: r.reason.clone(),
            origin: self.loc(t.span),
        })
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
}
