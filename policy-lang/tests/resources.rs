//! The resource model as the reference interpreter decides it: resolved paths, the
//! descriptor table, the monitor's own integrity (out-pointers, calls that did not return,
//! audits that cannot be delivered), sets and access sets. One rule per test; the rules
//! are those of `policy_lang::ir`'s module docs ("Resources").
use std::sync::Arc;

use policy_lang::descriptors::{Descriptors, Initial, Kind, Opened, MAX_FDS};
use policy_lang::interp::{Monitor, Outcome, Step, Value};
use policy_lang::ir::{EventId, Program, RuntimeFault};
use policy_lang::{compile, Source};

fn program(text: &str) -> Arc<Program> {
    let c = compile(&[Source {
        name: "t.pol".into(),
        text: text.into(),
    }])
    .unwrap_or_else(|d| panic!("{}", d.render()));
    Arc::new(c.program)
}

fn compile_error(text: &str) -> String {
    match compile(&[Source {
        name: "t.pol".into(),
        text: text.into(),
    }]) {
        Ok(_) => panic!("compiles, but should not:\n{text}"),
        Err(d) => d.render(),
    }
}

/// Streams 0-2, then one directory preopen per name (fds 3, 4, ...).
fn world(preopens: &[&str]) -> Descriptors {
    let mut init: Vec<Initial> = (0..3)
        .map(|fd| Initial {
            fd,
            filetype: Some(2),
            rights: if fd == 0 { 2 } else { 64 },
            preopen: None,
        })
        .collect();
    for (i, name) in preopens.iter().enumerate() {
        init.push(Initial {
            fd: 3 + i as u32,
            filetype: Some(3),
            rights: 0,
            preopen: Some(name.as_bytes().to_vec()),
        });
    }
    Descriptors::from_world(&init).unwrap()
}

fn monitor(p: &Arc<Program>, preopens: &[&str]) -> Monitor {
    Monitor::with_descriptors(Arc::clone(p), world(preopens))
}

fn event(p: &Program, name: &str) -> EventId {
    p.events
        .iter()
        .position(|e| e.name == name || e.field == name)
        .unwrap_or_else(|| panic!("no event {name}")) as EventId
}

/// Arguments for `name` by parameter name; the rest are 0 / empty / an in-bounds pointer.
fn call_args(p: &Program, name: &str, args: &[(&str, Value)]) -> Vec<Value> {
    let e = &p.events[event(p, name) as usize];
    e.params
        .iter()
        .map(|param| {
            args.iter()
                .find(|(n, _)| *n == param.name)
                .map(|(_, v)| v.clone())
                .unwrap_or(match param.ty {
                    policy_lang::ir::ParamType::Str => Value::Str(Some(Vec::new())),
                    _ => Value::Int(0),
                })
        })
        .collect()
}

fn s(text: &str) -> Value {
    Value::Str(Some(text.as_bytes().to_vec()))
}

fn i(v: i64) -> Value {
    Value::Int(v)
}

/// A whole call: pre, then (if it proceeds) post with `result` and what it opened.
fn call(
    m: &mut Monitor,
    p: &Program,
    name: &str,
    args: &[(&str, Value)],
    result: i64,
    opened: Option<Opened>,
) -> Step {
    let e = event(p, name);
    let a = call_args(p, name, args);
    let pre = m.pre(e, &a);
    if pre.outcome != Outcome::Proceed {
        return pre;
    }
    m.post_opened(e, &a, Some(result), opened)
}

fn fault(step: &Step) -> Option<RuntimeFault> {
    match &step.outcome {
        Outcome::Deny(r) => r.fault.clone(),
        _ => None,
    }
}

fn denied(step: &Step) -> bool {
    matches!(step.outcome, Outcome::Deny(_))
}

fn file(fd: u32) -> Option<Opened> {
    Some(Opened { fd, filetype: 4 })
}

fn dir(fd: u32) -> Option<Opened> {
    Some(Opened { fd, filetype: 3 })
}

const DATA_WALL: &str = r#"policy p {
  on path_open when path == "/data/x" -> deny "hit";
}"#;

// ---- resolved paths ---------------------------------------------------------------

#[test]
fn a_relative_path_is_tested_joined_with_its_preopen() {
    let p = program(DATA_WALL);
    let mut m = monitor(&p, &["/data"]);
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("x"))],
        0,
        None,
    );
    assert!(denied(&step));
}

