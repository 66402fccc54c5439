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
