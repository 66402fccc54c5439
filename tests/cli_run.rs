//! `irm run` (and the `monitor-rt` runner behind it): WASI, exit codes, traps, link
//! errors, violation reports, audit logs, recorded traces, the module cache, and the
//! differential oracle — inline (woven) and host enforcement reach the same decisions.

mod common;

use common::{corpus_file, irm, irm_in, root, write};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use monitor_rt::wasmtime;
use monitor_rt::{Enforcement, RunError, Runner};
use policy_lang::interp::{self, ObservationKind};
use policy_lang::trace;

const VIOLATION: i32 = 86;
const TRAP: i32 = 134;

const WASI: &str = "wasi_snapshot_preview1";

fn exits_with(code: i32) -> String {
    format!(
        r#"(module
             (import "{WASI}" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start") i32.const {code} call $exit))"#
    )
}

/// Opens `path` relative to preopen fd 3 with the given oflags, then exits 0.
fn opens(path: &str, oflags: i32) -> String {
    let len = path.len();
    let path: String = path.bytes().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
             (import "{WASI}" "path_open"
               (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
             (import "{WASI}" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 1)
             (data (i32.const 100) "{path}")
             (func $start (export "_start")
               (drop (call $read (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16)))
               (drop (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const {len})
                                 (i32.const {oflags}) (i64.const 64) (i64.const 0) (i32.const 0)
                                 (i32.const 8)))))"#
    )
}

// `raw_path`: the module opens relative to descriptor 3 in runs that preopen nothing, and
// these tests are about reporting, not about resolving paths.
const NO_SECRETS: &str = r#"
policy no_secret_files {
  on path_open when raw_path glob "**secret**" -> deny "files named like secrets stay closed";
  on fd_read when fd == 12345 -> deny "never happens";
}
"#;

const AUDIT_OPENS: &str = r#"
policy audit_opens {
  on path_open -> audit "file opened";
}
"#;

// ---------------------------------------------------------------------------------------
// WASI, exit codes, traps, link errors

#[test]
fn guest_exit_code_is_propagated() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "exit.wat", &exits_with(7));
    irm(&["run", &m]).code(7);
}

#[test]
fn args_and_env_reach_the_guest() {
    // Exits with 10 * argc + envc.
    let wat = format!(
        r#"(module
             (import "{WASI}" "args_sizes_get" (func $a (param i32 i32) (result i32)))
             (import "{WASI}" "environ_sizes_get" (func $e (param i32 i32) (result i32)))
             (import "{WASI}" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start")
               (drop (call $a (i32.const 0) (i32.const 4)))
               (drop (call $e (i32.const 8) (i32.const 12)))
               (call $exit (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 10))
                                    (i32.load (i32.const 8))))))"#
    );
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "argc.wat", &wat);
    irm(&["run", "--env", "A=1", "--env", "B=2", &m, "--", "x", "y"]).code(32);
}

#[test]
fn invoke_calls_initialize_then_the_export_and_prints_its_result() {
    let wat = r#"(module
        (memory (export "memory") 1)
        (global $g (mut i32) (i32.const 0))
        (func (export "_initialize") (global.set $g (i32.const 40)))
        (func (export "add") (param i32) (result i32)
          (i32.add (global.get $g) (local.get 0))))"#;
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "reactor.wat", wat);
    let r = irm(&["run", "--invoke", "add", &m, "--", "2"]);
    r.code(0);
    assert_eq!(r.stdout, "42\n");
}

#[test]
fn trap_is_reported_as_a_trap_not_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(
        dir.path(),
        "trap.wat",
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    );
    let p = write(dir.path(), "p.pol", AUDIT_OPENS);
    irm(&["run", "--policy", &p, &m])
        .code(TRAP)
        .stderr_has(&["trapped", "not a policy violation"])
        .stderr_lacks("policy violation:");
}

#[test]
fn missing_import_is_a_link_error_naming_it_and_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(
        dir.path(),
        "link.wat",
        r#"(module (import "env" "launch" (func (param i32 i64) (result i32)))
                   (memory (export "memory") 1) (func (export "_start")))"#,
    );
    irm(&["run", &m])
        .code(1)
        .stderr_has(&["env.launch", "(param i32 i64)", "(result i32)"]);
}