#[test]
fn every_spelling_of_a_path_under_a_root_preopen_resolves_alike() {
    let p = program(DATA_WALL);
    for spelling in ["data/x", "tmp/../data/x", "./data//x/", "../../data/x"] {
        let mut m = monitor(&p, &["/"]);
        let step = call(
            &mut m,
            &p,
            "path_open",
            &[("fd", i(3)), ("path", s(spelling))],
            0,
            None,
        );
        assert!(denied(&step), "{spelling}");
    }
}

#[test]
fn an_absolute_argument_ignores_its_directory() {
    let p = program(DATA_WALL);
    let mut m = monitor(&p, &["/tmp"]);
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("/data/x"))],
        0,
        None,
    );
    assert!(denied(&step));
}

#[test]
fn raw_path_is_the_argument_as_passed() {
    let p = program(r#"policy p { on path_open when raw_path == "x" -> deny "raw"; }"#);
    let mut m = monitor(&p, &["/data"]);
    assert!(denied(&call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("x"))],
        0,
        None
    )));
    let mut m = monitor(&p, &["/data"]);
    assert!(!denied(&call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("./x"))],
        0,
        None
    )));
}

#[test]
fn a_path_under_a_preopen_with_a_relative_name_is_a_fault_naming_the_descriptor() {
    let p = program(DATA_WALL);
    let mut m = monitor(&p, &["."]);
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("x"))],
        0,
        None,
    );
    let f = fault(&step).expect("a fault");
    assert!(
        matches!(f, RuntimeFault::UnresolvedPath { fd: 3, .. }),
        "{f:?}"
    );
    assert_eq!(f.detail().as_deref(), Some("descriptor 3"));
}

#[test]
fn a_path_under_a_closed_descriptor_is_a_fault() {
    let p = program(DATA_WALL);
    let mut m = monitor(&p, &["/data"]);
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(9)), ("path", s("x"))],
        0,
        None,
    );
    assert!(matches!(
        fault(&step),
        Some(RuntimeFault::UnresolvedPath { fd: 9, .. })
    ));
}

#[test]
fn a_path_no_guard_reads_is_never_a_fault() {
    let p = program(r#"policy p { on path_open when fd == 99 -> deny "x"; }"#);
    let mut m = monitor(&p, &["."]);
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("x"))],
        0,
        None,
    );
    assert!(!denied(&step));
}

#[test]
fn a_symbolic_link_target_resolves_against_the_links_directory() {
    let p =
        program(r#"policy p { on path_symlink when old_path == "/data/secret" -> deny "link"; }"#);
    let mut m = monitor(&p, &["/data"]);
    let args = [
        ("fd", i(3)),
        ("new_path", s("sub/link")),
        ("old_path", s("../secret")),
    ];
    assert!(denied(&call(&mut m, &p, "path_symlink", &args, 0, None)));
}

#[test]
fn an_argument_longer_than_the_limit_is_a_fault() {
    let p = program(DATA_WALL);
    let mut m = monitor(&p, &["/data"]);
    let long = "a/".repeat(600);
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s(&long))],
        0,
        None,
    );
    assert!(matches!(
        fault(&step),
        Some(RuntimeFault::PathTooLong { .. })
    ));
}

// ---- the descriptor table ----------------------------------------------------------

#[test]
fn a_directory_opened_under_a_preopen_is_a_new_root_with_its_resolved_path() {
    let p = program(r#"policy p { on path_open when path startswith "/data/b/" -> deny "b"; }"#);
    let mut m = monitor(&p, &["/data"]);
    call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("."))],
        0,
        dir(4),
    );
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(4)), ("path", s("b/x"))],
        0,
        file(5),
    );
    assert!(denied(&step));
}

#[test]
fn a_closed_number_handed_out_again_names_what_was_opened_last() {
    let p = program(r#"policy p { on path_open when path startswith "/data/" -> deny "data"; }"#);
    let mut m = monitor(&p, &["/tmp", "/"]);
    assert!(!denied(&call(
        &mut m,
        &p,
        "fd_close",
        &[("fd", i(3))],
        0,
        None
    )));
    // `/` opened as `data`, handed the freed number 3.
    assert!(!denied(&call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(4)), ("path", s("data"))],
        0,
        dir(3)
    )));
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("new"))],
        0,
        file(5),
    );
    assert!(denied(&step));
}

