//! The reference interpreter against hand-built programs: one rule of the normative
//! semantics (`policy_lang::ir`) per test.
use policy_lang::interp::{
    run_trace, Monitor, ObservationKind, Outcome, Report, TraceEvent, Value, Verdict,
};
use policy_lang::ir::{
    BinOp, Event, Expr, Param, ParamType, Pattern, Phase, Policy, Program, RuntimeFault, State,
    Subject, Transition, UnOp, Update, ValType, Var, Verdict as IrVerdict, IR_VERSION,
};

// ---- building programs -------------------------------------------------------------

/// Event 0: `call(fd: i32, path: string, big: i64) -> i32`; event 1: `other(x: i32)`.
fn events() -> Vec<Event> {
    vec![
        Event {
            name: "call".into(),
            module: "env".into(),
            field: "call".into(),
            params: vec![
                Param {
                    name: "fd".into(),
                    ty: ParamType::I32,
                },
                Param {
                    name: "path".into(),
                    ty: ParamType::Str,
                },
                Param {
                    name: "big".into(),
                    ty: ParamType::I64,
                },
            ],
            results: vec![ValType::I32],
        },
        Event {
            name: "other".into(),
            module: "env".into(),
            field: "other".into(),
            params: vec![Param {
                name: "x".into(),
                ty: ParamType::I32,
            }],
            results: vec![],
        },
    ]
}

const CALL: u32 = 0;
const OTHER: u32 = 1;
const FD: u32 = 0;
const PATH: u32 = 1;
const BIG: u32 = 2;

fn policy(name: &str, states: &[&str], vars: Vec<Var>, transitions: Vec<Transition>) -> Policy {
    let states: Vec<&str> = if states.is_empty() {
        vec!["start"]
    } else {
        states.to_vec()
    };
    Policy {
        name: name.into(),
        states: states
            .iter()
            .map(|s| State {
                name: s.to_string(),
            })
            .collect(),
        initial: 0,
        vars,
        sets: vec![],
        transitions,
        allow_shared_memory_strings: false,
        allow_undelivered_audits: false,
    }
}

fn var(name: &str, min: i64, max: i64, init: i64) -> Var {
    Var {
        name: name.into(),
        min,
        max,
        init,
    }
}

/// A pre-phase transition on `event` from state 0 that always fires and allows.
fn on(event: u32) -> Transition {
    Transition {
        event,
        phase: Phase::Pre,
        from: vec![0],
        guard: Expr::Bool(true),
        updates: vec![],
        set_updates: vec![],
        verdict: IrVerdict::Allow,
        next: None,
        reason: None,
        origin: "x.pol:1:1".into(),
    }
}

fn program(policies: Vec<Policy>) -> Program {
    Program {
        version: IR_VERSION,
        events: events(),
        policies,
    }
}

fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::Binary(op, Box::new(a), Box::new(b))
}

fn int(v: i64) -> Expr {
    Expr::Int(v)
}

/// Arguments of `call`.
fn args(fd: i64, path: Option<&str>, big: i64) -> Vec<Value> {
    vec![
        Value::Int(fd),
        Value::Str(path.map(|p| p.as_bytes().to_vec())),
        Value::Int(big),
    ]
}

fn ok_args() -> Vec<Value> {
    args(0, Some(""), 0)
}

/// A policy with one pre transition on `call` whose guard is `guard`, denying with reason "hit".
fn deny_when(guard: Expr) -> Program {
    let mut t = on(CALL);
    t.guard = guard;
    t.verdict = IrVerdict::Deny;
    t.reason = Some("hit".into());
    program(vec![policy("p", &[], vec![], vec![t])])
}

fn denied(step: &policy_lang::interp::Step) -> Option<&Report> {
    match &step.outcome {
        Outcome::Deny(r) => Some(r),
        _ => None,
    }
}

