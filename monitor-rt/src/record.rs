//! Recording a run as a trace in the format of `irm test` (`policy_lang::trace`), so a
//! real run becomes a trace test.
use std::fmt::Write as _;

use policy_lang::interp::Value;
use policy_lang::ir::{EventId, ParamType, Program};

/// What one recorded call reported.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StepNote {
    Audit {
        policy: usize,
        reason: String,
    },
    Suppress {
        policy: usize,
        reason: String,
        value: Option<i64>,
    },
}

/// One monitored call of a run.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RecordedStep {
    pub event: EventId,
    pub args: Vec<Value>,
    pub result: Option<i64>,
    pub notes: Vec<StepNote>,
}

/// How the recorded run ended, as far as the trace can say.
pub(crate) struct Ending<'a> {
    /// 1-based step and policy of the deny, with its reason.
    pub deny: Option<(usize, &'a str, &'a str)>,
}

fn int(v: i64) -> String {
    if v == i64::MIN {
        "(-9223372036854775807 - 1)".to_string()
    } else {
        v.to_string()
    }
}

fn quoted(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    s
}

/// The trace text: a comment naming the run, `with` lines for every policy file after
/// the first, and one `accept` or `reject` trace holding every monitored call.
pub(crate) fn render(
    program: &Program,
    steps: &[RecordedStep],
    ending: &Ending<'_>,
    title: &str,
    with: &[String],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// recorded by `irm run`: {}",
        title.replace('\n', " ")
    );
    for w in with {
        let _ = writeln!(out, "with {};", quoted(w.as_bytes()));
    }
    let name = quoted(format!("recorded run of {title}").as_bytes());
    match ending.deny {
        None => {
            let _ = writeln!(out, "accept {name} {{");
        }
        Some((step, policy, reason)) => {
            let _ = writeln!(
                out,
                "reject {name} at {step} by {policy} {} {{",
                quoted(reason.as_bytes())
            );
        }
    }
    for s in steps {
        let Some(e) = program.events.get(s.event as usize) else {
            continue;
        };
        let args: Vec<String> = e
            .params
            .iter()
            .zip(&s.args)
            .map(|(p, v)| {
                let value = match (p.ty, v) {
                    (ParamType::Str, Value::Str(Some(b))) => quoted(b),
                    (ParamType::Str, _) => "oob".to_string(),
                    (_, Value::Int(i)) => int(*i),
                    (_, Value::Float(f)) => int(*f as i64),
                    (_, Value::Str(_)) => "0".to_string(),
                };
                format!("{}={value}", p.name)
            })
            .collect();
        let _ = write!(out, "  {}({})", e.name, args.join(", "));
        if let (Some(r), false) = (s.result, e.results.is_empty()) {
            let _ = write!(out, " -> {}", int(r));
        }
        let notes: Vec<String> = s
            .notes
            .iter()
            .map(|n| match n {
                StepNote::Audit { policy, reason } => {
                    format!(
                        "audit {} by {}",
                        quoted(reason.as_bytes()),
                        program.policies[*policy].name
                    )
                }
                StepNote::Suppress {
                    policy,
                    reason,
                    value,
                } => {
                    let v = value.map(|v| format!("{} ", int(v))).unwrap_or_default();
                    format!(
                        "suppress {v}{} by {}",
                        quoted(reason.as_bytes()),
                        program.policies[*policy].name
                    )
                }
            })
            .collect();
        if !notes.is_empty() {
            let _ = write!(out, " => {}", notes.join(", "));
        }
        out.push('\n');
    }
    out.push_str("}\n");
    out
}
