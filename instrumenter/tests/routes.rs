//! Every way around a monitor listed in the brief ("Ways around a monitor"), one test each.
//!
//! Each route is a small WAT module in `tests/routes/` that reaches the monitored import
//! `env.secret` (or `env.ping`) that way. The policy denies every call of it. A route test
//! first runs the *unhardened* module and checks that the host function IS reached, which
//! proves the module really exercises the route; then it runs the woven module and checks
//! that the host function is NOT reached and that the run stops with the violation
//! (`unreachable` trap and the exported `irm:violation` global set).
use std::path::PathBuf;

use instrumenter::{weave, WeaveOptions};
use policy_lang::ir::{
    Event, Expr, Param, ParamType, Pattern, Phase, Policy, Program, State, Subject, Transition,
    ValType, Verdict, IR_VERSION,
};
use wasmtime::{Engine, Func, Instance, Linker, Module, Store, Trap, Val};

const SECRET_DENIED: &str = "the secret is off limits";

fn route(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/routes")
        .join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn deny_all(event: EventId) -> Transition {
    Transition {
        event,
        phase: Phase::Pre,
        from: vec![0],
        guard: Expr::Bool(true),
        updates: vec![],
        set_updates: vec![],
        verdict: Verdict::Deny,
        next: None,
        reason: Some(SECRET_DENIED.into()),
        origin: "routes.pol:1:1".into(),
    }
}

use policy_lang::ir::EventId;

fn secret_event() -> Event {
    Event {
        name: "secret".into(),
        module: "env".into(),
        field: "secret".into(),
        params: vec![Param {
            name: "x".into(),
            ty: ParamType::I32,
        }],
        results: vec![ValType::I32],
    }
}

fn ping_event() -> Event {
    Event {
        name: "ping".into(),
        module: "env".into(),
        field: "ping".into(),
        params: vec![],
        results: vec![],
    }
}

fn policy(name: &str, states: &[&str], transitions: Vec<Transition>) -> Policy {
    Policy {
        name: name.into(),
        states: states.iter().map(|s| State { name: (*s).into() }).collect(),
        initial: 0,
        vars: vec![],
        transitions,
        allow_shared_memory_strings: false,
        allow_undelivered_audits: false,
        sets: vec![],
    }
}

/// `on secret -> deny; on ping -> deny;`
fn deny_program() -> Program {
    Program {
        version: IR_VERSION,
        events: vec![secret_event(), ping_event()],
        policies: vec![policy(
            "no_secret",
            &["start"],
            vec![deny_all(0), deny_all(1)],
        )],
    }
}

/// `on secret in fresh -> used; on secret in used -> deny;` — one call is allowed.
fn once_program() -> Program {
    let first = Transition {
        verdict: Verdict::Allow,
        next: Some(1),
        reason: None,
        ..deny_all(0)
    };
    let second = Transition {
        from: vec![1],
        ..deny_all(0)
    };
    Program {
        version: IR_VERSION,
        events: vec![secret_event()],
        policies: vec![policy(
            "secret_once",
            &["fresh", "used"],
            vec![first, second],
        )],
    }
}

fn hardened(wasm: &[u8], program: &Program) -> Vec<u8> {
    let woven = weave(wasm, program, &WeaveOptions::default())
        .unwrap_or_else(|e| panic!("weaving failed: {e}"));
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&woven.wasm)
        .expect("woven module validates");
    if let Err(f) = certifier::certify(&woven.wasm, program, &[]) {
        panic!("the woven module does not certify: {}", f[0]);
    }
    woven.wasm
}

