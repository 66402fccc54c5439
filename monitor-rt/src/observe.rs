//! What the runtime sees of the monitored calls: the recent-events window, audit records,
//! the violation, and the recorded trace. Both enforcement modes feed the same
//! [`Observer`], so they produce the same reports.
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use policy_lang::interp::{self, Value};
use policy_lang::ir::{EventId, ParamType, Phase, Program, RuntimeFault, ValType};
use serde::Serialize;

use crate::record::{RecordedStep, StepNote};

/// How many of the last monitored calls a violation report shows.
pub const RECENT: usize = 8;

/// Strings longer than this are cut in messages (not in audit logs or recorded traces).
const SHOWN_STRING: usize = 160;

/// One argument of a monitored call, as reports show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ArgValue {
    Int(i64),
    Float(f64),
    /// A string argument read from memory 0 (lossy UTF-8 in JSON).
    #[serde(serialize_with = "ser_bytes")]
    Str(Vec<u8>),
    /// A string argument whose pointer and length lie outside memory 0.
    #[serde(serialize_with = "ser_oob")]
    OutOfBounds,
    /// An out-pointer outside memory or misaligned (its value, in JSON).
    BadPointer(i64),
}

fn ser_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

fn ser_oob<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_none()
}

impl ArgValue {
    pub(crate) fn from_value(v: &Value) -> ArgValue {
        match v {
            Value::Int(i) => ArgValue::Int(*i),
            Value::Float(f) => ArgValue::Float(*f),
            Value::Str(Some(b)) => ArgValue::Str(b.clone()),
            Value::Str(None) => ArgValue::OutOfBounds,
            Value::BadPointer(p) => ArgValue::BadPointer(*p),
        }
    }
}

impl fmt::Display for ArgValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgValue::Int(i) => write!(f, "{i}"),
            ArgValue::Float(x) => write!(f, "{x}"),
            ArgValue::OutOfBounds => write!(f, "<string outside memory>"),
            ArgValue::BadPointer(p) => write!(f, "{p} (outside memory or misaligned)"),
            ArgValue::Str(b) => {
                let text = String::from_utf8_lossy(&b[..b.len().min(SHOWN_STRING)]);
                write!(f, "\"{}\"", text.escape_debug())?;
                if b.len() > SHOWN_STRING {
                    write!(f, "... ({} bytes)", b.len())?;
                }
                Ok(())
            }
        }
    }
}

/// A named argument.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Arg {
    pub name: String,
    pub value: ArgValue,
}

/// One monitored call, as the runtime saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallRecord {
    /// 1-based number of the monitored call in the run.
    pub call: usize,
    /// The event's policy name, e.g. `sock_send`.
    pub event: String,
    /// `module.field`.
    pub import: String,
    pub args: Vec<Arg>,
    /// The import's first result, once it returned.
    pub result: Option<i64>,
    /// Set when the monitor suppressed the call: the value returned instead.
    pub suppressed: Option<Option<i64>>,
}

impl fmt::Display for CallRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.event)?;
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}={}", a.name, a.value)?;
        }
        write!(f, ")")?;
        match (&self.suppressed, self.result) {
            (Some(Some(v)), _) => write!(f, " suppressed, returned {v}"),
            (Some(None), _) => write!(f, " suppressed"),
            (None, Some(r)) => write!(f, " -> {r}"),
            (None, None) => Ok(()),
        }
    }
}

/// An audit decision: a call a policy asked to be reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    pub policy: String,
    /// The event's policy name.
    pub event: String,
    pub import: String,
    /// `pre` (before the call) or `post` (after it returned).
    pub phase: Phase,
    pub args: Vec<Arg>,
    /// The import's result, for post-phase audits.
    pub result: Option<i64>,
    pub reason: String,
    /// 1-based number of the monitored call in the run.
    pub call: usize,
}

impl fmt::Display for AuditRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let call = CallRecord {
            call: self.call,
            event: self.event.clone(),
            import: self.import.clone(),
            args: self.args.clone(),
            result: self.result,
            suppressed: None,
        };
        write!(f, "policy {}: {call}: {}", self.policy, self.reason)
    }
}

/// Everything known about the call that violated a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct ViolationReport {
    /// The denying policy's name.
    pub policy: String,
    /// The event's policy name, e.g. `sock_send`.
    pub event: String,
    /// `module.field` of the import.
    pub import: String,
    /// The call's arguments; empty when the module ran without host hooks (a module
    /// woven beforehand reports only what its manifest says).
    pub args: Vec<Arg>,
    /// The import's result, for a post-phase deny.
    pub result: Option<i64>,
    pub reason: String,
    pub phase: Phase,
    /// Set when the deny came from an evaluation error (string outside memory, ...).
    pub fault: Option<RuntimeFault>,
    /// Source location of the transition, when known.
    pub origin: Option<String>,
    /// The last monitored calls, oldest first, ending with the violating one.
    pub recent: Vec<CallRecord>,
    /// The Wasm backtrace at the violation, when wasmtime captured one.
    pub backtrace: Option<String>,
}