/// Whether `guard` holds for the arguments, via the observable deny.
fn holds(guard: Expr, a: &[Value]) -> bool {
    let prog = deny_when(guard);
    let mut m = Monitor::new(&prog);
    let step = m.pre(CALL, a);
    match denied(&step) {
        Some(r) => {
            assert!(r.fault.is_none(), "unexpected fault: {}", r.reason);
            true
        }
        None => false,
    }
}

/// The value of integer expression `e`, observed through an update of an unbounded variable.
fn value_of(e: Expr, a: &[Value]) -> i64 {
    let mut t = on(CALL);
    t.updates = vec![Update { var: 0, value: e }];
    let prog = program(vec![policy(
        "p",
        &[],
        vec![var("v", i64::MIN, i64::MAX, 0)],
        vec![t],
    )]);
    let mut m = Monitor::new(&prog);
    let step = m.pre(CALL, a);
    assert_eq!(step.outcome, Outcome::Proceed);
    m.var(0, 0)
}

// ---- one policy: firing ----------------------------------------------------------

#[test]
fn no_matching_transition_allows_and_keeps_state_and_vars() {
    let mut t = on(CALL);
    t.guard = bin(BinOp::Eq, Expr::Param(FD), int(7));
    t.next = Some(1);
    t.updates = vec![Update {
        var: 0,
        value: int(1),
    }];
    let prog = program(vec![policy(
        "p",
        &["a", "b"],
        vec![var("v", 0, 1, 0)],
        vec![t],
    )]);
    let mut m = Monitor::new(&prog);
    let step = m.pre(CALL, &ok_args());
    assert_eq!(step.outcome, Outcome::Proceed);
    assert!(step.audits.is_empty());
    assert_eq!((m.state(0), m.var(0, 0)), (0, 0));
}

#[test]
fn first_transition_whose_guard_holds_fires() {
    let mut first = on(CALL);
    first.guard = bin(BinOp::Eq, Expr::Param(FD), int(1));
    first.next = Some(1);
    let mut second = on(CALL);
    second.next = Some(2);
    let mut third = on(CALL);
    third.next = Some(3);
    let prog = program(vec![policy(
        "p",
        &["s0", "s1", "s2", "s3"],
        vec![],
        vec![first, second, third],
    )]);
    let mut m = Monitor::new(&prog);
    m.pre(CALL, &args(5, Some(""), 0));
    assert_eq!(
        m.state(0),
        2,
        "the guard of the first failed, so the second fires, not the third"
    );
}

#[test]
fn transition_fires_only_from_its_from_states() {
    let mut from_b = on(CALL);
    from_b.from = vec![1];
    from_b.verdict = IrVerdict::Deny;
    let prog = program(vec![policy("p", &["a", "b"], vec![], vec![from_b])]);
    let mut m = Monitor::new(&prog);
    assert_eq!(m.pre(CALL, &ok_args()).outcome, Outcome::Proceed);
}

#[test]
fn transition_fires_only_for_its_event() {
    let mut t = on(OTHER);
    t.verdict = IrVerdict::Deny;
    let prog = program(vec![policy("p", &[], vec![], vec![t])]);
    let mut m = Monitor::new(&prog);
    assert_eq!(m.pre(CALL, &ok_args()).outcome, Outcome::Proceed);
}

#[test]
fn firing_transition_moves_to_its_next_state() {
    let mut t = on(CALL);
    t.next = Some(1);
    let prog = program(vec![policy("p", &["a", "b"], vec![], vec![t])]);
    let mut m = Monitor::new(&prog);
    m.pre(CALL, &ok_args());
    assert_eq!(m.state(0), 1);
}

#[test]
fn firing_transition_without_next_keeps_the_state() {
    let mut go = on(CALL);
    go.next = Some(1);
    let mut stay = on(OTHER);
    stay.from = vec![1];
    let prog = program(vec![policy("p", &["a", "b"], vec![], vec![go, stay])]);
    let mut m = Monitor::new(&prog);
    m.pre(CALL, &ok_args());
    m.pre(OTHER, &[Value::Int(0)]);
    assert_eq!(m.state(0), 1);
}

