//! What a policy's lowered transitions show: two transitions that fire on the same call
//! (an error), transitions that never fire, states never reached, variables never read
//! and limits a re-entrant host can exceed (warnings).
use super::transitions::Origins;
use super::Checker;
use crate::ast;
use crate::ir::{self, Expr, Phase, Verdict};
use std::collections::{HashMap, HashSet};

impl Checker<'_> {
    pub(super) fn analyse(&mut self, p: &ast::PolicyDecl, policy: &ir::Policy, o: &Origins) {
        let (dead, reported) = self.overlaps(p, policy, o);
        self.dead_transitions(p, policy, o, &dead, &reported);
        if !o.implicit {
            self.unreachable_states(policy, o);
        }
        self.limits_counted_after(policy, o);
        for (i, v) in policy.vars.iter().enumerate() {
            if !o.vars_read.contains(&(i as ir::VarId)) {
                self.warn(
                    o.var_spans[i],
                    format!("variable `{}` is never read", v.name),
                )
                .hint = Some("use it in a guard, or remove it".into());
            }
        }
    }

    /// Warns about a variable that a pre-phase guard tests but only post-phase
    /// transitions change: between the guard and the post phase the import runs, and a
    /// host that calls back into the module during it passes the same guard again before
    /// the first call is counted.
    fn limits_counted_after(&mut self, policy: &ir::Policy, o: &Origins) {
        for (vi, v) in policy.vars.iter().enumerate() {
            let var = vi as ir::VarId;
            let reads = |e: &Expr| {
                let mut found = false;
                e.visit(&mut |x| found |= matches!(x, Expr::Var(w) if *w == var));
                found
            };
            let tested_before = policy
                .transitions
                .iter()
                .any(|t| t.phase == Phase::Pre && reads(&t.guard));
            let updated = |phase: Phase| {
                policy
                    .transitions
                    .iter()
                    .filter(|t| t.phase == phase)
                    .find(|t| t.updates.iter().any(|u| u.var == var))
            };
            let (Some(after), None) = (updated(Phase::Post), updated(Phase::Pre)) else {
                continue;
            };
            if !tested_before {
                continue;
            }
            let event = self.program_events[after.event as usize].name.clone();
            let origin = after.origin.clone();
            self.warn(
                o.var_spans[vi],
                format!(
                    "`{}` is tested before calls (`on`) but counted only after them (`after` at {origin}): a host that calls back into the module during `{event}` can pass the limit",
                    v.name
                ),
            )
            .hint = Some(format!(
                "count it when the call starts and give it back if the call fails: `on {event} do {0} += 1;` and `after {event} when result < 0 do {0} -= 1;`",
                v.name
            ));
        }
    }

    /// Reports source transitions that another one with the same guard shadows in some
    /// state (nondeterminism, at most once per source transition). Returns which lowered
    /// transitions never fire (earlier ones cover every state they leave from, or their
    /// guard is `false`) and the source transitions reported.
    fn overlaps(
        &mut self,
        p: &ast::PolicyDecl,
        policy: &ir::Policy,
        o: &Origins,
    ) -> (Vec<bool>, HashSet<usize>) {
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
                    let (si, explicit_i) = o.source_of[i];
                    let (sj, explicit_j) = o.source_of[j];
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
                        let other = self.label(p.transitions[si].span, "the other transition");
                        let d = self.err(p.transitions[sj].span, format!(
                            "nondeterministic transitions: two transitions on `{ev}` from state `{state}` {cond}"
                        ));
                        d.labels.push(other);
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
        (dead, reported)
    }

    /// Warns about each source transition all of whose lowered transitions are `dead`
    /// (unless it is already reported as nondeterministic).
    fn dead_transitions(
        &mut self,
        p: &ast::PolicyDecl,
        policy: &ir::Policy,
        o: &Origins,
        dead: &[bool],
        reported: &HashSet<usize>,
    ) {
        // Per source transition: (all of its lowered transitions dead, any guard `false`).
        let mut by_source: HashMap<usize, (bool, bool)> = HashMap::new();
        for (i, &(s, _)) in o.source_of.iter().enumerate() {
            let e = by_source.entry(s).or_insert((true, false));
            e.0 &= dead[i];
            e.1 |= policy.transitions[i].guard == Expr::Bool(false);
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
    }

    /// Warns about states no transition leads to from the initial state (guards other
    /// than `false` are assumed to hold).
    fn unreachable_states(&mut self, policy: &ir::Policy, o: &Origins) {
        let mut reach = vec![false; policy.states.len()];
        reach[policy.initial as usize] = true;
        let mut work = vec![policy.initial];
        while let Some(s) = work.pop() {
            for t in &policy.transitions {
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
        for (i, r) in reach.iter().enumerate() {
            if !r {
                let init = &policy.states[policy.initial as usize].name;
                self.warn(
                    o.state_spans[i],
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
}
