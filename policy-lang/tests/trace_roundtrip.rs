//! The trace writer and reader are inverses: every trace file the reader can produce is
//! written as text that reads back as the same file (line numbers aside).
use policy_lang::interp::{TraceEvent, Value, World};
use policy_lang::ir::{ParamType, Program};
use policy_lang::trace::{self, Expect, ExpectKind, Expectation, Step, Trace, TraceFile};
use policy_lang::Source;
use proptest::prelude::*;
use std::sync::OnceLock;

/// Events of every parameter type, with and without a result, and two policies.
fn program() -> &'static Program {
    static P: OnceLock<Program> = OnceLock::new();
    P.get_or_init(|| {
        let text = r#"
            event every = env.every(i: i32, l: i64, f: f32, d: f64, s: string) -> i32;
            event wide = env.wide(path: string) -> i64;
            event quiet = "my-host"."quiet-call"(x: i32);
            policy p { on every -> audit; }
            policy q_2 { on quiet -> audit; }
        "#;
        policy_lang::compile(&[Source {
            name: "roundtrip.pol".into(),
            text: text.into(),
        }])
        .unwrap_or_else(|d| panic!("{}", d.render()))
        .program
    })
}

fn any_int() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0),
        -5i64..5
    ]
}

/// Any UTF-8 text, including quotes, backslashes, control characters and non-ASCII.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z \"\\\\\n\t\r\u{0}é😀]{0,12}"]
}

fn value(ty: ParamType) -> BoxedStrategy<Value> {
    match ty {
        ParamType::I32 | ParamType::I64 => prop_oneof![
            4 => any_int().prop_map(Value::Int),
            1 => Just(Value::BadPointer(-1)),
        ]
        .boxed(),
        // The format has only integer constants.
        ParamType::F32 | ParamType::F64 => {
            any::<i32>().prop_map(|v| Value::Float(v as f64)).boxed()
        }
        ParamType::Str => prop_oneof![
            Just(Value::Str(None)),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(|b| Value::Str(Some(b))),
        ]
        .boxed(),
    }
}

fn policy_name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), Just(Some("p".into())), Just(Some("q_2".into()))]
}

fn expectation() -> impl Strategy<Value = Expectation> {
    let kind = prop_oneof![
        Just(ExpectKind::Audit),
        Just(ExpectKind::Suppress(None)),
        any_int().prop_map(|v| ExpectKind::Suppress(Some(v))),
    ];
    (kind, proptest::option::of(any_text()), policy_name()).prop_map(|(kind, reason, policy)| {
        Expectation {
            kind,
            reason,
            policy,
        }
    })
}

fn step() -> impl Strategy<Value = Step> {
    let program = program();
    // The declared events; the WASI ones tracking adds get what the host hands out from
    // the parser (tests/traces.rs has theirs).
    let declared = program
        .events
        .iter()
        .filter(|e| !policy_lang::wasi::is_wasi_module(&e.module))
        .count();
    (0..declared).prop_flat_map(move |e| {
        let event = &program.events[e];
        let args: Vec<BoxedStrategy<Value>> = event.params.iter().map(|p| value(p.ty)).collect();
        let result = if event.results.is_empty() {
            Just(None).boxed()
        } else {
            proptest::option::of(any_int()).boxed()
        };
        (
            args,
            result,
            any::<bool>(),
            proptest::collection::vec(expectation(), 0..3),
        )
            .prop_map(move |(args, result, trapped, expect)| Step {
                call: TraceEvent {
                    event: e as u32,
                    args,
                    // A call that trapped returned nothing.
                    result: if trapped { None } else { result },
                    trapped,
                    ..TraceEvent::default()
                },
                expect,
                line: 0,
            })
    })
}

fn world() -> impl Strategy<Value = World> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..12), 0..3)
        .prop_map(|preopens| World { preopens })
}

fn trace() -> impl Strategy<Value = Trace> {
    (any_text(), world(), proptest::collection::vec(step(), 0..6)).prop_flat_map(
        |(name, world, steps)| {
            let n = steps.len();
            let reject = (
                1..=n.max(1),
                prop_oneof![Just("p".to_string()), Just("q_2".to_string())],
                proptest::option::of(any_text()),
            )
                .prop_map(|(step, policy, reason)| Expect::Reject {
                    step,
                    policy,
                    reason,
                });
            let expect = if n == 0 {
                Just(Expect::Accept).boxed()
            } else {
                prop_oneof![Just(Expect::Accept), reject].boxed()
            };
            expect.prop_map(move |expect| Trace {
                name: name.clone(),
                expect,
                world: world.clone(),
                steps: steps.clone(),
                line: 0,
            })
        },
    )
}

fn trace_file() -> impl Strategy<Value = TraceFile> {
    (
        proptest::collection::vec(any_text(), 0..3),
        proptest::collection::vec(trace(), 0..4),
    )
        .prop_map(|(with, mut traces)| {
            // Names are unique within a file.
            for (i, t) in traces.iter_mut().enumerate() {
                t.name = format!("{i} {}", t.name);
            }
            TraceFile { with, traces }
        })
}

/// The file without its line numbers.
fn unlocated(mut f: TraceFile) -> TraceFile {
    for t in &mut f.traces {
        t.line = 0;
        for s in &mut t.steps {
            s.line = 0;
        }
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_written_trace_file_reads_back_as_itself(file in trace_file()) {
        let text = trace::write(program(), &file);
        let read = trace::parse_traces("w.traces", &text, program(), &trace::wasi_constants)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        prop_assert_eq!(unlocated(read), file, "{}", text);
    }

    #[test]
    fn the_reader_locates_each_written_step_on_its_own_line(file in trace_file()) {
        let text = trace::write(program(), &file);
        let read = trace::parse_traces("w.traces", &text, program(), &trace::wasi_constants)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let lines: Vec<&str> = text.lines().collect();
        for t in &read.traces {
            prop_assert!(lines[t.line - 1].starts_with("accept ") || lines[t.line - 1].starts_with("reject "));
            for s in &t.steps {
                let name = &program().events[s.call.event as usize].name;
                prop_assert!(lines[s.line - 1].starts_with(&format!("  {name}(")), "{}", text);
            }
        }
    }
}