#[test]
fn a_file_renumbered_onto_stdout_is_not_stdout() {
    let p = program(r#"policy p { on fd_write when !(fd is stdout) -> deny "stdout only"; }"#);
    let mut m = monitor(&p, &["/tmp"]);
    call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("f"))],
        0,
        file(4),
    );
    call(
        &mut m,
        &p,
        "fd_renumber",
        &[("fd", i(4)), ("to", i(1))],
        0,
        None,
    );
    assert_eq!(m.descriptors().kind(1), Kind::File);
    assert!(denied(&call(
        &mut m,
        &p,
        "fd_write",
        &[("fd", i(1))],
        0,
        None
    )));
}

#[test]
fn a_failed_call_changes_no_descriptor() {
    let p = program(r#"policy p { on fd_write when fd is closed -> deny "closed"; }"#);
    let mut m = monitor(&p, &["/tmp"]);
    call(&mut m, &p, "fd_close", &[("fd", i(1))], 8, None);
    assert_eq!(m.descriptors().kind(1), Kind::Stdout);
    call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("f"))],
        44,
        file(4),
    );
    assert_eq!(m.descriptors().kind(4), Kind::Closed);
}

#[test]
fn a_streams_path_is_empty_and_a_closed_descriptors_path_is_a_fault() {
    let p = program(
        r#"policy p { on fd_write when fd.path == "" -> audit "pathless"; allow undelivered audits; }"#,
    );
    let mut m = monitor(&p, &[]);
    let e = event(&p, "fd_write");
    let step = m.pre(e, &call_args(&p, "fd_write", &[("fd", i(1))]));
    assert_eq!(step.audits.len(), 1);
    m.post(e, &call_args(&p, "fd_write", &[("fd", i(1))]), Some(0));
    let step = call(&mut m, &p, "fd_write", &[("fd", i(7))], 0, None);
    assert!(matches!(
        fault(&step),
        Some(RuntimeFault::UnknownDescriptor { fd: 7, .. })
    ));
}

#[test]
fn write_access_comes_from_the_rights_the_file_was_opened_with() {
    let p = program(r#"policy p { on fd_write when !fd.writable -> deny "read-only"; }"#);
    let mut m = monitor(&p, &["/tmp"]);
    call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("r")), ("fs_rights_base", i(2))],
        0,
        file(4),
    );
    call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("w")), ("fs_rights_base", i(64))],
        0,
        file(5),
    );
    assert!(denied(&call(
        &mut m,
        &p,
        "fd_write",
        &[("fd", i(4))],
        0,
        None
    )));
    let mut m2 = monitor(&p, &["/tmp"]);
    call(
        &mut m2,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("w")), ("fs_rights_base", i(64))],
        0,
        file(5),
    );
    assert!(!denied(&call(
        &mut m2,
        &p,
        "fd_write",
        &[("fd", i(5))],
        0,
        None
    )));
}

#[test]
fn a_descriptor_beyond_the_table_is_denied_after_the_call() {
    let p = program(r#"policy p { on fd_write when fd is socket -> deny "x"; }"#);
    let mut m = monitor(&p, &["/tmp"]);
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("f"))],
        0,
        file(MAX_FDS),
    );
    assert!(matches!(
        fault(&step),
        Some(RuntimeFault::DescriptorLimit { .. })
    ));
}

