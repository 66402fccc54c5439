//! Component events: WASI 0.2 functions named by their WIT names, with the catalogue's
//! parameters, matched by version compatibility, and decided by the interpreter like any
//! other event.
use policy_lang::ir::{ParamType, Program};
use policy_lang::{interp, trace, Source};

fn compile(src: &str) -> Result<Program, String> {
    policy_lang::compile(&[Source {
        name: "t.pol".into(),
        text: src.into(),
    }])
    .map(|c| c.program)
    .map_err(|d| d.render())
}

fn program(src: &str) -> Program {
    compile(src).unwrap_or_else(|e| panic!("does not compile:\n{e}"))
}

fn error(src: &str) -> String {
    match compile(src) {
        Ok(_) => panic!("compiles, but should not:\n{src}"),
        Err(e) => e,
    }
}

/// Judges every trace of `traces` by the interpreter, each in its own world (`preopen`
/// lines; none by default).
fn assert_traces(program: &Program, traces: &str) {
    let file = trace::parse_traces("t.traces", traces, program, &trace::wasi_constants)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!file.traces.is_empty());
    for t in &file.traces {
        let v = interp::run_trace_in(program, &t.world, &t.events());
        if let Err(d) = trace::check(program, t, &v) {
            panic!("trace {:?}:\n{d}", t.name);
        }
    }
}

const OPEN_AT: &str =
    r#"event open_at = "wasi:filesystem/types@0.2.x"."[method]descriptor.open-at";"#;

#[test]
fn a_wit_function_declared_without_parameters_takes_the_catalogue_signature() {
    let p = program(&format!("{OPEN_AT}\npolicy p {{ on open_at -> audit; }}"));
    let e = &p.events[0];
    assert_eq!(e.module, "wasi:filesystem/types@0.2.x");
    assert_eq!(e.field, "[method]descriptor.open-at");
    let params: Vec<(&str, ParamType)> = e.params.iter().map(|p| (p.name.as_str(), p.ty)).collect();
    assert_eq!(
        params,
        [
            ("self", ParamType::I32),
            ("path_flags", ParamType::I32),
            ("path", ParamType::Str),
            ("open_flags", ParamType::I32),
            ("flags", ParamType::I32),
            ("retptr", ParamType::I32),
        ]
    );
    assert!(e.results.is_empty());
}

#[test]
fn any_version_of_one_compatibility_class_names_the_same_event() {
    let p = program(
        r#"event a = "wasi:io/streams@0.2.0"."[method]output-stream.write";
           event b = "wasi:io/streams@0.2.x"."[method]output-stream.write";
           policy p { on a when self == 1 -> audit; on b when self == 2 -> audit; }"#,
    );
    let events: Vec<u32> = p.policies[0].transitions.iter().map(|t| t.event).collect();
    assert_eq!(events, [0, 0]);
    assert_eq!(p.events[0].module, "wasi:io/streams@0.2.x");
}

#[test]
fn an_import_of_any_compatible_version_is_the_event() {
    let p = program(&format!("{OPEN_AT}\npolicy p {{ on open_at -> audit; }}"));
    for v in ["0.2.0", "0.2.3", "0.2.6", "0.2.12", "0.2.99"] {
        let module = format!("wasi:filesystem/types@{v}");
        assert_eq!(
            p.event_for_import(&module, "[method]descriptor.open-at"),
            Some(0),
            "{module}"
        );
    }
    for other in [
        "wasi:filesystem/types@0.3.0",
        "wasi:filesystem/types@1.0.0",
        "wasi:filesystem/types",
    ] {
        assert_eq!(
            p.event_for_import(other, "[method]descriptor.open-at"),
            None,
            "{other}"
        );
    }
}

#[test]
fn catalogue_constants_name_flags_and_enum_cases() {
    let p = program(&format!(
        r#"{OPEN_AT}
        policy p {{
          on open_at when open_flags has FILESYSTEM_OPEN_FLAGS_CREATE && path startswith "/etc/"
            -> deny "no files created under /etc";
        }}"#
    ));
    assert_traces(
        &p,
        r#"
        reject "create under etc" at 1 by p "no files created under /etc" {
          open_at(self=3, path_flags=0, path="/etc/passwd", open_flags=FILESYSTEM_OPEN_FLAGS_CREATE, flags=0, retptr=0)
        }
        accept "open without create" {
          open_at(self=3, path_flags=0, path="/etc/passwd", open_flags=0, flags=0, retptr=0)
        }
        "#,
    );
}

#[test]
fn a_send_after_a_read_is_denied_on_component_events() {
    let p = program(
        r#"event read = "wasi:filesystem/types@0.2.x"."[method]descriptor.read";
           event connect = "wasi:sockets/tcp@0.2.x"."[method]tcp-socket.start-connect";
           policy no_exfil {
             initial state clean; state tainted;
             on read in clean -> tainted;
             on connect in tainted -> deny "network connection after a file read";
           }"#,
    );
    assert_traces(
        &p,
        r#"
        reject "read then connect" at 2 by no_exfil "network connection after a file read" {
          read(self=3, length=10, offset=0, retptr=0)
          connect(self=4, network=5)
        }
        accept "connect only" { connect(self=4, network=5) }
        "#,
    );
}

#[test]
fn a_wasi_interface_without_a_version_is_an_error_that_names_the_fix() {
    let e = error(
        r#"event w = "wasi:io/streams"."[method]output-stream.write"; policy p { on w -> audit; }"#,
    );
    assert!(e.contains("named without a version"), "{e}");
    assert!(e.contains("wasi:io/streams@0.2.x"), "{e}");
}

