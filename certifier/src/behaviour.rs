//! Monitor behaviour: the module's own monitors, run by [`crate::exec`] on sampled
//! traces, decide every call as `policy_lang::interp` does.
//!
//! What is compared, per call: whether the raw import was called (exactly once, with the
//! arguments the monitor received), what the caller got back (the import's result, or
//! the suppression value), the lines written to descriptor 2 (audits and the deny, with
//! policy and reason, in order), and whether the call trapped (a deny). A module without
//! a WASI `fd_write` cannot write lines; then only calls, results and traps are compared.
//!
//! The monitor runs against a fake WASI host that answers its own questions (the
//! descriptor scan: `fd_fdstat_get`, `fd_prestat_get`, `fd_prestat_dir_name`) from the
//! trace's world; any other import call is a finding. The host memory starts filled with
//! garbage and every byte the monitor wrote there is scribbled over before the next
//! call, since the module owns that memory between calls: a monitor that kept state there
//! decides differently and is caught.
//!
//! This is sampling, not proof: the traces are the `.traces` files given with the
//! policies plus traces generated from the policies (every integer constant of a guard
//! and its neighbours, witnesses accepted and just rejected by every string test,
//! descriptor numbers in and beyond the table, out-of-bounds strings and pointers,
//! failing and trapping imports, random prefixes to reach later states, several
//! worlds).
use std::collections::{BTreeMap, BTreeSet};

use policy_lang::descriptors::{Effect, FILETYPE_DIRECTORY};
use policy_lang::interp::{run_trace_in, ObservationKind, TraceEvent, Value, Verdict, World};
use policy_lang::ir::{EventId, ParamType, Phase, Program, RuntimeFault, ValType};
use policy_lang::wasi;

use crate::exec::{Host, Instance, Stop};
use crate::mediation::Mediation;
use crate::module::Module;
use crate::{Finding, Where};

/// Bytes at the bottom of the host memory for the traces' out-pointers.
const OUT_AREA: u32 = 4096;
pub(crate) const PAGE: u32 = 65536;
const ERRNO_BADF: u64 = 8;
/// Strings of one step must fit above the out area.
const STRINGS_END: u32 = 3 * PAGE;

/// One trace to run: its world and its calls.
pub type Sample = (World, Vec<TraceEvent>);

/// How much was run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sampled {
    pub traces: usize,
    pub calls: usize,
}

/// Pages of the host memory the checks run with: its minimum, at least enough for the
/// traces' strings, within its maximum.
pub(crate) fn host_pages(m: &Module) -> usize {
    let want = (STRINGS_END / PAGE) as usize + 1;
    m.host_memory()
        .and_then(|h| m.memories.get(h as usize))
        .map_or(want, |x| {
            let pages = (x.ty.initial as usize).max(want);
            x.ty.maximum.map_or(pages, |max| pages.min(max as usize))
        })
}

/// What one call did, as the caller and the host saw it.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    called: bool,
    lines: Vec<String>,
    end: End,
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    Returned(Option<i64>),
    Trapped,
    HostTrapped,
}

