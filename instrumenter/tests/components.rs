//! Components: the monitor stands between every lowered import a policy names and every
//! core instance that receives it. Each wiring in `tests/components/` is run unhardened
//! first (the host function IS reached, so the test exercises the route), then woven: the
//! policy decides every call, whichever way the lowered function reached the core code.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use instrumenter::{weave, WeaveError, WeaveOptions};
use policy_lang::ir::Program;
use wasmtime::component::{Component, Instance, Linker, Val};
use wasmtime::{Config, Engine, Store};

/// "No send after a read", on the custom interface the test components import.
const NO_SEND_AFTER_READ: &str = r#"
event read = "example:host/net"."read-file"() -> i32;
event send = "example:host/net"."send"(data: string) -> i32;
policy no_send_after_read {
  initial state clean;
  state tainted;
  on read in clean -> tainted;
  on send in tainted -> deny "send after a file read";
  on send when data == "password" -> deny "never send the password";
}
"#;

fn program(src: &str) -> Program {
    policy_lang::compile(&[policy_lang::Source {
        name: "t.pol".into(),
        text: src.into(),
    }])
    .unwrap_or_else(|d| panic!("{}", d.render()))
    .program
}

fn component(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/components")
        .join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn woven(name: &str) -> Vec<u8> {
    let w = weave(
        &component(name),
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    w.wasm
}

/// What the host saw: the strings sent.
type Sent = Arc<Mutex<Vec<String>>>;

/// The host of the test components: interface `example:host/net` (under each name given)
/// whose `read-file` returns 7 and whose `send` records its string and returns its length.
struct Host {
    engine: Engine,
    linker: Linker<()>,
    sent: Sent,
}

impl Host {
    fn new(interfaces: &[&str]) -> Host {
        let engine = Engine::new(&Config::new()).unwrap();
        let sent: Sent = Arc::default();
        let mut linker: Linker<()> = Linker::new(&engine);
        for name in interfaces {
            let mut net = linker.instance(name).unwrap();
            net.func_wrap("read-file", |_, (): ()| Ok((7i32,))).unwrap();
            let s = Arc::clone(&sent);
            net.func_wrap("send", move |_, (data,): (String,)| {
                s.lock().unwrap().push(data.clone());
                Ok((data.len() as i32,))
            })
            .unwrap();
        }
        Host {
            engine,
            linker,
            sent,
        }
    }

    /// Also defines `irm:monitor/hooks` functions `names`, recording their calls.
    fn with_hooks(mut self, names: &[&str], calls: &HookCalls) -> Host {
        let mut h = self
            .linker
            .instance(instrumenter::component::HOOK_INTERFACE)
            .unwrap();
        for name in names {
            let (name, calls) = (name.to_string(), Arc::clone(calls));
            h.func_new(&name.clone(), move |_, _, params, _| {
                calls.lock().unwrap().push((name.clone(), params.to_vec()));
                Ok(())
            })
            .unwrap();
        }
        self
    }

    fn instantiate(&self, wasm: &[u8]) -> Result<(Store<()>, Instance), String> {
        let component = Component::new(&self.engine, wasm).unwrap();
        let mut store = Store::new(&self.engine, ());
        let instance = self
            .linker
            .instantiate(&mut store, &component)
            .map_err(|e| format!("{e:?}"))?;
        Ok((store, instance))
    }

    /// Calls export `name` of a fresh instance of `wasm`; `Err` on a trap. Returns what
    /// the host was sent as well.
    fn call<P, R>(&self, wasm: &[u8], name: &str, params: P) -> (Result<R, String>, Vec<String>)
    where
        P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower + Send + Sync,
        R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift + Send + Sync,
    {
        let (mut store, instance) = self.instantiate(wasm).unwrap();
        let f = instance.get_typed_func::<P, R>(&mut store, name).unwrap();
        let r = f.call(&mut store, params).map_err(|e| format!("{e:?}"));
        (r, self.sent.lock().unwrap().clone())
    }
}

/// Runs export `run(read)` of `wasm` with the `example:host/net` host; `Err` on a trap.
fn run(wasm: &[u8], read: bool) -> (Result<i32, String>, Vec<String>) {
    let (r, sent) = Host::new(&["example:host/net"]).call::<(bool,), (i32,)>(wasm, "run", (read,));
    (r.map(|(v,)| v), sent)
}

/// What the `irm:monitor/hooks` functions received: the hook's name and its arguments.
type HookCalls = Arc<Mutex<Vec<(String, Vec<Val>)>>>;

fn assert_route(name: &str) {
    let original = component(name);
    assert_eq!(
        run(&original, true),
        (Ok(6), vec!["secret".to_string()]),
        "{name}: the unhardened component sends after reading"
    );
    let hardened = woven(name);
    let (r, sent) = run(&hardened, true);
    assert!(
        r.is_err(),
        "{name}: the woven component was not stopped: {r:?}"
    );
    assert!(sent.is_empty(), "{name}: the host saw {sent:?}");
    assert_eq!(
        run(&hardened, false),
        (Ok(6), vec!["secret".to_string()]),
        "{name}: a send without a read goes ahead"
    );
}

#[test]
fn imports_lowered_before_the_core_module_are_monitored() {
    assert_route("direct");
}

#[test]
fn imports_reaching_the_core_module_through_a_shim_table_are_monitored() {
    assert_route("shim");
}

#[test]
fn a_component_without_monitored_imports_is_left_as_it_is() {
    let p = program(
        r#"event other = "example:host/other"."f"() -> i32;
           policy p { on other -> deny "no"; }"#,
    );
    let input = component("direct");
    let w = weave(&input, &p, &WeaveOptions::default()).unwrap();
    assert_eq!(w.wasm, input);
}

#[test]
fn an_audit_in_a_component_woven_without_host_hooks_is_refused() {
    let p = program(
        r#"event send = "example:host/net"."send"(data: string) -> i32;
           policy p { on send -> audit "sent"; }"#,
    );
    match weave(&component("direct"), &p, &WeaveOptions::default()) {
        Err(WeaveError::Component { why }) => assert!(why.contains("audit"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_component_with_an_invalid_function_body_is_refused_whatever_is_monitored() {
    // The bodies are validated while the weave goes on: an invalid one refuses the
    // input, whether or not the weave found anything to monitor.
    let input = wat::parse_str(
        r#"(component
             (core module $m (func (export "f") (result i32)))
             (core instance (instantiate $m)))"#,
    )
    .unwrap();
    for p in [NO_SEND_AFTER_READ, NO_SOCKET_WRITES] {
        match weave(&input, &program(p), &WeaveOptions::default()) {
            Err(WeaveError::Invalid { message, .. }) => {
                assert!(message.contains("type mismatch"), "{message}")
            }
            other => panic!("not refused as invalid: {:?}", other.map(|w| w.report)),
        }
    }
}

#[test]
fn a_woven_component_is_refused_as_input() {
    let again = weave(
        &woven("direct"),
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    );
    assert!(
        matches!(again, Err(WeaveError::AlreadyWoven { .. })),
        "{again:?}"
    );
}

#[test]
fn a_string_guard_reads_the_memory_the_lowering_names() {
    let src = component("shim");
    // Same wiring, but the main module sends the password without reading first.
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/components/shim.wat"),
    )
    .unwrap()
    .replace(
        r#"(data (i32.const 16) "secret")"#,
        r#"(data (i32.const 16) "password")"#,
    )
    .replace(
        "(i32.const 16) (i32.const 6)",
        "(i32.const 16) (i32.const 8)",
    );
    let password = wat::parse_str(&text).unwrap();
    assert_ne!(password, src);
    assert_eq!(
        run(&password, false).0,
        Ok(8),
        "unhardened, the password is sent"
    );
    let hardened = weave(
        &password,
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    )
    .unwrap()
    .wasm;
    let (r, sent) = run(&hardened, false);
    assert!(r.is_err() && sent.is_empty(), "{r:?} {sent:?}");
}

/// Weaves the component in WAT `text` and returns the refusal.
fn refusal(text: &str) -> String {
    let wasm = wat::parse_str(text).unwrap_or_else(|e| panic!("{e}"));
    match weave(
        &wasm,
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    ) {
        Err(WeaveError::Component { why }) => why,
        other => panic!("not refused: {:?}", other.map(|w| w.report)),
    }
}

const NET: &str = r#"(import "example:host/net" (instance $net
    (export "read-file" (func (result s32)))
    (export "send" (func (param "data" string) (result s32)))))"#;

#[test]
fn a_monitored_instance_passed_to_a_nested_component_is_refused() {
    let why = refusal(&format!(
        r#"(component {NET}
             (component $inner (import "example:host/net" (instance
               (export "send" (func (param "data" string) (result s32))))))
             (instance (instantiate $inner (with "example:host/net" (instance $net)))))"#
    ));
    assert!(why.contains("nested component"), "{why}");
    assert!(why.contains("example:host/net"), "{why}");
}

#[test]
fn a_monitored_function_exported_again_is_refused() {
    let why = refusal(&format!(
        r#"(component {NET} (export "leak" (func $net "send")))"#
    ));
    assert!(why.contains("exported"), "{why}");
    assert!(why.contains("example:host/net.send"), "{why}");
}

#[test]
fn a_monitored_function_bundled_into_an_instance_is_refused() {
    let why = refusal(&format!(
        r#"(component {NET} (instance (export "send" (func $net "send"))))"#
    ));
    assert!(why.contains("bundled"), "{why}");
}

#[test]
fn lowerings_reading_two_memories_are_refused() {
    let why = refusal(&format!(
        r#"(component {NET}
             (core module $mem (memory (export "memory") 1))
             (core instance $a (instantiate $mem))
             (core instance $b (instantiate $mem))
             (alias core export $a "memory" (core memory $ma))
             (alias core export $b "memory" (core memory $mb))
             (core func (canon lower (func $net "send") (memory $ma)))
             (core func (canon lower (func $net "send") (memory $mb))))"#
    ));
    assert!(why.contains("another memory"), "{why}");
}