#[test]
fn stub_provides_a_missing_import_returning_its_value() {
    let wat = format!(
        r#"(module
             (import "env" "answer" (func $answer (param i32) (result i32)))
             (import "{WASI}" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start") (call $exit (call $answer (i32.const 0)))))"#
    );
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "stub.wat", &wat);
    irm(&["run", "--stub", "env.answer=9", &m]).code(9);
}

#[test]
fn deep_recursion_needs_a_bigger_wasm_stack() {
    let wat = r#"(module (memory (export "memory") 1)
        (func $down (param i32) (result i32)
          (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
            (else (i32.add (i32.const 1) (call $down (i32.sub (local.get 0) (i32.const 1)))))))
        (func (export "_start") (drop (call $down (i32.const 200000)))))"#;
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "deep.wat", wat);
    irm(&["run", "--wasm-stack", "65536", &m])
        .code(TRAP)
        .stderr_has(&["call stack exhausted"]);
    irm(&["run", "--wasm-stack", "67108864", &m]).code(0);
}

#[test]
fn compiled_module_is_cached_unless_no_cache() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "exit.wat", &exits_with(0));
    let cache = tempfile::tempdir().unwrap();
    let entries =
        |c: &Path| -> usize { fs::read_dir(c.join("irm")).map(|d| d.count()).unwrap_or(0) };
    irm_in(cache.path(), &["run", "--no-cache", &m]).code(0);
    assert_eq!(entries(cache.path()), 0, "--no-cache writes nothing");
    irm_in(cache.path(), &["run", &m]).code(0);
    assert_eq!(entries(cache.path()), 1, "one compiled module");
    irm_in(cache.path(), &["run", &m]).code(0);
    assert_eq!(entries(cache.path()), 1, "the second run reuses it");
}

// ---------------------------------------------------------------------------------------
// violations, audits, recording

#[test]
fn violation_report_names_policy_event_string_argument_reason_and_recent_calls() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "open.wat", &opens("db/secret.key", 0));
    let p = write(dir.path(), "p.pol", NO_SECRETS);
    let data = tempfile::tempdir().unwrap();
    let d = format!("{}::/data", data.path().display());
    for mode in ["inline", "host"] {
        irm(&["run", "--enforce", mode, "--policy", &p, "--dir", &d, &m])
            .code(VIOLATION)
            .stderr_has(&[
                "no_secret_files",
                "wasi_snapshot_preview1.path_open",
                "path=\"db/secret.key\"",
                "files named like secrets stay closed",
                "recent monitored calls",
            ]);
    }
}

#[test]
fn verbose_violation_shows_the_wasm_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "open.wat", &opens("secret", 0));
    let p = write(dir.path(), "p.pol", NO_SECRETS);
    irm(&["run", "-v", "--policy", &p, &m])
        .code(VIOLATION)
        .stderr_has(&[
            "wasm backtrace:",
            "irm:wrapper:wasi_snapshot_preview1.path_open",
            "!start",
        ]);
}

#[test]
fn audits_are_printed_to_stderr_without_an_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "open.wat", &opens("notes.txt", 0));
    let p = write(dir.path(), "p.pol", AUDIT_OPENS);
    irm(&["run", "--enforce", "host", "--policy", &p, &m])
        .code(0)
        .stderr_has(&["audit", "audit_opens", "path=\"notes.txt\"", "file opened"]);
}

#[test]
fn audit_log_lines_are_json_with_the_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "open.wat", &opens("notes.txt", 0));
    let p = write(dir.path(), "p.pol", AUDIT_OPENS);
    let log = dir.path().join("audit.jsonl");
    irm(&[
        "run",
        "--policy",
        &p,
        "--audit-log",
        log.to_str().unwrap(),
        &m,
    ])
    .code(0);
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["policy"], "audit_opens");
    assert_eq!(lines[0]["event"], "path_open");
    assert_eq!(lines[0]["reason"], "file opened");
    let args = lines[0]["args"].as_array().expect("args");
    assert!(
        args.iter()
            .any(|a| a["name"] == "path" && a["value"] == "notes.txt"),
        "{text}"
    );
}