#[test]
fn pre_transitions_do_not_fire_in_the_post_phase() {
    let mut t = on(CALL);
    t.verdict = IrVerdict::Deny;
    let prog = program(vec![policy("p", &[], vec![], vec![t])]);
    let mut m = Monitor::new(&prog);
    assert_eq!(m.post(CALL, &ok_args(), Some(0)).outcome, Outcome::Proceed);
}

#[test]
fn post_transitions_do_not_fire_in_the_pre_phase() {
    let mut t = on(CALL);
    t.phase = Phase::Post;
    t.verdict = IrVerdict::Deny;
    let prog = program(vec![policy("p", &[], vec![], vec![t])]);
    let mut m = Monitor::new(&prog);
    assert_eq!(m.pre(CALL, &ok_args()).outcome, Outcome::Proceed);
    assert!(denied(&m.post(CALL, &ok_args(), Some(0))).is_some());
}

// ---- updates ------------------------------------------------------------------------

#[test]
fn updates_are_simultaneous() {
    let mut t = on(CALL);
    t.updates = vec![
        Update {
            var: 0,
            value: Expr::Var(1),
        },
        Update {
            var: 1,
            value: Expr::Var(0),
        },
    ];
    let prog = program(vec![policy(
        "p",
        &[],
        vec![var("x", 0, 9, 1), var("y", 0, 9, 2)],
        vec![t],
    )]);
    let mut m = Monitor::new(&prog);
    m.pre(CALL, &ok_args());
    assert_eq!((m.var(0, 0), m.var(0, 1)), (2, 1));
}

#[test]
fn update_leaving_the_range_denies_with_a_generated_reason() {
    let mut t = on(CALL);
    t.updates = vec![Update {
        var: 0,
        value: bin(BinOp::Add, Expr::Var(0), int(1)),
    }];
    t.origin = "x.pol:4:3".into();
    let prog = program(vec![policy("p", &[], vec![var("open", 0, 3, 3)], vec![t])]);
    let mut m = Monitor::new(&prog);
    let step = m.pre(CALL, &ok_args());
    let r = denied(&step).expect("deny");
    assert_eq!(
        r.fault,
        Some(RuntimeFault::VarOutOfRange { var: 0, value: 4 })
    );
    assert_eq!(r.transition, Some(0));
    assert_eq!(
        r.reason,
        "variable `open` would leave its range 0..3 (transition at x.pol:4:3)"
    );
    assert_eq!(
        r.fault.as_ref().and_then(|f| f.detail()).as_deref(),
        Some("value 4")
    );
}

#[test]
fn update_below_the_range_also_denies() {
    let mut t = on(CALL);
    t.updates = vec![Update {
        var: 0,
        value: bin(BinOp::Sub, Expr::Var(0), int(1)),
    }];
    let prog = program(vec![policy("p", &[], vec![var("open", 0, 3, 0)], vec![t])]);
    let mut m = Monitor::new(&prog);
    let step = m.pre(CALL, &ok_args());
    assert_eq!(
        denied(&step).and_then(|r| r.fault.clone()),
        Some(RuntimeFault::VarOutOfRange { var: 0, value: -1 })
    );
}

#[test]
fn a_faulting_update_commits_nothing() {
    let mut t = on(CALL);
    t.next = Some(1);
    t.updates = vec![
        Update {
            var: 0,
            value: int(1),
        },
        Update {
            var: 1,
            value: int(100),
        },
    ];
    let prog = program(vec![policy(
        "p",
        &["a", "b"],
        vec![var("x", 0, 1, 0), var("y", 0, 1, 0)],
        vec![t],
    )]);
    let mut m = Monitor::new(&prog);
    m.pre(CALL, &ok_args());
    assert_eq!((m.state(0), m.var(0, 0)), (0, 0));
}

#[test]
fn updates_of_a_deny_transition_are_not_evaluated() {
    let mut t = on(CALL);
    t.verdict = IrVerdict::Deny;
    t.reason = Some("no".into());
    t.updates = vec![Update {
        var: 0,
        value: bin(BinOp::Div, int(1), int(0)),
    }];
    let prog = program(vec![policy("p", &[], vec![var("x", 0, 1, 0)], vec![t])]);
    let mut m = Monitor::new(&prog);
    let step = m.pre(CALL, &ok_args());
    let r = denied(&step).expect("deny");
    assert_eq!((r.fault.clone(), r.reason.as_str()), (None, "no"));
}