/// Runs every sample through the monitors and compares with the interpreter; at most
/// one finding per monitor.
/// `state_memories`: the memories the monitor owns, which are modelled with the host's.
pub fn check(
    m: &Module,
    med: &Mediation,
    state_memories: &BTreeSet<u32>,
    program: &Program,
    samples: &[Sample],
) -> (Sampled, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut sampled = Sampled::default();
    // Per event, the (import, monitor) pairs that can make its calls.
    let mut routes: BTreeMap<EventId, Vec<(u32, u32)>> = BTreeMap::new();
    // An import no function monitors is called raw: its "monitor" is itself.
    for x in &med.monitored {
        if x.monitors.is_empty() {
            routes
                .entry(x.event)
                .or_default()
                .push((x.import, x.import));
        }
        for &f in &x.monitors {
            routes.entry(x.event).or_default().push((x.import, f));
        }
    }
    if routes.is_empty() {
        // Nothing the policies decide can be called.
        return (sampled, findings);
    }
    let messages = m
        .imports
        .iter()
        .any(|i| wasi::is_wasi_module(i.module) && i.field == "fd_write");
    let mut inst = match Instance::new(m, host_pages(m), state_memories) {
        Ok(i) => i,
        Err(why) => {
            findings.push(Finding::new(
                Where::Offset(0),
                format!("the monitor's initial state cannot be modelled: {why}"),
            ));
            return (sampled, findings);
        }
    };
    let host = m.host_memory();
    if let Some(h) = host {
        if let Some(Some(mem)) = inst.memories.get_mut(h as usize) {
            scribble(mem, 0xa5);
        }
    }
    let initial_globals = inst.globals.clone();
    let initial_memories: Vec<Option<Vec<u8>>> = inst
        .memories
        .iter()
        .enumerate()
        .map(|(i, x)| {
            if Some(i as u32) == host {
                None
            } else {
                x.clone()
            }
        })
        .collect();
    let mut failed: BTreeSet<u32> = BTreeSet::new();
    // What the monitor wrote outside the host memory during the trace so far.
    let mut written: Vec<(u32, u32, u32)> = Vec::new();
    for (n, (world, calls)) in samples.iter().enumerate() {
        if calls.iter().any(|c| !routes.contains_key(&c.event)) {
            continue;
        }
        // A fresh instance: the monitor's state as the module starts.
        inst.globals.clone_from(&initial_globals);
        reset(&mut inst, host, &initial_memories, &mut written);
        let expected = run_trace_in(program, world, calls);
        let mut fake = FakeHost::new(world, program);
        sampled.traces += 1;
        for (s, call) in calls.iter().enumerate() {
            let step = s + 1;
            let options = &routes[&call.event];
            let (import, monitor) = options[(n + s) % options.len()];
            let want = expectation(program, &expected, step, call, messages);
            let got = match run_call(
                &mut inst,
                &mut fake,
                program,
                call,
                (import, monitor),
                n + s,
                messages,
            ) {
                Ok(Some(seen)) => seen,
                Ok(None) => break,
                Err(stop) => {
                    if failed.insert(monitor) {
                        findings.push(stopped(monitor, stop, program, calls, step));
                    }
                    break;
                }
            };
            sampled.calls += 1;
            if got != want {
                if failed.insert(monitor) {
                    let what = format!("decides differently from the policies at call {step}");
                    let trace = render(program, world, calls);
                    findings.push(mismatch((monitor, import), &what, &trace, &want, &got));
                }
                break;
            }
            if matches!(got.end, End::Trapped) {
                // A monitor that denied stays denied, for an embedder that calls again.
                let mut again = call.clone();
                again.trapped = false;
                let want = interrupted(program, &again, messages);
                match run_call(
                    &mut inst,
                    &mut fake,
                    program,
                    &again,
                    (import, monitor),
                    n + s + 1,
                    messages,
                ) {
                    Ok(None) => {}
                    Ok(Some(seen)) if seen == want => {}
                    Ok(Some(seen)) => {
                        if failed.insert(monitor) {
                            let what = format!(
                                "does not stay denied after the deny at call {step} (called again)"
                            );
                            let trace = render(program, world, calls);
                            findings.push(mismatch((monitor, import), &what, &trace, &want, &seen));
                        }
                    }
                    Err(stop) => {
                        if failed.insert(monitor) {
                            findings.push(stopped(monitor, stop, program, calls, step));
                        }
                    }
                }
                break;
            }
        }
    }
    (sampled, findings)
}

fn stopped(
    monitor: u32,
    stop: Stop,
    program: &Program,
    calls: &[TraceEvent],
    step: usize,
) -> Finding {
    let at_call = format!(
        "at call {step} of {}",
        render(program, &World::default(), calls)
    );
    match stop {
        Stop::Unsupported { func, offset, what } => Finding::new(
            Where::Function {
                index: func,
                offset,
            },
            format!("not understood: {what} (monitor {monitor}, {at_call})"),
        ),
        Stop::Refused(why) => Finding::new(
            Where::Function {
                index: monitor,
                offset: 0,
            },
            format!("monitor {monitor} {why} ({at_call})"),
        ),
        Stop::Trap(why) => Finding::new(
            Where::Function {
                index: monitor,
                offset: 0,
            },
            format!("monitor {monitor} trapped unexpectedly: {why} ({at_call})"),
        ),
        Stop::HostTrap => Finding::new(
            Where::Function {
                index: monitor,
                offset: 0,
            },
            format!("monitor {monitor} let a host trap escape unexpectedly ({at_call})"),
        ),
    }
}