/// How the host enters the module.
#[derive(Clone, Copy)]
enum Entry<'a> {
    /// Call the exported function with no parameters.
    Export(&'a str),
    /// Call entry `index` of the exported table with argument 42.
    TableSlot(&'a str, u64),
    /// Call the function held by the exported funcref global with argument 42.
    GlobalRef(&'a str),
    /// Only instantiate (the start function runs).
    Instantiate,
}

#[derive(Default)]
struct Host {
    secret_calls: Vec<i32>,
    ping_calls: usize,
}

struct Run {
    secret_calls: Vec<i32>,
    ping_calls: usize,
    outcome: Result<Vec<Val>, wasmtime::Error>,
    /// The `irm:violation` global after the run, when the instance exists and exports it.
    violation: Option<i32>,
}

impl Run {
    fn reached(&self) -> bool {
        !self.secret_calls.is_empty() || self.ping_calls > 0
    }

    fn assert_stopped_by_violation(&self) {
        let err = match &self.outcome {
            Ok(v) => panic!("the hardened run finished with {v:?}; expected a violation"),
            Err(e) => e,
        };
        assert_eq!(
            err.downcast_ref::<Trap>(),
            Some(&Trap::UnreachableCodeReached),
            "expected the violation's `unreachable`, got {err:?}"
        );
    }

    fn assert_violation_recorded(&self) {
        let code = self
            .violation
            .expect("the woven module exports `irm:violation`");
        assert_ne!(code, 0, "irm:violation must be set after a deny");
    }
}

fn run(wasm: &[u8], entry: Entry) -> Run {
    let engine = Engine::default();
    let module = Module::new(&engine, wasm).expect("module compiles");
    let mut store = Store::new(&engine, Host::default());
    let mut linker = Linker::new(&engine);
    linker
        .func_wrap(
            "env",
            "secret",
            |mut c: wasmtime::Caller<'_, Host>, x: i32| -> i32 {
                c.data_mut().secret_calls.push(x);
                7
            },
        )
        .unwrap();
    linker
        .func_wrap("env", "ping", |mut c: wasmtime::Caller<'_, Host>| {
            c.data_mut().ping_calls += 1;
        })
        .unwrap();
    let (instance, outcome): (Option<Instance>, _) = match linker.instantiate(&mut store, &module) {
        Err(e) => (None, Err(e)),
        Ok(instance) => {
            let outcome = call_entry(&mut store, &instance, entry);
            (Some(instance), outcome)
        }
    };
    let violation = instance
        .and_then(|i| i.get_global(&mut store, "irm:violation"))
        .map(|g| g.get(&mut store).unwrap_i32());
    let host = store.into_data();
    Run {
        secret_calls: host.secret_calls,
        ping_calls: host.ping_calls,
        outcome,
        violation,
    }
}

fn call_entry(
    store: &mut Store<Host>,
    instance: &Instance,
    entry: Entry,
) -> Result<Vec<Val>, wasmtime::Error> {
    let func: Func = match entry {
        Entry::Instantiate => return Ok(vec![]),
        Entry::Export(name) => {
            let f = instance.get_func(&mut *store, name).expect("export exists");
            let ty = f.ty(&*store);
            let params = vec![Val::I32(42); ty.params().len()];
            let mut results = vec![Val::I32(0); ty.results().len()];
            f.call(&mut *store, &params, &mut results)?;
            return Ok(results);
        }
        Entry::TableSlot(name, index) => {
            let table = instance
                .get_table(&mut *store, name)
                .expect("table export exists");
            let r = table.get(&mut *store, index).expect("index in bounds");
            *r.as_func()
                .expect("a funcref table")
                .expect("entry is not null")
        }
        Entry::GlobalRef(name) => {
            let global = instance
                .get_global(&mut *store, name)
                .expect("global export exists");
            let r = global.get(&mut *store);
            *r.unwrap_funcref().expect("global is not null")
        }
    };
    let mut results = [Val::I32(0)];
    func.call(&mut *store, &[Val::I32(42)], &mut results)?;
    Ok(results.to_vec())
}

/// The unhardened module reaches the import through `entry`; the hardened one does not and
/// stops with the violation.
fn assert_route_closed(name: &str, entry: Entry) {
    let wasm = route(name);
    let before = run(&wasm, entry);
    assert!(
        before.reached(),
        "{name}: the unhardened module must reach the import"
    );
    assert!(
        before.outcome.is_ok(),
        "{name}: the unhardened run succeeds: {:?}",
        before.outcome
    );

    let after = run(&hardened(&wasm, &deny_program()), entry);
    assert!(
        !after.reached(),
        "{name}: the hardened module reached the import"
    );
    after.assert_stopped_by_violation();
    if !matches!(entry, Entry::Instantiate) {
        after.assert_violation_recorded();
    }
}

#[test]
fn direct_call_is_denied() {
    assert_route_closed("direct_call", Entry::Export("run"));
}

#[test]
fn return_call_is_denied() {
    assert_route_closed("return_call", Entry::Export("run"));
}

#[test]
fn active_elem_index_form_call_indirect_is_denied() {
    assert_route_closed("table_active_index", Entry::Export("run"));
}

#[test]
fn active_elem_expression_form_call_indirect_is_denied() {
    assert_route_closed("table_active_expr", Entry::Export("run"));
}

#[test]
fn passive_elem_table_init_is_denied() {
    assert_route_closed("table_passive_init", Entry::Export("run"));
}

#[test]
fn passive_elem_expression_form_table_init_is_denied() {
    assert_route_closed("table_passive_expr_init", Entry::Export("run"));
}

