//! The `.traces` format as the reader sees it (values, then located errors), and how
//! traces are judged: expectations, judges that disagree or fail, and the report.
use policy_lang::interp::{self, TraceEvent, Value, Verdict, World};
use policy_lang::ir::Program;
use policy_lang::trace::{self, Interpreter, Judge, JudgeResult, Parting, Problem, Report};
use policy_lang::Source;

const POLICY: &str = r#"
    policy p {
      on fd_write when fd == 3 -> deny "no fd 3";
      on path_open when path startswith "/etc" -> audit "etc";
      on sock_send -> suppress ERRNO_ACCES "offline";
    }
"#;

fn program() -> Program {
    policy_lang::compile(&[Source {
        name: "p.pol".into(),
        text: POLICY.into(),
    }])
    .unwrap_or_else(|d| panic!("{}", d.render()))
    .program
}

fn parse(text: &str) -> Result<trace::TraceFile, trace::TraceError> {
    trace::parse_traces("t.traces", text, &program(), &trace::wasi_constants)
}

/// The first call of the only trace of `steps`.
fn first_call(steps: &str) -> TraceEvent {
    let text = format!("accept \"t\" {{ {steps} }}");
    let file = parse(&text).unwrap_or_else(|e| panic!("{e}"));
    file.traces[0].steps[0].call.clone()
}

/// `line:col: message` of the error `text` gets.
fn error(text: &str) -> String {
    let d = parse(text).expect_err("an error").diagnostic().clone();
    format!("{}:{}: {}", d.line, d.col, d.message)
}

fn arg(call: &TraceEvent, name: &str) -> Value {
    let e = &program().events[call.event as usize];
    let i = e
        .params
        .iter()
        .position(|p| p.name == name)
        .expect("a parameter");
    call.args[i].clone()
}

// ---- reading ------------------------------------------------------------------------

#[test]
fn arguments_are_given_by_name_and_missing_ones_are_zero_or_empty() {
    let call = first_call("path_open(path=\"/etc/passwd\", fd=3) -> 5");
    assert_eq!(arg(&call, "fd"), Value::Int(3));
    assert_eq!(
        arg(&call, "path"),
        Value::Str(Some(b"/etc/passwd".to_vec()))
    );
    assert_eq!(arg(&call, "oflags"), Value::Int(0));
    assert_eq!(call.result, Some(5));
    assert_eq!(first_call("sock_send()").args[0], Value::Int(0));
    assert_eq!(
        arg(&first_call("path_open()"), "path"),
        Value::Str(Some(vec![]))
    );
}

#[test]
fn integer_values_are_constant_expressions_with_c_precedence() {
    for (text, want) in [
        ("1|2<<3", 17),
        ("-(1+2)*3", -9),
        ("~0", -1),
        ("6^3&1", 7),
        ("0xffffffffffffffff", -1),
        ("1_000", 1000),
        ("OFLAGS_CREAT|OFLAGS_TRUNC", 1 | 8),
        ("(-9223372036854775807 - 1)", i64::MIN),
    ] {
        let call = first_call(&format!("fd_write(fd={text})"));
        assert_eq!(arg(&call, "fd"), Value::Int(want), "{text}");
    }
}