#[test]
fn a_lowering_imported_by_core_code_under_another_name_is_still_the_event() {
    // The event is the component import the lowering comes from, whatever the core
    // module calls its import.
    let text = format!(
        r#"(component {NET}
             (core module $mem (memory (export "memory") 1)
               (data (i32.const 0) "password"))
             (core instance $m (instantiate $mem))
             (alias core export $m "memory" (core memory $memory))
             (core func $send (canon lower (func $net "send") (memory $memory)))
             (core module $main
               (import "host" "send" (func $send (param i32 i32) (result i32)))
               (func (export "run") (param i32) (result i32) (call $send (i32.const 0) (i32.const 8))))
             (core instance $i (instantiate $main (with "host" (instance (export "send" (func $send))))))
             (func (export "run") (param "read" bool) (result s32) (canon lift (core func $i "run"))))"#
    );
    let wasm = wat::parse_str(&text).unwrap();
    assert_eq!(run(&wasm, false).0, Ok(8));
    let hardened = weave(
        &wasm,
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    )
    .unwrap()
    .wasm;
    let (r, sent) = run(&hardened, false);
    assert!(r.is_err() && sent.is_empty(), "{r:?} {sent:?}");
}

#[test]
fn host_hooks_are_component_imports_that_receive_the_string_bytes() {
    let w = weave(
        &component("shim"),
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions {
            host_hooks: true,
            ..WeaveOptions::default()
        },
    )
    .unwrap();
    let calls: HookCalls = Arc::default();
    // Events: 0 read, 1 send.
    let host = Host::new(&["example:host/net"]).with_hooks(&["hook-e0", "hook-e1"], &calls);
    let (r, sent) = host.call::<(bool,), (i32,)>(&w.wasm, "run", (true,));
    assert!(r.is_err() && sent.is_empty(), "{r:?} {sent:?}");
    let calls = calls.lock().unwrap();
    let names: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
    // read: pre, post; send: pre, deny.
    assert_eq!(
        names,
        ["hook-e0", "hook-e0", "hook-e1", "hook-e1"],
        "{calls:?}"
    );
    let (_, send_pre) = &calls[2];
    let bytes: Vec<u8> = match send_pre.last() {
        Some(Val::List(items)) => items
            .iter()
            .map(|v| match v {
                Val::U8(b) => *b,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("the send hook's last argument is not a list: {other:?}"),
    };
    assert_eq!(bytes, b"secret");
}

/// `run(read)` of a component whose wiring is given in `body` (after the `example:host/net`
/// import, as `$net`): the unhardened component must send "password" (the route is
/// real), the woven one must be stopped with nothing sent.
fn assert_stopped(body: &str) {
    let text = format!("(component {NET} {body})");
    let wasm = wat::parse_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let (r, sent) = run(&wasm, false);
    assert_eq!(sent, ["password"], "unhardened: {r:?}");
    let hardened = weave(
        &wasm,
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    )
    .unwrap()
    .wasm;
    let (r, sent) = run(&hardened, false);
    assert!(r.is_err() && sent.is_empty(), "woven: {r:?} {sent:?}");
}

/// A memory holding "password" at 0, and `$send` lowered with it.
const MEMORY_AND_SEND: &str = r#"
  (core module $mem (memory (export "memory") 1) (data (i32.const 0) "password"))
  (core instance $m (instantiate $mem))
  (alias core export $m "memory" (core memory $memory))
  (core func $send (canon lower (func $net "send") (memory $memory)))"#;

#[test]
fn a_lowering_re_exported_by_a_core_instance_reaches_the_monitor() {
    // A core module imports the lowering and exports it again; another module calls the
    // re-export. The substitution happens where the lowering is handed over.
    assert_stopped(&format!(
        r#"{MEMORY_AND_SEND}
        (core module $relay (import "n" "send" (func $s (param i32 i32) (result i32)))
          (export "send" (func $s)))
        (core instance $relay (instantiate $relay (with "n" (instance (export "send" (func $send))))))
        (core module $main (import "r" "send" (func $s (param i32 i32) (result i32)))
          (func (export "run") (param i32) (result i32) (call $s (i32.const 0) (i32.const 8))))
        (core instance $i (instantiate $main (with "r" (instance $relay))))
        (func (export "run") (param "read" bool) (result s32) (canon lift (core func $i "run")))"#
    ));
}

#[test]
fn a_lowering_lifted_again_and_called_through_the_lift_reaches_the_monitor() {
    // The raw lowering is lifted into a component function and exported; the host calls
    // that export, which must run the monitor.
    let text = format!(
        r#"(component {NET} {MEMORY_AND_SEND}
          (core module $alloc (import "env" "memory" (memory 1))
            (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64)))
          (core instance $a (instantiate $alloc (with "env" (instance (export "memory" (memory $memory))))))
          (func (export "send-again") (param "data" string) (result s32)
            (canon lift (core func $send) (memory $memory) (realloc (func $a "realloc")))))"#
    );
    let wasm = wat::parse_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let call = |wasm: &[u8]| {
        let (r, sent) = Host::new(&["example:host/net"]).call::<(String,), (i32,)>(
            wasm,
            "send-again",
            ("password".to_string(),),
        );
        (r.map(|(v,)| v), sent)
    };
    assert_eq!(call(&wasm), (Ok(8), vec!["password".to_string()]));
    let hardened = weave(
        &wasm,
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    )
    .unwrap()
    .wasm;
    let (r, sent) = call(&hardened);
    assert!(r.is_err() && sent.is_empty(), "{r:?} {sent:?}");
}

