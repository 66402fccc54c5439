//! Graphviz rendering of one policy: states are ellipses (the initial one doubled and
//! pointed at by an arrow), transitions are edges labelled `on event [guard] / updates`.
//! A deny leads to a red octagon, a suppression to an orange box; audits are blue dashed
//! edges. One edge per (source state, transition).
use crate::display::{quote, update_to_string};
use crate::ir::{Expr, Phase, Program, Verdict};
use std::fmt::Write;

/// Escapes a label for a double-quoted DOT string.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The DOT text of `program.policies[policy]`.
///
/// # Panics
/// If `policy` is not an index of `program.policies`.
pub fn to_dot(program: &Program, policy: usize) -> String {
    let p = &program.policies[policy];
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", esc(&p.name));
    out.push_str("  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  __start [shape=point, label=\"\"];\n");
    for (i, s) in p.states.iter().enumerate() {
        let shape = if i as u32 == p.initial {
            "doublecircle"
        } else {
            "circle"
        };
        let _ = writeln!(out, "  s{i} [shape={shape}, label=\"{}\"];", esc(&s.name));
    }
    let _ = writeln!(out, "  __start -> s{};", p.initial);
    for (ti, t) in p.transitions.iter().enumerate() {
        let event = program.events.get(t.event as usize);
        let mut label = String::new();
        label.push_str(if t.phase == Phase::Pre {
            "on "
        } else {
            "after "
        });
        label.push_str(event.map_or("?", |e| e.name.as_str()));
        if t.guard != Expr::Bool(true) {
            let _ = write!(label, " [{}]", t.guard.display(event, &p.vars));
        }
        if !t.updates.is_empty() {
            let ups: Vec<String> = t
                .updates
                .iter()
                .map(|u| update_to_string(u, event, &p.vars))
                .collect();
            let _ = write!(label, " / {}", ups.join(", "));
        }
        let reason = t.reason.as_deref().map(quote).unwrap_or_default();
        let sink = match &t.verdict {
            Verdict::Deny => Some(format!(
                "  t{ti} [shape=octagon, style=filled, fillcolor=\"#f4cccc\", color=red, label=\"deny\\n{}\"];",
                esc(&reason)
            )),
            Verdict::Suppress(v) => Some(format!(
                "  t{ti} [shape=box, style=filled, fillcolor=\"#fce5cd\", color=orange, label=\"suppress{}\\n{}\"];",
                v.map(|v| format!(" {v}")).unwrap_or_default(),
                esc(&reason)
            )),
            _ => None,
        };
        if let Some(sink) = sink {
            out.push_str(&sink);
            out.push('\n');
            for s in &t.from {
                let _ = writeln!(
                    out,
                    "  s{s} -> t{ti} [label=\"{}\", color=red];",
                    esc(&label)
                );
            }
            continue;
        }
        let style = if t.verdict == Verdict::Audit {
            let _ = write!(label, "\naudit {reason}");
            ", style=dashed, color=blue"
        } else {
            ""
        };
        for s in &t.from {
            let to = t.next.unwrap_or(*s);
            let _ = writeln!(
                out,
                "  s{s} -> s{to} [label=\"{}\"{style}];",
                esc(label.trim_end())
            );
        }
    }
    out.push_str("}\n");
    out
}
