//! The policy language, one feature per test: each compiles a small policy from source
//! and checks how it decides traces written in the `.traces` format (so the expectations
//! read like the shipped trace files), through the reference interpreter.
use policy_lang::ir::{BinOp, Expr, Program};
use policy_lang::{interp, trace, Source};
use std::collections::HashMap;
use std::path::Path;

/// Compiles `files` (the first is the main file; the others can be included).
fn compile_files(files: &[(&str, &str)]) -> Result<policy_lang::Compiled, String> {
    let map: HashMap<String, String> = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let read = move |p: &Path| {
        map.get(&p.to_string_lossy().into_owned())
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "not in the test"))
    };
    let main = Source {
        name: files[0].0.to_string(),
        text: files[0].1.to_string(),
    };
    policy_lang::compile_with(vec![main], &read).map_err(|d| d.render())
}

fn compile(src: &str) -> Program {
    match compile_files(&[("t.pol", src)]) {
        Ok(c) => c.program,
        Err(e) => panic!("does not compile:\n{e}"),
    }
}

fn compile_error(src: &str) -> String {
    match compile_files(&[("t.pol", src)]) {
        Ok(_) => panic!("compiles, but should not:\n{src}"),
        Err(e) => e,
    }
}

/// Every trace in `traces` is decided as it expects.
fn assert_traces(program: &Program, traces: &str) {
    let file = trace::parse_traces("t.traces", traces, program, &trace::wasi_constants)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!file.traces.is_empty());
    for t in &file.traces {
        let v = interp::run_trace(program, &t.events());
        if let Err(d) = trace::check(program, t, &v) {
            panic!("trace {:?}:\n{d}", t.name);
        }
    }
}

