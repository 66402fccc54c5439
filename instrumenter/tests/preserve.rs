//! What weaving keeps and what it adds besides the checks: names, producers, other custom
//! sections, the data count section; stale DWARF is dropped, never emitted wrong. And the
//! non-deny actions at run time: suppression returns the policy's value without calling
//! the import, audit calls it and goes on.
use instrumenter::{weave, WeaveOptions, Woven};
use policy_lang::{compile, ir::Program, Source};
use wasmparser::{Name, NameSectionReader, Parser, Payload, ProducersSectionReader};
use wasmtime::{Engine, Instance, Linker, Module, Store};

const SECRET: &str = "event secret = env.secret(x: i32) -> i32;\n";

fn program(policy: &str) -> Program {
    let text = format!("{SECRET}{policy}");
    compile(&[Source {
        name: "p.pol".into(),
        text,
    }])
    .unwrap_or_else(|d| panic!("{}", d.render()))
    .program
}

fn deny() -> Program {
    program("policy p { on secret when x == 7 -> deny \"seven is secret\"; }\n")
}

fn woven(wat: &str, program: &Program) -> Woven {
    let wasm = wat::parse_str(wat).expect("test module parses");
    weave(&wasm, program, &WeaveOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn custom_sections(wasm: &[u8]) -> Vec<(String, Vec<u8>)> {
    Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p.unwrap() {
            Payload::CustomSection(c) => Some((c.name().to_string(), c.data().to_vec())),
            _ => None,
        })
        .collect()
}

fn function_names(wasm: &[u8]) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for p in Parser::new(0).parse_all(wasm) {
        if let Payload::CustomSection(c) = p.unwrap() {
            if c.name() == "name" {
                let reader = NameSectionReader::new(wasmparser::BinaryReader::new(
                    c.data(),
                    c.data_offset(),
                ));
                for sub in reader {
                    if let Name::Function(map) = sub.unwrap() {
                        for n in map {
                            let n = n.unwrap();
                            out.push((n.index, n.name.to_string()));
                        }
                    }
                }
            }
        }
    }
    out
}

const CALLER: &str = r#"(module $m
  (import "env" "secret" (func $secret (param i32) (result i32)))
  (func $caller (export "call") (param i32) (result i32) (call $secret (local.get 0)))
  (func $bystander (export "other") (result i32) (i32.const 5))
  (@custom "vendor-notes" "kept as is")
  (@producers (processed-by "wasm-opt" "117")))"#;

#[test]
fn original_function_names_survive_and_wrappers_are_named() {
    let w = woven(CALLER, &deny());
    let names = function_names(&w.wasm);
    assert!(names.contains(&(0, "secret".into())), "{names:?}");
    assert!(names.contains(&(1, "caller".into())), "{names:?}");
    assert!(names.contains(&(2, "bystander".into())), "{names:?}");
    assert!(
        names
            .iter()
            .any(|(i, n)| *i >= 3 && n == "irm:wrapper:env.secret"),
        "{names:?}"
    );
}

#[test]
fn producers_gain_irm_and_keep_what_was_there() {
    let w = woven(CALLER, &deny());
    let (_, data) = custom_sections(&w.wasm)
        .into_iter()
        .find(|(n, _)| n == "producers")
        .expect("producers section");
    let reader = ProducersSectionReader::new(wasmparser::BinaryReader::new(&data, 0)).unwrap();
    let mut processed_by = Vec::new();
    for field in reader {
        let field = field.unwrap();
        if field.name == "processed-by" {
            for v in field.values {
                processed_by.push(v.unwrap().name.to_string());
            }
        }
    }
    assert!(
        processed_by.contains(&"wasm-opt".to_string()),
        "{processed_by:?}"
    );
    assert!(
        processed_by.contains(&"irm".to_string()),
        "{processed_by:?}"
    );
}

#[test]
fn unrelated_custom_sections_are_copied_byte_for_byte() {
    let w = woven(CALLER, &deny());
    let sections = custom_sections(&w.wasm);
    assert!(
        sections.contains(&("vendor-notes".into(), b"kept as is".to_vec())),
        "{sections:?}"
    );
}

#[test]
fn stale_dwarf_is_dropped_and_reported() {
    let wat = CALLER.replace(
        "(@custom \"vendor-notes\"",
        "(@custom \".debug_info\" \"\\00\\01\")\n  (@custom \"vendor-notes\"",
    );
    let w = woven(&wat, &deny());
    let names: Vec<String> = custom_sections(&w.wasm)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(!names.contains(&".debug_info".to_string()), "{names:?}");
    assert!(
        w.report
            .dropped_sections
            .iter()
            .any(|d| d.contains(".debug_info")),
        "{:?}",
        w.report.dropped_sections
    );
}