#[test]
fn an_accepted_connection_is_a_socket() {
    let p = program(r#"policy p { on fd_write when fd is socket -> deny "no sockets"; }"#);
    let mut m = monitor(&p, &[]);
    call(
        &mut m,
        &p,
        "sock_accept",
        &[("fd", i(3))],
        0,
        Some(Opened { fd: 6, filetype: 6 }),
    );
    assert!(denied(&call(
        &mut m,
        &p,
        "fd_write",
        &[("fd", i(6))],
        0,
        None
    )));
}

// ---- the monitor's own integrity --------------------------------------------------------

#[test]
fn an_out_pointer_outside_memory_denies_before_the_call() {
    let p = program(r#"policy p { on fd_write when fd == 99 -> deny "x"; }"#);
    let mut m = monitor(&p, &[]);
    let e = event(&p, "fd_write");
    let a = call_args(
        &p,
        "fd_write",
        &[("fd", i(1)), ("nwritten", Value::BadPointer(-4))],
    );
    let step = m.pre(e, &a);
    assert!(matches!(
        fault(&step),
        Some(RuntimeFault::OutPointer { .. })
    ));
}

#[test]
fn a_suppressed_call_does_not_need_its_out_pointers() {
    let p = program(r#"policy p { on sock_send -> suppress ERRNO_ACCES "off"; }"#);
    let mut m = monitor(&p, &[]);
    let e = event(&p, "sock_send");
    let a = call_args(&p, "sock_send", &[("so_datalen", Value::BadPointer(-4))]);
    assert_eq!(m.pre(e, &a).outcome, Outcome::Suppress(Some(2)));
}

#[test]
fn a_call_with_post_work_that_does_not_return_leaves_every_later_call_denied() {
    let p = program(r#"policy p { var n: 0..9 = 0; after fd_read do n += 1; }"#);
    let mut m = monitor(&p, &[]);
    let e = event(&p, "fd_read");
    let a = call_args(&p, "fd_read", &[]);
    assert_eq!(m.pre(e, &a).outcome, Outcome::Proceed);
    // The import trapped: no post phase. The embedder calls again.
    let step = m.pre(e, &a);
    assert_eq!(fault(&step), Some(RuntimeFault::Interrupted));
}

#[test]
fn post_transitions_of_a_policy_that_cannot_act_leave_no_post_work() {
    // `watch` only allows, without updates: it can decide nothing, so missing its post
    // phase loses nothing and a trapped fd_read does not make the monitor busy.
    let p = program(
        r#"policy watch { initial state a; state b; after fd_read when result != 0 -> b; }
           policy guard { on fd_write when fd == 5 -> deny "five"; }"#,
    );
    let e = event(&p, "fd_read");
    assert!(!p.has_post_work(e));
    let mut m = monitor(&p, &[]);
    assert_eq!(
        m.pre(e, &call_args(&p, "fd_read", &[])).outcome,
        Outcome::Proceed
    );
    let write = m.pre(
        event(&p, "fd_write"),
        &call_args(&p, "fd_write", &[("fd", i(1))]),
    );
    assert_eq!(write.outcome, Outcome::Proceed);
}

#[test]
fn a_call_of_an_event_only_a_policy_that_cannot_act_mentions_is_not_decided() {
    // The weaver leaves fd_read alone here, so the monitor must not deny it for an
    // out-pointer outside memory, nor for an earlier deny, as a monitored call would be.
    let p = program(
        r#"policy watch { initial state a; state b; after fd_read -> b; }
           policy guard { on fd_write when fd == 5 -> deny "five"; }"#,
    );
    let read = event(&p, "fd_read");
    assert!(!p.monitors(read));
    let mut m = monitor(&p, &[]);
    let bad = call_args(&p, "fd_read", &[("nread", Value::BadPointer(-4))]);
    assert_eq!(m.pre(read, &bad).outcome, Outcome::Proceed);
    let five = m.pre(
        event(&p, "fd_write"),
        &call_args(&p, "fd_write", &[("fd", i(5))]),
    );
    assert!(matches!(five.outcome, Outcome::Deny(_)));
    assert_eq!(m.pre(read, &bad).outcome, Outcome::Proceed);
}

#[test]
fn a_post_transition_that_cannot_fire_is_no_post_work() {
    let p = program(r#"policy p { var n: 0..9 = 0; after fd_read when 0 > 1 do n += 1; }"#);
    assert!(!p.has_post_work(event(&p, "fd_read")));
}

#[test]
fn restricted_to_a_module_a_policy_acts_only_through_the_events_it_imports() {
    // `p` denies only fd_write; a module that imports fd_read alone cannot be denied by
    // it, so its post transition on fd_read (a move, no update that could fault) is no
    // post work there.
    let p = program(
        r#"policy p { initial state clean; state read;
             after fd_read -> read; on fd_write in read -> deny "after a read"; }"#,
    );
    let read = event(&p, "fd_read");
    assert!(p.has_post_work(read));
    let view = p.restricted_to(|e| e == read);
    assert!(!view.has_post_work(read));
    assert_eq!(
        view.policies[0].transitions.len(),
        p.policies[0].transitions.len()
    );
}

#[test]
fn a_nested_call_during_an_import_without_post_work_sees_the_pre_phase() {
    let p = program(
        r#"event open_window = env.open_window(width: i32, height: i32) -> i32;
           policy p { var open: 0..1 = 0;
             on open_window when open >= 1 -> deny "one window";
             on open_window do open += 1; }"#,
    );
    let mut m = monitor(&p, &[]);
    let e = event(&p, "open_window");
    let a = vec![i(1), i(1)];
    assert_eq!(m.pre(e, &a).outcome, Outcome::Proceed);
    // A host callback opens another window before the first returns.
    let nested = m.pre(e, &a);
    assert!(denied(&nested));
    assert_eq!(
        fault(&nested),
        None,
        "denied by the count, not as interrupted"
    );
}

#[test]
fn after_a_deny_every_monitored_call_is_denied() {
    let p = program(r#"policy p { on fd_write when fd == 5 -> deny "five"; }"#);
    let mut m = monitor(&p, &[]);
    assert!(denied(&call(
        &mut m,
        &p,
        "fd_write",
        &[("fd", i(5))],
        0,
        None
    )));
    let step = call(&mut m, &p, "fd_write", &[("fd", i(1))], 0, None);
    assert_eq!(fault(&step), Some(RuntimeFault::Interrupted));
}

#[test]
fn an_audit_after_stderr_was_closed_is_denied() {
    let p = program(r#"policy p { on path_open -> audit "opened"; }"#);
    let mut m = monitor(&p, &["/tmp"]);
    call(&mut m, &p, "fd_close", &[("fd", i(2))], 0, None);
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("x"))],
        0,
        file(4),
    );
    assert_eq!(fault(&step), Some(RuntimeFault::AuditUndelivered));
}

#[test]
fn an_audit_after_a_file_was_renumbered_onto_stderr_is_denied() {
    let p = program(r#"policy p { on path_open when path == "/tmp/y" -> audit "opened"; }"#);
    let mut m = monitor(&p, &["/tmp"]);
    call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("x"))],
        0,
        file(4),
    );
    call(
        &mut m,
        &p,
        "fd_renumber",
        &[("fd", i(4)), ("to", i(2))],
        0,
        None,
    );
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("y"))],
        0,
        file(4),
    );
    assert_eq!(fault(&step), Some(RuntimeFault::AuditUndelivered));
}