#[test]
fn a_version_that_is_no_version_is_an_error() {
    let e = error(
        r#"event w = "wasi:io/streams@0.2"."[method]output-stream.write"; policy p { on w -> audit; }"#,
    );
    assert!(e.contains("`0.2` is not a version"), "{e}");
    assert!(e.contains("@0.2.x"), "{e}");
}

#[test]
fn a_misspelled_wit_function_gets_a_suggestion() {
    let e = error(
        r#"event w = "wasi:io/streams@0.2.x"."[method]output-stream.wirte"; policy p { on w -> audit; }"#,
    );
    assert!(
        e.contains("has no function `[method]output-stream.wirte`"),
        "{e}"
    );
    assert!(
        e.contains("did you mean `\"[method]output-stream.write\"`"),
        "{e}"
    );
}

#[test]
fn an_import_outside_the_catalogues_needs_its_signature() {
    let e = error(r#"event s = "example:app/net"."send"; policy p { on s -> audit; }"#);
    assert!(e.contains("signature of `send` must be declared"), "{e}");
    let p = program(
        r#"event s = "example:app/net"."send"(data: string) -> i32; policy p { on s -> audit; }"#,
    );
    assert_eq!(p.events[0].module, "example:app/net");
}

#[test]
fn a_preview1_function_can_be_declared_by_module_and_field() {
    let p = program("event r = wasi_snapshot_preview1.fd_read; policy p { on r -> audit; }");
    assert_eq!(p.events[0].params[0].name, "fd");
    let e = error("event r = wasi_unstable.fd_read; policy p { on r -> audit; }");
    assert!(e.contains("preview 0 spelling"), "{e}");
}

#[test]
fn a_declared_signature_that_differs_from_the_catalogue_is_an_error() {
    let e = error(
        r#"event w = "wasi:io/streams@0.2.x"."[method]output-stream.write"(s: i32) -> i32;
           policy p { on w -> audit; }"#,
    );
    assert!(e.contains("conflicting declarations"), "{e}");
}

#[test]
fn a_component_s_descriptors_are_numbered_apart_from_preview_1_s() {
    // Preview 1's descriptor 3 is the preopen `/`; the component's handle 3 is nothing
    // until get-directories or open-at hands it out.
    let p = program(&format!(
        r#"{OPEN_AT}
        policy no_etc {{
          on path_open when path startswith "/etc/" -> deny "no /etc";
          on open_at when path startswith "/etc/" -> deny "no /etc";
        }}"#
    ));
    assert_traces(
        &p,
        r#"preopen "/";
        accept "preview 1's preopen resolves" {
          path_open(fd=3, path="home/x") -> 0
        }
        reject "the component's handle 3 is not preview 1's descriptor 3" at 1 by no_etc {
          open_at(self=3, path="home/x", retptr=8) opens 4
        }
        reject "the component's preopens come from get-directories" at 2 by no_etc "no /etc" {
          get_directories(retptr=8) opens 3
          open_at(self=3, path="etc/passwd", retptr=8) opens 4
        }"#,
    );
}

#[test]
fn a_descriptor_asks_its_path_kind_and_write_access_of_the_component_table() {
    let p = program(&format!(
        r#"{OPEN_AT}
        event write = "wasi:filesystem/types@0.2.x"."[method]descriptor.write";
        policy p {{
          on write when !self.writable -> deny "opened read-only";
          on write when self is directory -> deny "a directory";
          on write when self.path startswith "/data/" -> deny "no writes to /data";
        }}"#
    ));
    assert_traces(
        &p,
        r#"preopen "/tmp";
        preopen "/data";
        accept "a file opened to write in /tmp" {
          get_directories(retptr=8) opens 1
          open_at(self=1, path="x", flags=FILESYSTEM_DESCRIPTOR_FLAGS_WRITE, retptr=8) opens 3
          write(self=3, buffer="x", offset=0, retptr=8)
        }
        reject "read-only" at 3 by p "opened read-only" {
          get_directories(retptr=8) opens 1
          open_at(self=1, path="x", retptr=8) opens 3
          write(self=3, buffer="x", offset=0, retptr=8)
        }
        reject "opened as a directory" at 3 by p "a directory" {
          get_directories(retptr=8) opens 1
          open_at(self=1, path="d", open_flags=FILESYSTEM_OPEN_FLAGS_DIRECTORY, flags=FILESYSTEM_DESCRIPTOR_FLAGS_MUTATE_DIRECTORY, retptr=8) opens 3
          write(self=3, buffer="x", offset=0, retptr=8)
        }
        reject "created under /data" at 3 by p "no writes to /data" {
          get_directories(retptr=8) opens 1
          open_at(self=2, path="new", open_flags=FILESYSTEM_OPEN_FLAGS_CREATE, retptr=8) opens 3
          write(self=3, buffer="x", offset=0, retptr=8)
        }"#,
    );
}

#[test]
fn opens_is_refused_on_a_component_call_that_hands_out_no_handle() {
    let p = program(&format!(
        r#"{OPEN_AT}
        event stat_at = "wasi:filesystem/types@0.2.x"."[method]descriptor.stat-at";
        policy p {{ on stat_at when path == "/x" -> deny "x"; }}"#
    ));
    let e = trace::parse_traces(
        "t.traces",
        r#"accept "a" { stat_at(self=1, path="x", retptr=8) opens 3 }"#,
        &p,
        &trace::wasi_constants,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("hands out no descriptor"), "{e}");
}