/// Records a run of `module` under `policy` as the policy's own trace file, then checks
/// the recorded trace parses, the interpreter decides it with the same outcome, and
/// `irm test` passes it under every judge.
fn record_and_replay(mode: &str, module: &str, policy: &str, expected_code: i32) {
    let rec = Path::new(policy).with_extension("traces");
    irm(&[
        "run",
        "--enforce",
        mode,
        "--policy",
        policy,
        "--record",
        rec.to_str().unwrap(),
        module,
    ])
    .code(expected_code);
    let text = fs::read_to_string(&rec).expect("trace written");
    let program = policy_lang::compile_files(&[policy])
        .expect("policy compiles")
        .program;
    let file = trace::parse_traces("run.traces", &text, &program, &trace::wasi_constants)
        .unwrap_or_else(|e| panic!("recorded trace does not parse:\n{e}\n{text}"));
    assert_eq!(file.traces.len(), 1);
    let t = &file.traces[0];
    let verdict = interp::run_trace(&program, &t.events());
    trace::check(&program, t, &verdict).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(verdict.accepted(), expected_code != VIOLATION, "{text}");
    let r = irm(&["test", "--judge", "all", rec.to_str().unwrap()]);
    assert!(
        r.stdout.ends_with("1 passed, 0 failed\n"),
        "{}\n{text}",
        r.stdout
    );
    r.code(0);
}

#[test]
fn recorded_allowed_run_replays_as_an_accepted_trace() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "open.wat", &opens("notes.txt", 0));
    let p = write(dir.path(), "p.pol", AUDIT_OPENS);
    record_and_replay("inline", &m, &p, 0);
    record_and_replay("host", &m, &p, 0);
}

#[test]
fn recorded_stopped_run_replays_as_a_rejected_trace() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "open.wat", &opens("secret\"\n\x01", 0));
    let p = write(dir.path(), "p.pol", NO_SECRETS);
    record_and_replay("inline", &m, &p, VIOLATION);
    record_and_replay("host", &m, &p, VIOLATION);
}

#[test]
fn host_enforcement_without_a_policy_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "exit.wat", &exits_with(0));
    irm(&["run", "--enforce", "host", &m])
        .code(1)
        .stderr_has(&["policy"]);
}

#[test]
fn prewoven_module_violation_is_reported_from_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "open.wat", &opens("secret", 0));
    let p = write(dir.path(), "p.pol", NO_SECRETS);
    let woven = dir.path().join("open.woven.wasm");
    irm(&["weave", "--policy", &p, &m, "-o", woven.to_str().unwrap()]).code(0);
    irm(&["run", woven.to_str().unwrap()])
        .code(VIOLATION)
        .stderr_has(&[
            "policy violation: no_secret_files stopped wasi_snapshot_preview1.path_open",
            "files named like secrets stay closed",
            "arguments unknown",
        ]);
}

#[test]
fn trap_with_a_forged_violation_global_but_no_manifest_is_a_trap() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(
        dir.path(),
        "forged.wat",
        r#"(module (memory (export "memory") 1)
             (global (export "irm:violation") (mut i32) (i32.const 1))
             (func (export "_start") unreachable))"#,
    );
    irm(&["run", &m])
        .code(TRAP)
        .stderr_lacks("policy violation:");
}

// ---------------------------------------------------------------------------------------
// differential: inline and host enforcement decide alike

/// What a run decided, in a form both modes must agree on.
#[derive(Debug, PartialEq)]
enum Decision {
    Finished,
    Exit(i32),
    Trap,
    Violation {
        policy: String,
        event: String,
        reason: String,
        args: String,
    },
    Other(String),
}