#[test]
fn division_by_zero_in_an_update_is_a_fault_of_its_transition() {
    let mut t = on(CALL);
    t.updates = vec![Update {
        var: 0,
        value: bin(BinOp::Rem, int(1), Expr::Param(FD)),
    }];
    t.origin = "x.pol:2:7".into();
    let prog = program(vec![policy("p", &[], vec![var("x", 0, 1, 0)], vec![t])]);
    let mut m = Monitor::new(&prog);
    let step = m.pre(CALL, &ok_args());
    let r = denied(&step).expect("deny");
    assert_eq!(r.fault, Some(RuntimeFault::DivisionByZero));
    assert_eq!(r.transition, Some(0));
    assert_eq!(r.reason, "division by zero (transition at x.pol:2:7)");
}

// ---- arithmetic ---------------------------------------------------------------------

#[test]
fn division_by_zero_in_a_guard_denies_with_a_generated_reason() {
    let mut prog = deny_when(bin(
        BinOp::Eq,
        bin(BinOp::Div, int(10), Expr::Param(FD)),
        int(1),
    ));
    prog.policies[0].transitions[0].origin = "x.pol:3:5".into();
    let mut m = Monitor::new(&prog);
    let step = m.pre(CALL, &ok_args());
    let r = denied(&step).expect("deny");
    assert_eq!(r.fault, Some(RuntimeFault::DivisionByZero));
    assert_eq!(r.reason, "division by zero (transition at x.pol:3:5)");
}

#[test]
fn remainder_by_zero_faults() {
    let prog = deny_when(bin(BinOp::Eq, bin(BinOp::Rem, int(10), int(0)), int(1)));
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert_eq!(
        denied(&step).and_then(|r| r.fault.clone()),
        Some(RuntimeFault::DivisionByZero)
    );
}

#[test]
fn min_divided_by_minus_one_wraps_to_min() {
    assert_eq!(
        value_of(bin(BinOp::Div, int(i64::MIN), int(-1)), &ok_args()),
        i64::MIN
    );
}

#[test]
fn min_remainder_minus_one_is_zero() {
    assert_eq!(
        value_of(bin(BinOp::Rem, int(i64::MIN), int(-1)), &ok_args()),
        0
    );
}

#[test]
fn division_and_remainder_truncate_toward_zero() {
    assert_eq!(value_of(bin(BinOp::Div, int(-7), int(2)), &ok_args()), -3);
    assert_eq!(value_of(bin(BinOp::Rem, int(-7), int(2)), &ok_args()), -1);
}

#[test]
fn addition_and_multiplication_wrap() {
    assert_eq!(
        value_of(bin(BinOp::Add, int(i64::MAX), int(1)), &ok_args()),
        i64::MIN
    );
    assert_eq!(
        value_of(bin(BinOp::Mul, int(i64::MAX), int(2)), &ok_args()),
        -2
    );
}

#[test]
fn negation_of_min_wraps() {
    assert_eq!(
        value_of(Expr::Unary(UnOp::Neg, Box::new(int(i64::MIN))), &ok_args()),
        i64::MIN
    );
}

#[test]
fn shift_counts_are_taken_modulo_64() {
    assert_eq!(value_of(bin(BinOp::Shl, int(1), int(65)), &ok_args()), 2);
    assert_eq!(
        value_of(bin(BinOp::Shl, int(1), int(-1)), &ok_args()),
        i64::MIN
    );
}

#[test]
fn shift_right_is_arithmetic() {
    assert_eq!(value_of(bin(BinOp::Shr, int(-8), int(1)), &ok_args()), -4);
}

