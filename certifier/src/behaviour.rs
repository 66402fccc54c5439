//! Monitor behaviour: the module's own monitors, run by [`crate::exec`] on sampled
//! traces, decide every call as `policy_lang::interp` does.
//!
//! What is compared, per call: whether the raw import was called (exactly once, with the
//! arguments the monitor received), what the caller got back (the import's result, or
//! the suppression value), the lines written to descriptor 2 (audits and the deny, with
//! policy and reason, in order), and whether the call trapped (a deny). A module without
//! a WASI `fd_write` cannot write lines; then only calls, results and traps are compared.
//!
//! The monitor runs against the fake WASI host of `policy_lang::fake_host`, which answers
//! its own questions (the descriptor scan: `fd_fdstat_get`, `fd_prestat_get`,
//! `fd_prestat_dir_name`) from the trace's world; any other import call is a finding.
//! The host memory starts as garbage and every byte the monitor wrote there is scribbled
//! over before the next call (the module owns that memory between calls): a monitor that
//! kept state there decides differently and is caught.
//!
//! This is sampling, not proof: the traces are the `.traces` files given with the
//! policies plus the ones [`crate::generate`] derives from the policies.
use std::collections::{BTreeMap, BTreeSet};

use policy_lang::fake_host::{FakeHost, Memory};
use policy_lang::interp::{run_trace_in, ObservationKind, TraceEvent, Value, Verdict, World};
use policy_lang::ir::{EventId, ParamType, Phase, Program, RuntimeFault};
use policy_lang::wasi::is_wasi_module;

use crate::exec::{Host, Instance, Stop, PAGE};
use crate::mediation::Mediation;
use crate::module::Module;
use crate::Finding;

/// Bytes at the bottom of the host memory for the traces' out-pointers.
const OUT_AREA: u32 = 4096;
/// Strings of one step must fit above the out area.
const STRINGS_END: u32 = 3 * PAGE as u32;

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
    let want = STRINGS_END as usize / PAGE + 1;
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
    // Per event, the (import, monitor) pairs that can make its calls. An import no
    // function monitors is called raw: its "monitor" is itself.
    let mut routes: BTreeMap<EventId, Vec<(u32, u32)>> = BTreeMap::new();
    for x in &med.monitored {
        let r = routes.entry(x.event).or_default();
        r.extend(x.monitors.iter().map(|&f| (x.import, f)));
        if x.monitors.is_empty() {
            r.push((x.import, x.import));
        }
    }
    if routes.is_empty() {
        // Nothing the policies decide can be called.
        return (sampled, findings);
    }
    let mut imported = m.imports.iter().map(|(_, i)| (i.module, i.name));
    let messages = imported.any(|(module, name)| is_wasi_module(module) && name == "fd_write");
    let context = Context {
        m,
        state_memories,
        program,
        routes: &routes,
        messages,
    };
    // Traces are independent (each starts from the module's initial state): they run in
    // contiguous chunks, one per core, and findings are taken in trace order as one
    // thread would have taken them (the first per monitor).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = samples.len().div_ceil(threads).max(1);
    let results: Vec<Result<Chunk, Finding>> = std::thread::scope(|scope| {
        let handles: Vec<_> = samples
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let context = &context;
                scope.spawn(move || run_chunk(context, c * chunk, part))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a behaviour thread does not panic"))
            .collect()
    });
    let mut found: Vec<(usize, u32, Finding)> = Vec::new();
    for r in results {
        match r {
            Ok(c) => {
                sampled.traces += c.sampled.traces;
                sampled.calls += c.sampled.calls;
                found.extend(c.found);
            }
            Err(f) => return (sampled, vec![f]),
        }
    }
    found.sort_by_key(|(n, _, _)| *n);
    let mut failed: BTreeSet<u32> = BTreeSet::new();
    for (_, monitor, f) in found {
        if failed.insert(monitor) {
            findings.push(f);
        }
    }
    (sampled, findings)
}

/// What every chunk of traces shares.
struct Context<'a, 'm> {
    m: &'a Module<'m>,
    state_memories: &'a BTreeSet<u32>,
    program: &'a Program,
    routes: &'a BTreeMap<EventId, Vec<(u32, u32)>>,
    messages: bool,
}

/// What one chunk of traces found: `(trace index, monitor, finding)`, the first per
/// monitor in the chunk.
struct Chunk {
    sampled: Sampled,
    found: Vec<(usize, u32, Finding)>,
}

