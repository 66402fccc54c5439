//! Golden tests of the compiler's diagnostics: every `tests/diagnostics/NAME.pol` is
//! compiled and its rendered errors (or, when it compiles, its warnings) must equal
//! `NAME.expected` byte for byte. Each input exercises one kind of diagnostic.
//!
//! To accept new output, run with `IRM_BLESS=1`:
//! `IRM_BLESS=1 cargo test -p policy-lang --test diagnostics`.
use policy_lang::Source;
use std::fs;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics")
}

/// The rendered diagnostics of one input. Sources are named by their file name only, so
/// the output does not depend on where the repository is; includes resolve in `dir()`.
fn render(name: &str) -> String {
    let text = fs::read_to_string(dir().join(name)).expect("input readable");
    let base = dir();
    let read = move |p: &Path| fs::read_to_string(base.join(p));
    match policy_lang::compile_with(
        vec![Source {
            name: name.to_string(),
            text,
        }],
        &read,
    ) {
        Ok(c) if c.warnings.is_empty() => "(compiles without diagnostics)\n".to_string(),
        Ok(c) => format!("{}\n", c.render_warnings()),
        Err(d) => d.render(),
    }
}

fn inputs() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir())
        .expect("tests/diagnostics exists")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".pol") && !n.starts_with("_"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_diagnostic_matches_its_golden_file() {
    let bless = std::env::var_os("IRM_BLESS").is_some();
    let mut failures = Vec::new();
    for name in inputs() {
        let got = render(&name);
        let expected_path = dir().join(name.replace(".pol", ".expected"));
        if bless {
            fs::write(&expected_path, &got).expect("write golden file");
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!("{name}:\n--- expected\n{want}--- got\n{got}")),
            Err(_) => failures.push(format!(
                "{name}: no {} (run with IRM_BLESS=1)",
                expected_path.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatch(es):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn there_are_at_least_25_kinds_of_diagnostics() {
    let errors = inputs()
        .iter()
        .filter(|n| !n.starts_with("warning_"))
        .count();
    assert!(errors >= 25, "only {errors} error inputs");
}

#[test]
fn every_error_input_fails_with_a_located_error() {
    for name in inputs().into_iter().filter(|n| !n.starts_with("warning_")) {
        let out = render(&name);
        assert!(
            out.starts_with("error: "),
            "{name} should fail to compile:\n{out}"
        );
        assert!(
            out.contains("--> ") && out.contains(".pol:"),
            "{name}: the error is not located:\n{out}"
        );
        assert!(out.contains(" | "), "{name}: no source line shown:\n{out}");
        assert!(out.contains('^'), "{name}: no caret:\n{out}");
    }
}

#[test]
fn every_warning_input_compiles_with_a_warning() {
    for name in inputs().into_iter().filter(|n| n.starts_with("warning_")) {
        let out = render(&name);
        assert!(
            out.starts_with("warning: "),
            "{name} should compile with a warning:\n{out}"
        );
    }
}