#[test]
fn bitwise_operators_and_bit_not() {
    assert_eq!(
        value_of(bin(BinOp::BitAnd, int(0b1100), int(0b1010)), &ok_args()),
        0b1000
    );
    assert_eq!(
        value_of(bin(BinOp::BitOr, int(0b1100), int(0b1010)), &ok_args()),
        0b1110
    );
    assert_eq!(
        value_of(bin(BinOp::BitXor, int(0b1100), int(0b1010)), &ok_args()),
        0b0110
    );
    assert_eq!(
        value_of(Expr::Unary(UnOp::BitNot, Box::new(int(0))), &ok_args()),
        -1
    );
}

#[test]
fn comparisons_are_signed() {
    assert!(holds(bin(BinOp::Lt, int(-1), int(0)), &ok_args()));
    assert!(holds(bin(BinOp::Ge, int(0), int(-1)), &ok_args()));
    assert!(!holds(bin(BinOp::Le, int(1), int(0)), &ok_args()));
    assert!(holds(bin(BinOp::Ne, int(1), int(0)), &ok_args()));
}

#[test]
fn boolean_not_negates_a_guard() {
    assert!(holds(
        Expr::Unary(UnOp::Not, Box::new(Expr::Bool(false))),
        &ok_args()
    ));
}

// ---- arguments and results ---------------------------------------------------------

#[test]
fn i32_arguments_are_sign_extended() {
    assert_eq!(
        value_of(Expr::Param(FD), &args(0xFFFF_FFFF, Some(""), 0)),
        -1
    );
}

#[test]
fn i32_arguments_keep_only_their_low_32_bits() {
    assert_eq!(
        value_of(Expr::Param(FD), &args(0x1_0000_0005, Some(""), 0)),
        5
    );
}

#[test]
fn i64_arguments_are_taken_as_is() {
    assert_eq!(
        value_of(Expr::Param(BIG), &args(0, Some(""), 0xFFFF_FFFF)),
        0xFFFF_FFFF
    );
}

#[test]
fn missing_integer_arguments_read_as_zero() {
    assert_eq!(value_of(Expr::Param(BIG), &[Value::Int(3)]), 0);
}

#[test]
fn post_phase_reads_the_sign_extended_result() {
    let mut t = on(CALL);
    t.phase = Phase::Post;
    t.updates = vec![Update {
        var: 0,
        value: Expr::Result,
    }];
    let prog = program(vec![policy("p", &[], vec![var("r", -10, 10, 0)], vec![t])]);
    let mut m = Monitor::new(&prog);
    m.post(CALL, &ok_args(), Some(0xFFFF_FFFF));
    assert_eq!(m.var(0, 0), -1);
}

// ---- strings ------------------------------------------------------------------------

#[test]
fn string_guards_test_exact_prefix_and_glob() {
    let exact = Expr::Str(Subject::Raw(PATH), Pattern::Exact("/etc/shadow".into()));
    let prefix = Expr::Str(Subject::Raw(PATH), Pattern::Prefix("/tmp/".into()));
    let glob = Expr::Str(Subject::Raw(PATH), Pattern::Glob("**/*.pem".into()));
    assert!(holds(exact.clone(), &args(0, Some("/etc/shadow"), 0)));
    assert!(!holds(exact, &args(0, Some("/etc/shadow2"), 0)));
    assert!(holds(prefix.clone(), &args(0, Some("/tmp/x"), 0)));
    assert!(!holds(prefix, &args(0, Some("/tmpx"), 0)));
    assert!(holds(glob.clone(), &args(0, Some("a/b/key.pem"), 0)));
    assert!(!holds(glob, &args(0, Some("a/b/key.pem.txt"), 0)));
}

#[test]
fn out_of_bounds_string_faults_when_a_guard_reads_it() {
    let mut prog = deny_when(Expr::Str(
        Subject::Raw(PATH),
        Pattern::Prefix("/tmp/".into()),
    ));
    prog.policies[0].transitions[0].origin = "x.pol:3:5".into();
    let step = Monitor::new(&prog).pre(CALL, &args(0, None, 0));
    let r = denied(&step).expect("deny");
    assert_eq!(
        r.fault,
        Some(RuntimeFault::StringOutOfBounds { param: PATH })
    );
    assert_eq!(
        r.reason,
        "string argument `path` is outside memory (transition at x.pol:3:5)"
    );
}

