//! End-to-end tests of `irm compile`, `irm show` and `irm test` through the binary:
//! exit codes, what is printed, and the shipped policies' trace tests under every judge.
mod common;

use common::{irm, root, write};
use std::fs;

#[test]
fn every_shipped_policy_passes_its_traces_under_every_judge() {
    let r = irm(&["test", "--judge", "all", "policies"]);
    r.code(0);
    let summary = r.stdout.lines().last().unwrap_or_default();
    assert!(summary.ends_with("passed, 0 failed"), "{summary}");
    let passed: usize = summary
        .split(' ')
        .next()
        .unwrap_or("0")
        .parse()
        .expect("a count");
    assert!(passed >= 80, "{summary}");
}

#[test]
fn every_shipped_policy_has_five_accepted_and_five_rejected_traces() {
    for entry in fs::read_dir(root().join("policies")).expect("policies/") {
        let p = entry.expect("entry").path();
        if p.extension().is_none_or(|e| e != "pol") {
            continue;
        }
        let traces = fs::read_to_string(p.with_extension("traces"))
            .unwrap_or_else(|_| panic!("{} has no .traces file", p.display()));
        let accepts = traces.lines().filter(|l| l.starts_with("accept ")).count();
        let rejects = traces.lines().filter(|l| l.starts_with("reject ")).count();
        assert!(
            accepts >= 5 && rejects >= 5,
            "{}: {accepts} accepted, {rejects} rejected",
            p.display()
        );
    }
}

#[test]
fn test_reports_a_failing_trace_with_its_difference_and_exits_1() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write(
        dir.path(),
        "p.pol",
        "policy p { on fd_write when fd != 1 -> deny \"stdout only\"; }\n",
    );
    write(
        dir.path(),
        "p.traces",
        "accept \"fine\" { fd_write(fd=1) }\naccept \"wrong\" { fd_write(fd=1) fd_write(fd=3) }\n",
    );
    let d = dir.path().to_str().expect("UTF-8");
    let r = irm(&["test", d]);
    r.code(1);
    assert!(r.stdout.contains("ok    fine"), "{}", r.stdout);
    assert!(r.stdout.contains("FAIL  wrong (line 2)"), "{}", r.stdout);
    assert!(r.stdout.contains("expected accept"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("got deny at step 2 (fd_write) by p \"stdout only\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("[interpreter]") && r.stdout.contains("[woven]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("1 passed, 1 failed\n"), "{}", r.stdout);
}

#[test]
fn test_runs_only_the_judge_asked_for() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write(
        dir.path(),
        "p.pol",
        "policy p { on fd_write -> deny \"never\"; }\n",
    );
    let traces = write(dir.path(), "p.traces", "accept \"wrong\" { fd_write() }\n");
    let r = irm(&["test", "--judge", "interp", &traces]);
    r.code(1);
    assert!(
        r.stdout.contains("[interpreter]") && !r.stdout.contains("[woven]"),
        "{}",
        r.stdout
    );
    let r = irm(&["test", "--judge", "woven", &traces]);
    r.code(1);
    assert!(
        !r.stdout.contains("[interpreter]") && r.stdout.contains("[woven]"),
        "{}",
        r.stdout
    );
    let r = irm(&["test", "--judge", "host", &traces]);
    r.code(1);
    assert!(
        !r.stdout.contains("[woven]") && r.stdout.contains("[host]"),
        "{}",
        r.stdout
    );
    let r = irm(&["test", "--judge", "all", &traces]);
    r.code(1);
    assert!(
        ["[interpreter]", "[woven]", "[host]"]
            .iter()
            .all(|j| r.stdout.contains(j)),
        "{}",
        r.stdout
    );
}