/// The function that decided a call, as a finding names it.
/// A call `route` (monitor, import) decided otherwise than the policies: `what` happened
/// on `trace`.
fn mismatch(route: (u32, u32), what: &str, trace: &str, want: &Seen, got: &Seen) -> Finding {
    Finding::new(
        Where::Function {
            index: route.0,
            offset: 0,
        },
        format!(
            "{} {what} of {trace}: the policies expect {}, the monitor {}",
            who(route.0, route.1),
            describe(want),
            describe(got)
        ),
    )
}

fn who(monitor: u32, import: u32) -> String {
    if monitor == import {
        format!("import {import}, which no function monitors,")
    } else {
        format!("monitor {monitor} (import {import})")
    }
}

fn describe(s: &Seen) -> String {
    let mut out = String::new();
    out.push_str(if s.called {
        "the import called"
    } else {
        "the import not called"
    });
    match s.end {
        End::Returned(Some(v)) => out.push_str(&format!(", {v} returned")),
        End::Returned(None) => out.push_str(", a return"),
        End::Trapped => out.push_str(", a trap"),
        End::HostTrapped => out.push_str(", the import's trap"),
    }
    for l in &s.lines {
        out.push_str(&format!(", line {:?}", l.trim_end()));
    }
    out
}

/// A trace as text, to reproduce a finding.
fn render(program: &Program, world: &World, calls: &[TraceEvent]) -> String {
    let mut out = String::new();
    if !world.preopens.is_empty() {
        let p: Vec<String> = world
            .preopens
            .iter()
            .map(|p| format!("{:?}", String::from_utf8_lossy(p)))
            .collect();
        out.push_str(&format!("preopen {}; ", p.join(", ")));
    }
    let steps: Vec<String> = calls
        .iter()
        .map(|c| {
            let e = &program.events[c.event as usize];
            let args: Vec<String> = e
                .params
                .iter()
                .zip(&c.args)
                .map(|(p, v)| match v {
                    Value::Int(i) => format!("{}={i}", p.name),
                    Value::Str(Some(b)) => format!("{}={:?}", p.name, String::from_utf8_lossy(b)),
                    Value::Str(None) | Value::BadPointer(_) => format!("{}=oob", p.name),
                    Value::Float(f) => format!("{}={f}", p.name),
                })
                .collect();
            let end = if c.trapped {
                " -> trap".to_string()
            } else {
                c.result.map_or(String::new(), |r| format!(" -> {r}"))
            };
            format!("{}({}){end}", e.name, args.join(", "))
        })
        .collect();
    out.push_str(&format!("[{}]", steps.join("; ")));
    out
}

/// What the interpreter's verdict says call `step` must look like.
fn expectation(
    program: &Program,
    v: &Verdict,
    step: usize,
    call: &TraceEvent,
    messages: bool,
) -> Seen {
    let event = &program.events[call.event as usize];
    let import = event.import_name();
    let mut lines = Vec::new();
    let mut suppressed = None;
    for o in v.observations.iter().filter(|o| o.step == step) {
        match &o.kind {
            ObservationKind::Audit => lines.push(format!(
                "irm: audit: policy {}: {import}: {}\n",
                o.policy, o.reason
            )),
            ObservationKind::Suppress(value) => suppressed = Some(*value),
        }
    }
    let denied = v.violation.as_ref().filter(|x| x.step == step);
    if let Some(d) = denied {
        lines.push(format!(
            "irm: policy {} denied {import}: {}\n",
            d.policy, d.reason
        ));
    }
    if !messages {
        lines.clear();
    }
    let called = suppressed.is_none() && !denied.is_some_and(|d| d.phase == Phase::Pre);
    let end = if denied.is_some() {
        End::Trapped
    } else if called && call.trapped {
        End::HostTrapped
    } else if let Some(value) = suppressed {
        End::Returned(value.map(|x| narrow(event.results.first(), x)))
    } else {
        End::Returned(
            event
                .results
                .first()
                .map(|t| narrow(Some(t), call.result.unwrap_or(0))),
        )
    };
    Seen { called, lines, end }
}

/// A call made after a deny: refused by its event's owner as interrupted.
fn interrupted(program: &Program, call: &TraceEvent, messages: bool) -> Seen {
    let owner = program.owner(call.event);
    let reason = RuntimeFault::Interrupted.reason(program, call.event, owner, None);
    let import = program.events[call.event as usize].import_name();
    let line = format!(
        "irm: policy {} denied {import}: {reason}\n",
        program.policies[owner].name
    );
    Seen {
        called: false,
        lines: if messages { vec![line] } else { Vec::new() },
        end: End::Trapped,
    }
}