#[test]
fn a_call_before_the_monitor_exists_traps_instead_of_reaching_the_import() {
    // `read-file` is lowered first and handed to a module whose start function calls it
    // during instantiation, before `send` (the last monitored lowering) is lowered: the
    // trampoline's table is still empty, so the call traps.
    let text = format!(
        r#"(component {NET}
          (core func $read (canon lower (func $net "read-file")))
          (core module $eager (import "n" "read-file" (func $r (result i32)))
            (func $start (drop (call $r))) (start $start))
          (core instance (instantiate $eager (with "n" (instance (export "read-file" (func $read))))))
          {MEMORY_AND_SEND})"#
    );
    let wasm = wat::parse_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let instantiate = |wasm: &[u8]| {
        Host::new(&["example:host/net"])
            .instantiate(wasm)
            .map(|_| ())
    };
    assert_eq!(
        instantiate(&wasm),
        Ok(()),
        "unhardened, the start function reads"
    );
    let hardened = weave(
        &wasm,
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    )
    .unwrap()
    .wasm;
    let e = instantiate(&hardened).unwrap_err();
    assert!(
        e.contains("uninitialized element") || e.contains("null"),
        "{e}"
    );
}

#[test]
fn an_interface_imported_in_two_compatible_versions_is_one_monitored_event() {
    // Read through 0.1.0, send through 0.1.1: both are `example:host/net@0.1.x`, and
    // the monitor's state is shared, so the send after the read is stopped.
    let policy = r#"
        event read = "example:host/net@0.1.x"."read-file"() -> i32;
        event send = "example:host/net@0.1.x"."send"(data: string) -> i32;
        policy p { initial state clean; state tainted;
          on read in clean -> tainted; on send in tainted -> deny "send after read"; }"#;
    let iface = |v: &str, name: &str| {
        format!(
            r#"(import "example:host/net@{v}" (instance {name}
                 (export "read-file" (func (result s32)))
                 (export "send" (func (param "data" string) (result s32)))))"#
        )
    };
    let text = format!(
        r#"(component {} {}
          (core module $mem (memory (export "memory") 1) (data (i32.const 0) "secret"))
          (core instance $m (instantiate $mem))
          (alias core export $m "memory" (core memory $memory))
          (core func $read (canon lower (func $old "read-file")))
          (core func $send (canon lower (func $new "send") (memory $memory)))
          (core module $main
            (import "n" "read-file" (func $read (result i32)))
            (import "n" "send" (func $send (param i32 i32) (result i32)))
            (func (export "run") (param i32) (result i32)
              (if (local.get 0) (then (drop (call $read))))
              (call $send (i32.const 0) (i32.const 6))))
          (core instance $i (instantiate $main
            (with "n" (instance (export "read-file" (func $read)) (export "send" (func $send))))))
          (func (export "run") (param "read" bool) (result s32) (canon lift (core func $i "run"))))"#,
        iface("0.1.0", "$old"),
        iface("0.1.1", "$new"),
    );
    let wasm = wat::parse_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let hardened = weave(&wasm, &program(policy), &WeaveOptions::default())
        .unwrap()
        .wasm;
    let call = |wasm: &[u8], read: bool| {
        let host = Host::new(&["example:host/net@0.1.0", "example:host/net@0.1.1"]);
        let (r, sent) = host.call::<(bool,), (i32,)>(wasm, "run", (read,));
        (r.map(|(v,)| v), sent)
    };
    assert_eq!(call(&wasm, true), (Ok(6), vec!["secret".to_string()]));
    let (r, sent) = call(&hardened, true);
    assert!(r.is_err() && sent.is_empty(), "{r:?} {sent:?}");
    assert_eq!(call(&hardened, false), (Ok(6), vec!["secret".to_string()]));
}

