//! The checks so far, on modules the weaver really produced.
use certifier::mediation;
use certifier::module::Module;
use certifier::scan::module_names;
use instrumenter::{weave, WeaveOptions};
use wasmparser::WasmFeatures;

const APP: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $r (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $o (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_unstable" "fd_write" (func $w0 (param i32 i32 i32 i32) (result i32)))
  (import "env" "open_window" (func $ow (param i32 i32) (result i32)))
  (import "env" "close_window" (func $cw (param i32)))
  (memory (export "memory") 1)
  (table 2 funcref)
  (elem (i32.const 0) func $w $r)
  (func (export "_start")
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))
    (drop (call $w0 (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))
    (call $cw (call $ow (i32.const 1) (i32.const 1)))
    (drop (call $r (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (drop (call $o (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 1)
      (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)))))"#;

fn mediation_of(policy: &str) -> (mediation::Mediation, Vec<String>) {
    let path = format!("{}/../policies/{policy}", env!("CARGO_MANIFEST_DIR"));
    let program = policy_lang::compile_files(&[path]).unwrap().program;
    let woven = weave(
        &wat::parse_str(APP).unwrap(),
        &program,
        &WeaveOptions::default(),
    )
    .unwrap();
    let m = Module::read(&woven.wasm, WasmFeatures::WASM3).unwrap();
    let names = module_names(&m).unwrap();
    let (med, findings) = mediation::check(&m, &names, &program);
    (med, findings.iter().map(|f| f.to_string()).collect())
}

#[test]
fn every_shipped_policy_woven_into_an_app_has_one_monitor_per_import_and_complete_mediation() {
    for policy in [
        "no-exfil.pol",
        "tmp-writes.pol",
        "no-secrets.pol",
        "stdio-only.pol",
        "chinese-wall.pol",
        "audit-files.pol",
    ] {
        let (med, findings) = mediation_of(policy);
        assert!(findings.is_empty(), "{policy}: {findings:?}");
        assert!(!med.monitored.is_empty(), "{policy}");
        for x in &med.monitored {
            assert_eq!(x.monitors.len(), 1, "{policy}: import {}", x.import);
        }
    }
}

/// The `.traces` file of a shipped policy, as samples.
fn shipped_traces(policy: &str) -> Vec<certifier::Sample> {
    let path = format!(
        "{}/../policies/{}",
        env!("CARGO_MANIFEST_DIR"),
        policy.replace(".pol", ".traces")
    );
    let loaded = policy_lang::trace::load_trace_file(std::path::Path::new(&path)).unwrap();
    loaded
        .file
        .traces
        .iter()
        .map(|t| (t.world.clone(), t.events()))
        .collect()
}

#[test]
fn every_shipped_policy_woven_into_an_app_certifies() {
    for policy in [
        "no-exfil.pol",
        "tmp-writes.pol",
        "no-secrets.pol",
        "stdio-only.pol",
        "chinese-wall.pol",
        "audit-files.pol",
        "no-network-errno.pol",
        "max-windows.pol",
    ] {
        let path = format!("{}/../policies/{policy}", env!("CARGO_MANIFEST_DIR"));
        let program = policy_lang::compile_files(&[path]).unwrap().program;
        let woven = weave(
            &wat::parse_str(APP).unwrap(),
            &program,
            &WeaveOptions::default(),
        )
        .unwrap();
        match certifier::certify(&woven.wasm, &program, &shipped_traces(policy)) {
            Ok(c) => assert!(c.sampled.traces > 0, "{policy}: {c:?}"),
            Err(findings) => panic!(
                "{policy}: {}",
                findings
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }
}

fn compile(text: &str) -> policy_lang::ir::Program {
    policy_lang::compile(&[policy_lang::Source {
        name: "t.pol".into(),
        text: text.into(),
    }])
    .unwrap_or_else(|d| panic!("{}", d.render()))
    .program
}

fn certify_woven(program: &policy_lang::ir::Program) -> Result<(), String> {
    let woven = weave(
        &wat::parse_str(APP).unwrap(),
        program,
        &WeaveOptions::default(),
    )
    .unwrap();
    certifier::certify(&woven.wasm, program, &[])
        .map(|_| ())
        .map_err(|f| {
            f.iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
}

#[test]
fn a_trapped_call_watched_only_by_a_policy_that_cannot_act_leaves_later_calls_decided() {
    // The weaver leaves fd_read alone (`watch` can decide nothing); the interpreter must
    // not hold the trapped call against the next fd_write either.
    let program = compile(
        r#"policy watch { initial state a; state b; after fd_read when result != 0 -> b; }
           policy guard { on fd_write when fd == 5 -> deny "five"; }"#,
    );
    certify_woven(&program).unwrap();
}

#[test]
fn post_work_of_a_policy_acting_only_through_an_event_the_module_lacks_is_none() {
    // `p` denies only on sock_send, which APP does not import: in APP it cannot act.
    let program = compile(
        r#"policy p { initial state clean; state read;
             after fd_read -> read; on sock_send in read -> deny "after a read"; }
           policy guard { on fd_write when fd == 5 -> deny "five"; }"#,
    );
    certify_woven(&program).unwrap();
}

#[test]
fn a_function_calling_an_import_the_policies_do_not_monitor_is_not_taken_for_its_monitor() {
    // Found by the fuzzer: `tick` has no parameters, so every caller "passes its
    // parameters" to it; no policy can act, so no caller is a monitor and nothing runs
    // it (atomic.fence is outside the subset monitors use).
    let program = compile(
        r#"event tick = env.tick();
           policy p { initial state a; state b; on tick -> b; }"#,
    );
    let app = wat::parse_str(
        r#"(module (import "env" "tick" (func $tick))
             (func $main (export "main") atomic.fence (call $tick)))"#,
    )
    .unwrap();
    let woven = weave(&app, &program, &WeaveOptions::default()).unwrap();
    certifier::certify(&woven.wasm, &program, &[]).unwrap();
}

#[test]
fn a_host_memory_of_four_gibibytes_is_refused_as_not_modelled_not_a_panic() {
    // Found by the fuzzer: the memory's length in bytes does not fit an i32 pointer.
    let program = compile(r#"policy guard { on fd_write when fd == 5 -> deny "five"; }"#);
    let app = wat::parse_str(
        r#"(module (import "wasi_snapshot_preview1" "fd_write"
                     (func $w (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 65536)
             (func (export "_start") (drop (call $w (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 8)))))"#,
    )
    .unwrap();
    let woven = weave(&app, &program, &WeaveOptions::default()).unwrap();
    let findings = certifier::certify(&woven.wasm, &program, &[]).unwrap_err();
    assert!(
        findings
            .iter()
            .any(|f| f.message.contains("cannot be modelled")),
        "{findings:?}"
    );
}