/// `v` as the caller receives it: an `i32` sign-extended.
fn narrow(t: Option<&ValType>, v: i64) -> i64 {
    match t {
        Some(ValType::I32) => v as i32 as i64,
        _ => v,
    }
}

/// Overwrites what was written to the host memory since the last call; keeps the list
/// of what was written to the others.
fn scribble_host(inst: &mut Instance, host: Option<u32>) {
    let mut keep = Vec::new();
    for (m, at, len) in std::mem::take(&mut inst.dirty) {
        if Some(m) != host {
            keep.push((m, at, len));
            continue;
        }
        if let Some(Some(mem)) = inst.memories.get_mut(m as usize) {
            if let Some(r) = mem.get_mut(at as usize..at as usize + len as usize) {
                scribble(r, 0x5a);
            }
        }
    }
    inst.dirty = keep;
}

/// Restores every memory but the host's to its initial contents, copying back only what
/// the previous trace wrote.
fn reset(
    inst: &mut Instance,
    host: Option<u32>,
    initial: &[Option<Vec<u8>>],
    written: &mut Vec<(u32, u32, u32)>,
) {
    scribble_host(inst, host);
    written.append(&mut inst.dirty);
    for (m, at, len) in written.drain(..) {
        let range = at as usize..at as usize + len as usize;
        if let (Some(Some(mem)), Some(Some(init))) =
            (inst.memories.get_mut(m as usize), initial.get(m as usize))
        {
            if let (Some(dst), Some(src)) = (mem.get_mut(range.clone()), init.get(range)) {
                dst.copy_from_slice(src);
            }
        }
    }
}

fn scribble(mem: &mut [u8], seed: u8) {
    for (i, b) in mem.iter_mut().enumerate() {
        *b = seed ^ (i as u8).wrapping_mul(31);
    }
}

/// Runs one call through `monitor` and records what the host and the caller saw.
fn run_call(
    inst: &mut Instance,
    fake: &mut FakeHost,
    program: &Program,
    call: &TraceEvent,
    (import, monitor): (u32, u32),
    variant: usize,
    messages: bool,
) -> Result<Option<Seen>, Stop> {
    let event = &program.events[call.event as usize];
    let host_mem = inst.module.host_memory();
    let mem_len = host_mem
        .and_then(|h| {
            inst.memories
                .get(h as usize)
                .and_then(|m| m.as_ref())
                .map(|m| m.len())
        })
        .unwrap_or(0) as u32;
    // The module owns its memory between calls: whatever the monitor left there is gone.
    scribble_host(inst, host_mem);
    let mut args = Vec::new();
    let mut strings_at = OUT_AREA;
    // Odd variants put the last string at the very end of the memory and pick other
    // out-of-bounds pointers, so bounds checks are tried at their edges.
    let last_str = event.params.iter().rposition(|p| p.ty == ParamType::Str);
    for (p, param) in event.params.iter().enumerate() {
        let value = call.args.get(p);
        let int = match value {
            Some(Value::Int(v)) | Some(Value::BadPointer(v)) => *v,
            _ => 0,
        };
        let float = match value {
            Some(Value::Float(f)) => *f,
            _ => 0.0,
        };
        match param.ty {
            ParamType::I32 => args.push(int as u32 as u64),
            ParamType::I64 => args.push(int as u64),
            ParamType::F32 => args.push((float as f32).to_bits() as u64),
            ParamType::F64 => args.push(float.to_bits()),
            ParamType::Str => match (value, host_mem) {
                (Some(Value::Str(Some(bytes))), Some(h))
                    if variant % 2 == 1
                        && Some(p) == last_str
                        && (bytes.len() as u32) < mem_len.saturating_sub(STRINGS_END) =>
                {
                    let at = mem_len - bytes.len() as u32;
                    inst.write(h, at, bytes);
                    args.push(at as u64);
                    args.push(bytes.len() as u64);
                }
                (Some(Value::Str(Some(bytes))), Some(h))
                    if strings_at as usize + bytes.len() <= STRINGS_END.min(mem_len) as usize =>
                {
                    inst.write(h, strings_at, bytes);
                    args.push(strings_at as u64);
                    args.push(bytes.len() as u64);
                    strings_at += bytes.len() as u32;
                }
                (Some(Value::Str(Some(_))), _) => {
                    // The memory is too small for this trace's strings: the trace says
                    // nothing about this module.
                    return Ok(None);
                }
                _ => {
                    let (at, len) = match variant % 3 {
                        0 => (mem_len, 1),
                        1 => (mem_len.wrapping_sub(1), 2),
                        _ => (u32::MAX - 1, 4),
                    };
                    args.push(at as u64);
                    args.push(len as u64);
                }
            },
        }
    }
    inst.dirty.retain(|&(m, _, _)| Some(m) != host_mem);
    fake.step = Some(StepCall {
        import,
        args: args.clone(),
        call: call.clone(),
        called: false,
    });
    fake.lines.clear();
    fake.write_limit = if variant % 2 == 1 { 16 } else { u32::MAX };
    let out = inst.invoke(monitor, &args, fake);
    let step = fake.step.take().expect("set above");
    let mut lines = std::mem::take(&mut fake.lines);
    if !messages {
        lines.clear();
    }
    let end = match out {
        Ok(results) => End::Returned(
            results
                .first()
                .map(|&r| narrow(event.results.first(), r as i64)),
        ),
        Err(Stop::Trap(_)) => End::Trapped,
        Err(Stop::HostTrap) => End::HostTrapped,
        Err(other) => return Err(other),
    };
    let lines = split_lines(&lines);
    Ok(Some(Seen {
        called: step.called,
        lines,
        end,
    }))
}