#[test]
fn out_of_bounds_string_is_harmless_when_no_guard_reads_it() {
    let prog = deny_when(bin(BinOp::Eq, Expr::Param(FD), int(9)));
    let step = Monitor::new(&prog).pre(CALL, &args(0, None, 0));
    assert_eq!(step.outcome, Outcome::Proceed);
}

#[test]
fn and_does_not_read_the_right_side_when_the_left_is_false() {
    let guard = bin(
        BinOp::And,
        bin(BinOp::Gt, Expr::Param(FD), int(0)),
        Expr::Str(Subject::Raw(PATH), Pattern::Glob("/tmp/**".into())),
    );
    let prog = deny_when(guard);
    let step = Monitor::new(&prog).pre(CALL, &args(0, None, 0));
    assert_eq!(step.outcome, Outcome::Proceed);
}

#[test]
fn or_does_not_read_the_right_side_when_the_left_is_true() {
    let guard = bin(BinOp::Or, Expr::Bool(true), bin(BinOp::Div, int(1), int(0)));
    let prog = deny_when(guard);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert_eq!(denied(&step).map(|r| r.fault.clone()), Some(None));
}

#[test]
fn a_faulting_guard_denies_even_if_a_later_transition_would_allow() {
    let mut faulty = on(CALL);
    faulty.guard = Expr::Str(Subject::Raw(PATH), Pattern::Exact("x".into()));
    let allow = on(CALL);
    let prog = program(vec![policy("p", &[], vec![], vec![faulty, allow])]);
    let step = Monitor::new(&prog).pre(CALL, &args(0, None, 0));
    assert!(denied(&step).is_some());
}

// ---- verdicts and reasons ----------------------------------------------------------

#[test]
fn deny_without_reason_text_derives_it_from_the_origin() {
    let mut t = on(CALL);
    t.verdict = IrVerdict::Deny;
    t.origin = "x.pol:4:3".into();
    let prog = program(vec![policy("p", &[], vec![], vec![t])]);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert_eq!(
        denied(&step).map(|r| r.reason.as_str()),
        Some("transition at x.pol:4:3")
    );
}

#[test]
fn suppress_returns_its_value_and_names_the_transition() {
    let mut t = on(CALL);
    t.verdict = IrVerdict::Suppress(Some(2));
    t.reason = Some("off".into());
    let prog = program(vec![policy("p", &[], vec![], vec![t])]);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert_eq!(step.outcome, Outcome::Suppress(Some(2)));
    let by = step.suppressed_by.expect("suppressor");
    assert_eq!(
        (by.policy, by.transition, by.reason.as_str()),
        (0, Some(0), "off")
    );
}

#[test]
fn audit_allows_and_reports() {
    let mut t = on(CALL);
    t.verdict = IrVerdict::Audit;
    t.reason = Some("seen".into());
    let prog = program(vec![policy("p", &[], vec![], vec![t])]);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert_eq!(step.outcome, Outcome::Proceed);
    assert_eq!(
        step.audits
            .iter()
            .map(|a| a.reason.as_str())
            .collect::<Vec<_>>(),
        ["seen"]
    );
}

#[test]
fn audit_with_a_next_state_also_moves() {
    let mut t = on(CALL);
    t.verdict = IrVerdict::Audit;
    t.next = Some(1);
    let prog = program(vec![policy("p", &["a", "b"], vec![], vec![t])]);
    let mut m = Monitor::new(&prog);
    m.pre(CALL, &ok_args());
    assert_eq!(m.state(0), 1);
}

#[test]
fn suppress_in_the_post_phase_acts_as_allow() {
    let mut t = on(CALL);
    t.phase = Phase::Post;
    t.verdict = IrVerdict::Suppress(Some(1));
    let prog = program(vec![policy("p", &[], vec![], vec![t])]);
    let step = Monitor::new(&prog).post(CALL, &ok_args(), Some(0));
    assert_eq!(step.outcome, Outcome::Proceed);
}

