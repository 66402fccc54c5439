//! Writing a [`TraceFile`] as `.traces` text, the inverse of [`super::parse`]:
//! `parse_traces(write(program, file))` is `file` again, line numbers aside, for every
//! file the parser could have produced (events, parameters and policies of `program`,
//! unique names, deny steps within their trace).
//!
//! The text is canonical: every argument of every call is written (a recorded run shows
//! all the policies saw), integers in decimal, strings with printable ASCII as is and
//! every other byte escaped, one step per line, each trace's preopens inside it, and
//! every descriptor the host handed out (`opens`). Floats are written as integers, as the
//! format has only integer constants.
use std::fmt::Write as _;

use super::{Expect, ExpectKind, Expectation, Step, Trace, TraceFile};
use crate::descriptors::{FILETYPE_DIRECTORY, FILETYPE_SOCKET_DGRAM, FILETYPE_SOCKET_STREAM};
use crate::interp::Value;
use crate::ir::{ParamType, Program};

/// The text of `file`, its calls named after the events of `program`.
pub fn write(program: &Program, file: &TraceFile) -> String {
    let mut out = String::new();
    for w in &file.with {
        let _ = writeln!(out, "with {};", quoted(w.as_bytes()));
    }
    for t in &file.traces {
        trace(&mut out, program, t);
    }
    out
}

fn trace(out: &mut String, program: &Program, t: &Trace) {
    let name = quoted(t.name.as_bytes());
    let _ = match &t.expect {
        Expect::Accept => writeln!(out, "accept {name} {{"),
        Expect::Reject {
            step,
            policy,
            reason,
        } => writeln!(
            out,
            "reject {name} at {step} by {policy}{} {{",
            reason.as_deref().map(reason_text).unwrap_or_default()
        ),
    };
    for dir in &t.world.preopens {
        let _ = writeln!(out, "  preopen {};", quoted(dir));
    }
    for s in &t.steps {
        step(out, program, s);
    }
    out.push_str("}\n");
}

fn step(out: &mut String, program: &Program, s: &Step) {
    let Some(e) = program.events.get(s.call.event as usize) else {
        // Cannot be written as a call; the comment keeps the gap visible.
        let _ = writeln!(
            out,
            "  // event #{} is not an event of the program",
            s.call.event
        );
        return;
    };
    let args: Vec<String> = e
        .params
        .iter()
        .zip(&s.call.args)
        .map(|(p, v)| {
            let value = match (p.ty, v) {
                (ParamType::Str, Value::Str(Some(b))) => quoted(b),
                (ParamType::Str, _) => "oob".to_string(),
                (_, Value::Int(i)) => int(*i),
                (_, Value::BadPointer(_)) => "oob".to_string(),
                (_, Value::Float(f)) => int(*f as i64),
                (_, Value::Str(_)) => "0".to_string(),
            };
            format!("{}={value}", p.name)
        })
        .collect();
    let _ = write!(out, "  {}({})", e.name, args.join(", "));
    if s.call.trapped {
        out.push_str(" -> trap");
    } else if let (Some(r), false) = (s.call.result, e.results.is_empty()) {
        let _ = write!(out, " -> {}", int(r));
    }
    if let Some(o) = s.call.opened {
        let kind = match o.filetype {
            FILETYPE_DIRECTORY => "dir ",
            FILETYPE_SOCKET_DGRAM | FILETYPE_SOCKET_STREAM => "socket ",
            _ => "",
        };
        let _ = write!(out, " opens {kind}{}", o.fd);
    }
    if !s.expect.is_empty() {
        let reports: Vec<String> = s.expect.iter().map(expectation).collect();
        let _ = write!(out, " => {}", reports.join(", "));
    }
    out.push('\n');
}

fn expectation(e: &Expectation) -> String {
    let mut s = match e.kind {
        ExpectKind::Audit => "audit".to_string(),
        ExpectKind::Suppress(None) => "suppress".to_string(),
        ExpectKind::Suppress(Some(v)) => format!("suppress {}", int(v)),
    };
    if let Some(r) = &e.reason {
        s += &reason_text(r);
    }
    if let Some(p) = &e.policy {
        let _ = write!(s, " by {p}");
    }
    s
}

fn reason_text(r: &str) -> String {
    format!(" {}", quoted(r.as_bytes()))
}

/// `i64::MIN` has no literal: its magnitude does not fit.
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