#[test]
fn the_report_names_the_component_s_imports_and_how_they_were_interposed() {
    let w = weave(
        &component("shim"),
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    )
    .unwrap();
    assert_eq!(
        w.report.policies[0].wrapped_imports,
        ["example:host/net.read-file", "example:host/net.send"]
    );
    let c = w.report.component.expect("a component report");
    assert_eq!(c.lowerings, 2);
    // read-file reaches main before the monitor exists (a trampoline); send reaches the
    // fixup after it (the wrapper).
    assert_eq!((c.to_trampolines, c.to_wrappers), (1, 1));
    assert_eq!(c.modules_kept, 3);
}

// ---- policies that ask what a stream is ------------------------------------------------

/// A policy that asks what a stream is (`self is socket`): its monitor keeps the stream
/// table, which only sees streams handed out by WASI 0.2 calls.
const NO_SOCKET_WRITES: &str = r#"
event write = "wasi:io/streams@0.2.x"."[method]output-stream.write";
policy no_socket_writes {
  on write when self is socket -> deny "no socket writes";
}
"#;

/// A component that writes to an output stream, with `extra` added to it (an import, an
/// export, or nothing).
fn stream_writer(extra: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
             (import "wasi:io/streams@0.2.0" (instance $streams
               (export "output-stream" (type $os (sub resource)))
               (type $e (variant (case "last-operation-failed" u32) (case "closed")))
               (export "stream-error" (type $se (eq $e)))
               (export "[method]output-stream.write"
                 (func (param "self" (borrow $os)) (param "contents" (list u8))
                       (result (result (error $se)))))))
             (core module $mem (memory (export "memory") 1))
             (core instance $m (instantiate $mem))
             (alias core export $m "memory" (core memory $memory))
             (alias export $streams "[method]output-stream.write" (func $write))
             (core func $w (canon lower (func $write) (memory $memory)))
             (core module $main
               (import "s" "write" (func (param i32 i32 i32 i32)))
               (func (export "f") (result i32) i32.const 1))
             (core instance $i (instantiate $main (with "s" (instance (export "write" (func $w))))))
             {extra})"#
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn refusal_asking_streams(wasm: &[u8]) -> String {
    match weave(wasm, &program(NO_SOCKET_WRITES), &WeaveOptions::default()) {
        Err(WeaveError::Component { why }) => why,
        other => panic!("not refused: {:?}", other.map(|w| w.report)),
    }
}