fn decision(r: &Result<monitor_rt::Finished, RunError>) -> Decision {
    match r {
        Ok(_) => Decision::Finished,
        Err(RunError::Exit(c)) => Decision::Exit(*c),
        Err(RunError::Trap { .. }) => Decision::Trap,
        Err(RunError::Violation(v)) => Decision::Violation {
            policy: v.policy.clone(),
            event: v.event.clone(),
            reason: v.reason.clone(),
            args: format!("{:?}", v.args),
        },
        Err(e) => Decision::Other(e.to_string()),
    }
}

type Audits = Arc<std::sync::Mutex<Vec<String>>>;

fn runner(
    mode: Enforcement,
    program: &policy_lang::ir::Program,
    audits: &Audits,
) -> monitor_rt::RunnerBuilder {
    let a = Arc::clone(audits);
    Runner::builder()
        .program(program.clone())
        .enforcement(mode)
        .cache_dir(None)
        .on_audit(move |r| a.lock().unwrap().push(serde_json::to_string(r).unwrap()))
}

#[test]
fn inline_and_host_enforcement_agree_on_the_examples() {
    let sync = root().join("examples/suppress-audit");
    let exfil = root().join("examples/exfil");
    let cases: Vec<(&str, Vec<&str>, PathBuf, Vec<&str>)> = vec![
        (
            "exfil read+send",
            vec!["no-exfil.pol"],
            exfil.join("exfil.wat"),
            vec![],
        ),
        (
            "exfil send only",
            vec!["no-exfil.pol"],
            exfil.join("exfil.wat"),
            vec!["--no-read"],
        ),
        (
            "sync suppressed",
            vec!["no-network-errno.pol"],
            sync.join("sync.wat"),
            vec![],
        ),
        (
            "sync suppressed+audited",
            vec!["no-network-errno.pol", "audit-files.pol"],
            sync.join("sync.wat"),
            vec![],
        ),
    ];
    for (name, policies, module, args) in cases {
        let paths: Vec<PathBuf> = policies
            .iter()
            .map(|p| root().join("policies").join(p))
            .collect();
        let program = policy_lang::compile_files(&paths)
            .expect("policies compile")
            .program;
        let mut seen = Vec::new();
        for mode in [Enforcement::Inline, Enforcement::Host] {
            let data = tempfile::tempdir().unwrap();
            let from = if name.starts_with("exfil") {
                exfil.join("data")
            } else {
                sync.join("data")
            };
            for f in fs::read_dir(&from).unwrap() {
                let f = f.unwrap();
                fs::copy(f.path(), data.path().join(f.file_name())).unwrap();
            }
            let audits: Audits = Arc::default();
            let r = runner(mode, &program, &audits)
                .dir(data.path(), "/data")
                .arg("example")
                .args(args.iter().copied())
                .build()
                .expect("runner")
                .run_file(&module);
            let audits = audits.lock().unwrap().clone();
            seen.push((decision(&r), audits));
        }
        assert_eq!(
            seen[0], seen[1],
            "{name}: inline (left) and host (right) disagree"
        );
    }
}

/// Stubs every event import of `program`: each returns the result the trace gives for the
/// step in progress (the driver writes the 1-based step number at address 0).
fn stub_events(
    b: monitor_rt::RunnerBuilder,
    program: &policy_lang::ir::Program,
    results: Vec<Option<i64>>,
    step_cell: u32,
) -> monitor_rt::RunnerBuilder {
    let events: Vec<_> = program.events.clone();
    let results = Arc::new(results);
    b.host_functions(move |linker| {
        for e in &events {
            let params: Vec<wasmtime::ValType> = e.wasm_params().iter().map(|t| wt(*t)).collect();
            let res: Vec<wasmtime::ValType> = e.results.iter().map(|t| wt(*t)).collect();
            let ty = wasmtime::FuncType::new(linker.engine(), params, res);
            let results = Arc::clone(&results);
            linker.func_new(&e.module, &e.field, ty, move |mut caller, _params, out| {
                let step = match caller.get_export("memory") {
                    Some(wasmtime::Extern::Memory(m)) => {
                        let mut cell = [0u8; 4];
                        m.read(&caller, step_cell as usize, &mut cell)
                            .map(|_| u32::from_le_bytes(cell))
                            .unwrap_or(0)
                    }
                    _ => 0,
                } as usize;
                let v = step
                    .checked_sub(1)
                    .and_then(|i| results.get(i).copied().flatten())
                    .unwrap_or(0);
                for (i, slot) in out.iter_mut().enumerate() {
                    let v = if i == 0 { v } else { 0 };
                    *slot = match slot {
                        wasmtime::Val::I64(_) => wasmtime::Val::I64(v),
                        wasmtime::Val::F32(_) => wasmtime::Val::F32(0),
                        wasmtime::Val::F64(_) => wasmtime::Val::F64(0),
                        _ => wasmtime::Val::I32(v as i32),
                    };
                }
                Ok(())
            })?;
        }
        Ok(())
    })
}