fn split_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// The call the trace makes at the step in progress.
struct StepCall {
    import: u32,
    args: Vec<u64>,
    call: TraceEvent,
    called: bool,
}

/// The fake WASI host: the world's descriptors, followed through the calls that ran.
struct FakeHost<'p> {
    program: &'p Program,
    /// fd -> (file type, preopen name).
    open: BTreeMap<u32, (u8, Option<Vec<u8>>)>,
    step: Option<StepCall>,
    /// Bytes written to descriptor 2 during the step.
    lines: Vec<u8>,
    /// Take at most this many bytes per `fd_write` to 2: a host may write short, and
    /// the monitor must go on until its line is whole.
    write_limit: u32,
}

impl<'p> FakeHost<'p> {
    fn new(world: &World, program: &'p Program) -> Self {
        FakeHost {
            program,
            open: world
                .initial()
                .into_iter()
                .map(|d| (d.fd, (d.filetype.unwrap_or(0), d.preopen)))
                .collect(),
            step: None,
            lines: Vec::new(),
            write_limit: u32::MAX,
        }
    }

    /// The monitor's own WASI questions and its lines on descriptor 2.
    fn internal(&mut self, inst: &mut Instance, field: &str, args: &[u64]) -> Option<u64> {
        let a = |i: usize| args.get(i).copied().unwrap_or(0) as u32;
        let h = inst.module.host_memory()?;
        let efault = 21;
        Some(match field {
            "fd_fdstat_get" => match self.open.get(&a(0)) {
                Some(&(filetype, _)) => {
                    let rights: u64 = match (a(0), filetype) {
                        (0, _) => 2,
                        (1 | 2, _) => 1 << 6,
                        (_, FILETYPE_DIRECTORY) => u64::MAX >> 35,
                        _ => (1 << 1) | (1 << 6),
                    };
                    let mut stat = [0u8; 24];
                    stat[0] = filetype;
                    stat[8..16].copy_from_slice(&rights.to_le_bytes());
                    stat[16..24].copy_from_slice(&rights.to_le_bytes());
                    if inst.write(h, a(1), &stat) {
                        0
                    } else {
                        efault
                    }
                }
                None => ERRNO_BADF,
            },
            "fd_prestat_get" => match self.open.get(&a(0)) {
                Some((_, Some(name))) => {
                    let mut pre = [0u8; 8];
                    pre[4..8].copy_from_slice(&(name.len() as u32).to_le_bytes());
                    if inst.write(h, a(1), &pre) {
                        0
                    } else {
                        efault
                    }
                }
                _ => ERRNO_BADF,
            },
            "fd_prestat_dir_name" => match self.open.get(&a(0)).cloned() {
                Some((_, Some(name))) => {
                    let n = name.len().min(a(2) as usize);
                    if inst.write(h, a(1), &name[..n]) {
                        0
                    } else {
                        efault
                    }
                }
                _ => ERRNO_BADF,
            },
            "fd_write" if a(0) == 2 => {
                let (iovs, n) = (a(1), a(2));
                let mut total: u32 = 0;
                for k in 0..n {
                    let iov = inst.read(h, iovs.wrapping_add(8 * k), 8)?;
                    let base = u32::from_le_bytes(iov[0..4].try_into().ok()?);
                    let len = u32::from_le_bytes(iov[4..8].try_into().ok()?);
                    let len = len.min(self.write_limit - total);
                    let bytes = inst.read(h, base, len)?.to_vec();
                    self.lines.extend_from_slice(&bytes);
                    total += len;
                }
                if inst.write(h, a(3), &total.to_le_bytes()) {
                    0
                } else {
                    efault
                }
            }
            _ => return None,
        })
    }