/// Runs `samples` (the first has index `first`) on an instance of its own.
fn run_chunk(cx: &Context, first: usize, samples: &[Sample]) -> Result<Chunk, Finding> {
    let (m, program, routes, messages) = (cx.m, cx.program, cx.routes, cx.messages);
    let mut sampled = Sampled::default();
    let mut found = Vec::new();
    let mut inst = Instance::new(m, host_pages(m), cx.state_memories).map_err(|why| {
        Finding::at(
            0,
            format!("the monitor's initial state cannot be modelled: {why}"),
        )
    })?;
    let host = m.host_memory();
    if let Some(Some(mem)) = host.and_then(|h| inst.memories.get_mut(h as usize)) {
        scribble(mem, 0xa5);
    }
    let initial_globals = inst.globals.clone();
    // Every memory but the host's as the module starts.
    let initial: Vec<Option<Vec<u8>>> = inst
        .memories
        .iter()
        .enumerate()
        .map(|(i, x)| x.clone().filter(|_| Some(i as u32) != host))
        .collect();
    let mut failed: BTreeSet<u32> = BTreeSet::new();
    for (n, (world, calls)) in (first..).zip(samples) {
        if calls.iter().any(|c| !routes.contains_key(&c.event)) {
            continue;
        }
        // A fresh instance: the monitor's state as the module starts.
        inst.globals.clone_from(&initial_globals);
        undo(&mut inst, host, Some(&initial));
        let expected = run_trace_in(program, world, calls);
        let mut imports = Imports {
            program,
            fake: FakeHost::new(world),
            step: None,
        };
        // Lists a call returns (`get-directories`, which takes no string) go where
        // strings would.
        imports.fake.list_area = Some(OUT_AREA);
        let trace = || render(program, world, calls);
        sampled.traces += 1;
        for (s, call) in calls.iter().enumerate() {
            let step = s + 1;
            let options = &routes[&call.event];
            let route = options[(n + s) % options.len()];
            let mut report = |f| {
                if failed.insert(route.1) {
                    found.push((n, route.1, f));
                }
            };
            let want = expectation(program, &expected, step, call, messages);
            let got = match run_call(&mut inst, &mut imports, call, route, n + s) {
                Some(Ok(seen)) => seen,
                None => break,
                Some(Err(stop)) => {
                    report(stopped(route.1, stop, &trace(), step));
                    break;
                }
            };
            sampled.calls += 1;
            if got != want {
                let what = format!("decides differently from the policies at call {step}");
                report(mismatch(route, &what, &trace(), &want, &got));
                break;
            }
            if got.end == End::Trapped {
                // A monitor that denied stays denied, for an embedder that calls again.
                let mut again = call.clone();
                again.trapped = false;
                let want = interrupted(program, &again, messages);
                match run_call(&mut inst, &mut imports, &again, route, n + s + 1) {
                    Some(Ok(seen)) if seen != want => {
                        let what = format!(
                            "does not stay denied after the deny at call {step} (called again)"
                        );
                        report(mismatch(route, &what, &trace(), &want, &seen));
                    }
                    Some(Err(stop)) => report(stopped(route.1, stop, &trace(), step)),
                    _ => {}
                }
                break;
            }
        }
    }
    Ok(Chunk { sampled, found })
}

/// Monitor `monitor`'s run of call `step` of `trace` stopped with `stop`.
fn stopped(monitor: u32, stop: Stop, trace: &str, step: usize) -> Finding {
    let at = format!("at call {step} of {trace}");
    let what = match stop {
        Stop::Unsupported { func, offset, what } => {
            let message = format!("not understood: {what} (monitor {monitor}, {at})");
            return Finding::in_function(func, offset, message);
        }
        Stop::Refused(why) => why,
        Stop::Trap(why) => format!("trapped unexpectedly: {why}"),
        Stop::HostTrap => "let a host trap escape unexpectedly".into(),
    };
    Finding::in_function(monitor, 0, format!("monitor {monitor} {what} ({at})"))
}

/// A call through `(import, monitor)` decided otherwise than the policies: `what`
/// happened on `trace`.
fn mismatch(
    (import, monitor): (u32, u32),
    what: &str,
    trace: &str,
    want: &Seen,
    got: &Seen,
) -> Finding {
    let who = if monitor == import {
        format!("import {import}, which no function monitors,")
    } else {
        format!("monitor {monitor} (import {import})")
    };
    let (want, got) = (describe(want), describe(got));
    let message = format!("{who} {what} of {trace}: the policies expect {want}, the monitor {got}");
    Finding::in_function(monitor, 0, message)
}