#[test]
fn declared_elem_ref_func_call_ref_is_denied() {
    assert_route_closed("declared_ref_func", Entry::Export("run"));
}

#[test]
fn table_set_is_denied() {
    assert_route_closed("table_set", Entry::Export("run"));
}

#[test]
fn table_grow_init_value_is_denied() {
    assert_route_closed("table_grow", Entry::Export("run"));
}

#[test]
fn table_fill_is_denied() {
    assert_route_closed("table_fill", Entry::Export("run"));
}

#[test]
fn table_copy_between_tables_is_denied() {
    assert_route_closed("table_copy", Entry::Export("run"));
}

#[test]
fn ref_func_in_global_initialiser_is_denied() {
    assert_route_closed("global_init_ref_func", Entry::Export("run"));
}

#[test]
fn ref_through_local_into_call_indirect_is_denied() {
    assert_route_closed("ref_via_local_call_indirect", Entry::Export("run"));
}

#[test]
fn ref_through_select_into_return_call_indirect_is_denied() {
    assert_route_closed("ref_via_select_return_call_indirect", Entry::Export("run"));
}

#[test]
fn ref_through_block_into_call_ref_is_denied() {
    assert_route_closed("ref_via_block_call_ref", Entry::Export("run"));
}

#[test]
fn ref_through_global_into_return_call_ref_is_denied() {
    assert_route_closed("ref_via_global_return_call_ref", Entry::Export("run"));
}

#[test]
fn reexported_import_called_by_host_is_denied() {
    assert_route_closed("reexport", Entry::Export("secret_again"));
}

#[test]
fn import_in_exported_table_called_by_host_is_denied() {
    assert_route_closed("exported_table", Entry::TableSlot("tab", 0));
}

#[test]
fn import_in_exported_funcref_global_called_by_host_is_denied() {
    assert_route_closed("exported_global", Entry::GlobalRef("fref"));
}

#[test]
fn import_as_start_function_is_denied() {
    assert_route_closed("start", Entry::Instantiate);
}

#[test]
fn first_of_two_declarations_of_the_import_is_denied() {
    assert_route_closed("declared_twice", Entry::Export("run_first"));
}

#[test]
fn second_of_two_declarations_of_the_import_is_denied() {
    assert_route_closed("declared_twice", Entry::Export("run_second"));
}

#[test]
fn combined_routes_direct_call_is_denied() {
    assert_route_closed("combined", Entry::Export("run"));
}

#[test]
fn combined_routes_table_call_is_denied() {
    assert_route_closed("combined", Entry::Export("run_indirect"));
}

#[test]
fn combined_routes_reexport_is_denied() {
    assert_route_closed("combined", Entry::Export("secret_again"));
}

#[test]
fn combined_routes_exported_table_is_denied() {
    assert_route_closed("combined", Entry::TableSlot("tab", 1));
}

#[test]
fn combined_routes_exported_global_is_denied() {
    assert_route_closed("combined", Entry::GlobalRef("fref"));
}

#[test]
fn signature_mismatch_is_refused_naming_both_signatures() {
    let err = weave(
        &route("signature_mismatch"),
        &deny_program(),
        &WeaveOptions::default(),
    )
    .expect_err("weaving an import with the wrong signature must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("env.secret"),
        "the error names the import: {msg}"
    );
    assert!(
        msg.contains("i64"),
        "the error shows the module's signature (i64) -> i32: {msg}"
    );
    assert!(
        msg.matches("i32").count() >= 2,
        "the error shows the policy's signature (i32) -> i32: {msg}"
    );
}

#[test]
fn memory_scribbling_cannot_reset_monitor_state() {
    let wasm = route("memory_scribble");
    let before = run(&wasm, Entry::Export("run"));
    assert_eq!(
        before.secret_calls,
        vec![1, 42],
        "unhardened: both calls reach the host"
    );

    let after = run(&hardened(&wasm, &once_program()), Entry::Export("run"));
    assert_eq!(
        after.secret_calls,
        vec![1],
        "hardened: only the first call is allowed"
    );
    after.assert_stopped_by_violation();
    after.assert_violation_recorded();
}

#[test]
fn module_marked_as_hardened_is_refused() {
    let err = weave(&route("marked"), &deny_program(), &WeaveOptions::default())
        .expect_err("an input with an irm.monitor section must be refused");
    assert!(
        err.to_string().contains("irm.monitor"),
        "the error names the marker: {err}"
    );
}

