//! What the runner refuses, and the typed error it refuses it with: each test provokes one
//! [`RunError`] and checks its fields and the message `irm run` prints for it.
use monitor_rt::{Enforcement, InvokeError, RunError, Runner, RunnerBuilder};
use std::path::{Path, PathBuf};

fn policy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policies")
        .join(format!("{name}.pol"))
}

/// A builder that leaves the user's module cache alone.
fn builder() -> RunnerBuilder {
    Runner::builder().cache_dir(None)
}

fn run(b: RunnerBuilder, wat: &str) -> RunError {
    let runner = b.build().expect("the runner builds");
    match runner.run_bytes(wat.as_bytes(), "test.wat") {
        Ok(_) => panic!("the run finished, but it should have failed"),
        Err(e) => e,
    }
}

#[test]
fn policies_that_do_not_compile_come_back_as_their_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pol");
    std::fs::write(&bad, "policy p { on nowhere -> deny \"x\"; }\n").unwrap();
    let Err(e) = builder().policy_file(&bad).build() else {
        panic!("a policy with an undeclared event compiled");
    };
    let RunError::Policy(diagnostics) = &e else {
        panic!("expected RunError::Policy, got {e:?}");
    };
    assert!(diagnostics.errors().next().is_some());
    assert_eq!(e.to_string(), diagnostics.render().trim_end());
    assert!(e.to_string().contains("bad.pol"), "{e}");
}

#[test]
fn a_compiled_program_and_policy_files_together_are_refused() {
    let program = policy_lang::compile_files(&[policy("max-windows")])
        .unwrap()
        .program;
    let Err(e) = builder()
        .program(program)
        .policy_file(policy("no-exfil"))
        .build()
    else {
        panic!("the runner took both a program and policy files");
    };
    assert!(matches!(e, RunError::ProgramAndPolicyFiles), "{e:?}");
    assert_eq!(
        e.to_string(),
        "give either a compiled program or policy files, not both"
    );
}

#[test]
fn host_enforcement_without_policies_is_refused() {
    let Err(e) = builder().enforcement(Enforcement::Host).build() else {
        panic!("host enforcement built without policies");
    };
    assert!(matches!(e, RunError::HostWithoutPolicies), "{e:?}");
    assert_eq!(e.to_string(), "host enforcement needs at least one policy");
}

#[test]
fn a_file_given_as_a_directory_is_refused() {
    let file = policy("max-windows");
    let Err(e) = builder().dir(&file, "/data").build() else {
        panic!("a file was accepted as a directory to preopen");
    };
    let RunError::NotADirectory { host, guest } = &e else {
        panic!("expected RunError::NotADirectory, got {e:?}");
    };
    assert_eq!((host, guest.as_str()), (&file, "/data"));
    let shown = file.display();
    assert_eq!(
        e.to_string(),
        format!("--dir {shown}::/data: `{shown}` is not a directory")
    );
}

#[test]
fn a_stub_for_an_imported_memory_is_refused() {
    let e = run(
        builder().stub("env", "mem", 0),
        r#"(module (import "env" "mem" (memory 1)) (func (export "_start")))"#,
    );
    let RunError::StubNotAFunction { module, field, ty } = &e else {
        panic!("expected RunError::StubNotAFunction, got {e:?}");
    };
    assert_eq!((module.as_str(), field.as_str()), ("env", "mem"));
    assert!(ty.memory().is_some(), "{ty:?}");
    let message = e.to_string();
    assert!(message.starts_with("--stub env.mem: the module imports it as Memory("));
    assert!(message.ends_with(", not as a function"), "{message}");
}

#[test]
fn invoking_an_export_the_module_lacks_is_an_invoke_error() {
    let e = run(
        builder().invoke("nope"),
        r#"(module (func (export "_start")))"#,
    );
    let RunError::Invoke(InvokeError::MissingExport(name)) = &e else {
        panic!("expected InvokeError::MissingExport, got {e:?}");
    };
    assert_eq!(name, "nope");
    assert_eq!(e.to_string(), "the module exports no function `nope`");
}

#[test]
fn an_invoke_argument_that_is_not_a_number_is_refused() {
    // The first argument is the guest's argv[0]; the export gets the rest.
    let e = run(
        builder().invoke("f").args(["prog", " x "]),
        r#"(module (func (export "f") (param i32)))"#,
    );
    let RunError::Invoke(InvokeError::BadArg { arg, expected }) = &e else {
        panic!("expected InvokeError::BadArg, got {e:?}");
    };
    assert_eq!((arg.as_str(), *expected), ("x", "an i32"));
    assert_eq!(e.to_string(), "invoke argument `x` is not an i32");
}

#[test]
fn a_run_error_converts_into_anyhow_with_its_message() {
    let e = run(
        builder().stub("env", "mem", 0),
        r#"(module (import "env" "mem" (memory 1)) (func (export "_start")))"#,
    );
    let message = e.to_string();
    let any: anyhow::Error = e.into();
    assert_eq!(any.to_string(), message);
}