fn wt(t: policy_lang::ir::ValType) -> wasmtime::ValType {
    match t {
        policy_lang::ir::ValType::I32 => wasmtime::ValType::I32,
        policy_lang::ir::ValType::I64 => wasmtime::ValType::I64,
        policy_lang::ir::ValType::F32 => wasmtime::ValType::F32,
        policy_lang::ir::ValType::F64 => wasmtime::ValType::F64,
    }
}

#[test]
fn inline_and_host_enforcement_agree_on_trace_driver_runs() {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("policies"))
        .expect("policies/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "traces"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "policies/*.traces exist");
    let mut compared = 0;
    for file in files {
        let loaded =
            trace::load_trace_file(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let program = &loaded.compiled.program;
        for t in &loaded.file.traces {
            let events = t.events();
            // Stubs answer the events and write nothing, so a trace whose host hands out
            // a descriptor, or whose import traps, is left to the judges (`irm test`).
            if events.iter().any(|e| e.opened.is_some() || e.trapped) {
                continue;
            }
            let driver = monitor_rt::judge::driver(program, &events).expect("driver");
            let reference = interp::run_trace_in(program, &t.world, &events);
            // The trace's preopens, as real (empty) directories under their guest names.
            let dirs: Vec<tempfile::TempDir> = t
                .world
                .preopens
                .iter()
                .map(|_| tempfile::tempdir().expect("temporary directory"))
                .collect();
            let mut seen = Vec::new();
            for mode in [Enforcement::Inline, Enforcement::Host] {
                let audits: Audits = Arc::default();
                let results = events.iter().map(|e| e.result).collect();
                let mut b = stub_events(
                    runner(mode, program, &audits),
                    program,
                    results,
                    driver.step_cell(),
                );
                for (dir, guest) in dirs.iter().zip(&t.world.preopens) {
                    b = b.dir(dir.path(), String::from_utf8_lossy(guest).into_owned());
                }
                let r = b
                    .invoke("run")
                    .build()
                    .expect("runner")
                    .run_bytes(&driver.wasm, "driver");
                let audits = audits.lock().unwrap().clone();
                seen.push((decision(&r), audits));
            }
            let what = format!("{}: trace {:?}", file.display(), t.name);
            assert_eq!(
                seen[0], seen[1],
                "{what}: inline (left) and host (right) disagree"
            );
            // Both agree with the interpreter on the verdict and the number of audits.
            let audits = reference
                .observations
                .iter()
                .filter(|o| o.kind == ObservationKind::Audit)
                .count();
            assert_eq!(seen[0].1.len(), audits, "{what}: audit count");
            match (&reference.violation, &seen[0].0) {
                (None, Decision::Finished) => {}
                (Some(v), Decision::Violation { policy, reason, .. }) if v.fault.is_none() => {
                    assert_eq!((policy, reason), (&v.policy, &v.reason), "{what}");
                }
                (Some(v), Decision::Violation { policy, .. }) => {
                    assert_eq!(policy, &v.policy, "{what}")
                }
                (r, d) => panic!("{what}: interpreter {r:?}, runs {d:?}"),
            }
            compared += 1;
        }
    }
    assert!(compared > 10, "compared {compared} traces");
}

// ---------------------------------------------------------------------------------------
// CPython from the corpus (a reactor: `_initialize`, then `run()`)

/// cpython.wasm and its stdlib zip from the corpus cache, or None (with a message).
fn cpython() -> Option<(PathBuf, PathBuf)> {
    Some((
        corpus_file("cpython.wasm")?,
        corpus_file("python-stdlib.zip")?,
    ))
}

/// What one Python run did.
struct PyRun {
    outcome: Result<monitor_rt::Finished, RunError>,
    stdout: String,
    stderr: String,
}

/// The directories a Python run sees: the stdlib as /usr/local/lib/python315.zip, a
/// private /tmp and a /data folder.
struct PyWorld {
    lib: tempfile::TempDir,
    tmp: tempfile::TempDir,
    data: tempfile::TempDir,
}

impl PyWorld {
    fn new(zip: &Path) -> PyWorld {
        let lib = tempfile::tempdir().unwrap();
        // A copy, not a hard link: wasmtime-wasi answers EPERM to a stat of a file with
        // more than one link.
        fs::copy(zip, lib.path().join("python315.zip")).expect("copy the stdlib zip");
        PyWorld {
            lib,
            tmp: tempfile::tempdir().unwrap(),
            data: tempfile::tempdir().unwrap(),
        }
    }

    fn python(&self, wasm: &Path, code: &str, policies: &[&str], mode: Enforcement) -> PyRun {
        let out = monitor_rt::MemoryOutputPipe::new(1 << 20);
        let err = monitor_rt::MemoryOutputPipe::new(1 << 20);
        let mut b = Runner::builder()
            .enforcement(mode)
            .args(["/usr/local/bin/python.wasm", "-c", code])
            .env("TMPDIR", "/tmp")
            .env("PYTHONTZPATH", "")
            .env("HOME", "/tmp")
            // /tmp first: tmp-writes.pol names it by its descriptor, 3.
            .dir(self.tmp.path(), "/tmp")
            .dir(self.lib.path(), "/usr/local/lib")
            .dir(self.data.path(), "/data")
            .invoke("run")
            .wasm_stack(8 << 20)
            .stdout(out.clone())
            .stderr(err.clone())
            .stub("host", "call", -1);
        for p in policies {
            b = b.policy_file(root().join("policies").join(p));
        }
        let outcome = b.build().expect("runner").run_file(wasm);
        PyRun {
            outcome,
            stdout: String::from_utf8_lossy(&out.contents()).into_owned(),
            stderr: String::from_utf8_lossy(&err.contents()).into_owned(),
        }
    }
}

const PY_POLICIES: [&str; 3] = ["no-exfil.pol", "no-secrets.pol", "tmp-writes.pol"];

#[test]
fn cpython_hardened_prints_what_the_unhardened_run_prints() {
    let Some((wasm, zip)) = cpython() else { return };
    let world = PyWorld::new(&zip);
    fs::write(world.data.path().join("input.txt"), "forty-two\n").unwrap();
    let code = "import json, sys\n\
                text = open('/data/input.txt').read().strip()\n\
                print(json.dumps({'text': text, 'n': sum(range(10))}))\n\
                print('err line', file=sys.stderr)";
    let plain = world.python(&wasm, code, &[], Enforcement::Inline);
    assert!(
        plain.outcome.is_ok(),
        "unhardened: {:?}\n{}",
        plain.outcome.err(),
        plain.stderr
    );
    assert_eq!(
        plain.stdout, "{\"text\": \"forty-two\", \"n\": 45}\n",
        "{}",
        plain.stderr
    );
    for mode in [Enforcement::Inline, Enforcement::Host] {
        let hardened = world.python(&wasm, code, &PY_POLICIES, mode);
        assert!(
            hardened.outcome.is_ok(),
            "{mode:?}: {:?}\n{}",
            hardened.outcome.err(),
            hardened.stderr
        );
        assert_eq!(hardened.stdout, plain.stdout, "{mode:?}");
    }
}

/// Runs `code` under all of [`PY_POLICIES`] in both modes; each must stop at a
/// `path_open` of `path` by `policy_name` with `reason`, after printing `before\n` and
/// nothing else. (One policy set for every CPython test keeps it to one woven CPython
/// to compile, which matters on a cold cache.)
fn python_is_stopped(code: &str, policy_name: &str, path: &str, reason: &str) {
    let Some((wasm, zip)) = cpython() else { return };
    for mode in [Enforcement::Inline, Enforcement::Host] {
        let world = PyWorld::new(&zip);
        fs::write(
            world.data.path().join("key.pem"),
            "-----BEGIN PRIVATE KEY-----\n",
        )
        .unwrap();
        let run = world.python(&wasm, code, &PY_POLICIES, mode);
        match &run.outcome {
            Err(RunError::Violation(v)) => {
                assert_eq!(v.policy, policy_name, "{mode:?}");
                assert_eq!(v.import, "wasi_snapshot_preview1.path_open", "{mode:?}");
                assert_eq!(v.reason, reason, "{mode:?}");
                let shown = v.recent.last().map(|c| c.to_string()).unwrap_or_default();
                assert!(
                    shown.contains(&format!("path=\"{path}\"")),
                    "{mode:?}: {shown}"
                );
            }
            other => panic!(
                "{mode:?}: expected a violation, got {other:?}\n{}",
                run.stderr
            ),
        }
        assert_eq!(
            run.stdout, "before\n",
            "{mode:?}: nothing runs after the stopped call"
        );
        assert_eq!(
            fs::read_dir(world.data.path()).unwrap().count(),
            1,
            "{mode:?}: nothing was written"
        );
    }
}

#[test]
fn cpython_opening_a_pem_file_is_stopped_at_the_open() {
    python_is_stopped(
        "print('before', flush=True)\nopen('/data/key.pem').read()\nprint('after')",
        "no_secrets",
        "key.pem",
        "PEM files are off limits",
    );
}

#[test]
fn cpython_writing_under_tmp_is_allowed() {
    let Some((wasm, zip)) = cpython() else { return };
    let world = PyWorld::new(&zip);
    let code = "open('/tmp/out.txt', 'w').write('kept')\nprint(open('/tmp/out.txt').read())";
    for mode in [Enforcement::Inline, Enforcement::Host] {
        let run = world.python(&wasm, code, &PY_POLICIES, mode);
        assert!(
            run.outcome.is_ok(),
            "{mode:?}: {:?}\n{}",
            run.outcome.err(),
            run.stderr
        );
        assert_eq!(run.stdout, "kept\n", "{mode:?}");
        assert_eq!(
            fs::read_to_string(world.tmp.path().join("out.txt")).unwrap(),
            "kept"
        );
    }
}

#[test]
fn cpython_writing_outside_tmp_is_stopped_at_the_open() {
    python_is_stopped(
        "print('before', flush=True)\nopen('/data/out.txt', 'w').write('x')\nprint('after')",
        "tmp_writes",
        "out.txt",
        "files may be created or changed only under /tmp",
    );
}

// ---------------------------------------------------------------------------------------
// Read-only preopens: the host's capability, whatever the policy says

/// Creates `new.txt` under preopen 3 and exits with the errno `path_open` returned.
fn creates_a_file() -> String {
    format!(
        r#"(module
             (import "{WASI}" "path_open"
               (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
             (import "{WASI}" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (data (i32.const 100) "new.txt")
             (func (export "_start")
               (call $exit (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 7)
                 (i32.const 1) (i64.const 64) (i64.const 64) (i32.const 0) (i32.const 16)))))"#
    )
}

#[test]
fn a_read_only_dir_refuses_creating_a_file_and_a_writable_one_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "create.wat", &creates_a_file());
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    let ro = format!("{}::/data:ro", data.display());
    let r = irm(&["run", "--dir", &ro, &m]);
    assert_ne!(r.code, Some(0), "the host refused: {}", r.stderr);
    assert!(!data.join("new.txt").exists(), "nothing was created");
    let rw = format!("{}::/data", data.display());
    irm(&["run", "--dir", &rw, &m]).code(0);
    assert!(
        data.join("new.txt").exists(),
        "the writable preopen allows it"
    );
}