fn describe(s: &Seen) -> String {
    let called = if s.called { "called" } else { "not called" };
    let end = match s.end {
        End::Returned(Some(v)) => format!(", {v} returned"),
        End::Returned(None) => ", a return".into(),
        End::Trapped => ", a trap".into(),
        End::HostTrapped => ", the import's trap".into(),
    };
    let line = |l: &String| format!(", line {:?}", l.trim_end());
    let lines: String = s.lines.iter().map(line).collect();
    format!("the import {called}{end}{lines}")
}

/// A trace as text, to reproduce a finding.
fn render(program: &Program, world: &World, calls: &[TraceEvent]) -> String {
    let lossy = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    let mut out = String::new();
    if !world.preopens.is_empty() {
        let p: Vec<String> = world.preopens.iter().map(|p| lossy(p)).collect();
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
                    Value::Str(Some(b)) => format!("{}={}", p.name, lossy(b)),
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
    let returned = |v: Option<i64>| End::Returned(v.map(|v| event.narrow_result(v)));
    let end = match suppressed {
        _ if denied.is_some() => End::Trapped,
        _ if called && call.trapped => End::HostTrapped,
        Some(value) => returned(value),
        None => returned(event.results.first().map(|_| call.result.unwrap_or(0))),
    };
    Seen { called, lines, end }
}

/// A call made after a deny: refused by its event's owner as interrupted.
fn interrupted(program: &Program, call: &TraceEvent, messages: bool) -> Seen {
    let owner = program.owner(call.event);
    let reason = RuntimeFault::Interrupted.reason(program, call.event, owner, None);
    let import = program.events[call.event as usize].import_name();
    let policy = &program.policies[owner].name;
    let line = format!("irm: policy {policy} denied {import}: {reason}\n");
    Seen {
        called: false,
        lines: if messages { vec![line] } else { Vec::new() },
        end: End::Trapped,
    }
}

/// Undoes the monitor's writes listed since the last call: in the host memory they are
/// scribbled over (the module owns that memory between calls); in the others they stay
/// listed or, given the `initial` memories (a fresh instance), are restored from them.
fn undo(inst: &mut Instance, host: Option<u32>, initial: Option<&[Option<Vec<u8>>]>) {
    let mut keep = Vec::new();
    for (m, at, len) in std::mem::take(&mut inst.dirty) {
        let range = at as usize..at as usize + len as usize;
        let from = initial.and_then(|i| i.get(m as usize)?.as_ref()?.get(range.clone()));
        let to = inst
            .memories
            .get_mut(m as usize)
            .and_then(|x| x.as_mut()?.get_mut(range));
        match (Some(m) == host, to, from) {
            (true, Some(to), _) => scribble(to, 0x5a),
            (false, Some(to), Some(from)) => to.copy_from_slice(from),
            (false, _, _) if initial.is_none() => keep.push((m, at, len)),
            _ => {}
        }
    }
    inst.dirty = keep;
}

fn scribble(mem: &mut [u8], seed: u8) {
    for (i, b) in mem.iter_mut().enumerate() {
        *b = seed ^ (i as u8).wrapping_mul(31);
    }
}

/// Runs one call through `(import, monitor)` and records what the host and the caller
/// saw; `None` when the memory is too small for the trace's strings (the trace says
/// nothing about this module).
fn run_call(
    inst: &mut Instance,
    imports: &mut Imports,
    call: &TraceEvent,
    (import, monitor): (u32, u32),
    variant: usize,
) -> Option<Result<Seen, Stop>> {
    let program = imports.program;
    let event = &program.events[call.event as usize];
    let host = inst.module.host_memory();
    let mem = host.and_then(|h| inst.memories.get(h as usize)?.as_ref());
    let mem_len = mem.map_or(0, |m| m.len() as u32);
    // The module owns its memory between calls: whatever the monitor left there is gone.
    undo(inst, host, None);
    let mut args = Vec::new();
    let mut strings_at = OUT_AREA;
    // Odd variants put the last string at the very end of the memory and pick other
    // out-of-bounds pointers, so bounds checks are tried at their edges.
    let last_str = event.params.iter().rposition(|p| p.ty == ParamType::Str);
    for (p, param) in event.params.iter().enumerate() {
        let value = call.args.get(p);
        let bytes = match (param.ty, value) {
            (ParamType::Str, Some(Value::Str(Some(bytes)))) => bytes,
            (ParamType::Str, _) => {
                let (at, len) = match variant % 3 {
                    0 => (mem_len, 1),
                    1 => (mem_len.wrapping_sub(1), 2),
                    _ => (u32::MAX - 1, 4),
                };
                args.extend([at as u64, len]);
                continue;
            }
            (ty, _) => {
                args.push(Value::wasm_bits(value, ty));
                continue;
            }
        };
        let n = bytes.len();
        let at = if variant % 2 == 1
            && Some(p) == last_str
            && (n as u32) < mem_len.saturating_sub(STRINGS_END)
        {
            mem_len - n as u32
        } else if strings_at as usize + n <= STRINGS_END.min(mem_len) as usize {
            strings_at += n as u32;
            strings_at - n as u32
        } else {
            return None;
        };
        inst.write(host?, at, bytes);
        args.extend([at as u64, n as u64]);
    }
    inst.dirty.retain(|&(m, _, _)| Some(m) != host);
    imports.step = Some(StepCall {
        import,
        args: args.clone(),
        call: call.clone(),
        called: false,
    });
    imports.fake.write_limit = if variant % 2 == 1 { 16 } else { u32::MAX };
    let out = inst.invoke(monitor, &args, imports);
    let called = imports.step.take().is_some_and(|s| s.called);
    let lines = std::mem::take(&mut imports.fake.lines);
    let end = match out {
        Ok(results) => End::Returned(results.first().map(|&r| event.narrow_result(r as i64))),
        Err(Stop::Trap(_)) => End::Trapped,
        Err(Stop::HostTrap) => End::HostTrapped,
        Err(other) => return Some(Err(other)),
    };
    let lines = String::from_utf8_lossy(&lines);
    let lines = lines.split_inclusive('\n').map(str::to_string).collect();
    Some(Ok(Seen { called, lines, end }))
}

/// The call the trace makes at the step in progress.
struct StepCall {
    import: u32,
    args: Vec<u64>,
    call: TraceEvent,
    called: bool,
}

/// The imports as the monitor sees them: the trace's call of the step in progress, and
/// the fake WASI host (`policy_lang::fake_host`) for the monitor's own calls.
struct Imports<'p> {
    program: &'p Program,
    fake: FakeHost,
    step: Option<StepCall>,
}