#[test]
fn a_policy_may_accept_undelivered_audits() {
    let p = program(
        r#"policy p { allow undelivered audits; on path_open when fd is directory -> audit "opened"; }"#,
    );
    let mut m = monitor(&p, &["/tmp"]);
    call(&mut m, &p, "fd_close", &[("fd", i(2))], 0, None);
    let step = call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("x"))],
        0,
        file(4),
    );
    assert_eq!(step.outcome, Outcome::Proceed);
}

// ---- sets -------------------------------------------------------------------------

const WINDOWS: &str = r#"event open_window = env.open_window(width: i32, height: i32) -> i32;
event close_window = env.close_window(handle: i32);
policy p {
  var handles: set[2];
  after open_window when result >= 0 do handles += result;
  on close_window when !(handle in handles) -> deny "never opened";
  on close_window do handles -= handle;
}"#;

#[test]
fn a_set_holds_what_was_inserted_until_it_is_removed() {
    let p = program(WINDOWS);
    let mut m = monitor(&p, &[]);
    let (open, close) = (event(&p, "open_window"), event(&p, "close_window"));
    m.pre(open, &[i(1), i(1)]);
    m.post(open, &[i(1), i(1)], Some(7));
    assert_eq!(m.set(0, 0), [7]);
    assert_eq!(m.pre(close, &[i(7)]).outcome, Outcome::Proceed);
    assert!(m.set(0, 0).is_empty());
    assert!(denied(&m.pre(close, &[i(7)])));
}

#[test]
fn inserting_a_member_again_changes_nothing_and_a_full_set_is_a_fault() {
    let p = program(WINDOWS);
    let mut m = monitor(&p, &[]);
    let open = event(&p, "open_window");
    for handle in [1, 1, 2] {
        m.pre(open, &[i(1), i(1)]);
        assert_eq!(
            m.post(open, &[i(1), i(1)], Some(handle)).outcome,
            Outcome::Proceed
        );
    }
    m.pre(open, &[i(1), i(1)]);
    let step = m.post(open, &[i(1), i(1)], Some(3));
    assert_eq!(fault(&step), Some(RuntimeFault::SetFull { set: 0 }));
}

// ---- access sets --------------------------------------------------------------------