#[test]
fn a_stream_policy_weaves_a_component_whose_streams_all_come_from_wasi() {
    let w = weave(
        &stream_writer(""),
        &program(NO_SOCKET_WRITES),
        &WeaveOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        w.report.policies[0].wrapped_imports,
        ["wasi:io/streams@0.2.0.[method]output-stream.write"]
    );
}

#[test]
fn a_stream_policy_refuses_a_component_importing_an_interface_outside_the_catalogue() {
    let why = refusal_asking_streams(&stream_writer(
        r#"(import "example:host/net" (instance (export "send" (func (param "data" string) (result s32)))))"#,
    ));
    assert!(
        why.contains("imports `example:host/net`") && why.contains("no_socket_writes"),
        "{why}"
    );
}

#[test]
fn a_stream_policy_refuses_a_component_exporting_more_than_wasi_cli_run() {
    let why = refusal_asking_streams(&stream_writer(
        r#"(func (export "f") (result s32) (canon lift (core func $i "f")))"#,
    ));
    assert!(why.contains("exports `f`"), "{why}");
}

#[test]
fn a_policy_that_does_not_ask_what_a_stream_is_weaves_such_a_component() {
    // The same component as above, with a policy on its own interface: no stream table.
    assert!(weave(
        &component("direct"),
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default()
    )
    .is_ok());
}