// ---- composition --------------------------------------------------------------------

fn with_verdict(v: IrVerdict, reason: &str) -> Transition {
    let mut t = on(CALL);
    t.verdict = v;
    t.reason = Some(reason.into());
    t
}

#[test]
fn first_denying_policy_in_program_order_is_reported() {
    let prog = program(vec![
        policy("a", &[], vec![], vec![with_verdict(IrVerdict::Allow, "a")]),
        policy("b", &[], vec![], vec![with_verdict(IrVerdict::Deny, "b")]),
        policy("c", &[], vec![], vec![with_verdict(IrVerdict::Deny, "c")]),
    ]);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert_eq!(
        denied(&step).map(|r| (r.policy, r.reason.as_str())),
        Some((1, "b"))
    );
}

#[test]
fn deny_wins_over_an_earlier_suppress() {
    let prog = program(vec![
        policy(
            "a",
            &[],
            vec![],
            vec![with_verdict(IrVerdict::Suppress(Some(1)), "a")],
        ),
        policy("b", &[], vec![], vec![with_verdict(IrVerdict::Deny, "b")]),
    ]);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert_eq!(denied(&step).map(|r| r.policy), Some(1));
}

#[test]
fn a_fault_in_a_later_policy_still_denies() {
    let mut faulty = on(CALL);
    faulty.guard = bin(BinOp::Eq, bin(BinOp::Div, int(1), int(0)), int(0));
    let prog = program(vec![
        policy("a", &[], vec![], vec![with_verdict(IrVerdict::Audit, "a")]),
        policy("b", &[], vec![], vec![faulty]),
    ]);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert_eq!(denied(&step).map(|r| r.policy), Some(1));
}

#[test]
fn first_suppressing_policy_decides_the_return_value() {
    let prog = program(vec![
        policy(
            "a",
            &[],
            vec![],
            vec![with_verdict(IrVerdict::Suppress(Some(7)), "a")],
        ),
        policy(
            "b",
            &[],
            vec![],
            vec![with_verdict(IrVerdict::Suppress(Some(9)), "b")],
        ),
    ]);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert_eq!(step.outcome, Outcome::Suppress(Some(7)));
}

#[test]
fn audits_of_every_policy_are_reported_in_program_order() {
    let prog = program(vec![
        policy("a", &[], vec![], vec![with_verdict(IrVerdict::Audit, "a")]),
        policy(
            "b",
            &[],
            vec![],
            vec![with_verdict(IrVerdict::Suppress(None), "b")],
        ),
        policy("c", &[], vec![], vec![with_verdict(IrVerdict::Audit, "c")]),
    ]);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    let audits: Vec<_> = step
        .audits
        .iter()
        .map(|a| (a.policy, a.reason.as_str()))
        .collect();
    assert_eq!(audits, [(0, "a"), (2, "c")]);
}

#[test]
fn audits_are_dropped_when_the_call_is_denied() {
    let prog = program(vec![
        policy("a", &[], vec![], vec![with_verdict(IrVerdict::Audit, "a")]),
        policy("b", &[], vec![], vec![with_verdict(IrVerdict::Deny, "b")]),
    ]);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert!(step.audits.is_empty());
}

#[test]
fn every_policy_commits_its_step_when_another_suppresses() {
    let mut moves = on(CALL);
    moves.next = Some(1);
    let prog = program(vec![
        policy(
            "a",
            &[],
            vec![],
            vec![with_verdict(IrVerdict::Suppress(Some(0)), "a")],
        ),
        policy("b", &["x", "y"], vec![], vec![moves]),
    ]);
    let mut m = Monitor::new(&prog);
    m.pre(CALL, &ok_args());
    assert_eq!(m.state(1), 1);
}

