//! Traces generated from the policies for the behaviour check: the argument classes
//! the guards draw (every integer constant and its neighbours, the descriptor table's
//! bound, strings each pattern accepts and just misses, paths at the resolver's length
//! bound, out-pointers at the memory's edges, out-of-bounds values), descriptors the
//! host has open, failing and trapping imports (each candidate's call trapping, then
//! made again), and random prefixes, drawn again where the policies deny them, to reach
//! the automata's later states. Deterministic: a verdict can be reproduced.
use std::collections::{BTreeSet, VecDeque};

use policy_lang::descriptors::{Effect, Opened};
use policy_lang::interp::{run_trace_in, TraceEvent, Value, World};
use policy_lang::ir::{Event, EventId, Expr, Param, ParamType, Pattern, Phase, Program};
use policy_lang::wasi::{self, Role};

use crate::behaviour::{host_pages, Sample};
use crate::exec::PAGE;
use crate::module::Module;

/// A small deterministic generator (xorshift), so a verdict is reproducible.
struct Rng(u64);

impl Rng {
    /// The next number, below `n` (or 0).
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn constants(e: &Expr, out: &mut BTreeSet<i64>, patterns: &mut Vec<Pattern>) {
    match e {
        Expr::Int(v) => out.extend([v.wrapping_sub(1), *v, v.wrapping_add(1)]),
        Expr::Unary(_, a) | Expr::SetHas(_, a) => constants(a, out, patterns),
        Expr::Binary(_, a, b) => {
            constants(a, out, patterns);
            constants(b, out, patterns);
        }
        Expr::Str(_, p) => patterns.push(p.clone()),
        _ => {}
    }
}

/// Shortest strings the pattern accepts and, near each, ones it rejects.
fn witnesses(p: &Pattern) -> Vec<Vec<u8>> {
    let Ok(dfa) = p.to_dfa() else {
        return Vec::new();
    };
    // Bytes tried first: the ones paths are made of.
    let alphabet: Vec<u8> = b"/a.x-_0Z~\\ \0\xff".to_vec();
    let mut seen = vec![false; dfa.state_count()];
    let mut queue = VecDeque::from([(dfa.start, Vec::new())]);
    seen[dfa.start as usize] = true;
    let mut accepted = Vec::new();
    while let Some((q, s)) = queue.pop_front() {
        if dfa.accepting[q as usize] {
            accepted.push(s.clone());
            if accepted.len() >= 3 {
                break;
            }
        }
        if s.len() >= 64 {
            continue;
        }
        for b in alphabet.iter().copied().chain(0u8..=255) {
            let r = dfa.table[q as usize * 256 + b as usize];
            if !seen[r as usize] {
                seen[r as usize] = true;
                let mut t = s.clone();
                t.push(b);
                queue.push_back((r, t));
            }
        }
    }
    let mut out = Vec::new();
    for w in accepted {
        let shorter = w[..w.len().saturating_sub(1)].to_vec();
        let longer = [&w[..], b"x/.."].concat();
        let mut changed = w.clone();
        if let Some(last) = changed.last_mut() {
            *last ^= 1;
        }
        let relative = w.strip_prefix(b"/").map(<[u8]>::to_vec);
        out.extend([w, shorter, longer, changed]);
        out.extend(relative);
    }
    out
}

/// Candidate values for each parameter of each event, from the policies' guards, and
/// whether the parameter is a descriptor number.
fn candidates(program: &Program, host_len: u32) -> Vec<Vec<(Vec<Value>, bool)>> {
    // Small values, the descriptor table's bound and its neighbours, and far values.
    let fds = policy_lang::descriptors::MAX_FDS as i64;
    let mut ints: BTreeSet<i64> = (-1..=7)
        .chain([100, fds - 1, fds, fds + 1, 1 << 20])
        .collect();
    let mut patterns = Vec::new();
    for t in program.policies.iter().flat_map(|p| &p.transitions) {
        constants(&t.guard, &mut ints, &mut patterns);
        for u in &t.updates {
            constants(&u.value, &mut ints, &mut patterns);
        }
    }
    // Paths and path-like strings (and the empty one); the list is sorted below.
    let words = ". .. / a a.txt ./a ../a /tmp /tmp/a tmp/a x/../../a /data/../etc/passwd";
    let words = words.split(' ').chain(["", ".ssh/id_rsa", "a//b/./c"]);
    let mut strings: Vec<Vec<u8>> = words.map(|s| s.as_bytes().to_vec()).collect();
    strings.push(vec![b'a'; 300]);
    // The resolver's bound on path length, and one past it.
    let max = policy_lang::path::MAX_PATH;
    for n in [max - 1, max, max + 1] {
        let mut p = b"/".to_vec();
        p.resize(n, b'p');
        strings.push(p);
        strings.push(vec![b'r'; n]);
    }
    strings.push(b"../".repeat(40));
    for p in &patterns {
        strings.extend(witnesses(p));
    }
    strings.sort();
    strings.dedup();
    let ints: Vec<i64> = ints.into_iter().collect();
    let param = |e: &Event, p: &Param| {
        let role = wasi::event_role(&e.module, &e.field, &p.name);
        let values = match (p.ty, role) {
            (ParamType::Str, _) => {
                let strs = strings.iter().map(|s| Value::Str(Some(s.clone())));
                strs.chain([Value::Str(None)]).collect()
            }
            (ParamType::F32 | ParamType::F64, _) => vec![Value::Float(0.0)],
            (_, Some(Role::Out { size, align, .. })) => {
                // Valid at the bottom and at the very top of the memory, and out of
                // bounds by one aligned step.
                let top = (host_len - size) as i64;
                let mut v = vec![
                    Value::Int(64),
                    Value::Int(0),
                    Value::Int(top),
                    Value::BadPointer(top + align as i64),
                    Value::BadPointer(-1),
                ];
                v.dedup();
                v
            }
            _ => ints.iter().map(|&i| Value::Int(i)).collect(),
        };
        (values, role == Some(Role::Descriptor))
    };
    let params = |e: &Event| e.params.iter().map(|p| param(e, p)).collect();
    program.events.iter().map(params).collect()
}

/// Traces generated from the policies for the events the module imports: one per
/// candidate value of every parameter (after a random prefix), and `budget` random ones.
pub fn generate(m: &Module, program: &Program, events: &[EventId], budget: usize) -> Vec<Sample> {
    if events.is_empty() {
        return Vec::new();
    }
    // A memory of 4 GiB or more: its edge is past every i32 pointer (and it is refused as
    // too large to model, but after the traces are made).
    let host_len = u32::try_from(host_pages(m).saturating_mul(PAGE)).unwrap_or(u32::MAX);
    let cands = candidates(program, host_len);
    let worlds = [
        World::with_preopens::<&str>(&[]),
        World::with_preopens(&["/"]),
        World::with_preopens(&["/tmp", "/data"]),
        World::with_preopens(&["."]),
        World::with_preopens(&["/home/user", "/tmp"]),
    ];
    let results: Vec<i64> = {
        let mut r = BTreeSet::from([0i64, 8, 76, 1, -1]);
        let mut ignored = Vec::new();
        let transitions = program.policies.iter().flat_map(|p| &p.transitions);
        for t in transitions.filter(|t| t.phase == Phase::Post) {
            constants(&t.guard, &mut r, &mut ignored);
        }
        r.into_iter().collect()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let tracks = program.tracks();
    let hands_out_behind_retptr: Vec<bool> = program
        .events
        .iter()
        .map(|e| tracks && policy_lang::handles::hands_out_behind_retptr(e))
        .collect();
    // A call of `e` with random candidates; descriptors are mostly ones the host has open
    // (`open`), so calls reach the descriptors earlier calls handed out.
    let random_call = |rng: &mut Rng, e: EventId, open: &[u32]| -> TraceEvent {
        let args = cands[e as usize]
            .iter()
            .map(|(c, fd)| {
                if *fd && !open.is_empty() && rng.below(10) < 7 {
                    Value::Int(*rng.pick(open) as i64)
                } else {
                    rng.pick(c).clone()
                }
            })
            .collect();
        let roll = rng.below(20);
        // A component call that hands out handles behind `retptr` succeeds (hands out
        // small handles) when the roll says success, and fails otherwise.
        let opened = (roll < 12 && hands_out_behind_retptr[e as usize]).then(|| Opened {
            fd: 1 + rng.below(12) as u32,
            filetype: 0,
        });
        TraceEvent {
            event: e,
            args,
            result: Some(if roll < 12 { 0 } else { *rng.pick(&results) }),
            opened,
            trapped: roll == 19,
        }
    };
    // A trace of `len` random calls, then `last` (a call of its event made with the
    // open descriptors, its parameter `p` set to `v`). Before `last`, a call the policies
    // deny is drawn again (a few times), so the prefix reaches later states even where
    // the guards let few values through. When `last` traps, the same call follows it:
    // what a monitor does after an import that never returned is decided there.
    let trace =
        |rng: &mut Rng, world: &World, len: usize, last: Option<(EventId, usize, &Value, bool)>| {
            let mut calls: Vec<TraceEvent> = Vec::new();
            let mut open: Vec<u32> = world.initial().iter().map(|d| d.fd).collect();
            let then = last.is_some_and(|(_, _, _, trapped)| trapped);
            let total = len + last.is_some() as usize + then as usize;
            for i in 0..total {
                let draws = if last.is_some() && i < len { 8 } else { 1 };
                for draw in 1..=draws {
                    let call = match last {
                        // The call again: it passed the guards once, so a monitor
                        // that forgot the trap would let it through.
                        Some(_) if i > len => {
                            let mut again = calls[len].clone();
                            again.trapped = false;
                            again
                        }
                        Some((e, p, v, trapped)) if i == len => {
                            let mut c = random_call(rng, e, &open);
                            c.args[p] = v.clone();
                            c.trapped = trapped;
                            c
                        }
                        _ => {
                            let e = *rng.pick(events);
                            random_call(rng, e, &open)
                        }
                    };
                    calls.push(call);
                    policy_lang::trace::hand_out(program, world, &mut calls, &|_| false);
                    if draw == draws || run_trace_in(program, world, &calls).violation.is_none() {
                        break;
                    }
                    calls.pop();
                }
                let call = calls.last().expect("pushed");
                if let Some(o) = call.opened {
                    open.push(o.fd);
                    if program.descriptor_effect(call.event) == Some(Effect::Preopens) {
                        open.extend(world.directories(Some(o)).iter().map(|(h, _)| *h));
                    }
                }
                let decl = &program.events[call.event as usize];
                if decl.field == "fd_close" && call.result == Some(0) && !call.trapped {
                    if let Some(Value::Int(fd)) = call.args.first() {
                        open.retain(|x| *x as i64 != *fd);
                    }
                }
            }
            calls
        };
    let mut out = Vec::new();
    // Every candidate of every parameter: the call returning after a random prefix that
    // reaches a state, and the call trapping first (then made again). Random traces trap
    // in later states too.
    for &e in events {
        for (p, (values, _)) in cands[e as usize].iter().enumerate() {
            for v in values {
                for (trapped, prefix) in [(false, true), (true, false)] {
                    let world = rng.pick(&worlds).clone();
                    let len = if prefix { rng.below(5) } else { 0 };
                    let calls = trace(&mut rng, &world, len, Some((e, p, v, trapped)));
                    out.push((world, calls));
                }
            }
        }
    }
    for _ in 0..budget {
        let world = rng.pick(&worlds).clone();
        let len = 1 + rng.below(12);
        let calls = trace(&mut rng, &world, len, None);
        out.push((world, calls));
    }
    out
}