#[test]
fn a_stream_policy_interposes_the_drop_of_a_stream_so_the_monitor_forgets_it() {
    let wasm = stream_writer(
        r#"(alias export $streams "output-stream" (type $os))
           (core func $drop (canon resource.drop $os))
           (core module $d (import "s" "[resource-drop]output-stream" (func (param i32))))
           (core instance (instantiate $d
             (with "s" (instance (export "[resource-drop]output-stream" (func $drop))))))"#,
    );
    let w = weave(&wasm, &program(NO_SOCKET_WRITES), &WeaveOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        w.report.tracking_imports,
        ["wasi:io/streams@0.2.0.[resource-drop]output-stream"]
    );
    assert_eq!(w.report.component.expect("a component").lowerings, 2);
}

#[test]
fn a_component_woven_without_hooks_starts_with_its_type_and_import_sections_byte_for_byte() {
    // The weave inserts its modules after the leading type, import and alias sections,
    // which name no core item; one validation of them serves input and output.
    let input = component("direct");
    let out = woven("direct");
    let leading = |wasm: &[u8]| -> Vec<u8> {
        let mut parser = wasmparser::Parser::new(0);
        let mut rest = wasm;
        let mut end = 0;
        while let Ok(wasmparser::Chunk::Parsed { consumed, payload }) = parser.parse(rest, true) {
            rest = &rest[consumed..];
            match payload {
                wasmparser::Payload::Version { .. } => {}
                wasmparser::Payload::ComponentTypeSection(_)
                | wasmparser::Payload::ComponentImportSection(_) => end = wasm.len() - rest.len(),
                _ => break,
            }
        }
        wasm[..end].to_vec()
    };
    let kept = leading(&input);
    assert!(
        kept.len() > 8,
        "the test component has leading type and import sections"
    );
    assert_eq!(leading(&out), kept);
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out)
        .unwrap();
}