#[test]
fn line_and_block_comments_are_ignored() {
    let p = compile(
        "// a line comment\n/* a block\n comment */ policy p { on fd_write /* inline */ when fd == 3 -> deny \"x\"; // tail\n}",
    );
    assert_traces(&p, r#"reject "r" at 1 by p "x" { fd_write(fd=3) }"#);
}

#[test]
fn a_slash_between_operands_divides_and_does_not_start_a_comment() {
    let p = compile(
        "policy p { on fd_write when fd/2 == 2 -> deny \"x\"; on fd_read when fd / /* c */ 3 == 3 -> deny \"y\"; }",
    );
    assert_traces(
        &p,
        r#"reject "r" at 1 by p "x" { fd_write(fd=5) }
accept "a" { fd_write(fd=6) fd_read(fd=8) }
reject "s" at 1 by p "y" { fd_read(fd=9) }"#,
    );
}

#[test]
fn include_brings_declarations_from_another_file() {
    let c = compile_files(&[
        (
            "dir/main.pol",
            "include \"frag/net.pol\";\npolicy p { on net -> deny \"no network\"; }",
        ),
        ("dir/frag/net.pol", "set net = { sock_send, sock_recv };"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_traces(&c.program, r#"reject "r" at 1 by p { sock_recv(fd=1) }"#);
}

#[test]
fn a_file_included_twice_is_loaded_once() {
    let c = compile_files(&[
        ("a.pol", "include \"f.pol\";\ninclude \"b.pol\";\npolicy a { on fd_write when fd == LIMIT -> deny \"a\"; }"),
        ("b.pol", "include \"f.pol\";\npolicy b { on fd_read when fd == LIMIT -> deny \"b\"; }"),
        ("f.pol", "const LIMIT = 7;"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.program.policies.len(), 2);
}

#[test]
fn custom_events_declare_their_wasm_signature() {
    let p = compile(
        "event log = env.log(level: i32, line: string) -> i32;\npolicy p { on log when level > 2 && line startswith \"secret\" -> deny \"no secrets in logs\"; }",
    );
    assert_eq!(p.events[0].import_name(), "env.log");
    assert_traces(
        &p,
        r#"accept "a" { log(level=3, line="public") -> 0 }
           reject "r" at 1 by p { log(level=3, line="secret key") -> 0 }"#,
    );
}

#[test]
fn quoted_import_names_allow_any_characters() {
    let p = compile(
        "event f = \"my-host\".\"do-it\"(x: i32);\npolicy p { on f when x == 1 -> deny \"x\"; }",
    );
    assert_eq!(p.events[0].import_name(), "my-host.do-it");
}

#[test]
fn an_alias_is_the_same_event_as_its_target() {
    let p = compile("event open = path_open;\npolicy a { on open -> audit \"a\"; }\npolicy b { on path_open -> audit \"b\"; }");
    assert_eq!(
        p.events.iter().filter(|e| e.field == "path_open").count(),
        1
    );
    assert_traces(
        &p,
        r#"accept "both" { open(fd=3, path="x") => audit "a", audit "b" }"#,
    );
}

#[test]
fn constants_are_integer_expressions_over_other_constants() {
    let p = compile("const BASE = 3;\nconst TOP = BASE * 2 + 1;\npolicy p { on fd_write when fd == TOP -> deny \"x\"; }");
    assert_traces(
        &p,
        r#"accept "a" { fd_write(fd=6) } reject "r" at 1 by p { fd_write(fd=7) }"#,
    );
}

#[test]
fn wasi_constants_are_built_in() {
    let p = compile("policy p { on sock_send -> suppress ERRNO_ACCES \"x\"; }");
    assert_traces(&p, r#"accept "s" { sock_send(fd=4) => suppress 2 }"#);
}

#[test]
fn a_transition_on_a_set_applies_to_every_member_and_nested_sets_flatten() {
    let p = compile("set reads = { fd_read, fd_pread };\nset io = { reads, fd_write };\npolicy p { on io when fd == 9 -> deny \"nine\"; }");
    assert_eq!(p.policies[0].transitions.len(), 3);
    assert_traces(
        &p,
        r#"reject "r1" at 1 by p { fd_pread(fd=9) }
           reject "r2" at 1 by p { fd_write(fd=9) }
           accept "a" { fd_read(fd=8) }"#,
    );
}

#[test]
fn states_change_on_target_and_in_restricts_the_source_states() {
    let p = compile(
        "policy p {\n initial state a;\n state b, c;\n on fd_read in a -> b;\n on fd_read in b -> c;\n on sock_send in c -> deny \"after two reads\";\n}",
    );
    assert_traces(
        &p,
        r#"accept "one read" { fd_read sock_send }
           reject "two reads" at 3 by p { fd_read fd_read sock_send }"#
            .replace("fd_read", "fd_read()")
            .replace("sock_send", "sock_send()")
            .as_str(),
    );
}

#[test]
fn a_policy_without_states_has_one_implicit_state() {
    let p = compile("policy p { on fd_write -> audit; }");
    assert_eq!(p.policies[0].states.len(), 1);
    assert_eq!(p.policies[0].states[0].name, "start");
}

#[test]
fn the_first_transition_whose_guard_holds_fires() {
    let p = compile(
        "policy p {\n on fd_write when fd == 1 -> audit \"stdout\";\n on fd_write when fd >= 1 -> deny \"file\";\n}",
    );
    assert_traces(
        &p,
        r#"accept "first wins" { fd_write(fd=1) => audit "stdout" }
           reject "second" at 1 by p "file" { fd_write(fd=2) }"#,
    );
}

#[test]
fn no_matching_transition_allows_the_call_and_keeps_the_state() {
    let p = compile("policy p {\n initial state a;\n state b;\n on fd_read when fd == 3 -> b;\n on sock_send in b -> deny \"x\";\n}");
    assert_traces(&p, r#"accept "no match" { fd_read(fd=4) sock_send() }"#);
}

#[test]
fn a_transition_without_a_reason_reports_its_origin() {
    let p = compile("policy p {\n  on fd_write -> audit;\n}");
    assert_traces(
        &p,
        r#"accept "a" { fd_write() => audit "transition at t.pol:2:3" }"#,
    );
}

#[test]
fn a_state_target_can_audit() {
    let p = compile("policy p {\n initial state a;\n state b;\n on fd_read in a -> b audit \"first read\";\n on fd_read in b -> deny \"second read\";\n}");
    assert_traces(
        &p,
        r#"reject "r" at 2 by p "second read" { fd_read() => audit "first read" fd_read() }"#,
    );
}

#[test]
fn suppression_of_an_event_without_result_has_no_value() {
    let p = compile(
        "event close = env.close(h: i32);\npolicy p { on close -> suppress \"kept open\"; }",
    );
    assert_traces(&p, r#"accept "s" { close(h=1) => suppress "kept open" }"#);
}

#[test]
fn bounded_variables_count_and_leaving_the_range_is_a_violation() {
    let p = compile("policy p {\n var n: 0..2 = 0;\n on fd_write do n += 1;\n on fd_read when n > 0 do n -= 1;\n}");
    assert_traces(
        &p,
        r#"accept "within" { fd_write() fd_write() fd_read() fd_write() }
           reject "over" at 3 by p { fd_write() fd_write() fd_write() }"#,
    );
    let v = interp::run_trace(
        &p,
        &trace::parse_traces(
            "t",
            r#"accept "x" { fd_write() fd_write() fd_write() }"#,
            &p,
            &trace::wasi_constants,
        )
        .unwrap()
        .traces[0]
            .events(),
    );
    assert!(matches!(
        v.violation.unwrap().fault,
        Some(policy_lang::ir::RuntimeFault::VarOutOfRange { value: 3, .. })
    ));
}

#[test]
fn a_constant_update_outside_the_range_is_a_compile_error() {
    let e = compile_error("policy p {\n var n: 0..2 = 0;\n on fd_write when n == 0 do n = 3;\n}");
    assert!(
        e.contains("value 3 is outside the range 0..2 of `n`"),
        "{e}"
    );
}

#[test]
fn updates_are_simultaneous() {
    let p = compile(
        "policy p {\n var a: 0..9 = 1;\n var b: 0..9 = 2;\n on fd_write do a = b, b = a;\n on fd_read when a == 2 && b == 1 -> deny \"swapped\";\n}",
    );
    assert_traces(
        &p,
        r#"reject "swap" at 2 by p "swapped" { fd_write() fd_read() }"#,
    );
}

#[test]
fn after_transitions_see_the_result() {
    let p =
        compile("policy p { after fd_read when result == ERRNO_BADF -> deny \"bad descriptor\"; }");
    assert_traces(
        &p,
        r#"accept "ok" { fd_read() -> 0 }
           reject "badf" at 1 by p { fd_read() -> ERRNO_BADF }"#,
    );
    let v = interp::run_trace(
        &p,
        &trace::parse_traces(
            "t",
            r#"accept "x" { fd_read() -> 8 }"#,
            &p,
            &trace::wasi_constants,
        )
        .unwrap()
        .traces[0]
            .events(),
    );
    assert_eq!(v.violation.unwrap().phase, policy_lang::ir::Phase::Post);
}

#[test]
fn a_suppressed_call_has_no_post_phase() {
    let p = compile("policy s { on sock_send -> suppress ERRNO_ACCES \"off\"; }\npolicy t { after sock_send -> deny \"sent\"; }");
    assert_traces(
        &p,
        r#"accept "suppressed, so never sent" { sock_send() => suppress 2 }"#,
    );
}

#[test]
fn string_tests_compare_bytes() {
    let p = compile(
        "policy p {\n on path_open when raw_path == \"/etc/shadow\" -> deny \"eq\";\n on path_open when raw_path startswith \"/proc/\" -> deny \"prefix\";\n on path_open when raw_path glob \"**/*.pem\" -> deny \"glob\";\n on path_open when raw_path != \"ok\" -> audit \"ne\";\n allow undelivered audits;\n}",
    );
    assert_traces(
        &p,
        r#"reject "eq" at 1 by p "eq" { path_open(path="/etc/shadow") }
           reject "prefix" at 1 by p "prefix" { path_open(path="/proc/self/mem") }
           reject "glob" at 1 by p "glob" { path_open(path="a/b/c.pem") }
           accept "ne" { path_open(path="other") => audit "ne" path_open(path="ok") }"#,
    );
}

#[test]
fn an_out_of_bounds_string_is_a_violation_only_when_read() {
    let p = compile("policy p { on path_open when fd == 3 && raw_path == \"x\" -> deny \"x\"; }");
    assert_traces(
        &p,
        r#"accept "not read" { path_open(fd=4, path=oob) }
           reject "read" at 1 by p { path_open(fd=3, path=oob) }"#,
    );
}

#[test]
fn operators_follow_c_precedence() {
    let p = compile(
        "policy p { on fd_write when fd == 1 + 2 * 3 && fd << 1 == 14 || fd == -1 -> deny \"x\"; }",
    );
    assert_traces(
        &p,
        r#"reject "seven" at 1 by p { fd_write(fd=7) }
           reject "minus one" at 1 by p { fd_write(fd=-1) }
           accept "nine" { fd_write(fd=9) }"#,
    );
}

#[test]
fn has_tests_that_every_bit_of_the_flags_is_set() {
    let p = compile(
        "policy p { on path_open when oflags has OFLAGS_CREAT | OFLAGS_TRUNC -> deny \"x\"; }",
    );
    let t = &p.policies[0].transitions[0];
    assert!(matches!(&t.guard, Expr::Binary(BinOp::Eq, l, r)
        if matches!(**l, Expr::Binary(BinOp::BitAnd, _, _)) && **r == Expr::Int(9)));
    assert_traces(
        &p,
        r#"reject "both" at 1 by p { path_open(oflags=OFLAGS_CREAT|OFLAGS_TRUNC|OFLAGS_EXCL) }
           accept "one" { path_open(oflags=OFLAGS_CREAT) }"#,
    );
}

#[test]
fn i32_arguments_are_sign_extended() {
    let p = compile("policy p { on fd_write when fd < 0 -> deny \"negative\"; }");
    assert_traces(
        &p,
        r#"reject "0xffffffff is -1" at 1 by p { fd_write(fd=0xffffffff) }"#,
    );
}

#[test]
fn division_by_zero_at_run_time_is_a_violation() {
    let p = compile("policy p { on fd_write when 10 / fd > 1 -> audit \"x\"; }");
    assert_traces(
        &p,
        r#"accept "ok" { fd_write(fd=2) => audit }
           reject "zero" at 1 by p { fd_write(fd=0) }"#,
    );
}

#[test]
fn constant_subexpressions_are_folded() {
    let p = compile("const K = 4;\npolicy p { on fd_write when fd == K * 2 + 1 -> deny \"x\"; }");
    let t = &p.policies[0].transitions[0];
    assert!(matches!(&t.guard, Expr::Binary(BinOp::Eq, _, r) if **r == Expr::Int(9)));
}

#[test]
fn composed_files_deny_beats_suppress_and_the_first_policy_is_reported() {
    let c = compile_files(&[
        (
            "a.pol",
            "include \"b.pol\";\npolicy a { on sock_send -> suppress ERRNO_ACCES \"off\"; }",
        ),
        (
            "b.pol",
            "policy b { on sock_send when fd == 5 -> deny \"five\"; }",
        ),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    // Included files come first in program order.
    assert_eq!(c.program.policies[0].name, "b");
    assert_traces(
        &c.program,
        r#"accept "suppressed" { sock_send(fd=4) => suppress 2 by a }
           reject "denied" at 1 by b "five" { sock_send(fd=5) }"#,
    );
}

#[test]
fn warnings_do_not_stop_the_compilation() {
    let c = compile_files(&[(
        "t.pol",
        "policy p {\n initial state a;\n state never;\n on fd_write in never -> deny \"x\";\n}",
    )])
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.render_warnings().contains("state `never` is unreachable"));
}

#[test]
fn suppress_in_an_after_transition_is_a_compile_error() {
    let e = compile_error("policy p { after sock_send -> suppress ERRNO_ACCES \"x\"; }");
    assert!(e.contains("not allowed in `after` transitions"), "{e}");
}

#[test]
fn shared_memory_strings_is_an_explicit_opt_in() {
    let p = compile("policy p {\n allow shared memory strings;\n on path_open when path == \"x\" -> deny \"x\";\n}\npolicy q { on fd_write -> audit; }");
    assert!(p.policies[0].allow_shared_memory_strings);
    assert!(!p.policies[1].allow_shared_memory_strings);
}

const WINDOWS: &str = "event open_window = env.open_window(w: i32) -> i32;\n";

#[test]
fn a_limit_tested_before_calls_but_counted_after_them_is_warned_about_with_the_pre_phase_form() {
    let text = format!(
        "{WINDOWS}policy p {{\n var open: 0..3 = 0;\n on open_window when open == 3 -> deny \"full\";\n after open_window when result >= 0 do open += 1;\n}}"
    );
    let c = compile_files(&[("t.pol", &text)]).unwrap_or_else(|e| panic!("{e}"));
    let w = c.render_warnings();
    assert!(w.contains("`open` is tested before calls"), "{w}");
    assert!(w.contains("on open_window do open += 1;"), "{w}");
}

#[test]
fn a_limit_counted_before_the_call_is_not_warned_about() {
    let text = format!(
        "{WINDOWS}policy p {{\n var open: 0..3 = 0;\n on open_window when open == 3 -> deny \"full\";\n on open_window do open += 1;\n after open_window when result < 0 do open -= 1;\n}}"
    );
    let c = compile_files(&[("t.pol", &text)]).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !c.render_warnings().contains("tested before calls"),
        "{}",
        c.render_warnings()
    );
}