#[test]
fn test_accepts_a_policy_file_and_finds_its_traces() {
    let r = irm(&["test", "policies/no-exfil.pol"]);
    r.code(0);
    assert!(
        r.stdout.starts_with("policies/no-exfil.traces\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(" passed, 0 failed"), "{}", r.stdout);
}

#[test]
fn test_fails_on_a_policy_without_traces_or_a_missing_path() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pol = write(
        dir.path(),
        "lonely.pol",
        "policy p { on fd_write -> audit; }\n",
    );
    let r = irm(&["test", &pol]);
    r.code(1);
    assert!(r.stderr.contains("has no trace file"), "{}", r.stderr);
    let r = irm(&["test", "no/such/dir"]);
    r.code(1);
    assert!(
        r.stderr.contains("no such file or directory"),
        "{}",
        r.stderr
    );
}

#[test]
fn test_counts_a_trace_file_that_does_not_parse_as_a_failure() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write(dir.path(), "p.pol", "policy p { on fd_write -> audit; }\n");
    write(dir.path(), "p.traces", "accept \"x\" { fd_wirte() }\n");
    let r = irm(&["test", dir.path().to_str().expect("UTF-8")]);
    r.code(1);
    assert!(
        r.stdout.contains("unknown event `fd_wirte`"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("0 passed, 1 failed"), "{}", r.stdout);
}

#[test]
fn compile_summarises_each_policy() {
    let r = irm(&[
        "compile",
        "policies/max-windows.pol",
        "policies/no-exfil.pol",
    ]);
    r.code(0);
    assert!(
        r.stdout
            .contains("policy max_windows: 1 state, 1 variable, 1 set, 5 transitions, 2 events"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("policy no_exfil: 2 states"),
        "{}",
        r.stdout
    );
}

#[test]
fn compile_emit_json_prints_the_ir() {
    let r = irm(&["compile", "policies/no-network-errno.pol", "--emit", "json"]);
    r.code(0);
    let ir: serde_json::Value = serde_json::from_str(&r.stdout).expect("valid JSON");
    assert_eq!(ir["version"], policy_lang::ir::IR_VERSION);
    assert_eq!(ir["policies"][0]["name"], "no_network_errno");
    // `net_uses`: the four socket calls and the four reads and writes of a socket
    // descriptor; the guards ask what a descriptor is, so the calls that change the
    // descriptor table are monitored too (`path_open`, `fd_close`, `fd_renumber`).
    assert_eq!(ir["events"].as_array().map(Vec::len), Some(11));
    let program: policy_lang::ir::Program =
        serde_json::from_str(&r.stdout).expect("the IR deserialises");
    assert_eq!(program.policies[0].transitions.len(), 8);
}

#[test]
fn compile_errors_are_located_with_a_caret_and_a_hint_and_exit_1() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pol = write(
        dir.path(),
        "bad.pol",
        "policy p {\n  on path_opn -> deny \"x\";\n}\n",
    );
    let r = irm(&["compile", &pol]);
    r.code(1);
    assert!(
        r.stderr.contains("error: unknown event `path_opn`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("bad.pol:2:6"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(" 2 |   on path_opn -> deny \"x\";\n   |      ^^^^^^^^"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("hint: did you mean `path_open`?"),
        "{}",
        r.stderr
    );
}

#[test]
fn compile_prints_warnings_and_still_succeeds() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pol = write(
        dir.path(),
        "w.pol",
        "policy p {\n  on fd_write -> audit;\n  on fd_write when fd == 3 -> deny \"x\";\n}\n",
    );
    let r = irm(&["compile", &pol]);
    r.code(0);
    assert!(
        r.stderr.contains("warning: this transition never fires"),
        "{}",
        r.stderr
    );
}

#[test]
fn compile_of_a_missing_file_is_an_error_not_a_panic() {
    let r = irm(&["compile", "no/such.pol"]);
    r.code(1);
    assert!(
        r.stderr.contains("cannot read policy file `no/such.pol`"),
        "{}",
        r.stderr
    );
}

#[test]
fn show_dot_prints_a_graphviz_digraph() {
    let r = irm(&["show", "policies/no-exfil.pol", "--dot"]);
    r.code(0);
    assert!(
        r.stdout.starts_with("digraph \"no_exfil\" {"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("label=\"clean\""), "{}", r.stdout);
    assert!(r.stdout.contains("label=\"tainted\""), "{}", r.stdout);
    assert!(r.stdout.trim_end().ends_with('}'), "{}", r.stdout);
}

#[test]
fn show_dot_with_several_policies_needs_a_choice() {
    let r = irm(&[
        "show",
        "policies/no-exfil.pol",
        "policies/stdio-only.pol",
        "--dot",
    ]);
    r.code(1);
    assert!(r.stderr.contains("--name NAME"), "{}", r.stderr);
    irm(&[
        "show",
        "policies/no-exfil.pol",
        "policies/stdio-only.pol",
        "--dot",
        "--name",
        "stdio_only",
    ])
    .code(0);
}

#[test]
fn show_prints_the_transitions_readably() {
    let r = irm(&["show", "policies/chinese-wall.pol"]);
    r.code(0);
    assert!(r.stdout.contains("chinese_wall"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("/data/b is closed after /data/a was touched"),
        "{}",
        r.stdout
    );
}

#[test]
fn show_lists_event_signatures_with_their_result_types() {
    let r = irm(&["show", "policies/max-windows.pol"]);
    r.code(0);
    assert!(
        r.stdout
            .contains("open_window = env.open_window(width: i32, height: i32) -> i32"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("close_window = env.close_window(handle: i32)\n"),
        "{}",
        r.stdout
    );
}

/// A policy on WASI 0.2 functions that keeps `/data/b` closed once `/data/a` was opened,
/// with descriptors followed from `get-directories` and `open-at`.
const WALL_P2: &str = r#"
event open_at = "wasi:filesystem/types@0.2.x"."[method]descriptor.open-at";
policy wall {
  initial state clean;
  state touched_a;
  on open_at in clean when path == "/data/a" || path startswith "/data/a/" -> touched_a;
  on open_at in touched_a when path startswith "/data/b/" -> deny "b after a";
}
"#;

#[test]
fn component_judges_replay_a_trace_with_a_driver_component_woven_and_host_enforced() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write(dir.path(), "wall.pol", WALL_P2);
    // The expectation is wrong on purpose: each judge that runs the trace says so.
    let traces = write(
        dir.path(),
        "wall.traces",
        r#"preopen "/data";
accept "b after a, expected (wrongly) to pass" {
  get_directories(retptr=8) opens 3
  open_at(self=3, path="a/x", retptr=8) opens 4
  open_at(self=3, path="b/y", retptr=8) opens 5
}
"#,
    );
    let r = irm(&["test", "--judge", "components", &traces]);
    r.code(1);
    for judge in ["[interpreter]", "[woven component]", "[host component]"] {
        assert!(r.stdout.contains(judge), "{judge}: {}", r.stdout);
    }
    assert!(r.stdout.contains("b after a"), "{}", r.stdout);
}

#[test]
fn component_judges_agree_with_the_interpreter_on_a_deny_and_an_allow() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write(dir.path(), "wall.pol", WALL_P2);
    let traces = write(
        dir.path(),
        "wall.traces",
        r#"preopen "/data";
reject "b after a, through a directory opened on a" at 3 by wall "b after a" {
  get_directories(retptr=8) opens 3
  open_at(self=3, path="a", open_flags=FILESYSTEM_OPEN_FLAGS_DIRECTORY, retptr=8) opens 4
  open_at(self=4, path="../b/y", retptr=8) opens 5
}
accept "b alone" {
  get_directories(retptr=8) opens 3
  open_at(self=3, path="b/y", retptr=8) opens 4
  open_at(self=3, path="a/x", retptr=8) opens 5
}
"#,
    );
    let r = irm(&["test", "--judge", "components", &traces]);
    r.code(0);
    assert!(r.stdout.ends_with("2 passed, 0 failed\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("not run"), "{}", r.stdout);
}

#[test]
fn a_trace_a_component_cannot_replay_is_reported_as_not_run_with_the_reason() {
    let dir = tempfile::tempdir().expect("temporary directory");
    write(dir.path(), "wall.pol", WALL_P2);
    // Descriptor 7 comes from nowhere: a component cannot pass a handle it was never
    // given, and the calls that would give it one are the ones the monitor follows.
    let traces = write(
        dir.path(),
        "wall.traces",
        r#"reject "a descriptor from nowhere has no path" at 1 by wall {
  open_at(self=7, path="x", retptr=8)
}
"#,
    );
    let r = irm(&["test", "--judge", "components", &traces]);
    r.code(0);
    assert!(
        r.stdout.contains(
            "[woven component] not run: step 1: `self` = 7 is a `descriptor` no earlier call handed out"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("[host component] not run:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("1 traces were not run by every judge"),
        "{}",
        r.stdout
    );
}

#[test]
fn component_judges_leave_preview_1_policies_to_the_others() {
    let r = irm(&["test", "--judge", "components", "policies/no-exfil.pol"]);
    r.code(0);
    assert!(!r.stdout.contains("not run"), "{}", r.stdout);
}