#[test]
fn every_policy_steps_against_the_state_before_the_call() {
    // Policy b's step must not see policy a's update: they are independent automata.
    let mut a = on(CALL);
    a.next = Some(1);
    let mut b = on(CALL);
    b.verdict = IrVerdict::Deny;
    b.from = vec![1];
    let prog = program(vec![
        policy("a", &["x", "y"], vec![], vec![a]),
        policy("b", &["x", "y"], vec![], vec![b]),
    ]);
    let step = Monitor::new(&prog).pre(CALL, &ok_args());
    assert_eq!(step.outcome, Outcome::Proceed);
}

// ---- whole traces -----------------------------------------------------------------

fn call(fd: i64) -> TraceEvent {
    TraceEvent {
        event: CALL,
        args: args(fd, Some(""), 0),
        result: None,
        ..TraceEvent::default()
    }
}

#[test]
fn run_trace_reports_the_first_violation_with_a_one_based_step() {
    let prog = deny_when(bin(BinOp::Eq, Expr::Param(FD), int(2)));
    let v = run_trace(&prog, &[call(1), call(2), call(2)]);
    let violation = v.violation.expect("violation");
    assert_eq!(
        (
            violation.step,
            violation.phase,
            violation.policy.as_str(),
            violation.reason.as_str()
        ),
        (2, Phase::Pre, "p", "hit")
    );
}

#[test]
fn run_trace_accepts_a_trace_without_denies() {
    let prog = deny_when(Expr::Bool(false));
    assert_eq!(run_trace(&prog, &[call(1), call(2)]), Verdict::default());
}

#[test]
fn run_trace_feeds_the_given_result_to_the_post_phase() {
    let mut t = on(CALL);
    t.phase = Phase::Post;
    t.guard = bin(BinOp::Lt, Expr::Result, int(0));
    t.verdict = IrVerdict::Deny;
    let prog = program(vec![policy("p", &[], vec![], vec![t])]);
    let mut failing = call(0);
    failing.result = Some(-1);
    let v = run_trace(&prog, &[call(0), failing]);
    let violation = v.violation.expect("violation");
    assert_eq!((violation.step, violation.phase), (2, Phase::Post));
}

#[test]
fn run_trace_skips_the_post_phase_of_a_suppressed_call() {
    let mut post = on(CALL);
    post.phase = Phase::Post;
    post.verdict = IrVerdict::Deny;
    let prog = program(vec![
        policy(
            "a",
            &[],
            vec![],
            vec![with_verdict(IrVerdict::Suppress(Some(0)), "s")],
        ),
        policy("b", &[], vec![], vec![post]),
    ]);
    assert!(run_trace(&prog, &[call(0)]).accepted());
}

#[test]
fn run_trace_records_audits_and_suppressions_with_their_steps() {
    let mut audit = with_verdict(IrVerdict::Audit, "seen");
    audit.guard = bin(BinOp::Eq, Expr::Param(FD), int(1));
    let mut sup = with_verdict(IrVerdict::Suppress(Some(2)), "off");
    sup.guard = bin(BinOp::Eq, Expr::Param(FD), int(2));
    let prog = program(vec![policy("p", &[], vec![], vec![audit, sup])]);
    let v = run_trace(&prog, &[call(1), call(2)]);
    let seen: Vec<_> = v
        .observations
        .iter()
        .map(|o| (o.step, o.kind.clone(), o.reason.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, ObservationKind::Audit, "seen"),
            (2, ObservationKind::Suppress(Some(2)), "off")
        ]
    );
}

#[test]
fn run_trace_observes_nothing_after_the_violation() {
    let audit = with_verdict(IrVerdict::Audit, "seen");
    let mut deny = on(OTHER);
    deny.verdict = IrVerdict::Deny;
    let prog = program(vec![policy("p", &[], vec![], vec![audit, deny])]);
    let other = TraceEvent {
        event: OTHER,
        args: vec![Value::Int(0)],
        result: None,
        ..TraceEvent::default()
    };
    let v = run_trace(&prog, &[call(0), other, call(0)]);
    assert_eq!(v.observations.len(), 1);
    assert_eq!(v.violation.map(|x| x.step), Some(2));
}