impl ViolationReport {
    /// The report as a person reads it: several lines, no trailing newline.
    pub fn render(&self, verbose: bool) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let when = match self.phase {
            Phase::Pre => "",
            Phase::Post => " after it returned",
        };
        let _ = writeln!(
            s,
            "irm: policy violation: {} stopped {}{when}",
            self.policy, self.import
        );
        let _ = writeln!(s, "  reason: {}", self.reason);
        // The run-time value of a fault (the descriptor, the variable's new value).
        if let Some(detail) = self.fault.as_ref().and_then(RuntimeFault::detail) {
            let _ = writeln!(s, "  fault:  {detail}");
        }
        if let Some(call) = self.recent.last() {
            let _ = writeln!(s, "  call:   {call}");
        } else {
            let _ = writeln!(
                s,
                "  call:   {} (arguments unknown: the module has no host hooks)",
                self.event
            );
        }
        if let Some(o) = &self.origin {
            let _ = writeln!(s, "  rule:   {o}");
        }
        if self.recent.len() > 1 {
            let _ = writeln!(s, "  recent monitored calls (oldest first):");
            for c in &self.recent {
                let _ = writeln!(s, "    #{:<5} {c}", c.call);
            }
        }
        match (&self.backtrace, verbose) {
            (Some(b), true) => {
                let _ = writeln!(s, "  wasm backtrace:");
                for line in b.lines() {
                    let _ = writeln!(s, "    {line}");
                }
            }
            (None, true) => {
                let _ = writeln!(s, "  wasm backtrace: not available");
            }
            _ => {}
        }
        s.trim_end().to_string()
    }
}

impl fmt::Display for ViolationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

/// Receives audit records as they happen.
pub type AuditSink = Arc<dyn Fn(&AuditRecord) + Send + Sync>;

/// The state shared by the monitored host functions (or the hooks) of one run.
pub(crate) struct Observer {
    pub program: Arc<Program>,
    recent: VecDeque<CallRecord>,
    calls: usize,
    current: Option<(EventId, Vec<Value>, RecordedStep)>,
    pub audits: Vec<AuditRecord>,
    sink: Option<AuditSink>,
    pub violation: Option<ViolationReport>,
    /// `Some` when recording.
    pub recorded: Option<Vec<RecordedStep>>,
}

impl Observer {
    pub fn new(program: Arc<Program>, sink: Option<AuditSink>, record: bool) -> Observer {
        Observer {
            program,
            recent: VecDeque::new(),
            calls: 0,
            current: None,
            audits: Vec::new(),
            sink,
            violation: None,
            recorded: record.then(Vec::new),
        }
    }

    fn args(&self, event: EventId, args: &[Value]) -> Vec<Arg> {
        let Some(e) = self.program.events.get(event as usize) else {
            return Vec::new();
        };
        e.params
            .iter()
            .zip(args)
            .map(|(p, v)| Arg {
                name: p.name.clone(),
                value: ArgValue::from_value(v),
            })
            .collect()
    }

    /// A monitored call starts (before the policies decide).
    pub fn begin(&mut self, event: EventId, args: Vec<Value>) {
        self.finish();
        self.calls += 1;
        let (name, import) = match self.program.events.get(event as usize) {
            Some(e) => (e.name.clone(), e.import_name()),
            None => (format!("event #{event}"), String::new()),
        };
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(CallRecord {
            call: self.calls,
            event: name,
            import,
            args: self.args(event, &args),
            result: None,
            suppressed: None,
        });
        let step = RecordedStep {
            event,
            args: args.clone(),
            result: None,
            opened: None,
            notes: Vec::new(),
        };
        self.current = Some((event, args, step));
    }

    /// The call in progress is complete.
    pub fn finish(&mut self) {
        if let Some((_, _, step)) = self.current.take() {
            if let Some(r) = &mut self.recorded {
                r.push(step);
            }
        }
    }

    /// The import returned `result` (its first integer result, if any).
    pub fn returned(&mut self, result: Option<i64>) {
        if let Some(c) = self.recent.back_mut() {
            c.result = result;
        }
        if let Some((_, _, step)) = &mut self.current {
            step.result = result;
        }
    }

    /// The call in progress handed out `handle` first (a component call answering
    /// behind `retptr`).
    pub fn opened(&mut self, handle: Option<u32>) {
        if let Some((_, _, step)) = &mut self.current {
            step.opened = handle;
        }
    }