#[test]
fn strings_decode_escapes_and_oob_is_outside_memory() {
    let call = first_call(r#"path_open(path="a\"\\\n\t\r\0\x7fé")"#);
    assert_eq!(
        arg(&call, "path"),
        Value::Str(Some(b"a\"\\\n\t\r\0\x7f\xc3\xa9".to_vec()))
    );
    assert_eq!(
        arg(&first_call("path_open(path=oob)"), "path"),
        Value::Str(None)
    );
}

#[test]
fn a_suppression_value_is_optional_even_before_the_next_step() {
    let file = parse(
        "accept \"t\" {\n  sock_send() => suppress\n  sock_send() => suppress ERRNO_ACCES\n  fd_write()\n}",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let steps = &file.traces[0].steps;
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0].expect[0].kind, trace::ExpectKind::Suppress(None));
    assert_eq!(
        steps[1].expect[0].kind,
        trace::ExpectKind::Suppress(Some(2))
    );
    assert_eq!(
        steps.iter().map(|s| s.line).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
}

#[test]
fn with_lines_name_the_policies_to_compose_with() {
    let text = "// header\nwith \"a.pol\";\nwith \"dir/b.pol\"\naccept \"t\" {}";
    assert_eq!(
        trace::parse_with_lines("t.traces", text).expect("parses"),
        vec!["a.pol", "dir/b.pol"]
    );
    assert_eq!(
        error("accept \"t\" {}\nwith \"late.pol\";"),
        "2:1: `with` lines must come before the first trace"
    );
}

#[test]
fn unknown_names_are_located_and_get_a_suggestion() {
    assert_eq!(
        error("accept \"t\" { fd_wirte() }"),
        "1:14: unknown event `fd_wirte`; did you mean `fd_write`?"
    );
    assert_eq!(
        error("accept \"t\" { fd_write(fdd=1) }"),
        "1:23: `fd_write` has no parameter `fdd`; did you mean `fd`?"
    );
    assert_eq!(
        error("accept \"t\" { fd_write(fd=ERRNO_ACCESS) }"),
        "1:26: unknown constant `ERRNO_ACCESS`; did you mean `ERRNO_ACCES`?"
    );
    assert_eq!(
        error("reject \"t\" at 1 by q { fd_write() }"),
        "1:20: no policy named `q`; did you mean `p`?"
    );
}

#[test]
fn values_must_fit_their_parameter() {
    assert_eq!(
        error("accept \"t\" { fd_write(fd=\"3\") }"),
        "1:26: `fd` is an integer, not a string"
    );
    assert_eq!(
        error("accept \"t\" { path_open(path=3) }"),
        "1:29: `path` is a string: give a quoted string or `oob`"
    );
    assert_eq!(
        error("accept \"t\" { fd_write(fd=1, fd=2) }"),
        "1:29: parameter `fd` is given twice"
    );
    assert_eq!(
        error("accept \"t\" { fd_write(fd=0xZZ) }"),
        "1:26: `0xZZ` is not a valid integer"
    );
}

#[test]
fn syntax_errors_say_what_was_expected_and_what_was_found() {
    assert_eq!(
        error("acept \"t\" {}"),
        "1:1: expected `accept` or `reject`, found `acept`"
    );
    assert_eq!(
        error("accept t {}"),
        "1:8: expected the trace's name in quotes, found `t`"
    );
    assert_eq!(
        error("reject \"t\" { fd_write() }"),
        "1:12: expected `at STEP` (the 1-based step of the first deny), found `{`"
    );
    assert_eq!(
        error("accept \"t\" { fd_write(fd) }"),
        "1:25: expected `=`, found `)`"
    );
    assert_eq!(
        error("accept \"t\" { fd_write() => nothing }"),
        "1:28: expected `audit` or `suppress`, found `nothing`"
    );
    assert_eq!(
        error("accept \"t\" { fd_write() => audit by }"),
        "1:37: expected a policy name, found `}`"
    );
    assert_eq!(
        error("accept \"t\" { fd_write() @ }"),
        "1:25: unexpected character `@`"
    );
}

#[test]
fn unterminated_strings_comments_and_traces_are_reported_where_they_start() {
    assert_eq!(
        error("accept \"t\" { path_open(path=\"abc) }"),
        "1:29: unterminated string"
    );
    assert_eq!(
        error("accept \"t\" {}\n/* never closed"),
        "2:1: unterminated block comment"
    );
    assert_eq!(
        error("\naccept \"t\" { fd_write()"),
        "2:1: this trace's `{` is never closed"
    );
}

#[test]
fn trace_headers_are_checked_against_their_steps_and_each_other() {
    assert_eq!(
        error("reject \"t\" at 2 by p { fd_write(fd=3) }"),
        "1:1: the trace expects a deny at step 2 but has only 1 steps"
    );
    assert_eq!(
        error("reject \"t\" at 0 by p { fd_write(fd=3) }"),
        "1:15: expected a step number (1 or more)"
    );
    assert_eq!(
        error("accept \"t\" {}\naccept \"t\" {}"),
        "2:1: a trace named \"t\" already exists in this file"
    );
}

#[test]
fn an_error_renders_like_a_compiler_diagnostic() {
    let e = parse("accept \"t\" {\n\tfd_wirte()\n}").expect_err("an error");
    assert_eq!(
        e.to_string(),
        "error: unknown event `fd_wirte`; did you mean `fd_write`?\n  --> t.traces:2:2\n   |\n 2 |     fd_wirte()\n   |     ^^^^^^^^"
    );
}

// ---- judging ------------------------------------------------------------------------

/// The trace file's traces with the reference verdict on each.
fn traces(text: &str) -> (Program, Vec<trace::Trace>) {
    let file = parse(text).unwrap_or_else(|e| panic!("{e}"));
    (program(), file.traces)
}

#[test]
fn a_verdict_as_expected_checks_out() {
    let (p, ts) = traces(
        "reject \"t\" at 3 by p \"no fd 3\" {\n path_open(path=\"/etc/x\") => audit \"etc\" by p\n sock_send() => suppress ERRNO_ACCES\n fd_write(fd=3)\n}",
    );
    let v = interp::run_trace(&p, &ts[0].events());
    assert_eq!(trace::check(&p, &ts[0], &v), Ok(()));
}

#[test]
fn every_difference_from_the_expectation_is_described() {
    let (p, ts) = traces("accept \"t\" {\n  path_open(path=\"/etc/x\")\n  fd_write(fd=3)\n}");
    let v = interp::run_trace(&p, &ts[0].events());
    assert_eq!(
        trace::check(&p, &ts[0], &v),
        Err(
            "expected accept\n     got deny at step 2 (fd_write) by p \"no fd 3\"\n\
             step 1 (line 2): expected nothing\n     got audit \"etc\" by p"
                .to_string()
        )
    );
}

/// A judge that always returns the same verdict, or fails.
struct Fixed(&'static str, Option<Verdict>);

impl Judge for Fixed {
    fn name(&self) -> &str {
        self.0
    }
    fn judge(&self, _: &Program, _: &World, _: &[TraceEvent]) -> JudgeResult {
        self.1.clone().ok_or_else(|| "no engine".into())
    }
}

#[test]
fn a_judge_that_reaches_no_verdict_is_a_problem_of_its_own() {
    let (p, ts) = traces("accept \"t\" { fd_write(fd=1) }");
    let r = trace::judge_trace(&p, &ts[0], &[&Interpreter, &Fixed("broken", None)]);
    assert_eq!(
        r.problems,
        vec![Problem::NoVerdict {
            judge: "broken".into(),
            error: "no engine".into()
        }]
    );
}

#[test]
fn judges_must_agree_with_the_first_one() {
    let (p, ts) = traces("accept \"t\" { path_open(path=\"/etc/x\") => audit }");
    let silent = Fixed("silent", Some(Verdict::default()));
    let r = trace::judge_trace(&p, &ts[0], &[&Interpreter, &silent]);
    assert!(matches!(
        &r.problems[..],
        [
            Problem::Unexpected { judge, .. },
            Problem::Disagreement {
                parting: Parting::Step(1),
                ..
            }
        ] if judge == "silent"
    ));
    assert_eq!(
        r.problems[1].to_string(),
        "[disagreement] interpreter and silent differ on what step 1 reports\n  \
         interpreter: accept; step 1: audit \"etc\" by p\n  silent:      accept"
    );
}

#[test]
fn disagreement_ignores_the_wording_of_faults_but_not_the_outcome() {
    let (p, ts) = traces("accept \"t\" { path_open(path=oob) }");
    let events = ts[0].events();
    let reference = interp::run_trace(&p, &events);
    let fault = reference
        .violation
        .clone()
        .expect("an out-of-bounds string is a fault");
    assert!(fault.fault.is_some());
    let mut reworded = reference.clone();
    reworded.violation.as_mut().unwrap().reason = "other words".into();
    assert_eq!(
        trace::disagreement(&p, &events, &reference, &reworded),
        None
    );
    assert_eq!(
        trace::disagreement(&p, &events, &reference, &Verdict::default()),
        Some(Parting::Outcome)
    );
}

#[test]
fn the_report_lists_each_trace_and_counts_failures() {
    let (p, ts) = traces("accept \"fine\" { fd_write(fd=1) }\naccept \"wrong\" { fd_write(fd=3) }");
    let mut out = Vec::new();
    let mut report = Report::new(&mut out);
    report.file("dir/p.traces".as_ref()).unwrap();
    for t in &ts {
        report
            .trace(&trace::judge_trace(&p, t, &[&Interpreter]))
            .unwrap();
    }
    report.totals().unwrap();
    assert_eq!((report.passed, report.failed), (1, 1));
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "dir/p.traces\n  ok    fine\n  FAIL  wrong (line 2)\n        [interpreter]\n        \
         expected accept\n             got deny at step 1 (fd_write) by p \"no fd 3\"\n1 passed, 1 failed\n"
    );
}

// ---- the host's side: preopens, what it hands out, traps -------------------------------

fn first_trace(text: &str) -> trace::Trace {
    parse(text).unwrap_or_else(|e| panic!("{e}")).traces[0].clone()
}

#[test]
fn preopen_lines_before_the_traces_give_every_trace_its_directories() {
    let t = first_trace("preopen \"/tmp\"; preopen \"/data\";\naccept \"t\" { fd_write(fd=1) }");
    assert_eq!(t.world, World::with_preopens(&["/tmp", "/data"]));
}

#[test]
fn preopen_lines_inside_a_trace_replace_the_files() {
    let f = parse(
        "preopen \"/tmp\";\naccept \"a\" { preopen \"/\"; fd_write(fd=1) }\naccept \"b\" { }",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.traces[0].world, World::with_preopens(&["/"]));
    assert_eq!(f.traces[1].world, World::with_preopens(&["/tmp"]));
}

#[test]
fn a_preopen_line_after_a_trace_is_an_error() {
    let e = parse("accept \"a\" { }\npreopen \"/tmp\";").unwrap_err();
    assert!(e.to_string().contains("before the first trace"), "{e}");
}

#[test]
fn a_successful_open_gets_the_lowest_free_descriptor_after_the_preopens() {
    let t = first_trace(
        "preopen \"/tmp\";\naccept \"t\" {\n  path_open(fd=3, path=\"a\")\n  path_open(fd=3, path=\"b\", oflags=OFLAGS_DIRECTORY)\n}",
    );
    let opened: Vec<_> = t.steps.iter().map(|s| s.call.opened.unwrap()).collect();
    assert_eq!((opened[0].fd, opened[0].filetype), (4, 4));
    assert_eq!((opened[1].fd, opened[1].filetype), (5, 3));
}

#[test]
fn a_closed_descriptor_is_handed_out_again() {
    let t = first_trace(
        "preopen \"/tmp\";\naccept \"t\" {\n  fd_close(fd=3)\n  path_open(fd=4, path=\"a\")\n}",
    );
    assert_eq!(t.steps[1].call.opened.map(|o| o.fd), Some(3));
}

#[test]
fn a_failed_open_hands_out_nothing() {
    let t = first_trace("accept \"t\" { path_open(fd=3, path=\"a\") -> ERRNO_NOENT }");
    assert_eq!(t.steps[0].call.opened, None);
}

#[test]
fn opens_names_the_descriptor_and_its_kind() {
    let t = first_trace("accept \"t\" { path_open(fd=3, path=\"a\") -> 0 opens dir 9 }");
    let o = t.steps[0].call.opened.unwrap();
    assert_eq!((o.fd, o.filetype), (9, 3));
}

#[test]
fn opens_after_a_call_that_opens_nothing_is_an_error() {
    let e = parse("accept \"t\" { fd_write(fd=1) opens 5 }").unwrap_err();
    assert!(e.to_string().contains("hands out no descriptor"), "{e}");
}

#[test]
fn arrow_trap_marks_a_call_that_did_not_return() {
    let c = first_call("fd_write(fd=1) -> trap");
    assert!(c.trapped);
    assert_eq!(c.result, None);
}

#[test]
fn oob_for_an_integer_is_a_bad_out_pointer() {
    let c = first_call("fd_write(fd=1, nwritten=oob)");
    assert!(c.args.contains(&Value::BadPointer(-1)), "{:?}", c.args);
}

#[test]
fn preopens_opens_and_traps_are_written_as_read() {
    let text = "preopen \"/tmp\";\naccept \"t\" {\n  path_open(fd=3, path=\"a\") opens dir 7\n  fd_write(fd=7, nwritten=oob) -> trap\n}";
    let f = parse(text).unwrap_or_else(|e| panic!("{e}"));
    let written = trace::write(&program(), &f);
    let again = parse(&written).unwrap_or_else(|e| panic!("{e}\n{written}"));
    let strip = |f: &trace::TraceFile| {
        let mut f = f.clone();
        for t in &mut f.traces {
            t.line = 0;
            for s in &mut t.steps {
                s.line = 0;
            }
        }
        f
    };
    assert_eq!(strip(&again), strip(&f), "{written}");
    assert!(
        written.contains("preopen \"/tmp\";")
            && written.contains("opens dir 7")
            && written.contains("-> trap"),
        "{written}"
    );
}

#[test]
fn a_trapped_call_has_no_post_phase() {
    let program = policy_lang::compile(&[Source {
        name: "p.pol".into(),
        text: "policy p { var n: 0..5 = 0; after fd_write -> audit \"wrote\"; }".into(),
    }])
    .unwrap()
    .program;
    let f = trace::parse_traces(
        "t.traces",
        "accept \"t\" { fd_write(fd=1) -> trap\n fd_write(fd=1) }",
        &program,
        &trace::wasi_constants,
    )
    .unwrap();
    let t = &f.traces[0];
    let v = interp::run_trace_in(&program, &t.world, &t.events());
    assert!(v.observations.iter().all(|o| o.step != 1), "{v:?}");
    // The monitor missed a post phase: it stays interrupted.
    let deny = v.violation.expect("the next call is denied");
    assert_eq!(
        (deny.step, deny.fault),
        (2, Some(policy_lang::ir::RuntimeFault::Interrupted))
    );
}