/// The host memory of an instance, as the fake host reads and writes it.
struct HostMemory<'i, 'm, 'a>(&'i mut Instance<'m, 'a>, u32);

impl Memory for HostMemory<'_, '_, '_> {
    fn read(&mut self, at: u32, len: u32) -> Option<Vec<u8>> {
        self.0.read(self.1, at, len).map(<[u8]>::to_vec)
    }
    fn write(&mut self, at: u32, bytes: &[u8]) -> bool {
        self.0.write(self.1, at, bytes)
    }
}

impl Host for Imports<'_> {
    fn call(&mut self, inst: &mut Instance, import: u32, args: &[u64]) -> Result<Vec<u64>, Stop> {
        let (_, imp) = &inst.module.imports[import as usize];
        let (module, field) = (imp.module, imp.name);
        let host = inst.module.host_memory();
        let step = self
            .step
            .as_mut()
            .filter(|s| s.import == import && s.args == args && !s.called);
        let Some(step) = step else {
            if let (true, Some(h)) = (is_wasi_module(module), host) {
                if let Some(errno) = self.fake.internal(field, args, &mut HostMemory(inst, h)) {
                    return Ok(results_of(inst, import, errno as u64));
                }
            }
            return Err(Stop::Refused(format!(
                "made a call the policies do not explain: {module}.{field} with {args:?}"
            )));
        };
        step.called = true;
        let call = &step.call;
        if call.trapped {
            return Err(Stop::HostTrap);
        }
        let value = call.result.unwrap_or(0);
        let event = &self.program.events[call.event as usize];
        // A call without a result (a component's, answering behind `retptr`) returns
        // what the trace hands out whatever `value` says.
        if let (true, Some(h)) = (value == 0 || event.results.is_empty(), host) {
            self.fake
                .succeeded(event, call, args, &mut HostMemory(inst, h));
        }
        Ok(results_of(inst, import, value as u64))
    }
}

/// The results of `import` as a host returns them: `first` (an `i32` truncated), then
/// zeros.
fn results_of(inst: &Instance, import: u32, first: u64) -> Vec<u64> {
    let ty = inst.module.func_type(import);
    let types = ty.map_or(&[][..], |t| t.results());
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