    /// What a successful trace call does to the host's descriptors.
    fn apply(&mut self, event: EventId, call: &TraceEvent) {
        let decl = &self.program.events[event as usize];
        if !wasi::is_wasi_module(&decl.module) {
            return;
        }
        let arg = |name: &str| {
            decl.params
                .iter()
                .position(|p| p.name == name)
                .and_then(|i| match call.args.get(i) {
                    Some(Value::Int(v)) => Some(*v as u32),
                    _ => None,
                })
        };
        match Effect::of(&decl.field) {
            Some(Effect::Open | Effect::Accept) => {
                if let Some(o) = call.opened {
                    self.open.insert(o.fd, (o.filetype, None));
                }
            }
            Some(Effect::Close) => {
                if let Some(fd) = arg("fd") {
                    self.open.remove(&fd);
                }
            }
            Some(Effect::Renumber) => {
                if let (Some(from), Some(to)) = (arg("fd"), arg("to")) {
                    if from != to {
                        if let Some(d) = self.open.remove(&from) {
                            self.open.insert(to, d);
                        }
                    }
                }
            }
            None => {}
        }
    }
}

impl Host for FakeHost<'_> {
    fn call(&mut self, inst: &mut Instance, import: u32, args: &[u64]) -> Result<Vec<u64>, Stop> {
        let imp = &inst.module.imports[import as usize];
        let (module, field) = (imp.module, imp.field);
        let is_step = self
            .step
            .as_ref()
            .is_some_and(|s| s.import == import && s.args == args && !s.called);
        if !is_step {
            if wasi::is_wasi_module(module) {
                if let Some(errno) = self.internal(inst, field, args) {
                    return Ok(results_of(inst, import, errno));
                }
            }
            return Err(Stop::Refused(format!(
                "made a call the policies do not explain: {module}.{field} with {args:?}"
            )));
        }
        let step = self.step.as_mut().expect("checked");
        step.called = true;
        let call = step.call.clone();
        if call.trapped {
            return Err(Stop::HostTrap);
        }
        let value = call.result.unwrap_or(0);
        if value == 0 {
            self.apply(call.event, &call);
            if let (Some(o), Some(h)) = (call.opened, inst.module.host_memory()) {
                let decl = &self.program.events[call.event as usize];
                let out = if decl.field == "sock_accept" {
                    "ro_fd"
                } else {
                    "opened_fd"
                };
                if let Some(at) = wasm_arg(decl, args, out) {
                    inst.write(h, at, &o.fd.to_le_bytes());
                }
            }
        }
        Ok(results_of(inst, import, value as u64))
    }
}

/// The results of `import` as a host returns them: `first` (an `i32` truncated), then
/// zeros.
fn results_of(inst: &Instance, import: u32, first: u64) -> Vec<u64> {
    let types = inst
        .module
        .func_type(import)
        .map_or(&[][..], |t| t.results());
    types
        .iter()
        .enumerate()
        .map(|(i, t)| match (i, t) {
            (0, wasmparser::ValType::I32) => first as u32 as u64,
            (0, _) => first,
            _ => 0,
        })
        .collect()
}

/// The Wasm argument of integer parameter `name` of `event` (strings take two).
fn wasm_arg(event: &policy_lang::ir::Event, args: &[u64], name: &str) -> Option<u32> {
    let mut at = 0;
    for p in &event.params {
        if p.name == name {
            return args.get(at).map(|&a| a as u32);
        }
        at += if p.ty == ParamType::Str { 2 } else { 1 };
    }
    None
}
