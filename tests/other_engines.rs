//! A woven module enforces its policy in any engine: here Node.js (V8 and its own WASI
//! implementation), with nothing from irm at run time. Skips when `node` is missing.
//!
//! A monitor that keeps a descriptor table (no-exfil asks whether a descriptor is a file)
//! lives in a memory of its own, so it needs an engine with multiple memories (Wasm 3.0;
//! V8 12, Node 22). On an older Node the tests weave the finite-state form of no-exfil,
//! which names descriptors by number and needs no memory of its own, and say so.
mod common;

use common::root;
use std::path::Path;
use std::process::{Command, Output};

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether this node compiles a module with two memories.
fn node_has_multi_memory() -> bool {
    Command::new("node")
        .args([
            "-e",
            "new WebAssembly.Module(new Uint8Array([0,0x61,0x73,0x6d,1,0,0,0,5,5,2,0,1,0,1]))",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// no-exfil without descriptor kinds: a read of any descriptor but stdin taints.
const NO_EXFIL_BY_NUMBER: &str = "policy no_exfil {
  initial state clean;
  state tainted;
  on fd_read in clean when fd != 0 -> tainted;
  on sock_send in tainted -> deny \"network send after a file read\";
}
";

fn weave_exfil(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("exfil.hardened.wasm");
    let policy = if node_has_multi_memory() {
        root().join("policies/no-exfil.pol")
    } else {
        eprintln!(
            "note: this node has no multiple memories (Wasm 3.0, Node 22+): weaving the \
             finite-state form of no-exfil, which needs no memory of its own"
        );
        let p = dir.join("no-exfil-by-number.pol");
        std::fs::write(&p, NO_EXFIL_BY_NUMBER).unwrap();
        p
    };
    let o = Command::new(env!("CARGO_BIN_EXE_irm"))
        .args(["weave", "-q", "--policy"])
        .arg(&policy)
        .args(["examples/exfil/exfil.wat", "-o"])
        .arg(&out)
        .current_dir(root())
        .output()
        .expect("irm runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn node(module: &Path, args: &[&str]) -> Output {
    Command::new("node")
        .arg("--no-warnings")
        .arg(root().join("tests/node/run-wasi.mjs"))
        .arg(module)
        .arg(root().join("examples/exfil/data"))
        .arg("/data")
        .args(args)
        .output()
        .expect("node runs")
}

#[test]
fn woven_exfil_is_stopped_in_node_with_the_monitor_message() {
    if !node_available() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = node(&weave_exfil(dir.path()), &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(134),
        "the deny traps\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("exfil: sending 37 bytes"), "{stdout}");
    assert!(
        stderr.contains(
            "irm: policy no_exfil denied wasi_snapshot_preview1.sock_send: network send after a file read"
        ),
        "{stderr}"
    );
    assert!(
        !stdout.contains("host answered"),
        "the send never reached node's WASI: {stdout}"
    );
}

#[test]
fn woven_exfil_sends_in_node_when_nothing_was_read() {
    if !node_available() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = node(&weave_exfil(dir.path()), &["--no-read"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("host answered errno"),
        "the send reached node's WASI: {stdout}"
    );
}
