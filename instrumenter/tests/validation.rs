//! The weaver validates everything it reads and everything it writes: an invalid input is
//! refused with the offset of the problem, whether or not the invalid code touches a
//! monitored import, and never comes out "hardened".
use instrumenter::{weave, WeaveError, WeaveOptions};
use policy_lang::{compile, Source};

fn deny_secret() -> policy_lang::ir::Program {
    let src = "event secret = env.secret(x: i32) -> i32;\npolicy p { on secret -> deny \"no\"; }\n";
    compile(&[Source {
        name: "p.pol".into(),
        text: src.into(),
    }])
    .expect("policy compiles")
    .program
}

fn weave_wat(wat: &str) -> Result<Vec<u8>, Box<WeaveError>> {
    let wasm = wat::parse_str(wat).expect("the text parses");
    weave(&wasm, &deny_secret(), &WeaveOptions::default())
        .map(|w| w.wasm)
        .map_err(Box::new)
}

#[test]
fn a_type_error_in_a_body_that_calls_the_import_is_refused() {
    let err = weave_wat(
        r#"(module
             (import "env" "secret" (func $s (param i32) (result i32)))
             (func (result i32) (call $s (i64.const 1))))"#,
    )
    .expect_err("invalid module");
    assert!(matches!(*err, WeaveError::Invalid { .. }), "{err}");
}

#[test]
fn a_type_error_in_a_body_that_never_names_the_import_is_refused() {
    let err = weave_wat(
        r#"(module
             (import "env" "secret" (func $s (param i32) (result i32)))
             (func (result i32) (call $s (i32.const 1)))
             (func (result i32) (i64.const 0)))"#,
    )
    .expect_err("invalid module");
    let WeaveError::Invalid { offset, message } = &*err else {
        panic!("not Invalid: {err}")
    };
    assert!(*offset > 0, "the offset points into the body");
    assert!(message.contains("type mismatch"), "{message}");
}

#[test]
fn an_invalid_module_level_section_is_refused_before_planning() {
    let err = weave_wat(
        r#"(module
             (import "env" "secret" (func $s (param i32) (result i32)))
             (export "e" (func 7)))"#,
    )
    .expect_err("invalid module");
    assert!(matches!(*err, WeaveError::Invalid { .. }), "{err}");
}

#[test]
fn an_invalid_body_is_refused_even_when_no_policy_applies() {
    let err = weave_wat(
        r#"(module
             (import "env" "other" (func (param i32)))
             (func (drop)))"#,
    )
    .expect_err("invalid module");
    assert!(matches!(*err, WeaveError::Invalid { .. }), "{err}");
}

#[test]
fn simd_and_exception_bodies_validate_through_the_fused_pass() {
    let wasm = weave_wat(
        r#"(module
             (import "env" "secret" (func $s (param i32) (result i32)))
             (tag $t (param i32))
             (func (export "f") (param v128) (result i32)
               (block $h (result i32)
                 (try_table (catch $t $h)
                   (drop (i32x4.extract_lane 0 (i32x4.add (local.get 0) (local.get 0))))
                   (throw $t (call $s (i32.const 1))))
                 (i32.const 0))))"#,
    )
    .expect("valid module weaves");
    wasmparser::Validator::new_with_features(instrumenter::features())
        .validate_all(&wasm)
        .expect("output validates");
}

/// A module whose code section is large enough (over 1 MiB) to be validated on several
/// threads; the bodies listed in `bad` (and only they) are ill-typed. Every tenth body calls the
/// monitored import, so rewritten and copied bodies alternate across thread boundaries.
fn big_module(bad: &[usize]) -> Vec<u8> {
    let mut wat = String::from(
        "(module (import \"env\" \"secret\" (func $s (param i32) (result i32))) (memory 1)\n",
    );
    for i in 0..3000 {
        wat.push_str("(func (param $x i32) (result i32)\n");
        for k in 0..60 {
            wat.push_str(&format!(
                "(local.set $x (i32.add (local.get $x) (i32.load offset={k} (local.get $x))))\n"
            ));
        }
        if i % 10 == 0 {
            wat.push_str("(local.set $x (call $s (local.get $x)))\n");
        }
        if bad.contains(&i) {
            wat.push_str("(drop (i64.add (local.get $x) (i64.const 1)))\n");
        }
        wat.push_str("(local.get $x))\n");
    }
    wat.push(')');
    let wasm = wat::parse_str(&wat).expect("the text parses");
    assert!(
        wasm.len() > 1 << 20,
        "big enough to be validated in parallel"
    );
    wasm
}

fn weave_with_threads(wasm: &[u8], threads: usize) -> Result<Vec<u8>, Box<WeaveError>> {
    let options = WeaveOptions {
        threads,
        ..WeaveOptions::default()
    };
    weave(wasm, &deny_secret(), &options)
        .map(|w| w.wasm)
        .map_err(Box::new)
}

#[test]
fn the_output_does_not_depend_on_the_number_of_validating_threads() {
    let wasm = big_module(&[]);
    let one = weave_with_threads(&wasm, 1).expect("weaves");
    for threads in [2, 3, 7, 64] {
        assert!(
            one == weave_with_threads(&wasm, threads).expect("weaves"),
            "{threads} threads"
        );
    }
}

#[test]
fn parallel_validation_reports_the_first_invalid_body_like_sequential_validation() {
    // Bodies 400 and 2500 fall in different threads' shares; body 400's error wins.
    let offset = |e: Box<WeaveError>| match *e {
        WeaveError::Invalid { offset, .. } => offset,
        other => panic!("not Invalid: {other}"),
    };
    let both = big_module(&[400, 2500]);
    let sequential = offset(weave_with_threads(&both, 1).expect_err("invalid"));
    let parallel = offset(weave_with_threads(&both, 3).expect_err("invalid"));
    assert_eq!(sequential, parallel);
    let later_only = offset(weave_with_threads(&big_module(&[2500]), 3).expect_err("invalid"));
    assert!(sequential < later_only, "the error is body 400's");
}
