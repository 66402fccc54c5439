//! `irm weave` through the binary: what it writes, what it reports, and how it refuses.
//! Policies are written into temporary folders so these tests depend only on the
//! language, not on the policy library.

mod common;

use common::root;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NO_EXFIL: &str = r#"
policy no_exfil {
  initial state clean;
  state tainted;
  on fd_read in clean -> tainted;
  on sock_send in tainted -> deny "network send after a file read";
}
"#;

const EXFIL_WAT: &str = "examples/exfil/exfil.wat";

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

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn custom_sections(wasm: &[u8]) -> Vec<String> {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .filter_map(|p| match p.expect("output parses") {
            wasmparser::Payload::CustomSection(c) => Some(c.name().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn weave_writes_a_valid_module_with_the_irm_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let out = dir.path().join("exfil.hardened.wasm");
    let o = irm(&["weave", "--policy", s(&pol), EXFIL_WAT, "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let wasm = fs::read(&out).unwrap();
    wasmparser::Validator::new_with_features(instrumenter::features())
        .validate_all(&wasm)
        .expect("the woven module validates");
    assert!(custom_sections(&wasm).iter().any(|n| n == "irm.monitor"));
}

#[test]
fn weave_writes_the_same_module_whatever_the_number_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let mut outputs = Vec::new();
    for j in ["1", "2", "0"] {
        let out = dir.path().join(format!("j{j}.wasm"));
        let o = irm(&[
            "weave",
            "-j",
            j,
            "--policy",
            s(&pol),
            EXFIL_WAT,
            "-o",
            s(&out),
        ]);
        assert_eq!(o.status.code(), Some(0), "-j {j}: {}", stderr(&o));
        outputs.push(fs::read(&out).unwrap());
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn weave_summary_names_the_policy_and_the_wrapped_imports() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let out = dir.path().join("o.wasm");
    let o = irm(&["weave", "-p", s(&pol), EXFIL_WAT, "-o", s(&out)]);
    let err = stderr(&o);
    assert!(err.contains("policy no_exfil: enforced"), "{err}");
    assert!(
        err.contains("wraps wasi_snapshot_preview1.fd_read"),
        "{err}"
    );
    assert!(
        err.contains("wraps wasi_snapshot_preview1.sock_send"),
        "{err}"
    );
}

#[test]
fn weave_report_json_describes_every_wrapped_import() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let out = dir.path().join("o.wasm");
    let o = irm(&[
        "weave",
        "-p",
        s(&pol),
        EXFIL_WAT,
        "-o",
        s(&out),
        "--report",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    let imports: Vec<&str> = report["wrapped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["import"].as_str().unwrap())
        .collect();
    assert_eq!(
        imports,
        [
            "wasi_snapshot_preview1.fd_read",
            "wasi_snapshot_preview1.sock_send"
        ]
    );
    assert_eq!(report["policies"][0]["name"], "no_exfil");
    assert_eq!(report["policies"][0]["effective"], true);
}

#[test]
fn weave_elides_a_policy_the_module_cannot_violate() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(
        dir.path(),
        "p.pol",
        "policy no_windows { on sock_accept -> deny \"no servers\"; }\n",
    );
    let out = dir.path().join("o.wasm");
    let o = irm(&[
        "weave",
        "-p",
        s(&pol),
        EXFIL_WAT,
        "-o",
        s(&out),
        "--report",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["policies"][0]["effective"], false);
    assert_eq!(report["wrapped"].as_array().unwrap().len(), 0);
}

#[test]
fn weave_refuses_a_module_irm_already_wove() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let once = dir.path().join("once.wasm");
    assert_eq!(
        irm(&["weave", "-p", s(&pol), EXFIL_WAT, "-o", s(&once)])
            .status
            .code(),
        Some(0)
    );
    let twice = dir.path().join("twice.wasm");
    let o = irm(&["weave", "-p", s(&pol), s(&once), "-o", s(&twice)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("already woven by irm"),
        "{}",
        stderr(&o)
    );
    assert!(!twice.exists(), "no output is written when weaving fails");
}

#[test]
fn weave_reports_a_missing_input_file() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let o = irm(&["weave", "-p", s(&pol), "no/such/app.wasm", "-o", "x.wasm"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read module `no/such/app.wasm`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn weave_reports_text_syntax_errors_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let wat = write(
        dir.path(),
        "bad.wat",
        "(module\n  (func (export \"f\") (call $nowhere)))\n",
    );
    let out = dir.path().join("o.wasm");
    let o = irm(&["weave", "-p", s(&pol), s(&wat), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.wat:2:"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn weave_refuses_a_truncated_binary_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let bad = dir.path().join("t.wasm");
    fs::write(&bad, b"\0asm\x01\0\0\0\x01\x05").unwrap();
    let o = irm(&[
        "weave",
        "-p",
        s(&pol),
        s(&bad),
        "-o",
        s(&dir.path().join("o.wasm")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not a WebAssembly module"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("byte offset 0x"), "{}", stderr(&o));
}

#[test]
fn a_preview_1_policy_woven_into_a_component_says_it_cannot_act_there() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let comp = dir.path().join("c.wasm");
    fs::write(&comp, b"\0asm\x0d\0\x01\0").unwrap();
    let out = dir.path().join("o.wasm");
    let o = irm(&["weave", "-p", s(&pol), s(&comp), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report = String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o);
    assert!(
        report.contains("it names WASI preview 1 functions, and a component imports WASI 0.2"),
        "{report}"
    );
    assert!(report.contains("written unchanged"), "{report}");
    assert_eq!(fs::read(&out).unwrap(), fs::read(&comp).unwrap());
}

#[test]
fn weave_shows_both_signatures_when_an_import_does_not_fit_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(
        dir.path(),
        "p.pol",
        "event send = env.send(fd: i32, n: i32) -> i32;\npolicy p { on send -> deny \"no\"; }\n",
    );
    let wat = write(
        dir.path(),
        "m.wat",
        "(module (import \"env\" \"send\" (func (param i64) (result i32))))\n",
    );
    let o = irm(&[
        "weave",
        "-p",
        s(&pol),
        s(&wat),
        "-o",
        s(&dir.path().join("o.wasm")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("env.send"), "{err}");
    assert!(
        err.contains("i64"),
        "the module's signature is shown: {err}"
    );
    assert!(
        err.contains("i32, i32"),
        "the policy's signature is shown: {err}"
    );
}

#[test]
fn weave_reports_policy_errors_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(
        dir.path(),
        "p.pol",
        "policy p {\n  on sock_sned -> deny \"x\";\n}\n",
    );
    let o = irm(&[
        "weave",
        "-p",
        s(&pol),
        EXFIL_WAT,
        "-o",
        s(&dir.path().join("o.wasm")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("p.pol:2:"), "{err}");
    assert!(
        err.contains("sock_send"),
        "a hint names the closest event: {err}"
    );
}

#[test]
fn weave_without_output_writes_name_hardened_wasm_next_to_the_input_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let input = dir.path().join("app.wat");
    fs::copy(root().join(EXFIL_WAT), &input).unwrap();
    let o = irm(&["weave", "--policy", s(&pol), s(&input)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = dir.path().join("app.hardened.wasm");
    let wasm = fs::read(&out).expect("app.hardened.wasm written next to the input");
    assert!(custom_sections(&wasm).iter().any(|n| n == "irm.monitor"));
    assert!(
        stderr(&o).contains(&format!("wrote {}", out.display())),
        "{}",
        stderr(&o)
    );
}

#[test]
fn weave_says_where_it_wrote_even_with_a_report_when_it_chose_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let input = dir.path().join("app.wat");
    fs::copy(root().join(EXFIL_WAT), &input).unwrap();
    let o = irm(&["weave", "-p", s(&pol), s(&input), "--report", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrote "), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    assert_eq!(report["policies"][0]["name"], "no_exfil");
}

#[test]
fn weave_output_dash_writes_the_module_to_standard_output() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let o = irm(&["weave", "-p", s(&pol), EXFIL_WAT, "-o", "-"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    wasmparser::Validator::new_with_features(instrumenter::features())
        .validate_all(&o.stdout)
        .expect("stdout is the woven module");
    assert!(custom_sections(&o.stdout)
        .iter()
        .any(|n| n == "irm.monitor"));
}

#[test]
fn weave_output_dash_with_a_report_on_standard_output_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let o = irm(&[
        "weave",
        "-p",
        s(&pol),
        EXFIL_WAT,
        "-o",
        "-",
        "--report",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("Usage: irm weave"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[cfg(unix)]
#[test]
fn weave_output_gets_the_permissions_of_any_new_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let out = dir.path().join("o.wasm");
    let o = irm(&["weave", "-p", s(&pol), EXFIL_WAT, "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The child inherits this process's umask, so a file created here is the reference.
    let reference = write(dir.path(), "reference", "");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&out), mode(&reference));
}

#[test]
fn weave_replaces_an_existing_output_and_leaves_no_other_file() {
    let dir = tempfile::tempdir().unwrap();
    let pol = write(dir.path(), "no-exfil.pol", NO_EXFIL);
    let out = write(dir.path(), "o.wasm", "an older output");
    // Another name for the old file keeps the old content: the output is a new file.
    let other = dir.path().join("other-name");
    fs::hard_link(&out, &other).unwrap();
    let o = irm(&["weave", "-q", "-p", s(&pol), EXFIL_WAT, "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let wasm = fs::read(&out).unwrap();
    assert!(custom_sections(&wasm).iter().any(|n| n == "irm.monitor"));
    assert_eq!(fs::read_to_string(&other).unwrap(), "an older output");
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["no-exfil.pol", "o.wasm", "other-name"]);
}