#[test]
fn the_data_count_section_is_kept_for_bulk_memory() {
    let wat = r#"(module
      (import "env" "secret" (func $secret (param i32) (result i32)))
      (memory 1)
      (data $d "abc")
      (func (export "f") (result i32)
        (memory.init $d (i32.const 0) (i32.const 0) (i32.const 3))
        (data.drop $d)
        (call $secret (i32.load8_u (i32.const 0)))))"#;
    let w = woven(wat, &deny());
    let has_count = Parser::new(0)
        .parse_all(&w.wasm)
        .any(|p| matches!(p.unwrap(), Payload::DataCountSection { .. }));
    assert!(has_count);
}

struct Host {
    calls: Vec<i32>,
}

/// Instantiates `wasm` with `env.secret` answering `x * 10` and recording `x`, and a WASI
/// `fd_write` stand-in when the module imports it.
fn instantiate(wasm: &[u8]) -> (Store<Host>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, wasm).unwrap();
    let mut linker = Linker::<Host>::new(&engine);
    linker
        .func_wrap(
            "env",
            "secret",
            |mut c: wasmtime::Caller<'_, Host>, x: i32| -> i32 {
                c.data_mut().calls.push(x);
                x * 10
            },
        )
        .unwrap();
    linker
        .func_wrap(
            "wasi_snapshot_preview1",
            "fd_write",
            |_: i32, _: i32, _: i32, _: i32| -> i32 { 0 },
        )
        .unwrap();
    let mut store = Store::new(&engine, Host { calls: Vec::new() });
    let instance = linker.instantiate(&mut store, &module).unwrap();
    (store, instance)
}

fn call(store: &mut Store<Host>, instance: &Instance, x: i32) -> wasmtime::Result<i32> {
    instance
        .get_typed_func::<i32, i32>(&mut *store, "call")
        .unwrap()
        .call(&mut *store, x)
}

#[test]
fn suppression_returns_the_policy_value_without_calling_the_import() {
    let p = program("policy p { on secret when x < 0 -> suppress -13 \"negative\"; }\n");
    let (mut store, inst) = instantiate(&woven(CALLER, &p).wasm);
    assert_eq!(call(&mut store, &inst, -4).unwrap(), -13);
    assert_eq!(
        store.data().calls,
        Vec::<i32>::new(),
        "the import was not called"
    );
    assert_eq!(
        call(&mut store, &inst, 4).unwrap(),
        40,
        "other calls go through"
    );
    assert_eq!(store.data().calls, vec![4]);
}

#[test]
fn audit_calls_the_import_and_continues() {
    let p = program("policy p { allow undelivered audits; on secret -> audit \"seen\"; }\n");
    let (mut store, inst) = instantiate(&woven(CALLER, &p).wasm);
    assert_eq!(call(&mut store, &inst, 3).unwrap(), 30);
    assert_eq!(call(&mut store, &inst, 7).unwrap(), 70);
    assert_eq!(store.data().calls, vec![3, 7]);
}

#[test]
fn an_audit_the_module_cannot_deliver_is_refused_at_weave_time() {
    let wasm = wat::parse_str(CALLER).unwrap();
    let p = program("policy p { on secret -> audit \"seen\"; }\n");
    let err = weave(&wasm, &p, &WeaveOptions::default()).expect_err("no way to deliver");
    assert!(
        matches!(err, instrumenter::WeaveError::NoAuditChannel { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("allow undelivered audits"),
        "{err}"
    );
}

#[test]
fn a_deny_stops_the_call_and_allowed_calls_before_it_went_through() {
    let (mut store, inst) = instantiate(&woven(CALLER, &deny()).wasm);
    assert_eq!(call(&mut store, &inst, 6).unwrap(), 60);
    let err = call(&mut store, &inst, 7).expect_err("seven is denied");
    assert_eq!(
        err.downcast_ref::<wasmtime::Trap>(),
        Some(&wasmtime::Trap::UnreachableCodeReached)
    );
    assert_eq!(store.data().calls, vec![6]);
}

#[test]
fn monitor_state_is_in_globals_the_module_does_not_export_except_the_violation_code() {
    let w = woven(CALLER, &program("policy p { initial state a; state b; on secret in a -> b; on secret in b -> deny \"twice\"; }\n"));
    let exports: Vec<String> = Parser::new(0)
        .parse_all(&w.wasm)
        .filter_map(|p| match p.unwrap() {
            Payload::ExportSection(r) => Some(
                r.into_iter()
                    .map(|e| e.unwrap().name.to_string())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(exports, ["call", "other", "irm:violation"]);
}