#[test]
fn fs_writes_covers_both_sides_of_a_rename() {
    let p = program(
        r#"policy p { on fs_writes when !(target startswith "/tmp/") -> deny "tmp only"; }"#,
    );
    let rename = |old: &str, new: &str| {
        let mut m = monitor(&p, &["/tmp", "/data"]);
        let args = [
            ("fd", i(3)),
            ("old_path", s(old)),
            ("new_fd", i(4)),
            ("new_path", s(new)),
        ];
        denied(&call(&mut m, &p, "path_rename", &args, 0, None))
    };
    assert!(rename("a", "b"), "tmp -> data");
    assert!(rename("../data/a", "../tmp/b"), "data -> tmp");
    assert!(!rename("a", "../tmp/b"), "tmp -> tmp");
}

#[test]
fn fs_writes_covers_a_write_through_a_file_descriptor_but_not_to_stdout() {
    let p = program(
        r#"policy p { on fs_writes when !(target startswith "/tmp/") -> deny "tmp only"; }"#,
    );
    let mut m = monitor(&p, &["/data"]);
    call(
        &mut m,
        &p,
        "path_open",
        &[("fd", i(3)), ("path", s("x"))],
        0,
        file(4),
    );
    assert!(!denied(&call(
        &mut m,
        &p,
        "fd_write",
        &[("fd", i(1))],
        0,
        None
    )));
    assert!(denied(&call(
        &mut m,
        &p,
        "fd_write",
        &[("fd", i(4))],
        0,
        None
    )));
}

#[test]
fn net_sends_covers_writes_to_sockets_only() {
    let p = program(r#"policy p { on net_sends -> deny "no network"; }"#);
    let mut m = monitor(&p, &[]);
    call(
        &mut m,
        &p,
        "sock_accept",
        &[("fd", i(3))],
        0,
        Some(Opened { fd: 6, filetype: 6 }),
    );
    assert!(!denied(&call(
        &mut m,
        &p,
        "fd_write",
        &[("fd", i(1))],
        0,
        None
    )));
    assert!(denied(&call(
        &mut m,
        &p,
        "fd_write",
        &[("fd", i(6))],
        0,
        None
    )));
}

#[test]
fn target_is_only_a_string() {
    let e = compile_error(r#"policy p { on fs_writes when target == 3 -> deny "x"; }"#);
    assert!(e.contains("`target`"), "{e}");
}

#[test]
fn a_tracking_program_monitors_every_call_that_changes_descriptors() {
    let p = program(r#"policy p { on fd_write when fd is socket -> deny "x"; }"#);
    for f in ["path_open", "sock_accept", "fd_close", "fd_renumber"] {
        assert!(p.events.iter().any(|e| e.field == f), "{f}");
    }
    let plain = program(r#"policy p { on fd_write when fd == 3 -> deny "x"; }"#);
    assert_eq!(plain.events.len(), 1);
}

// ---- the language ---------------------------------------------------------------------

#[test]
fn is_names_a_kind() {
    let e = compile_error(r#"policy p { on fd_write when fd is pipe -> deny "x"; }"#);
    assert!(e.contains("unknown descriptor kind `pipe`"), "{e}");
}

#[test]
fn descriptor_queries_apply_to_descriptor_parameters_only() {
    let e = compile_error(r#"policy p { on fd_write when iovs is file -> deny "x"; }"#);
    assert!(e.contains("not one"), "{e}");
    assert!(e.contains("`fd`"), "{e}");
}

#[test]
fn a_set_is_not_a_number() {
    let e = compile_error(r#"policy p { var s: set[2]; on fd_write when s > 0 -> deny "x"; }"#);
    assert!(e.contains("is a set"), "{e}");
}

#[test]
fn a_policy_acting_through_an_event_imported_only_by_its_preview_0_name_still_acts() {
    // `wasi_unstable.sock_send` is sock_send: restricting to the module's imports must
    // not drop a policy whose only deny is on it.
    let p = program(
        r#"policy p { initial state clean; state read;
             after fd_read -> read; on sock_send in read -> deny "after a read"; }"#,
    );
    let view = p.restricted_to_imports([
        ("wasi_snapshot_preview1", "fd_read"),
        ("wasi_unstable", "sock_send"),
    ]);
    assert!(view.policies[0].acts());
    assert!(view.monitors(event(&p, "fd_read")));
    let without = p.restricted_to_imports([("wasi_snapshot_preview1", "fd_read")]);
    assert!(!without.policies[0].acts());
    assert!(!without.monitors(event(&p, "fd_read")));
}
