//! End-to-end tests of the examples in `examples/`, through the `irm` binary exactly as
//! a user runs them: exit codes, what the guest printed, the monitor's message, files
//! written and audit logs.
//!
//! The windows example has its own host program and is tested in
//! `examples/windows/tests/`. Tests that need something this machine may lack (the C
//! toolchain for wasm32-wasi, the third-party corpus) print why and pass without
//! checking anything else.

mod common;

use common::root;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Exit code of `irm` when a policy violation stopped the program.
const VIOLATION: i32 = 86;
/// WASI errno values the examples print.
const ERRNO_ACCES: u32 = 2;
const ERRNO_BADF: u32 = 8;

/// Runs `irm` with `args` from the workspace root, with no standard input.
fn irm(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_irm"))
        .args(args)
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the irm binary runs");
    Run::from(output, args)
}

/// What one `irm` run did, with the command line for failure messages.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    command: String,
}

impl Run {
    fn from(output: Output, args: &[&str]) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            command: format!("irm {}", args.join(" ")),
        }
    }

    #[track_caller]
    fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` exited with {:?}, expected {code}\n--- stdout\n{}--- stderr\n{}",
            self.command,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn assert_stdout(&self, expected: &str) -> &Run {
        assert_eq!(
            self.stdout, expected,
            "stdout of `{}`\n--- stderr\n{}",
            self.command, self.stderr
        );
        self
    }

    #[track_caller]
    fn assert_stderr_has(&self, needles: &[&str]) -> &Run {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr of `{}` lacks {needle:?}\n--- stderr\n{}",
                self.command,
                self.stderr
            );
        }
        self
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Copies the files of `from` (one level) into a fresh temporary directory.
fn copy_dir(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for entry in fs::read_dir(from).expect("example directory") {
        let entry = entry.expect("directory entry");
        fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy example file");
    }
    dir
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------
// exfil

const EXFIL_WAT: &str = "examples/exfil/exfil.wat";
const EXFIL_DATA: &str = "examples/exfil/data::/data";
const NO_EXFIL: &str = "policies/no-exfil.pol";

fn exfil_read_then_send_stdout() -> String {
    let secret = fs::read(root().join("examples/exfil/data/secret.txt")).expect("secret.txt");
    format!(
        "exfil: read {n} bytes from /data/secret.txt\nexfil: sending {n} bytes on socket fd 4\n",
        n = secret.len()
    )
}

fn exfil_no_read_stdout(errno: u32) -> String {
    format!("exfil: sending 17 bytes on socket fd 4\nexfil: host answered errno {errno}\n")
}

#[test]
fn exfil_send_after_read_is_stopped_before_reaching_the_host() {
    irm(&["run", "--policy", NO_EXFIL, "--dir", EXFIL_DATA, EXFIL_WAT])
        .assert_code(VIOLATION)
        // The guest got as far as the send and printed nothing after it: the host's
        // answer never came back.
        .assert_stdout(&exfil_read_then_send_stdout())
        .assert_stderr_has(&["no_exfil", "sock_send", "network send after a file read"]);
}

#[test]
fn exfil_send_without_read_reaches_the_host() {
    irm(&["run", "--policy", NO_EXFIL, EXFIL_WAT, "--", "--no-read"])
        .assert_code(0)
        .assert_stdout(&exfil_no_read_stdout(ERRNO_BADF));
}

#[test]
fn exfil_unhardened_send_after_read_reaches_the_host() {
    let expected = format!(
        "{}exfil: host answered errno {ERRNO_BADF}\n",
        exfil_read_then_send_stdout()
    );
    irm(&["run", "--dir", EXFIL_DATA, EXFIL_WAT])
        .assert_code(0)
        .assert_stdout(&expected);
}

#[test]
fn exfil_woven_module_stops_the_send_on_its_own() {
    // `irm weave` output needs no help from `irm run`: run without --policy, the
    // module's own monitor stops the send and reports through the module's fd_write.
    let dir = tempfile::tempdir().expect("temporary directory");
    let woven = dir.path().join("exfil.hardened.wasm");
    irm(&[
        "weave",
        "--policy",
        NO_EXFIL,
        EXFIL_WAT,
        "-o",
        path_str(&woven),
    ])
    .assert_code(0);
    irm(&["run", "--dir", EXFIL_DATA, path_str(&woven)])
        .assert_code(VIOLATION)
        .assert_stdout(&exfil_read_then_send_stdout())
        .assert_stderr_has(&["no_exfil", "sock_send"]);
    irm(&["run", path_str(&woven), "--", "--no-read"])
        .assert_code(0)
        .assert_stdout(&exfil_no_read_stdout(ERRNO_BADF));
}

/// Builds examples/exfil/exfil.c into `dir`, or says why it cannot.
fn build_exfil_c(dir: &Path) -> Option<PathBuf> {
    let out = dir.join("exfil.wasm");
    let built = Command::new("bash")
        .arg(root().join("examples/exfil/build.sh"))
        .arg(&out)
        .output();
    match built {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => {
            eprintln!(
                "skipping: examples/exfil/exfil.c does not build here (install clang, lld, \
                 wasi-libc and libclang-rt-dev-wasm32):\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("skipping: cannot run examples/exfil/build.sh: {e}");
            None
        }
    }
}

#[test]
fn exfil_c_build_is_stopped_like_its_wat_twin() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let Some(wasm) = build_exfil_c(dir.path()) else {
        return;
    };
    let wasm = path_str(&wasm);
    irm(&["run", "--policy", NO_EXFIL, "--dir", EXFIL_DATA, wasm])
        .assert_code(VIOLATION)
        .assert_stdout(&exfil_read_then_send_stdout())
        .assert_stderr_has(&["no_exfil", "sock_send"]);
    irm(&["run", "--policy", NO_EXFIL, wasm, "--", "--no-read"])
        .assert_code(0)
        .assert_stdout(&exfil_no_read_stdout(ERRNO_BADF));
}

// ---------------------------------------------------------------------------------------
// suppress-audit

const SYNC_WAT: &str = "examples/suppress-audit/sync.wat";
const NO_NETWORK_ERRNO: &str = "policies/no-network-errno.pol";
const AUDIT_FILES: &str = "policies/audit-files.pol";

fn sync_stdout(errno: u32) -> String {
    let notes = fs::read(root().join("examples/suppress-audit/data/notes.txt")).expect("notes");
    format!(
        "sync: read {n} bytes from notes.txt\n\
         sync: no updates (sock_recv: errno {errno}), working offline\n\
         sync: upload failed (sock_send: errno {errno}), working offline\n\
         sync: saved {n} bytes to outbox.txt\n",
        n = notes.len()
    )
}

fn sync_data() -> tempfile::TempDir {
    copy_dir(&root().join("examples/suppress-audit/data"))
}

#[test]
fn sync_keeps_working_when_its_socket_calls_are_suppressed() {
    let data = sync_data();
    let dir = format!("{}::/data", path_str(data.path()));
    irm(&["run", "--policy", NO_NETWORK_ERRNO, "--dir", &dir, SYNC_WAT])
        .assert_code(0)
        // ERRNO_ACCES instead of the host's EBADF: the calls never reached the host.
        .assert_stdout(&sync_stdout(ERRNO_ACCES));
    let notes = fs::read(data.path().join("notes.txt")).expect("notes");
    let outbox = fs::read(data.path().join("outbox.txt")).expect("outbox written");
    assert_eq!(outbox, notes);
}

#[test]
fn sync_unhardened_socket_calls_reach_the_host() {
    let data = sync_data();
    let dir = format!("{}::/data", path_str(data.path()));
    irm(&["run", "--dir", &dir, SYNC_WAT])
        .assert_code(0)
        .assert_stdout(&sync_stdout(ERRNO_BADF));
}

/// The JSON objects of a JSON-lines audit log.
fn audit_records(log: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(log).expect("audit log written");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

#[test]
fn sync_audit_log_has_one_record_per_opened_file_in_order() {
    let data = sync_data();
    let dir = format!("{}::/data", path_str(data.path()));
    let logdir = tempfile::tempdir().expect("temporary directory");
    let log = logdir.path().join("audit.jsonl");
    irm(&[
        "run",
        "--policy",
        AUDIT_FILES,
        "--audit-log",
        path_str(&log),
        "--dir",
        &dir,
        SYNC_WAT,
    ])
    .assert_code(0)
    .assert_stdout(&sync_stdout(ERRNO_BADF));
    let records = audit_records(&log);
    let rendered: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    assert_eq!(rendered.len(), 2, "one record per path_open: {rendered:#?}");
    assert!(rendered[0].contains("notes.txt"), "{}", rendered[0]);
    assert!(rendered[1].contains("outbox.txt"), "{}", rendered[1]);
    for r in &rendered {
        assert!(r.contains("path_open"), "{r}");
        assert!(r.contains("audit_files"), "{r}");
    }
}

#[test]
fn sync_suppression_and_audit_compose() {
    let data = sync_data();
    let dir = format!("{}::/data", path_str(data.path()));
    let logdir = tempfile::tempdir().expect("temporary directory");
    let log = logdir.path().join("audit.jsonl");
    irm(&[
        "run",
        "--policy",
        NO_NETWORK_ERRNO,
        "--policy",
        AUDIT_FILES,
        "--audit-log",
        path_str(&log),
        "--dir",
        &dir,
        SYNC_WAT,
    ])
    .assert_code(0)
    .assert_stdout(&sync_stdout(ERRNO_ACCES));
    let records = audit_records(&log);
    assert_eq!(records.len(), 2, "{records:#?}");
}

// ---------------------------------------------------------------------------------------
// resvg (third-party, from the corpus: scripts/fetch-corpus.sh)

const RESVG_FS: &str = "examples/resvg/resvg-fs.pol";

/// resvg.wasm from the corpus cache, or None (with a message) when it was not fetched.
fn resvg() -> Option<PathBuf> {
    common::corpus_file("resvg.wasm")
}

/// Renders examples/resvg/input/drawing.svg into `out` (preopened as /out) as
/// `/out/drawing.png`, or into `target` when given.
fn render(resvg: &Path, policy: Option<&str>, input: &Path, out: &Path, target: &str) -> Run {
    let in_dir = format!("{}::/in", path_str(input));
    let out_dir = format!("{}::/out", path_str(out));
    let mut args = vec!["run"];
    if let Some(p) = policy {
        args.extend(["--policy", p]);
    }
    args.extend(["--dir", &in_dir, "--dir", &out_dir, path_str(resvg)]);
    args.extend(["--", "/in/drawing.svg", target]);
    irm(&args)
}

#[test]
fn resvg_hardened_renders_the_same_png_as_the_original() {
    let Some(resvg) = resvg() else { return };
    let input = copy_dir(&root().join("examples/resvg/input"));
    let plain = tempfile::tempdir().expect("temporary directory");
    let hardened = tempfile::tempdir().expect("temporary directory");
    render(&resvg, None, input.path(), plain.path(), "/out/drawing.png").assert_code(0);
    render(
        &resvg,
        Some(RESVG_FS),
        input.path(),
        hardened.path(),
        "/out/drawing.png",
    )
    .assert_code(0);
    let a = fs::read(plain.path().join("drawing.png")).expect("original output");
    let b = fs::read(hardened.path().join("drawing.png")).expect("hardened output");
    assert!(a.starts_with(b"\x89PNG"), "resvg wrote a PNG");
    assert_eq!(a, b, "hardened resvg renders byte-identical output");
}

#[test]
fn resvg_hardened_cannot_write_into_its_input_directory() {
    let Some(resvg) = resvg() else { return };
    let input = copy_dir(&root().join("examples/resvg/input"));
    let out = tempfile::tempdir().expect("temporary directory");
    render(
        &resvg,
        Some(RESVG_FS),
        input.path(),
        out.path(),
        "/in/drawing.png",
    )
    .assert_code(VIOLATION)
    .assert_stderr_has(&[
        "resvg_writes",
        "path_open",
        "resvg may only write PNG files into the output directory",
    ]);
    assert_eq!(
        file_names(input.path()),
        ["drawing.svg"],
        "nothing was written"
    );
}

#[test]
fn resvg_unhardened_writes_into_its_input_directory() {
    // The policy, not WASI's preopens, is what keeps the input directory clean.
    let Some(resvg) = resvg() else { return };
    let input = copy_dir(&root().join("examples/resvg/input"));
    let out = tempfile::tempdir().expect("temporary directory");
    render(&resvg, None, input.path(), out.path(), "/in/drawing.png").assert_code(0);
    assert_eq!(file_names(input.path()), ["drawing.png", "drawing.svg"]);
}
