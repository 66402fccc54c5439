//! Conventions every `irm` command shares, through the binary: the `--policy/-p FILE`
//! spelling, usage errors (exit 2 with the usage line), inputs that are not WebAssembly,
//! and colour.
mod common;

use common::{irm, write};

const POLICY: &str = "policies/no-exfil.pol";
const MODULE: &str = "examples/exfil/exfil.wat";

#[test]
fn every_command_takes_policy_files_with_dash_p() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("o.wasm");
    let out = out.to_str().expect("UTF-8 path");
    irm(&["compile", "-p", POLICY]).code(0);
    irm(&["show", "-p", POLICY]).code(0);
    irm(&["test", "-p", POLICY]).code(0);
    irm(&["weave", "-p", POLICY, MODULE, "-o", out]).code(0);
    irm(&[
        "run",
        "-p",
        "policies/stdio-only.pol",
        "--invoke",
        "f",
        &write_module(dir.path()),
    ])
    .code(0);
}

/// A module whose export `f` returns 7 and imports nothing.
fn write_module(dir: &std::path::Path) -> String {
    write(
        dir,
        "seven.wat",
        r#"(module (func (export "f") (result i32) i32.const 7))"#,
    )
}

#[test]
fn policy_files_given_both_ways_are_compiled_together_dash_p_first() {
    let r = irm(&["compile", "policies/max-windows.pol", "--policy", POLICY]);
    r.code(0);
    let no_exfil = r.stdout.find("policy no_exfil").expect("no_exfil compiled");
    let max_windows = r
        .stdout
        .find("policy max_windows")
        .expect("max_windows compiled");
    assert!(no_exfil < max_windows, "{}", r.stdout);
}

#[test]
fn a_command_without_policy_files_is_a_usage_error() {
    for args in [&["compile"][..], &["show"], &["test"], &["weave", MODULE]] {
        let r = irm(args);
        r.code(2).stderr_has(&["Usage: irm "]);
    }
}

#[test]
fn an_env_without_equals_sign_is_a_usage_error_with_the_usage_line() {
    irm(&["run", "--env", "X", MODULE]).code(2).stderr_has(&[
        "--env",
        "expected K=V",
        "Usage: irm run",
    ]);
}

#[test]
fn a_dir_without_a_host_directory_is_a_usage_error() {
    irm(&["run", "--dir", "::/data", MODULE])
        .code(2)
        .stderr_has(&["--dir", "no host directory", "Usage: irm run"]);
}

#[test]
fn a_stub_without_module_and_field_is_a_usage_error() {
    irm(&["run", "--stub", "call=1", MODULE])
        .code(2)
        .stderr_has(&["--stub", "expected MODULE.FIELD[=VALUE]", "Usage: irm run"]);
    irm(&["run", "--stub", "host.call=x", MODULE])
        .code(2)
        .stderr_has(&["`x` is not an integer"]);
}

#[test]
fn a_file_that_is_neither_binary_nor_text_is_refused_by_its_first_bytes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let elf = dir.path().join("app.wasm");
    std::fs::write(&elf, b"\x7fELF\x02\x01\x01\0").expect("write test file");
    let elf = elf.to_str().expect("UTF-8 path");
    let out = dir.path().join("o.wasm");
    for args in [
        &[
            "weave",
            "-p",
            POLICY,
            elf,
            "-o",
            out.to_str().expect("UTF-8 path"),
        ][..],
        &["run", elf],
    ] {
        irm(args)
            .code(1)
            .stderr_has(&["neither WebAssembly binary", "starts with `7f 45 4c 46"])
            .stderr_lacks("expected `(`");
    }
}

#[test]
fn text_that_does_not_parse_is_still_a_located_syntax_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let wat = write(dir.path(), "bad.wat", "(module (func (i32.const)))\n");
    irm(&["run", &wat]).code(1).stderr_has(&["bad.wat:1:"]);
}

const BAD_POLICY: &str = "policy p {\n  on path_opn -> deny \"x\";\n}\n";

#[test]
fn diagnostics_are_plain_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pol = write(dir.path(), "bad.pol", BAD_POLICY);
    irm(&["compile", &pol])
        .code(1)
        .stderr_has(&["error: unknown event `path_opn`"])
        .stderr_lacks("\x1b[");
}

#[test]
fn color_always_colours_diagnostics_and_never_does_not() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let pol = write(dir.path(), "bad.pol", BAD_POLICY);
    irm(&["compile", "--color", "always", &pol])
        .code(1)
        .stderr_has(&["\x1b[", "unknown event `path_opn`"]);
    irm(&["--color", "never", "compile", &pol])
        .code(1)
        .stderr_lacks("\x1b[");
}