#[test]
fn weaving_a_woven_module_again_is_refused() {
    let once = hardened(&route("direct_call"), &deny_program());
    assert!(
        weave(&once, &deny_program(), &WeaveOptions::default()).is_err(),
        "a woven module must not be woven a second time"
    );
}

fn log_glob_program(opt_in: bool) -> Program {
    let log = Event {
        name: "log".into(),
        module: "env".into(),
        field: "log".into(),
        params: vec![Param {
            name: "msg".into(),
            ty: ParamType::Str,
        }],
        results: vec![],
    };
    let mut p = policy(
        "no_etc",
        &["start"],
        vec![Transition {
            guard: Expr::Str(Subject::Raw(0), Pattern::Glob("/etc/**".into())),
            ..deny_all(0)
        }],
    );
    p.allow_shared_memory_strings = opt_in;
    Program {
        version: IR_VERSION,
        events: vec![log],
        policies: vec![p],
    }
}

#[test]
fn string_guard_on_shared_memory_is_refused_without_opt_in() {
    let err = weave(
        &route("shared_memory_string"),
        &log_glob_program(false),
        &WeaveOptions::default(),
    )
    .expect_err("a string guard on a shared memory needs the opt-in");
    assert!(
        err.to_string().contains("shared"),
        "the error explains the shared memory: {err}"
    );
}

#[test]
fn string_guard_on_shared_memory_is_woven_with_opt_in() {
    hardened(&route("shared_memory_string"), &log_glob_program(true));
}

#[test]
fn a_component_handing_a_monitored_import_to_a_nested_component_is_refused() {
    // Components are woven (tests/components.rs); one whose monitored import the monitor
    // could not stand in front of is refused, never emitted unmonitored.
    let component = wat::parse_str(
        r#"(component
             (import "env" (instance $env (export "secret" (func (param "x" s32) (result s32)))))
             (component $inner (import "env" (instance (export "secret" (func (param "x" s32) (result s32))))))
             (instance (instantiate $inner (with "env" (instance $env)))))"#,
    )
    .unwrap();
    let err = weave(&component, &deny_program(), &WeaveOptions::default())
        .expect_err("the nested component would reach the raw import");
    assert!(err.to_string().contains("nested component"), "{err}");
}

#[test]
fn truncated_module_is_refused() {
    let mut wasm = route("direct_call");
    wasm.truncate(wasm.len() - 3);
    assert!(weave(&wasm, &deny_program(), &WeaveOptions::default()).is_err());
}

#[test]
fn garbage_is_refused() {
    let garbage: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(weave(&garbage, &deny_program(), &WeaveOptions::default()).is_err());
}

#[test]
fn invalid_module_is_refused() {
    // Well-formed sections, but the body returns an i64 where the type says i32.
    let wasm = wat::parse_str(
        r#"(module (import "env" "secret" (func $s (param i32) (result i32)))
             (func (export "run") (result i32) (i64.const 1)))"#,
    )
    .unwrap();
    assert!(weave(&wasm, &deny_program(), &WeaveOptions::default()).is_err());
}

#[test]
fn unknown_section_is_refused() {
    let mut wasm = route("direct_call");
    // Section id 0x7f does not exist in any proposal.
    wasm.extend_from_slice(&[0x7f, 0x01, 0x00]);
    assert!(weave(&wasm, &deny_program(), &WeaveOptions::default()).is_err());
}

/// Function bodies in order, as raw bytes (locals and code).
fn bodies(wasm: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.unwrap() {
            out.push(wasm[body.range()].to_vec());
        }
    }
    out
}

#[test]
fn functions_that_do_not_touch_the_import_keep_their_bytes() {
    let wasm = route("untouched_bodies");
    let woven = hardened(&wasm, &deny_program());
    let (before, after) = (bodies(&wasm), bodies(&woven));
    assert!(after.len() >= before.len());
    // Defined functions: 0 fib, 1 touches (calls the import), 2 store, 3 loop, 4 run.
    for i in [0, 2, 3, 4] {
        assert_eq!(before[i], after[i], "body of defined function {i} changed");
    }
    assert_ne!(
        before[1], after[1],
        "the body calling the import must be redirected"
    );
}

#[test]
fn allowed_calls_still_reach_the_import_with_their_arguments() {
    let wasm = route("memory_scribble");
    let program = Program {
        policies: vec![policy("quiet", &["start"], vec![])],
        ..once_program()
    };
    let after = run(&hardened(&wasm, &program), Entry::Export("run"));
    assert_eq!(after.secret_calls, vec![1, 42]);
    assert_eq!(
        after.outcome.unwrap()[0].unwrap_i32(),
        7,
        "the import's result is returned"
    );
}