    pub fn audit(&mut self, policy: usize, phase: Phase, reason: String) {
        let Some((event, args, step)) = &mut self.current else {
            return;
        };
        step.notes.push(StepNote::Audit {
            policy,
            phase,
            reason: reason.clone(),
        });
        let (event, args) = (*event, args.clone());
        let e = self.program.events.get(event as usize);
        let record = AuditRecord {
            policy: self
                .program
                .policies
                .get(policy)
                .map_or_else(|| format!("#{policy}"), |p| p.name.clone()),
            event: e.map_or_else(String::new, |e| e.name.clone()),
            import: e.map_or_else(String::new, |e| e.import_name()),
            phase,
            args: self.args(event, &args),
            result: if phase == Phase::Post {
                self.recent.back().and_then(|c| c.result)
            } else {
                None
            },
            reason,
            call: self.calls,
        };
        if let Some(sink) = &self.sink {
            sink(&record);
        }
        self.audits.push(record);
    }

    pub fn suppress(&mut self, policy: usize, reason: String, value: Option<i64>) {
        if let Some(c) = self.recent.back_mut() {
            c.suppressed = Some(value);
        }
        if let Some((_, _, step)) = &mut self.current {
            step.notes.push(StepNote::Suppress {
                policy,
                reason,
                value,
            });
        }
    }

    pub fn deny(
        &mut self,
        policy: usize,
        phase: Phase,
        reason: String,
        fault: Option<RuntimeFault>,
        origin: Option<String>,
    ) {
        if self.violation.is_some() {
            return;
        }
        let (event, import, args, result) = match self.recent.back() {
            Some(c) if self.current.is_some() => {
                (c.event.clone(), c.import.clone(), c.args.clone(), c.result)
            }
            _ => (String::new(), String::new(), Vec::new(), None),
        };
        self.violation = Some(ViolationReport {
            policy: self
                .program
                .policies
                .get(policy)
                .map_or_else(|| format!("#{policy}"), |p| p.name.clone()),
            event,
            import,
            args,
            result: if phase == Phase::Post { result } else { None },
            reason,
            phase,
            fault,
            origin,
            recent: self.recent.iter().cloned().collect(),
            backtrace: None,
        });
        self.finish();
    }

    /// The last monitored calls, oldest first.
    pub fn recent_calls(&self) -> Vec<CallRecord> {
        self.recent.iter().cloned().collect()
    }

    /// Applies one step of the reference interpreter (host enforcement).
    pub fn apply_step(&mut self, step: &interp::Step, phase: Phase) {
        for a in &step.audits {
            self.audit(a.policy, phase, a.reason.clone());
        }
        match &step.outcome {
            interp::Outcome::Proceed => {}
            interp::Outcome::Suppress(v) => {
                if let Some(by) = &step.suppressed_by {
                    self.suppress(by.policy, by.reason.clone(), *v);
                }
            }
            interp::Outcome::Deny(r) => {
                let origin = r
                    .transition
                    .and_then(|t| self.program.policies.get(r.policy)?.transitions.get(t))
                    .map(|t| t.origin.clone());
                self.deny(r.policy, phase, r.reason.clone(), r.fault.clone(), origin);
            }
        }
    }
}

/// Locks an observer shared by host functions. A host function that panicked poisoned the
/// lock, but what the observer saw until then is still what the report needs.
pub(crate) fn lock<T>(o: &Mutex<T>) -> MutexGuard<'_, T> {
    o.lock().unwrap_or_else(|p| p.into_inner())
}

/// Decodes the Wasm arguments of `event` (strings as pointer/length pairs) into the
/// interpreter's values, reading strings from `memory` (memory 0's bytes; `None` when
/// the module exports no memory, so every string is out of bounds).
pub(crate) fn decode_args(
    program: &Program,
    event: EventId,
    wasm: &[i64],
    memory: Option<&[u8]>,
) -> Vec<Value> {
    let Some(e) = program.events.get(event as usize) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(e.params.len());
    let mut i = 0;
    for p in &e.params {
        let raw = |k: usize| wasm.get(k).copied().unwrap_or(0);
        match p.ty {
            ParamType::I32 => out.push(Value::Int(raw(i) as i32 as i64)),
            ParamType::I64 => out.push(Value::Int(raw(i))),
            ParamType::F32 => out.push(Value::Float(f32::from_bits(raw(i) as u32) as f64)),
            ParamType::F64 => out.push(Value::Float(f64::from_bits(raw(i) as u64))),
            ParamType::Str => {
                let (ptr, len) = (raw(i) as u32 as usize, raw(i + 1) as u32 as usize);
                let bytes = memory
                    .and_then(|m| m.get(ptr..ptr.checked_add(len)?))
                    .map(<[u8]>::to_vec);
                out.push(Value::Str(bytes));
                i += 1;
            }
        }
        i += 1;
    }
    out
}

/// The import's first result as the monitor reads it (`None` without an integer result).
pub(crate) fn first_result(
    program: &Program,
    event: EventId,
    results: &[wasmtime::Val],
) -> Option<i64> {
    let e = program.events.get(event as usize)?;
    match (e.results.first()?, results.first()?) {
        (ValType::I32, wasmtime::Val::I32(v)) => Some(*v as i64),
        (ValType::I64, wasmtime::Val::I64(v)) => Some(*v),
        _ => Some(0),
    }
}