#[test]
fn a_component_with_an_invalid_body_in_every_module_is_refused_however_the_bodies_are_shared() {
    // Bodies are validated by two threads from one queue; many invalid ones, one error.
    let mut wat = String::from("(component\n");
    for i in 0..40 {
        wat.push_str(&format!(
            "(core module $m{i} (func (export \"f\") (result i32)))\n(core instance (instantiate $m{i}))\n"
        ));
    }
    wat.push(')');
    let input = wat::parse_str(&wat).unwrap();
    match weave(
        &input,
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    ) {
        Err(WeaveError::Invalid { message, .. }) => assert!(message.contains("type mismatch")),
        other => panic!("not refused as invalid: {:?}", other.map(|w| w.report)),
    }
}

#[test]
fn a_core_module_imported_among_the_leading_imports_keeps_its_index() {
    // An imported core module (or one aliased from an imported instance) is a core item:
    // the weave's inserted modules must not come before the index it was given.
    let input = wat::parse_str(
        r#"(component
          (import "example:host/net" (instance $net
            (export "read-file" (func (result s32)))
            (export "send" (func (param "data" string) (result s32)))))
          (import "mods" (instance $mods (export "mem" (core module (export "memory" (memory 1))))))
          (alias export $mods "mem" (core module $mem))
          (core instance $m (instantiate $mem))
          (alias core export $m "memory" (core memory $memory))
          (core func $read (canon lower (func $net "read-file")))
          (core func $send (canon lower (func $net "send") (memory $memory)))
          (core module $main
            (import "example:host/net" "read-file" (func $read (result i32)))
            (import "example:host/net" "send" (func $send (param i32 i32) (result i32)))
            (import "env" "memory" (memory 1))
            (data (i32.const 16) "secret")
            (func (export "run") (param i32) (result i32)
              (if (local.get 0) (then (drop (call $read))))
              (call $send (i32.const 16) (i32.const 6))))
          (core instance $i (instantiate $main
            (with "example:host/net" (instance (export "read-file" (func $read)) (export "send" (func $send))))
            (with "env" (instance (export "memory" (memory $memory))))))
          (func (export "run") (param "read" bool) (result s32) (canon lift (core func $i "run"))))"#,
    )
    .unwrap();
    let out = weave(
        &input,
        &program(NO_SEND_AFTER_READ),
        &WeaveOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .wasm;
    let mut host = Host::new(&["example:host/net"]);
    let mem =
        wasmtime::Module::new(&host.engine, r#"(module (memory (export "memory") 1))"#).unwrap();
    host.linker
        .instance("mods")
        .unwrap()
        .module("mem", &mem)
        .unwrap();
    let (r, sent) = host.call::<(bool,), (i32,)>(&out, "run", (true,));
    assert!(r.is_err(), "a send after a read went through: {r:?}");
    assert!(sent.is_empty(), "{sent:?}");
    let (r, sent) = host.call::<(bool,), (i32,)>(&out, "run", (false,));
    assert_eq!(r.unwrap(), (6,));
    assert_eq!(sent, vec!["secret".to_string()]);
}
