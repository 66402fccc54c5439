//! `irm check`, `irm weave --check` and `irm run` of a module hardened elsewhere, through
//! the binary: the certifier decides, never the module's own manifest.

mod common;

use common::root;
use std::path::Path;
use std::process::{Command, Output};

const EXFIL_WAT: &str = "examples/exfil/exfil.wat";
const NO_EXFIL: &str = "policies/no-exfil.pol";
const STDIO_ONLY: &str = "policies/stdio-only.pol";

fn irm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_irm"))
        .args(args)
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the irm binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `exfil.wat` woven with `policy` into `dir`.
fn woven(dir: &Path, policy: &str) -> std::path::PathBuf {
    let out = dir.join("exfil.hardened.wasm");
    let o = irm(&["weave", "-q", "--policy", policy, EXFIL_WAT, "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

#[test]
fn a_module_woven_with_the_policy_is_certified() {
    let dir = tempfile::tempdir().unwrap();
    let m = woven(dir.path(), NO_EXFIL);
    let o = irm(&["check", "--policy", NO_EXFIL, s(&m)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("is certified"), "{}", stderr(&o));
    assert!(stderr(&o).contains("sampled"), "{}", stderr(&o));
}

#[test]
fn an_unhardened_module_is_not_certified_and_the_reason_names_the_import() {
    let o = irm(&["check", "--policy", NO_EXFIL, EXFIL_WAT]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("is not certified"), "{err}");
    assert!(err.contains("no function monitors import"), "{err}");
}

#[test]
fn a_module_woven_with_another_policy_is_not_certified() {
    let dir = tempfile::tempdir().unwrap();
    let m = woven(dir.path(), STDIO_ONLY);
    let o = irm(&["check", "--policy", NO_EXFIL, s(&m)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not certified"), "{}", stderr(&o));
}

#[test]
fn the_json_report_says_certified_or_lists_located_findings() {
    let dir = tempfile::tempdir().unwrap();
    let m = woven(dir.path(), NO_EXFIL);
    let o = irm(&["check", "--policy", NO_EXFIL, s(&m), "--report", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["certified"], true);
    assert!(v["sampled"]["calls"].as_u64().unwrap() > 0);

    let o = irm(&["check", "--policy", NO_EXFIL, EXFIL_WAT, "--report", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["certified"], false);
    assert!(v["findings"][0]["offset"].as_u64().is_some(), "{v}");
}

#[test]
fn weave_check_certifies_the_output_before_writing_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.wasm");
    let o = irm(&[
        "weave",
        "--check",
        "--policy",
        NO_EXFIL,
        EXFIL_WAT,
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.exists());
}

#[test]
fn run_of_a_module_hardened_elsewhere_certifies_it_and_runs_it_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let m = woven(dir.path(), NO_EXFIL);
    let o = irm(&[
        "run",
        "--policy",
        NO_EXFIL,
        "--dir",
        "examples/exfil/data::/data",
        s(&m),
    ]);
    assert_eq!(o.status.code(), Some(86), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("network send after a file read"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn run_refuses_a_module_hardened_elsewhere_that_does_not_certify_against_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let m = woven(dir.path(), STDIO_ONLY);
    let o = irm(&["run", "--policy", NO_EXFIL, s(&m)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not certify against the policies"),
        "{}",
        stderr(&o)
    );
}
