//! The wasmtime judges against the reference interpreter on random traces: for every
//! shipped policy (`policies/*.pol`) alone and for all of them composed, seeded random
//! traces are run through a woven driver module, through the driver under host
//! enforcement, and through the interpreter, and the verdicts (violation, audits,
//! suppressions and their values) must be identical.
use monitor_rt::judge::{Host, Woven};
use policy_lang::interp::{self, TraceEvent, Value, World};
use policy_lang::ir::{ParamType, Program};
use policy_lang::trace::{disagreement, Judge};
use std::path::{Path, PathBuf};

const POLICIES: &[&str] = &[
    "no-exfil",
    "max-windows",
    "no-secrets",
    "stdio-only",
    "tmp-writes",
    "chinese-wall",
    "no-network-errno",
    "audit-files",
];

fn policy_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policies")
        .join(format!("{name}.pol"))
}

fn compile(names: &[&str]) -> Program {
    let paths: Vec<PathBuf> = names.iter().map(|n| policy_path(n)).collect();
    match policy_lang::compile_files(&paths) {
        Ok(c) => c.program,
        Err(d) => panic!("{names:?} do not compile:\n{}", d.render()),
    }
}

/// xorshift64*: deterministic, so a failure is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const INTS: &[i64] = &[
    0,
    1,
    2,
    3,
    4,
    5,
    -1,
    8,
    9,
    64,
    1 << 32 | 1,
    i64::MIN,
    i64::MAX,
];
const STRS: &[&str] = &[
    "/tmp/x",
    "/tmp/../etc/passwd",
    "/tmpfoo",
    "/data/a/r.txt",
    "/data/b/s.txt",
    "/data/a/../b/s",
    "/home/u/.ssh/id_rsa",
    "keys/server.pem",
    "/etc/shadow",
    "notes.txt",
    "",
];

/// Out-pointers the catalogue knows: valid and aligned for every type, or outside memory.
const OUT_POINTERS: &[i64] = &[0, 8, 64, 4096];

fn random_trace(rng: &mut Rng, program: &Program, world: &World, len: usize) -> Vec<TraceEvent> {
    let mut trace: Vec<TraceEvent> = (0..len)
        .map(|_| {
            let event = (rng.next() % program.events.len() as u64) as u32;
            let e = &program.events[event as usize];
            let args = e
                .params
                .iter()
                .map(|p| match p.ty {
                    _ if is_out_pointer(e, &p.name) => match rng.next() % 6 {
                        0 => Value::BadPointer(-1),
                        _ => Value::Int(rng.pick(OUT_POINTERS)),
                    },
                    ParamType::Str if rng.next().is_multiple_of(8) => Value::Str(None),
                    ParamType::Str => Value::Str(Some(rng.pick(STRS).as_bytes().to_vec())),
                    ParamType::F32 | ParamType::F64 => Value::Float(1.5),
                    _ => Value::Int(rng.pick(INTS)),
                })
                .collect();
            TraceEvent {
                event,
                args,
                result: Some(if rng.next().is_multiple_of(2) {
                    0
                } else {
                    rng.pick(INTS)
                }),
                trapped: rng.next().is_multiple_of(16),
                ..TraceEvent::default()
            }
        })
        .collect();
    // What the host hands out, as the trace format's host model does it. Suppression is
    // unknown here; a suppressed open just leaves a number unused.
    policy_lang::trace::hand_out(program, world, &mut trace, &|_| false);
    trace
}

fn is_out_pointer(e: &policy_lang::ir::Event, param: &str) -> bool {
    e.module == policy_lang::wasi::MODULE
        && matches!(
            policy_lang::wasi::role(&e.field, param),
            Some(policy_lang::wasi::Role::Out { .. })
        )
}

/// The worlds random traces run in: nothing preopened, a root, two named directories and
/// one with a relative name.
fn world_of(rng: &mut Rng) -> World {
    match rng.next() % 4 {
        0 => World::default(),
        1 => World::with_preopens(&["/"]),
        2 => World::with_preopens(&["/tmp", "/data"]),
        _ => World::with_preopens(&["/data/a", "."]),
    }
}

#[track_caller]
fn assert_agree(program: &Program, world: &World, trace: &[TraceEvent]) {
    let reference = interp::run_trace_in(program, world, trace);
    for judge in [&Woven as &dyn Judge, &Host] {
        let name = judge.name();
        let v = judge
            .judge(program, world, trace)
            .unwrap_or_else(|e| panic!("the {name} judge failed: {e}\ntrace: {trace:?}"));
        if let Some(d) = disagreement(program, trace, &reference, &v) {
            panic!("{d:?}\nworld: {world:?}\ntrace: {trace:?}\ninterpreter: {reference:?}\n{name}: {v:?}");
        }
    }
}

fn agree_on_random_traces(names: &[&str], seed: u64, traces: usize) {
    let program = compile(names);
    let mut rng = Rng(seed);
    for _ in 0..traces {
        let len = (rng.next() % 12) as usize;
        let world = world_of(&mut rng);
        let trace = random_trace(&mut rng, &program, &world, len);
        assert_agree(&program, &world, &trace);
    }
}

#[test]
fn wasmtime_judges_and_interpreter_agree_on_each_shipped_policy() {
    for (i, name) in POLICIES.iter().enumerate() {
        agree_on_random_traces(&[name], 0x5eed_0000 + i as u64, 50);
    }
}

#[test]
fn wasmtime_judges_and_interpreter_agree_on_all_shipped_policies_composed() {
    agree_on_random_traces(POLICIES, 0x5eed_1111, 120);
}

#[test]
fn wasmtime_judges_and_interpreter_agree_on_the_empty_trace() {
    assert_agree(&compile(POLICIES), &World::default(), &[]);
}
