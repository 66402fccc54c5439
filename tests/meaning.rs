//! The attack corpus of issue 10: every shipped policy states a sentence
//! (docs: "The shipped policies' sentences"), and here hostile modules try to make it
//! false without going around the monitor. Each attack comes with its legitimate
//! neighbours, the closest harmless behaviours, which must stay allowed.
//!
//! An attack test runs its module three times, each in a fresh copy of the world:
//! 1. without any policy, and checks that the forbidden effect happens (the attack is
//!    real, the module does what its comment says);
//! 2. under `irm run --policy policies/P.pol`, and
//! 3. woven beforehand with `irm weave` and run by `irm run` without `--policy` (the
//!    module enforces itself, as under any engine),
//!
//! and checks that 2 and 3 are stopped by the policy (exit 86, the policy named on
//! stderr) and that the forbidden effect did not happen on disk or in the output. A
//! neighbour test runs 2 and 3 and checks exit 0 and that the effect happened.
//!
//! What `irm run` cannot give a guest (a socket, a terminal, a stderr that takes only a
//! few bytes, custom imports, a second call into an instance after a trap) is simulated
//! with `monitor_rt::Runner` and its `host_functions` ([`Sim`], [`Desktop`]), or with
//! wasmtime directly.
//!
//! The hostile modules are WebAssembly text built by [`guest`]: the WASI imports and
//! helper functions a module uses are added for it, and `(str "TEXT")` stands for the
//! address and length of TEXT in memory. A WASI call that fails makes the module exit
//! with its errno (`$ok`), so a module that does not work is never mistaken for a
//! stopped one. The WASI flag values the modules pass: `oflags` 1 = CREAT, 2 = DIRECTORY;
//! `fs_rights_base` 2 = FD_READ, 66 = FD_READ | FD_WRITE; `fstflags` 5 = ATIM | MTIM (set
//! both times to the value given, 0: the epoch); `lookupflags` 1 = SYMLINK_FOLLOW.
mod common;

use common::{irm, Run};
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use monitor_rt::wasmtime::{self, Caller, Extern, FuncType, Instance, Linker, Module, Val};
use monitor_rt::{MemoryOutputPipe, RunError, RunState, Runner, RunnerBuilder};

const VIOLATION: i32 = 86;
const WASI: &str = "wasi_snapshot_preview1";

// ---------------------------------------------------------------------------------------
// The world: one host tree, seen through different preopens

/// Every run starts from this tree, by guest path; the host tree is the same under
/// `$T/root`.
const FILES: &[(&str, &str)] = &[
    ("/tmp/scratch.txt", "scratch\n"),
    ("/tmp/b/note.txt", "tmp note\n"),
    ("/data/victim.txt", "victim\n"),
    ("/data/a/x.txt", "side a\n"),
    ("/data/a/z.txt", "side a too\n"),
    ("/data/b/y.txt", "side b\n"),
    ("/home/u/notes.txt", "notes\n"),
    ("/home/u/.ssh/id_rsa", "SSH PRIVATE KEY\n"),
    ("/etc/shadow", "root:SHADOW HASH\n"),
    ("/etc/passwd", "users\n"),
    ("/etc/motd", "welcome\n"),
    ("/keys/server.pem", "PEM PRIVATE KEY\n"),
    ("/keys/readme.txt", "readme\n"),
];
const EMPTY_DIRS: &[&str] = &["/tmp/sub", "/data/empty", "/home/u/docs"];
/// Symbolic links in the tree at start: (guest path, contents).
const LINKS: &[(&str, &str)] = &[
    ("/keys/link.pem", "readme.txt"),
    ("/keys/readme-link", "readme.txt"),
];

/// Which guest directories a run preopens (the worlds of the design).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Preopens {
    /// `--dir $T/root::/`: fd 3 is `/`.
    Root,
    /// `--dir $T/root/tmp::/tmp --dir $T/root/data::/data`: fd 3 is /tmp, fd 4 is /data.
    TmpData,
    /// `--dir $T/root/data::/data`: fd 3 is /data.
    Data,
    /// `--dir $T/root::.`: fd 3 is the tree under a relative name (no guest path).
    Dot,
}

/// A fresh copy of the tree in a temporary directory, with the module under test beside
/// it (outside every preopen).
struct World {
    t: tempfile::TempDir,
    preopens: Preopens,
}

impl World {
    fn new(preopens: Preopens) -> World {
        let t = tempfile::tempdir().expect("temporary directory");
        let w = World { t, preopens };
        for d in EMPTY_DIRS {
            fs::create_dir_all(w.host(d)).unwrap();
        }
        for (p, text) in FILES {
            fs::create_dir_all(w.host(p).parent().unwrap()).unwrap();
            fs::write(w.host(p), text).unwrap();
        }
        for (p, to) in LINKS {
            std::os::unix::fs::symlink(to, w.host(p)).unwrap();
        }
        w
    }

    /// The host path of guest path `guest`.
    fn host(&self, guest: &str) -> PathBuf {
        self.t
            .path()
            .join("root")
            .join(guest.trim_start_matches('/'))
    }

    /// The preopens as (host, guest) pairs, in descriptor order from 3.
    fn dirs(&self) -> Vec<(PathBuf, &'static str)> {
        match self.preopens {
            Preopens::Root => vec![(self.host("/"), "/")],
            Preopens::TmpData => vec![(self.host("/tmp"), "/tmp"), (self.host("/data"), "/data")],
            Preopens::Data => vec![(self.host("/data"), "/data")],
            Preopens::Dot => vec![(self.host("/"), ".")],
        }
    }

    fn dir_args(&self) -> Vec<String> {
        self.dirs()
            .iter()
            .flat_map(|(h, g)| ["--dir".to_string(), format!("{}::{g}", h.display())])
            .collect()
    }

    /// Whether something (a file, directory or link, even dangling) is at `guest`.
    fn exists(&self, guest: &str) -> bool {
        fs::symlink_metadata(self.host(guest)).is_ok()
    }

    fn read(&self, guest: &str) -> String {
        fs::read_to_string(self.host(guest)).unwrap_or_default()
    }

    /// Whether `guest`'s modification time was set to the epoch.
    fn mtime_is_epoch(&self, guest: &str) -> bool {
        fs::metadata(self.host(guest))
            .and_then(|m| m.modified())
            .is_ok_and(|t| t == std::time::UNIX_EPOCH)
    }

    /// Writes a file beside the tree and returns its path.
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.t.path().join(name);
        fs::write(&p, bytes).unwrap();
        p.to_str().expect("UTF-8 path").to_string()
    }
}

// ---------------------------------------------------------------------------------------
// Guests

/// The WASI functions the modules may import, with their core types (the same in
/// `wasi_snapshot_preview1` and `wasi_unstable` for the ones preview 0 modules use).
const WASI_FUNCS: &[(&str, &str)] = &[
    (
        "path_open",
        "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)",
    ),
    ("path_create_directory", "(param i32 i32 i32) (result i32)"),
    ("path_remove_directory", "(param i32 i32 i32) (result i32)"),
    ("path_unlink_file", "(param i32 i32 i32) (result i32)"),
    (
        "path_rename",
        "(param i32 i32 i32 i32 i32 i32) (result i32)",
    ),
    (
        "path_link",
        "(param i32 i32 i32 i32 i32 i32 i32) (result i32)",
    ),
    ("path_symlink", "(param i32 i32 i32 i32 i32) (result i32)"),
    (
        "path_readlink",
        "(param i32 i32 i32 i32 i32 i32) (result i32)",
    ),
    (
        "path_filestat_get",
        "(param i32 i32 i32 i32 i32) (result i32)",
    ),
    (
        "path_filestat_set_times",
        "(param i32 i32 i32 i32 i64 i64 i32) (result i32)",
    ),
    ("fd_read", "(param i32 i32 i32 i32) (result i32)"),
    ("fd_pread", "(param i32 i32 i32 i64 i32) (result i32)"),
    ("fd_readdir", "(param i32 i32 i32 i64 i32) (result i32)"),
    ("fd_write", "(param i32 i32 i32 i32) (result i32)"),
    ("fd_pwrite", "(param i32 i32 i32 i64 i32) (result i32)"),
    ("fd_close", "(param i32) (result i32)"),
    ("fd_renumber", "(param i32 i32) (result i32)"),
    ("fd_filestat_set_size", "(param i32 i64) (result i32)"),
    (
        "fd_filestat_set_times",
        "(param i32 i64 i64 i32) (result i32)",
    ),
    ("sock_send", "(param i32 i32 i32 i32 i32) (result i32)"),
    ("sock_recv", "(param i32 i32 i32 i32 i32 i32) (result i32)"),
    ("proc_exit", "(param i32)"),
];

/// Helper functions (unmonitored guest code). Memory map: 0..8 the iovec of `$write`,
/// 8 its count, 16 the fd `$open` opened, 24..32 the iovec of `$read`, 32 its count,
/// 64..128 a filestat, 1024.. the `(str ...)` strings, 8192..12288 what `$read` read.
const HELPERS: &[(&str, &str)] = &[
    (
        "ok",
        ";; Exits with the errno of a failed call.
  (func $ok (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))",
    ),
    (
        "open",
        ";; path_open (following symlinks) or exit; returns the new fd.
  (func $open (param $dir i32) (param $path i32) (param $len i32) (param $oflags i32)
              (param $rights i64) (result i32)
    (call $ok (call $path_open (local.get $dir) (i32.const 1) (local.get $path) (local.get $len)
                               (local.get $oflags) (local.get $rights) (i64.const 0)
                               (i32.const 0) (i32.const 16)))
    (i32.load (i32.const 16)))",
    ),
    (
        "write",
        ";; Writes the bytes at $ptr to $fd or exits.
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $ok (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))",
    ),
    (
        "read",
        ";; Reads up to 4096 bytes of $fd to 8192 or exits; returns how many.
  (func $read (param $fd i32) (result i32)
    (i32.store (i32.const 24) (i32.const 8192))
    (i32.store (i32.const 28) (i32.const 4096))
    (call $ok (call $fd_read (local.get $fd) (i32.const 24) (i32.const 1) (i32.const 32)))
    (i32.load (i32.const 32)))",
    ),
    (
        "print",
        "(func $print (param $ptr i32) (param $len i32)
    (call $write (i32.const 1) (local.get $ptr) (local.get $len)))",
    ),
    (
        "send",
        ";; Sends the bytes at $ptr with sock_send on $fd or exits.
  (func $send (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $ok (call $sock_send (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 8))))",
    ),
    (
        "cat",
        ";; Copies one read of $fd to stdout.
  (func $cat (param $fd i32)
    (call $write (i32.const 1) (i32.const 8192) (call $read (local.get $fd))))",
    ),
];

/// Whether `text` names `$name` (not a longer identifier starting with it).
fn names(text: &str, name: &str) -> bool {
    let needle = format!("${name}");
    text.match_indices(&needle).any(|(i, _)| {
        !text[i + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A module importing WASI preview 1: `fields` plus the imports and helpers they use.
fn guest(fields: &str) -> String {
    guest_of(WASI, fields)
}

/// The same, importing the WASI functions from `wasi_unstable` (preview 0).
fn guest_p0(fields: &str) -> String {
    guest_of("wasi_unstable", fields)
}

fn guest_of(wasi: &str, fields: &str) -> String {
    // The strings: `(str "TEXT")` -> address and length, TEXT in a data segment.
    let mut body = String::new();
    let mut data = String::new();
    let mut at = 1024;
    let mut rest = fields;
    while let Some(i) = rest.find("(str \"") {
        body.push_str(&rest[..i]);
        let text_start = i + "(str \"".len();
        let end = rest[text_start..]
            .find("\")")
            .expect("(str \"...\") is closed")
            + text_start;
        let text = &rest[text_start..end];
        body.push_str(&format!("(i32.const {at}) (i32.const {})", text.len()));
        let hex: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
        data.push_str(&format!("  (data (i32.const {at}) \"{hex}\") ;; {text}\n"));
        at += text.len().next_multiple_of(8);
        rest = &rest[end + 2..];
    }
    body.push_str(rest);
    assert!(at < 8192, "the strings overlap the read buffer");

    // The helpers the body uses, and the helpers and imports those use.
    let mut used: Vec<&str> = Vec::new();
    loop {
        let text: String = std::iter::once(body.as_str())
            .chain(used.iter().map(|h| helper(h)))
            .collect();
        let more: Vec<&str> = HELPERS
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| !used.contains(n) && names(&text, n))
            .collect();
        if more.is_empty() {
            break;
        }
        used.extend(more);
    }
    let code: String = std::iter::once(body.as_str())
        .chain(used.iter().map(|h| helper(h)))
        .collect();
    let imports: String = WASI_FUNCS
        .iter()
        .filter(|(n, _)| names(&code, n))
        .map(|(n, ty)| format!("  (import \"{wasi}\" \"{n}\" (func ${n} {ty}))\n"))
        .collect();
    let helpers: String = used.iter().map(|h| format!("  {}\n", helper(h))).collect();
    format!("(module\n{imports}  (memory (export \"memory\") 1)\n{data}{helpers}{body}\n)\n")
}

fn helper(name: &str) -> &'static str {
    HELPERS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a helper")
        .1
}

// ---------------------------------------------------------------------------------------
// Running under `irm run` and woven

fn policy_path(policy: &str) -> String {
    format!("policies/{policy}")
}

/// The policy's name in reports: `no-exfil.pol` declares `policy no_exfil`.
fn policy_name(policy: &str) -> String {
    policy.trim_end_matches(".pol").replace('-', "_")
}

#[derive(Clone, Copy, Debug)]
enum How {
    /// `irm run` without policies.
    Unmonitored,
    /// `irm run --policy P`.
    Run,
    /// `irm weave --policy P`, then `irm run` of the woven module without policies.
    Woven,
}

/// Runs `module` (text) in a fresh world.
fn run(how: How, policy: &str, preopens: Preopens, module: &str) -> (World, Run) {
    let w = World::new(preopens);
    let m = w.file("module.wat", module.as_bytes());
    let p = policy_path(policy);
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(w.dir_args());
    match how {
        How::Unmonitored => args.push(m),
        How::Run => args.extend(["--policy".into(), p, m]),
        How::Woven => {
            let woven = w.t.path().join("woven.wasm");
            let woven = woven.to_str().unwrap().to_string();
            let r = irm(&["weave", "-q", "--policy", &p, &m, "-o", &woven]);
            assert_eq!(r.code, Some(0), "irm weave failed:\n{}", r.stderr);
            args.push(woven);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = irm(&args);
    (w, r)
}

fn show(r: &Run) -> String {
    format!("--- stdout\n{}--- stderr\n{}", r.stdout, r.stderr)
}

/// An attack on `policy`'s sentence: without the policy `effect` happens; with it, under
/// `irm run` and woven, the run is stopped by the policy and `effect` does not happen.
#[track_caller]
fn stopped(policy: &str, preopens: Preopens, module: &str, effect: impl Fn(&World, &Run) -> bool) {
    let (w, r) = run(How::Unmonitored, policy, preopens, module);
    assert!(
        effect(&w, &r),
        "the attack does not work even without a policy (exit {:?}): fix the module\n{}",
        r.code,
        show(&r)
    );
    let failures: Vec<String> = [How::Run, How::Woven]
        .into_iter()
        .filter_map(|how| {
            let (w, r) = run(how, policy, preopens, module);
            let happened = effect(&w, &r);
            let named = r.stderr.contains(&policy_name(policy));
            (r.code != Some(VIOLATION) || happened || !named).then(|| {
                format!(
                    "{how:?}: exit {:?} (expected {VIOLATION}), forbidden effect happened: \
                     {happened}, policy named: {named}\n{}",
                    r.code,
                    show(&r)
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{policy} did not hold:\n{}",
        failures.join("\n")
    );
}

/// A legitimate neighbour: under `irm run` with the policy and woven, the run ends with
/// exit 0 and `effect` happened.
#[track_caller]
fn allowed(policy: &str, preopens: Preopens, module: &str, effect: impl Fn(&World, &Run) -> bool) {
    let failures: Vec<String> = [How::Run, How::Woven]
        .into_iter()
        .filter_map(|how| {
            let (w, r) = run(how, policy, preopens, module);
            let happened = effect(&w, &r);
            (r.code != Some(0) || !happened).then(|| {
                format!(
                    "{how:?}: exit {:?} (expected 0), effect happened: {happened}\n{}",
                    r.code,
                    show(&r)
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{policy} stopped or changed a harmless run:\n{}",
        failures.join("\n")
    );
}

fn says(text: &'static str) -> impl Fn(&World, &Run) -> bool {
    move |_, r| r.stdout.contains(text)
}

fn exists(guest: &'static str) -> impl Fn(&World, &Run) -> bool {
    move |w, _| w.exists(guest)
}

fn gone(guest: &'static str) -> impl Fn(&World, &Run) -> bool {
    move |w, _| !w.exists(guest)
}

fn holds(guest: &'static str, text: &'static str) -> impl Fn(&World, &Run) -> bool {
    move |w, _| w.read(guest).contains(text)
}

fn epoch(guest: &'static str) -> impl Fn(&World, &Run) -> bool {
    move |w, _| w.mtime_is_epoch(guest)
}

// ---------------------------------------------------------------------------------------
// no-secrets: the program never touches (opens, stats, renames, links, symlinks to, reads
// the link of, unlinks) a path matching /home/*/.ssh/**, **/*.pem or /etc/shadow, however
// it spells it. World: `/` preopened as fd 3 unless stated.

const NO_SECRETS: &str = "no-secrets.pol";

#[test]
fn no_secrets_refuses_an_ssh_key_spelled_relative_to_a_root_preopen() {
    // Attack: `home/u/.ssh/id_rsa` under the `/` preopen; the host never sees `/home/...`.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "home/u/.ssh/id_rsa") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, says("SSH PRIVATE KEY"));
}

#[test]
fn no_secrets_allows_a_harmless_file_spelled_relative_to_a_root_preopen() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "home/u/notes.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("notes"));
}

#[test]
fn no_secrets_refuses_etc_shadow_spelled_relative_to_a_root_preopen() {
    // Attack: `etc/shadow` under the `/` preopen.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "etc/shadow") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, says("SHADOW HASH"));
}

#[test]
fn no_secrets_allows_etc_motd_spelled_relative_to_a_root_preopen() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "etc/motd") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("welcome"));
}

#[test]
fn no_secrets_refuses_an_ssh_key_opened_through_a_subdirectory_descriptor() {
    // Attack: open /home/u as a directory, then `.ssh/id_rsa` relative to it.
    let m = guest(
        r#"(func (export "_start") (local $home i32)
        (local.set $home (call $open (i32.const 3) (str "home/u") (i32.const 2) (i64.const 2)))
        (call $cat (call $open (local.get $home) (str ".ssh/id_rsa") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, says("SSH PRIVATE KEY"));
}

#[test]
fn no_secrets_allows_a_harmless_file_opened_through_a_subdirectory_descriptor() {
    let m = guest(
        r#"(func (export "_start") (local $home i32)
        (local.set $home (call $open (i32.const 3) (str "home/u") (i32.const 2) (i64.const 2)))
        (call $cat (call $open (local.get $home) (str "notes.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("notes"));
}

#[test]
fn no_secrets_refuses_a_dot_dot_spelling_through_a_subdirectory_descriptor() {
    // Attack: open /home, then `u/docs/../.ssh/id_rsa` relative to it.
    let m = guest(
        r#"(func (export "_start") (local $home i32)
        (local.set $home (call $open (i32.const 3) (str "home") (i32.const 2) (i64.const 2)))
        (call $cat (call $open (local.get $home) (str "u/docs/../.ssh/id_rsa") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, says("SSH PRIVATE KEY"));
}

#[test]
fn no_secrets_allows_a_dot_dot_spelling_that_leaves_ssh() {
    // `u/.ssh/../notes.txt` is /home/u/notes.txt.
    let m = guest(
        r#"(func (export "_start") (local $home i32)
        (local.set $home (call $open (i32.const 3) (str "home") (i32.const 2) (i64.const 2)))
        (call $cat (call $open (local.get $home) (str "u/.ssh/../notes.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("notes"));
}

#[test]
fn no_secrets_refuses_etc_shadow_spelled_with_empty_and_dot_segments() {
    // Attack: `.//etc/./shadow`.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str ".//etc/./shadow") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, says("SHADOW HASH"));
}

#[test]
fn no_secrets_allows_etc_motd_spelled_with_empty_and_dot_segments() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str ".//etc/./motd") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("welcome"));
}

#[test]
fn no_secrets_refuses_etc_shadow_behind_a_long_run_of_dot_segments() {
    // Attack: 600 `./` before `etc/shadow`: a resolver that reads only the first
    // MAX_PATH (1024) bytes sees `/`.
    let m = guest(&format!(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "{}etc/shadow") (i32.const 0) (i64.const 2))))"#,
        "./".repeat(600)
    ));
    stopped(NO_SECRETS, Preopens::Root, &m, says("SHADOW HASH"));
}

#[test]
fn no_secrets_allows_etc_motd_behind_a_run_of_dot_segments_shorter_than_max_path() {
    let m = guest(&format!(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "{}etc/motd") (i32.const 0) (i64.const 2))))"#,
        "./".repeat(400)
    ));
    allowed(NO_SECRETS, Preopens::Root, &m, says("welcome"));
}

#[test]
fn no_secrets_refuses_etc_shadow_under_a_preopen_whose_path_is_unknown() {
    // Attack (the tree preopened as `.`, a relative name that gives no guest path):
    // `etc/shadow` under it. The monitor cannot resolve it, so it must refuse.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "etc/shadow") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(NO_SECRETS, Preopens::Dot, &m, says("SHADOW HASH"));
}

#[test]
fn no_secrets_refuses_etc_shadow_through_dot_opened_as_a_new_root() {
    // Attack: open `.` of the `/` preopen as a new directory descriptor, then `etc/shadow`.
    let m = guest(
        r#"(func (export "_start") (local $root i32)
        (local.set $root (call $open (i32.const 3) (str ".") (i32.const 2) (i64.const 2)))
        (call $cat (call $open (local.get $root) (str "etc/shadow") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, says("SHADOW HASH"));
}

#[test]
fn no_secrets_allows_etc_motd_through_dot_opened_as_a_new_root() {
    let m = guest(
        r#"(func (export "_start") (local $root i32)
        (local.set $root (call $open (i32.const 3) (str ".") (i32.const 2) (i64.const 2)))
        (call $cat (call $open (local.get $root) (str "etc/motd") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("welcome"));
}

#[test]
fn no_secrets_refuses_creating_a_symlink_to_a_pem_file() {
    // Attack: the link keys/notes.txt -> server.pem, then open keys/notes.txt.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_symlink (str "server.pem") (i32.const 3) (str "keys/notes.txt")))
        (call $cat (call $open (i32.const 3) (str "keys/notes.txt") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, |w, r| {
        w.exists("/keys/notes.txt") || r.stdout.contains("PEM PRIVATE KEY")
    });
}

#[test]
fn no_secrets_allows_creating_a_symlink_to_a_harmless_file() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_symlink (str "readme.txt") (i32.const 3) (str "keys/notes.txt")))
        (call $cat (call $open (i32.const 3) (str "keys/notes.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("readme"));
}

#[test]
fn no_secrets_refuses_renaming_a_pem_file_to_a_harmless_name() {
    // Attack: rename keys/server.pem to keys/cert.txt, then open keys/cert.txt.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_rename (i32.const 3) (str "keys/server.pem") (i32.const 3) (str "keys/cert.txt")))
        (call $cat (call $open (i32.const 3) (str "keys/cert.txt") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, |w, r| {
        !w.exists("/keys/server.pem") || r.stdout.contains("PEM PRIVATE KEY")
    });
}

#[test]
fn no_secrets_allows_renaming_a_harmless_file() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_rename (i32.const 3) (str "keys/readme.txt") (i32.const 3) (str "keys/read.txt")))
        (call $cat (call $open (i32.const 3) (str "keys/read.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("readme"));
}

#[test]
fn no_secrets_refuses_hard_linking_an_ssh_key() {
    // Attack: the hard link home/u/key.txt of home/u/.ssh/id_rsa.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_link (i32.const 3) (i32.const 0) (str "home/u/.ssh/id_rsa")
                                   (i32.const 3) (str "home/u/key.txt"))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, exists("/home/u/key.txt"));
}

#[test]
fn no_secrets_allows_hard_linking_a_harmless_file() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_link (i32.const 3) (i32.const 0) (str "home/u/notes.txt")
                                   (i32.const 3) (str "home/u/notes2.txt"))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, exists("/home/u/notes2.txt"));
}

#[test]
fn no_secrets_refuses_a_stat_of_etc_shadow() {
    // Attack: path_filestat_get learns that /etc/shadow exists and its size.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_filestat_get (i32.const 3) (i32.const 1) (str "etc/shadow") (i32.const 64)))
        (call $print (str "stat ok")))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, says("stat ok"));
}

#[test]
fn no_secrets_allows_a_stat_of_etc_motd() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_filestat_get (i32.const 3) (i32.const 1) (str "etc/motd") (i32.const 64)))
        (call $print (str "stat ok")))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("stat ok"));
}

#[test]
fn no_secrets_refuses_unlinking_an_ssh_key() {
    // Attack: path_unlink_file of home/u/.ssh/id_rsa.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_unlink_file (i32.const 3) (str "home/u/.ssh/id_rsa"))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, gone("/home/u/.ssh/id_rsa"));
}

#[test]
fn no_secrets_allows_unlinking_a_harmless_file() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_unlink_file (i32.const 3) (str "home/u/notes.txt"))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, gone("/home/u/notes.txt"));
}

#[test]
fn no_secrets_refuses_reading_the_link_at_a_pem_path() {
    // Attack: path_readlink of keys/link.pem (a link that exists before the run).
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_readlink (i32.const 3) (str "keys/link.pem") (i32.const 8192) (i32.const 64) (i32.const 32)))
        (call $print (i32.const 8192) (i32.load (i32.const 32))))"#,
    );
    stopped(NO_SECRETS, Preopens::Root, &m, says("readme.txt"));
}

#[test]
fn no_secrets_allows_reading_the_link_at_a_harmless_path() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_readlink (i32.const 3) (str "keys/readme-link") (i32.const 8192) (i32.const 64) (i32.const 32)))
        (call $print (i32.const 8192) (i32.load (i32.const 32))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("readme.txt"));
}

#[test]
fn no_secrets_refuses_etc_shadow_opened_through_wasi_unstable() {
    // Attack: the same open spelled the preview 0 way; `irm run` links preview 0 as the
    // wasmtime CLI does.
    let m = guest_p0(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "etc/shadow") (i32.const 0) (i64.const 2))))"#,
    );
    for how in [How::Run, How::Woven] {
        let (_, r) = run(how, NO_SECRETS, Preopens::Root, &m);
        assert!(
            r.code == Some(VIOLATION) && !r.stdout.contains("SHADOW HASH"),
            "{how:?}: exit {:?}\n{}",
            r.code,
            show(&r)
        );
    }
}

#[test]
fn no_secrets_allows_etc_motd_opened_through_wasi_unstable() {
    let m = guest_p0(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "etc/motd") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(NO_SECRETS, Preopens::Root, &m, says("welcome"));
}

/// A module with two memories: memory 0 holds `decoy`, memory 1 (exported as `memory`,
/// the one WASI reads) holds `path` at the same address; it opens the path and copies
/// the file to stdout.
fn two_memories(decoy: &str, path: &str) -> String {
    assert_eq!(decoy.len(), path.len());
    format!(
        r#"(module
  (import "{WASI}" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "{WASI}" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "{WASI}" "proc_exit" (func $proc_exit (param i32)))
  (memory $decoy 1)
  (memory $real (export "memory") 1)
  (data (memory $decoy) (i32.const 1024) "{decoy}")
  (data (memory $real) (i32.const 1024) "{path}")
  (func $ok (param i32) (if (local.get 0) (then (call $proc_exit (local.get 0)))))
  (func (export "_start")
    (call $ok (call $path_open (i32.const 3) (i32.const 1) (i32.const 1024) (i32.const {len})
                               (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
    (i32.store $real (i32.const 24) (i32.const 8192))
    (i32.store $real (i32.const 28) (i32.const 4096))
    (call $ok (call $fd_read (i32.load $real (i32.const 16)) (i32.const 24) (i32.const 1) (i32.const 32)))
    (i32.store $real (i32.const 0) (i32.const 8192))
    (i32.store $real (i32.const 4) (i32.load $real (i32.const 32)))
    (call $ok (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = path.len()
    )
}

#[test]
fn no_secrets_reads_the_path_from_the_exported_memory_not_a_decoy_in_memory_0() {
    // Attack: the guard reads `etc/passwd` in memory 0; WASI opens `etc/shadow` from the
    // exported memory 1.
    let m = two_memories("etc/passwd", "etc/shadow");
    stopped(NO_SECRETS, Preopens::Root, &m, says("SHADOW HASH"));
    let (_, r) = irm_run_host(NO_SECRETS, Preopens::Root, &m);
    assert!(
        r.code == Some(VIOLATION) && !r.stdout.contains("SHADOW HASH"),
        "--enforce host: exit {:?}\n{}",
        r.code,
        show(&r)
    );
}

#[test]
fn no_secrets_ignores_a_secret_looking_decoy_in_memory_0() {
    // The exported memory holds `etc/motd`; memory 0 holds `x/id.pem` at the same place.
    let m = two_memories("x/id.pem", "etc/motd");
    allowed(NO_SECRETS, Preopens::Root, &m, says("welcome"));
    let (_, r) = irm_run_host(NO_SECRETS, Preopens::Root, &m);
    assert!(
        r.code == Some(0) && r.stdout.contains("welcome"),
        "--enforce host: exit {:?}\n{}",
        r.code,
        show(&r)
    );
}

/// `irm run --enforce host --policy P` in a fresh world.
fn irm_run_host(policy: &str, preopens: Preopens, module: &str) -> (World, Run) {
    let w = World::new(preopens);
    let m = w.file("module.wat", module.as_bytes());
    let p = policy_path(policy);
    let mut args: Vec<String> = vec!["run".into(), "--enforce".into(), "host".into()];
    args.extend(w.dir_args());
    args.extend(["--policy".into(), p, m]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = irm(&args);
    (w, r)
}

// ---------------------------------------------------------------------------------------
// tmp-writes: the program creates, writes, truncates, renames, links, removes or changes
// the metadata of files only under /tmp. World: /tmp as fd 3 and /data as fd 4 unless
// stated.

const TMP_WRITES: &str = "tmp-writes.pol";

#[test]
fn tmp_writes_refuses_a_rename_from_tmp_into_data() {
    // Attack: create /tmp/x (allowed), then path_rename it to /data/x.
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 3) (str "x") (i32.const 1) (i64.const 66)) (str "planted"))
        (call $ok (call $path_rename (i32.const 3) (str "x") (i32.const 4) (str "x"))))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, exists("/data/x"));
}

#[test]
fn tmp_writes_allows_a_rename_within_tmp() {
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 3) (str "x") (i32.const 1) (i64.const 66)) (str "planted"))
        (call $ok (call $path_rename (i32.const 3) (str "x") (i32.const 3) (str "y"))))"#,
    );
    allowed(
        TMP_WRITES,
        Preopens::TmpData,
        &m,
        holds("/tmp/y", "planted"),
    );
}

#[test]
fn tmp_writes_refuses_a_rename_from_data_into_tmp() {
    // Attack: path_rename removes /data/victim.txt (the old side is outside /tmp).
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_rename (i32.const 4) (str "victim.txt") (i32.const 3) (str "victim.txt"))))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, gone("/data/victim.txt"));
}

#[test]
fn tmp_writes_refuses_a_hard_link_from_tmp_into_data() {
    // Attack: path_link creates /data/x, a second name of /tmp/scratch.txt.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_link (i32.const 3) (i32.const 0) (str "scratch.txt") (i32.const 4) (str "x"))))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, exists("/data/x"));
}

#[test]
fn tmp_writes_allows_a_hard_link_within_tmp() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_link (i32.const 3) (i32.const 0) (str "scratch.txt") (i32.const 3) (str "x"))))"#,
    );
    allowed(
        TMP_WRITES,
        Preopens::TmpData,
        &m,
        holds("/tmp/x", "scratch"),
    );
}

#[test]
fn tmp_writes_refuses_creating_a_directory_in_data() {
    // Attack: path_create_directory under /data.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_create_directory (i32.const 4) (str "new"))))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, exists("/data/new"));
}

#[test]
fn tmp_writes_allows_creating_a_directory_in_tmp() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_create_directory (i32.const 3) (str "new"))))"#,
    );
    allowed(TMP_WRITES, Preopens::TmpData, &m, exists("/tmp/new"));
}

#[test]
fn tmp_writes_refuses_removing_a_directory_in_data() {
    // Attack: path_remove_directory of /data/empty.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_remove_directory (i32.const 4) (str "empty"))))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, gone("/data/empty"));
}

#[test]
fn tmp_writes_allows_removing_a_directory_in_tmp() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_remove_directory (i32.const 3) (str "sub"))))"#,
    );
    allowed(TMP_WRITES, Preopens::TmpData, &m, gone("/tmp/sub"));
}

#[test]
fn tmp_writes_refuses_unlinking_a_file_in_data() {
    // Attack: path_unlink_file of /data/victim.txt.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_unlink_file (i32.const 4) (str "victim.txt"))))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, gone("/data/victim.txt"));
}

#[test]
fn tmp_writes_allows_unlinking_a_file_in_tmp() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_unlink_file (i32.const 3) (str "scratch.txt"))))"#,
    );
    allowed(TMP_WRITES, Preopens::TmpData, &m, gone("/tmp/scratch.txt"));
}

#[test]
fn tmp_writes_refuses_setting_the_times_of_a_file_in_data() {
    // Attack: path_filestat_set_times of /data/victim.txt (to the epoch).
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_filestat_set_times (i32.const 4) (i32.const 1) (str "victim.txt")
                                                 (i64.const 0) (i64.const 0) (i32.const 5))))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, epoch("/data/victim.txt"));
}

#[test]
fn tmp_writes_allows_setting_the_times_of_a_file_in_tmp() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_filestat_set_times (i32.const 3) (i32.const 1) (str "scratch.txt")
                                                 (i64.const 0) (i64.const 0) (i32.const 5))))"#,
    );
    allowed(TMP_WRITES, Preopens::TmpData, &m, epoch("/tmp/scratch.txt"));
}

#[test]
fn tmp_writes_refuses_setting_the_times_of_a_data_file_through_a_read_only_descriptor() {
    // Attack: open /data/victim.txt without write rights (allowed), then
    // fd_filestat_set_times on the descriptor.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_filestat_set_times (call $open (i32.const 4) (str "victim.txt") (i32.const 0) (i64.const 2))
                                               (i64.const 0) (i64.const 0) (i32.const 5))))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, epoch("/data/victim.txt"));
}

#[test]
fn tmp_writes_allows_setting_the_times_of_a_tmp_file_through_a_read_only_descriptor() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_filestat_set_times (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 2))
                                               (i64.const 0) (i64.const 0) (i32.const 5))))"#,
    );
    allowed(TMP_WRITES, Preopens::TmpData, &m, epoch("/tmp/scratch.txt"));
}

#[test]
fn tmp_writes_refuses_a_hard_link_from_data_into_tmp_written_through() {
    // Attack: path_link /data/victim.txt as /tmp/v, then write /tmp/v (the same file).
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_link (i32.const 4) (i32.const 0) (str "victim.txt") (i32.const 3) (str "v")))
        (call $write (call $open (i32.const 3) (str "v") (i32.const 0) (i64.const 66)) (str "pwned")))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, |w, _| {
        w.exists("/tmp/v") || w.read("/data/victim.txt").contains("pwned")
    });
}

#[test]
fn tmp_writes_refuses_creating_a_symlink_in_data() {
    // Attack: path_symlink whose link is /data/link (its contents point into /tmp).
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_symlink (str "../tmp/scratch.txt") (i32.const 4) (str "link"))))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, exists("/data/link"));
}

#[test]
fn tmp_writes_refuses_writing_data_through_a_root_preopen() {
    // Attack (`/` preopened as fd 3): open data/victim.txt for writing relative to `/`.
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 3) (str "data/victim.txt") (i32.const 0) (i64.const 66)) (str "pwned")))"#,
    );
    stopped(
        TMP_WRITES,
        Preopens::Root,
        &m,
        holds("/data/victim.txt", "pwned"),
    );
}

#[test]
fn tmp_writes_allows_writing_tmp_x_through_a_root_preopen() {
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 3) (str "tmp/x") (i32.const 1) (i64.const 66)) (str "hello")))"#,
    );
    allowed(TMP_WRITES, Preopens::Root, &m, holds("/tmp/x", "hello"));
}

#[test]
fn tmp_writes_refuses_a_symlink_out_of_tmp_written_through() {
    // Attack (`/` preopened): the link tmp/link -> ../data/victim.txt, then write through it.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_symlink (str "../data/victim.txt") (i32.const 3) (str "tmp/link")))
        (call $write (call $open (i32.const 3) (str "tmp/link") (i32.const 0) (i64.const 66)) (str "pwned")))"#,
    );
    stopped(TMP_WRITES, Preopens::Root, &m, |w, _| {
        w.exists("/tmp/link") || w.read("/data/victim.txt").contains("pwned")
    });
}

#[test]
fn tmp_writes_allows_a_symlink_within_tmp_written_through() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_symlink (str "scratch.txt") (i32.const 3) (str "tmp/link")))
        (call $write (call $open (i32.const 3) (str "tmp/link") (i32.const 0) (i64.const 66)) (str "hello")))"#,
    );
    allowed(
        TMP_WRITES,
        Preopens::Root,
        &m,
        holds("/tmp/scratch.txt", "hello"),
    );
}

#[test]
fn tmp_writes_refuses_creating_in_data_through_a_reused_preopen_number() {
    // Attack: close fd 3 (/tmp), open /data as `.` (it gets number 3), create through it.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_close (i32.const 3)))
        (if (i32.ne (call $open (i32.const 4) (str ".") (i32.const 2) (i64.const 2)) (i32.const 3))
          (then unreachable))
        (call $write (call $open (i32.const 3) (str "x") (i32.const 1) (i64.const 66)) (str "planted")))"#,
    );
    stopped(TMP_WRITES, Preopens::TmpData, &m, exists("/data/x"));
}

#[test]
fn tmp_writes_allows_creating_through_a_directory_descriptor_opened_on_tmp() {
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (call $open (i32.const 3) (str ".") (i32.const 2) (i64.const 2))
                                 (str "y") (i32.const 1) (i64.const 66))
                     (str "hello")))"#,
    );
    allowed(TMP_WRITES, Preopens::TmpData, &m, holds("/tmp/y", "hello"));
}

#[test]
fn tmp_writes_refuses_creating_in_data_spelled_with_empty_and_dot_segments() {
    // Attack (`/` preopened): `.//data/./x`.
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 3) (str ".//data/./x") (i32.const 1) (i64.const 66)) (str "planted")))"#,
    );
    stopped(TMP_WRITES, Preopens::Root, &m, exists("/data/x"));
}

#[test]
fn tmp_writes_allows_creating_in_tmp_spelled_with_empty_and_dot_segments() {
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 3) (str ".//tmp/./x") (i32.const 1) (i64.const 66)) (str "hello")))"#,
    );
    allowed(TMP_WRITES, Preopens::Root, &m, holds("/tmp/x", "hello"));
}

#[test]
fn tmp_writes_refuses_creating_a_directory_in_data_spelled_with_a_trailing_slash() {
    // Attack (`/` preopened): path_create_directory of `data/new/`.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_create_directory (i32.const 3) (str "data/new/"))))"#,
    );
    stopped(TMP_WRITES, Preopens::Root, &m, exists("/data/new"));
}

#[test]
fn tmp_writes_allows_creating_a_directory_in_tmp_spelled_with_a_trailing_slash() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_create_directory (i32.const 3) (str "tmp/new/"))))"#,
    );
    allowed(TMP_WRITES, Preopens::Root, &m, exists("/tmp/new"));
}

#[test]
fn tmp_writes_refuses_a_dot_dot_spelling_from_tmp_into_data() {
    // Attack (`/` preopened): `tmp/../data/x`.
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 3) (str "tmp/../data/x") (i32.const 1) (i64.const 66)) (str "planted")))"#,
    );
    stopped(TMP_WRITES, Preopens::Root, &m, exists("/data/x"));
}

#[test]
fn tmp_writes_allows_a_dot_dot_spelling_that_stays_in_tmp() {
    // `sub/../x` under the /tmp preopen is /tmp/x.
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 3) (str "sub/../x") (i32.const 1) (i64.const 66)) (str "hello")))"#,
    );
    allowed(TMP_WRITES, Preopens::TmpData, &m, holds("/tmp/x", "hello"));
}

#[test]
fn tmp_writes_refuses_an_absolute_path_outside_tmp() {
    // `/data/x` relative to the /tmp descriptor. wasmtime refuses absolute paths (EPERM),
    // so the effect cannot happen here; the monitor must refuse it all the same (the
    // resolved path is /data/x), as another host may accept it.
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 3) (str "/data/x") (i32.const 1) (i64.const 66)) (str "planted")))"#,
    );
    for how in [How::Run, How::Woven] {
        let (w, r) = run(how, TMP_WRITES, Preopens::TmpData, &m);
        assert!(
            r.code == Some(VIOLATION) && !w.exists("/data/x"),
            "{how:?}: exit {:?} (expected {VIOLATION})\n{}",
            r.code,
            show(&r)
        );
    }
}

#[test]
fn tmp_writes_lets_an_absolute_path_inside_tmp_reach_the_host() {
    // `/tmp/x` relative to the /data descriptor resolves under /tmp: the monitor lets it
    // through and the host answers EPERM (63), as it does to every absolute path.
    let m = guest(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 4) (str "/tmp/x") (i32.const 1) (i64.const 66)) (str "hello")))"#,
    );
    for how in [How::Run, How::Woven] {
        let (_, r) = run(how, TMP_WRITES, Preopens::TmpData, &m);
        assert_eq!(r.code, Some(63), "{how:?}\n{}", show(&r));
    }
}

#[test]
fn tmp_writes_refuses_creating_in_data_through_wasi_unstable() {
    // Attack: path_open(/data, "x", CREAT) imported from wasi_unstable (preview 0).
    let m = guest_p0(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 4) (str "x") (i32.const 1) (i64.const 66)) (str "planted")))"#,
    );
    for how in [How::Run, How::Woven] {
        let (w, r) = run(how, TMP_WRITES, Preopens::TmpData, &m);
        assert!(
            r.code == Some(VIOLATION) && !w.exists("/data/x"),
            "{how:?}: exit {:?}\n{}",
            r.code,
            show(&r)
        );
    }
}

#[test]
fn tmp_writes_allows_creating_in_tmp_through_wasi_unstable() {
    let m = guest_p0(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 3) (str "x") (i32.const 1) (i64.const 66)) (str "hello")))"#,
    );
    allowed(TMP_WRITES, Preopens::TmpData, &m, holds("/tmp/x", "hello"));
}

#[test]
fn tmp_writes_allows_writing_stdout_and_stderr() {
    let m = guest(
        r#"(func (export "_start")
        (call $print (str "to stdout"))
        (call $write (i32.const 2) (str "to stderr")))"#,
    );
    allowed(TMP_WRITES, Preopens::TmpData, &m, |_, r| {
        r.stdout.contains("to stdout") && r.stderr.contains("to stderr")
    });
}

// ---------------------------------------------------------------------------------------
// stdio-only: the program's only output is stdout and stderr (the descriptors that were
// stdout and stderr at start, by identity), and nothing in the file system is created,
// changed or removed. World: /tmp as fd 3 and /data as fd 4.

const STDIO_ONLY: &str = "stdio-only.pol";

#[test]
fn stdio_only_refuses_writes_to_a_file_renumbered_onto_stdout() {
    // Attack: open /tmp/scratch.txt for writing, fd_renumber it onto 1, write to fd 1.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_renumber (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 66))
                                     (i32.const 1)))
        (call $print (str "pwned")))"#,
    );
    stopped(
        STDIO_ONLY,
        Preopens::TmpData,
        &m,
        holds("/tmp/scratch.txt", "pwned"),
    );
}

#[test]
fn stdio_only_refuses_writes_to_a_file_opened_in_the_number_of_a_closed_stdout() {
    // Attack: fd_close(1), open /tmp/scratch.txt for writing (it gets number 1), write to 1.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_close (i32.const 1)))
        (if (i32.ne (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 66)) (i32.const 1))
          (then unreachable))
        (call $print (str "pwned")))"#,
    );
    stopped(
        STDIO_ONLY,
        Preopens::TmpData,
        &m,
        holds("/tmp/scratch.txt", "pwned"),
    );
}

#[test]
fn stdio_only_allows_reading_a_file_and_writing_it_to_stdout() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(STDIO_ONLY, Preopens::TmpData, &m, says("scratch"));
}

#[test]
fn stdio_only_allows_writes_to_stdout_renumbered_onto_another_number() {
    // fd_renumber(1, f) makes f the stdout of the start (f must be open: a read-only file).
    let m = guest(
        r#"(func (export "_start") (local $f i32)
        (local.set $f (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 2)))
        (call $ok (call $fd_renumber (i32.const 1) (local.get $f)))
        (call $write (local.get $f) (str "still stdout")))"#,
    );
    allowed(STDIO_ONLY, Preopens::TmpData, &m, says("still stdout"));
}

#[test]
fn stdio_only_allows_writing_stderr() {
    let m = guest(r#"(func (export "_start") (call $write (i32.const 2) (str "to stderr")))"#);
    allowed(STDIO_ONLY, Preopens::TmpData, &m, |_, r| {
        r.stderr.contains("to stderr")
    });
}

#[test]
fn stdio_only_refuses_creating_a_file() {
    // Attack: path_open with OFLAGS_CREAT and no write right creates /tmp/new.txt.
    let m = guest(
        r#"(func (export "_start")
        (drop (call $open (i32.const 3) (str "new.txt") (i32.const 1) (i64.const 2))))"#,
    );
    stopped(STDIO_ONLY, Preopens::TmpData, &m, exists("/tmp/new.txt"));
}

#[test]
fn stdio_only_refuses_unlinking_a_file() {
    // Attack: path_unlink_file.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_unlink_file (i32.const 4) (str "victim.txt"))))"#,
    );
    stopped(STDIO_ONLY, Preopens::TmpData, &m, gone("/data/victim.txt"));
}

#[test]
fn stdio_only_refuses_renaming_a_file() {
    // Attack: path_rename.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_rename (i32.const 4) (str "victim.txt") (i32.const 4) (str "moved.txt"))))"#,
    );
    stopped(STDIO_ONLY, Preopens::TmpData, &m, gone("/data/victim.txt"));
}

#[test]
fn stdio_only_refuses_creating_a_directory() {
    // Attack: path_create_directory.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_create_directory (i32.const 3) (str "new"))))"#,
    );
    stopped(STDIO_ONLY, Preopens::TmpData, &m, exists("/tmp/new"));
}

#[test]
fn stdio_only_refuses_creating_a_symlink() {
    // Attack: path_symlink.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_symlink (str "scratch.txt") (i32.const 3) (str "link"))))"#,
    );
    stopped(STDIO_ONLY, Preopens::TmpData, &m, exists("/tmp/link"));
}

#[test]
fn stdio_only_refuses_truncating_a_file_with_fd_filestat_set_size() {
    // Attack: open /data/victim.txt for writing, fd_filestat_set_size to 0.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_filestat_set_size
                    (call $open (i32.const 4) (str "victim.txt") (i32.const 0) (i64.const 66)) (i64.const 0))))"#,
    );
    stopped(STDIO_ONLY, Preopens::TmpData, &m, |w, _| {
        w.read("/data/victim.txt").is_empty()
    });
}

#[test]
fn stdio_only_refuses_setting_the_times_of_a_file() {
    // Attack: path_filestat_set_times.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_filestat_set_times (i32.const 4) (i32.const 1) (str "victim.txt")
                                                 (i64.const 0) (i64.const 0) (i32.const 5))))"#,
    );
    stopped(STDIO_ONLY, Preopens::TmpData, &m, epoch("/data/victim.txt"));
}

#[test]
fn stdio_only_allows_a_stat_of_a_file() {
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_filestat_get (i32.const 4) (i32.const 1) (str "victim.txt") (i32.const 64)))
        (call $print (str "stat ok")))"#,
    );
    allowed(STDIO_ONLY, Preopens::TmpData, &m, says("stat ok"));
}

// ---------------------------------------------------------------------------------------
// chinese-wall: after the program touches anything under /data/a it may touch nothing
// under /data/b, and vice versa, by resolved path. World: /data as fd 3 (the world the
// policy of today was written for) unless stated.

const CHINESE_WALL: &str = "chinese-wall.pol";

#[test]
fn chinese_wall_refuses_the_other_side_through_a_dot_descriptor() {
    // Attack: read /data/a/x.txt, open /data as `.`, read b/y.txt relative to it.
    let m = guest(
        r#"(func (export "_start") (local $data i32)
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (local.set $data (call $open (i32.const 3) (str ".") (i32.const 2) (i64.const 2)))
        (call $cat (call $open (local.get $data) (str "b/y.txt") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(CHINESE_WALL, Preopens::Data, &m, says("side b"));
}

#[test]
fn chinese_wall_allows_the_same_side_through_a_dot_descriptor() {
    let m = guest(
        r#"(func (export "_start") (local $data i32)
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (local.set $data (call $open (i32.const 3) (str ".") (i32.const 2) (i64.const 2)))
        (call $cat (call $open (local.get $data) (str "a/z.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(CHINESE_WALL, Preopens::Data, &m, says("side a too"));
}

#[test]
fn chinese_wall_refuses_the_other_side_through_a_root_preopen() {
    // Attack (`/` preopened): data/a/x.txt, then data/b/y.txt.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "data/a/x.txt") (i32.const 0) (i64.const 2)))
        (call $cat (call $open (i32.const 3) (str "data/b/y.txt") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(CHINESE_WALL, Preopens::Root, &m, says("side b"));
}

#[test]
fn chinese_wall_allows_the_same_side_through_a_root_preopen() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "data/a/x.txt") (i32.const 0) (i64.const 2)))
        (call $cat (call $open (i32.const 3) (str "data/a/z.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(CHINESE_WALL, Preopens::Root, &m, says("side a too"));
}

#[test]
fn chinese_wall_refuses_the_other_side_when_data_is_not_the_first_preopen() {
    // Attack (/tmp fd 3, /data fd 4): a/x.txt then b/y.txt through fd 4.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 4) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $cat (call $open (i32.const 4) (str "b/y.txt") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(CHINESE_WALL, Preopens::TmpData, &m, says("side b"));
}

#[test]
fn chinese_wall_allows_a_tmp_directory_named_like_a_side() {
    // /tmp/b is not /data/b.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 4) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $cat (call $open (i32.const 3) (str "b/note.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(CHINESE_WALL, Preopens::TmpData, &m, says("tmp note"));
}

#[test]
fn chinese_wall_refuses_a_stat_of_the_other_side() {
    // Attack: read a/x.txt, then path_filestat_get of b/y.txt.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $ok (call $path_filestat_get (i32.const 3) (i32.const 1) (str "b/y.txt") (i32.const 64)))
        (call $print (str "stat ok")))"#,
    );
    stopped(CHINESE_WALL, Preopens::Data, &m, says("stat ok"));
}

#[test]
fn chinese_wall_allows_a_stat_of_the_same_side() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $ok (call $path_filestat_get (i32.const 3) (i32.const 1) (str "a/z.txt") (i32.const 64)))
        (call $print (str "stat ok")))"#,
    );
    allowed(CHINESE_WALL, Preopens::Data, &m, says("stat ok"));
}

#[test]
fn chinese_wall_refuses_renaming_the_other_side_into_this_one() {
    // Attack: read a/x.txt, rename b/y.txt to a/stolen.txt, read that.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $ok (call $path_rename (i32.const 3) (str "b/y.txt") (i32.const 3) (str "a/stolen.txt")))
        (call $cat (call $open (i32.const 3) (str "a/stolen.txt") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(CHINESE_WALL, Preopens::Data, &m, |w, r| {
        !w.exists("/data/b/y.txt") || r.stdout.contains("side b")
    });
}

#[test]
fn chinese_wall_allows_renaming_within_the_same_side() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $ok (call $path_rename (i32.const 3) (str "a/z.txt") (i32.const 3) (str "a/moved.txt")))
        (call $cat (call $open (i32.const 3) (str "a/moved.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(CHINESE_WALL, Preopens::Data, &m, says("side a too"));
}

#[test]
fn chinese_wall_refuses_a_hard_link_to_the_other_side() {
    // Attack: read a/x.txt, hard-link b/y.txt as a/y.txt, read that.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $ok (call $path_link (i32.const 3) (i32.const 0) (str "b/y.txt") (i32.const 3) (str "a/y.txt")))
        (call $cat (call $open (i32.const 3) (str "a/y.txt") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(CHINESE_WALL, Preopens::Data, &m, |w, r| {
        w.exists("/data/a/y.txt") || r.stdout.contains("side b")
    });
}

#[test]
fn chinese_wall_refuses_a_symlink_to_the_other_side() {
    // Attack: read a/x.txt, make the link a/link -> ../b/y.txt, read a/link.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $ok (call $path_symlink (str "../b/y.txt") (i32.const 3) (str "a/link")))
        (call $cat (call $open (i32.const 3) (str "a/link") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(CHINESE_WALL, Preopens::Data, &m, |w, r| {
        w.exists("/data/a/link") || r.stdout.contains("side b")
    });
}

#[test]
fn chinese_wall_allows_a_symlink_within_the_same_side() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $ok (call $path_symlink (str "z.txt") (i32.const 3) (str "a/link")))
        (call $cat (call $open (i32.const 3) (str "a/link") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(CHINESE_WALL, Preopens::Data, &m, says("side a too"));
}

#[test]
fn chinese_wall_refuses_a_dot_dot_spelling_of_the_other_side() {
    // Attack: read a/x.txt, then `a/../b/y.txt`.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $cat (call $open (i32.const 3) (str "a/../b/y.txt") (i32.const 0) (i64.const 2))))"#,
    );
    stopped(CHINESE_WALL, Preopens::Data, &m, says("side b"));
}

#[test]
fn chinese_wall_allows_a_dot_dot_spelling_that_stays_on_the_same_side() {
    // `b/../a/z.txt` is /data/a/z.txt.
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "a/x.txt") (i32.const 0) (i64.const 2)))
        (call $cat (call $open (i32.const 3) (str "b/../a/z.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(CHINESE_WALL, Preopens::Data, &m, says("side a too"));
}

// ---------------------------------------------------------------------------------------
// audit-files (CLI part): every file open is allowed and reported, and a report that
// cannot be delivered stops the program. World: /tmp as fd 3 and /data as fd 4.

const AUDIT_FILES: &str = "audit-files.pol";

/// The audit lines of a run: `irm run` prints `irm: audit: policy audit_files: ...`, a
/// woven module writes `irm: audit: policy audit_files: ...` itself.
fn audits(r: &Run) -> usize {
    r.stderr
        .lines()
        .filter(|l| l.starts_with("irm: audit: policy audit_files"))
        .count()
}

#[test]
fn audit_files_reports_every_open() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 2)))
        (call $cat (call $open (i32.const 4) (str "victim.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(AUDIT_FILES, Preopens::TmpData, &m, |_, r| {
        r.stdout.contains("scratch") && r.stdout.contains("victim") && audits(r) == 2
    });
}

#[test]
fn audit_files_refuses_an_open_whose_result_pointer_is_out_of_bounds() {
    // Attack: path_open(/tmp, "new.txt", CREAT) with opened_fd at 65534, so the host
    // creates the file, then cannot store the descriptor and fails: the open is never
    // reported (pre-phase audits are written when the call returns).
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $path_open (i32.const 3) (i32.const 1) (str "new.txt") (i32.const 1)
                                   (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 65534))))"#,
    );
    stopped(AUDIT_FILES, Preopens::TmpData, &m, exists("/tmp/new.txt"));
}

/// Weaves `module` with `policy` and runs it without policies: the module's own code
/// writes its audits through its own fd 2, as under any engine.
fn run_woven(policy: &str, preopens: Preopens, module: &str) -> (World, Run) {
    run(How::Woven, policy, preopens, module)
}

#[test]
fn audit_files_stops_an_open_when_the_program_closed_stderr() {
    // Attack: fd_close(2), then open a file: the woven audit line has nowhere to go.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_close (i32.const 2)))
        (call $cat (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 2))))"#,
    );
    let (_, r) = run(How::Unmonitored, AUDIT_FILES, Preopens::TmpData, &m);
    assert!(
        r.code == Some(0) && r.stdout.contains("scratch"),
        "{}",
        show(&r)
    );
    let (_, r) = run_woven(AUDIT_FILES, Preopens::TmpData, &m);
    assert!(
        r.code == Some(VIOLATION) && !r.stdout.contains("scratch"),
        "woven: an undeliverable audit did not stop the open: exit {:?}\n{}",
        r.code,
        show(&r)
    );
}

#[test]
fn audit_files_stops_an_open_when_the_program_renumbered_a_file_onto_stderr() {
    // Attack: open /tmp/log.txt for writing, fd_renumber it onto 2, open a file: the
    // woven audit line goes into /tmp/log.txt.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_renumber (call $open (i32.const 3) (str "log.txt") (i32.const 1) (i64.const 66))
                                     (i32.const 2)))
        (call $cat (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 2))))"#,
    );
    let (_, r) = run(How::Unmonitored, AUDIT_FILES, Preopens::TmpData, &m);
    assert!(
        r.code == Some(0) && r.stdout.contains("scratch"),
        "{}",
        show(&r)
    );
    let (w, r) = run_woven(AUDIT_FILES, Preopens::TmpData, &m);
    assert!(
        r.code == Some(VIOLATION) && !r.stdout.contains("scratch"),
        "woven: an audit written into a file did not stop the open: exit {:?}, /tmp/log.txt: {:?}\n{}",
        r.code,
        w.read("/tmp/log.txt"),
        show(&r)
    );
}

#[test]
fn audit_files_reports_opens_through_wasi_unstable() {
    let m = guest_p0(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(AUDIT_FILES, Preopens::TmpData, &m, |_, r| {
        r.stdout.contains("scratch") && audits(r) == 1
    });
}

// ---------------------------------------------------------------------------------------
// Library runs: what `irm run` cannot set up, through `monitor_rt::Runner`

/// What a descriptor number is to the simulated host; numbers it does not know are
/// WASI's own.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ident {
    Stdin,
    Stdout,
    Stderr,
    Socket,
}

/// What the simulated host saw.
#[derive(Clone, Debug, Default)]
struct SimLog {
    /// Bytes sent on the socket (fd_write, fd_pwrite, sock_send).
    wire: Vec<u8>,
    /// Reads of the socket the host answered (fd_read, sock_recv).
    socket_reads: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Calls of the `on_stderr` export.
    callbacks: usize,
}

/// A host around WASI preview 1 with what `irm run` cannot give a guest: a connected
/// socket at fd 4 (its number is held in WASI's own table by a placeholder preopen, so
/// files get other numbers), a terminal on stdin, a stdout and stderr it records, a
/// stderr that takes only a few bytes per write, a callback into the guest while it
/// writes to stderr, and WASI preview 0. It follows `fd_close` and `fd_renumber`, so the
/// socket, stdin, stdout and stderr keep their identity whatever number they move to;
/// every other call goes to WASI itself.
#[derive(Clone, Default)]
struct Sim {
    socket: bool,
    /// At most this many bytes of each write to stderr are taken.
    stderr_takes: Option<usize>,
    /// A guest export the host calls before it takes a write to stderr.
    on_stderr: Option<&'static str>,
    /// Link `wasi_unstable` (preview 0) too, as the wasmtime CLI does.
    wasi_unstable: bool,
}

/// The socket's descriptor: the world must preopen exactly one directory (fd 3).
const SOCKET_FD: u32 = 4;
const NETWORK_SAYS: &[u8] = b"hello from the network\n";
const TERMINAL_SAYS: &[u8] = b"typed on the terminal\n";

/// The functions the simulated host replaces, with their core types.
const SIM_FUNCS: &[(&str, &[wasmtime::ValType])] = {
    use wasmtime::ValType::{I32, I64};
    &[
        ("fd_fdstat_get", &[I32, I32]),
        ("fd_prestat_get", &[I32, I32]),
        ("fd_prestat_dir_name", &[I32, I32, I32]),
        ("fd_write", &[I32, I32, I32, I32]),
        ("fd_pwrite", &[I32, I32, I32, I64, I32]),
        ("fd_read", &[I32, I32, I32, I32]),
        ("sock_send", &[I32, I32, I32, I32, I32]),
        ("sock_recv", &[I32, I32, I32, I32, I32, I32]),
        ("fd_close", &[I32]),
        ("fd_renumber", &[I32, I32]),
    ]
};

struct SimCtx {
    cfg: Sim,
    /// WASI as it was before the simulated functions replaced it.
    real: Linker<RunState>,
    fds: Mutex<std::collections::HashMap<u32, Ident>>,
    log: Arc<Mutex<SimLog>>,
    /// Trampolines to WASI's own functions, by name (see [`SimCtx::delegate`]).
    trampolines: Mutex<std::collections::HashMap<&'static str, wasmtime::Func>>,
}

fn memory(caller: &mut Caller<'_, RunState>) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => wasmtime::bail!("the guest exports no memory"),
    }
}

fn load_u32(mem: &[u8], at: u32) -> wasmtime::Result<u32> {
    let at = at as usize;
    let b = mem
        .get(at..at + 4)
        .ok_or_else(|| wasmtime::format_err!("pointer {at} out of bounds"))?;
    Ok(u32::from_le_bytes(b.try_into().unwrap()))
}

/// The bytes of the `n` iovecs at `iovs`.
fn gather(mem: &[u8], iovs: u32, n: u32) -> wasmtime::Result<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..n {
        let ptr = load_u32(mem, iovs + 8 * i)? as usize;
        let len = load_u32(mem, iovs + 8 * i + 4)? as usize;
        out.extend_from_slice(
            mem.get(ptr..ptr + len)
                .ok_or_else(|| wasmtime::format_err!("iovec out of bounds"))?,
        );
    }
    Ok(out)
}

/// Copies `bytes` into the `n` iovecs at `iovs`; returns how many fit.
fn scatter(mem: &mut [u8], iovs: u32, n: u32, bytes: &[u8]) -> wasmtime::Result<usize> {
    let mut done = 0;
    for i in 0..n {
        let ptr = load_u32(mem, iovs + 8 * i)? as usize;
        let len = load_u32(mem, iovs + 8 * i + 4)? as usize;
        let k = len.min(bytes.len() - done);
        mem.get_mut(ptr..ptr + k)
            .ok_or_else(|| wasmtime::format_err!("iovec out of bounds"))?
            .copy_from_slice(&bytes[done..done + k]);
        done += k;
    }
    Ok(done)
}

impl SimCtx {
    fn call(
        &self,
        name: &'static str,
        caller: &mut Caller<'_, RunState>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let p = |i: usize| params[i].unwrap_i32() as u32;
        let fd = p(0);
        let who = self.fds.lock().unwrap().get(&fd).copied();
        let errno = match (name, who) {
            ("fd_fdstat_get", Some(Ident::Socket)) => {
                // filetype SOCKET_STREAM, no flags, all rights.
                let mut stat = [0u8; 24];
                stat[0] = 6;
                stat[8..16].copy_from_slice(&0x1fff_ffffu64.to_le_bytes());
                memory(caller)?.write(&mut *caller, p(1) as usize, &stat)?;
                0
            }
            ("fd_prestat_get" | "fd_prestat_dir_name", Some(Ident::Socket)) => 8, // BADF
            ("fd_write" | "fd_pwrite" | "sock_send", Some(Ident::Socket))
            | ("fd_write", Some(Ident::Stdout | Ident::Stderr)) => {
                if who == Some(Ident::Stderr) {
                    if let Some(export) = self.cfg.on_stderr {
                        self.log.lock().unwrap().callbacks += 1;
                        let f = caller
                            .get_export(export)
                            .and_then(Extern::into_func)
                            .ok_or_else(|| {
                                wasmtime::format_err!("the guest exports no `{export}`")
                            })?;
                        f.call(&mut *caller, &[], &mut [])?;
                    }
                }
                let mem = memory(caller)?;
                let bytes = gather(mem.data(&*caller), p(1), p(2))?;
                let taken = match who {
                    Some(Ident::Stderr) => {
                        bytes.len().min(self.cfg.stderr_takes.unwrap_or(usize::MAX))
                    }
                    _ => bytes.len(),
                };
                {
                    let mut log = self.log.lock().unwrap();
                    let sink = match who {
                        Some(Ident::Socket) => &mut log.wire,
                        Some(Ident::Stdout) => &mut log.stdout,
                        _ => &mut log.stderr,
                    };
                    sink.extend_from_slice(&bytes[..taken]);
                }
                let count_at = params.len() - 1;
                mem.write(
                    &mut *caller,
                    p(count_at) as usize,
                    &(taken as u32).to_le_bytes(),
                )?;
                0
            }
            ("fd_read" | "sock_recv", Some(Ident::Socket)) | ("fd_read", Some(Ident::Stdin)) => {
                let says = if who == Some(Ident::Socket) {
                    self.log.lock().unwrap().socket_reads += 1;
                    NETWORK_SAYS
                } else {
                    TERMINAL_SAYS
                };
                let mem = memory(caller)?;
                let n = scatter(mem.data_mut(&mut *caller), p(1), p(2), says)?;
                mem.write(&mut *caller, p(3) as usize, &(n as u32).to_le_bytes())?;
                if name == "sock_recv" {
                    mem.write(&mut *caller, p(5) as usize, &[0, 0])?;
                }
                0
            }
            _ => {
                self.delegate(name, caller, params, results)?;
                let errno = results[0].unwrap_i32();
                if errno == 0 {
                    let mut fds = self.fds.lock().unwrap();
                    match name {
                        "fd_close" => {
                            fds.remove(&fd);
                        }
                        "fd_renumber" if fd != p(1) => match fds.remove(&fd) {
                            Some(moved) => {
                                fds.insert(p(1), moved);
                            }
                            None => {
                                fds.remove(&p(1));
                            }
                        },
                        _ => {}
                    }
                }
                return Ok(());
            }
        };
        results[0] = Val::I32(errno);
        Ok(())
    }

    /// Calls WASI's own `name`. WASI's functions find the guest's memory through the
    /// `memory` export of the instance that calls them, and a host function has none, so
    /// they are called through a trampoline module that imports the guest's memory and
    /// re-exports it.
    fn delegate(
        &self,
        name: &'static str,
        caller: &mut Caller<'_, RunState>,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let cached = self.trampolines.lock().unwrap().get(name).copied();
        let trampoline = match cached {
            Some(f) => f,
            None => {
                let Extern::Func(real) = self.real.get(&mut *caller, WASI, name)? else {
                    wasmtime::bail!("WASI's {name} is not a function");
                };
                let mem = memory(caller)?;
                let ty = real.ty(&*caller);
                let ps: Vec<String> = ty.params().map(|t| t.to_string()).collect();
                let gets: String = (0..ps.len()).map(|i| format!("(local.get {i}) ")).collect();
                let wat = format!(
                    r#"(module
                         (import "guest" "memory" (memory 0))
                         (import "wasi" "f" (func $f (param {ps}) (result i32)))
                         (export "memory" (memory 0))
                         (func (export "call") (param {ps}) (result i32) (call $f {gets})))"#,
                    ps = ps.join(" ")
                );
                let module = Module::new(caller.engine(), wat)?;
                let instance = Instance::new(&mut *caller, &module, &[mem.into(), real.into()])?;
                let f = instance
                    .get_func(&mut *caller, "call")
                    .expect("the trampoline exports call");
                self.trampolines.lock().unwrap().insert(name, f);
                f
            }
        };
        trampoline.call(&mut *caller, params, results)
    }
}

impl Sim {
    fn install(
        &self,
        linker: &mut Linker<RunState>,
        log: Arc<Mutex<SimLog>>,
    ) -> anyhow::Result<()> {
        if self.wasi_unstable {
            monitor_rt::wasmtime_wasi::p0::add_to_linker_sync(linker, |s: &mut RunState| s.wasi())?;
        }
        let mut fds = std::collections::HashMap::from([
            (0, Ident::Stdin),
            (1, Ident::Stdout),
            (2, Ident::Stderr),
        ]);
        if self.socket {
            fds.insert(SOCKET_FD, Ident::Socket);
        }
        let ctx = Arc::new(SimCtx {
            cfg: self.clone(),
            real: linker.clone(),
            fds: Mutex::new(fds),
            log,
            trampolines: Mutex::default(),
        });
        for (name, params) in SIM_FUNCS {
            let ty = FuncType::new(
                linker.engine(),
                params.iter().cloned(),
                [wasmtime::ValType::I32],
            );
            let ctx = Arc::clone(&ctx);
            linker.func_new(WASI, name, ty, move |mut caller, params, results| {
                ctx.call(name, &mut caller, params, results)
            })?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum Lib {
    /// No policies.
    Unmonitored,
    /// The policies woven with host hooks, as `irm run --policy` does.
    Run,
    /// Woven beforehand (`instrumenter::weave`, as `irm weave`) and run without policies.
    Woven,
}

/// What a library run did.
struct LibRun {
    outcome: Result<monitor_rt::Finished, RunError>,
    stdout: String,
    stderr: String,
    log: SimLog,
}

impl LibRun {
    fn stopped_by(&self, policy: &str) -> bool {
        matches!(&self.outcome, Err(RunError::Violation(v)) if v.policy == policy_name(policy))
    }

    fn show(&self) -> String {
        format!(
            "outcome: {:?}\n--- stdout\n{}--- stderr\n{}--- wire\n{}",
            self.outcome.as_ref().map(|_| "finished"),
            self.stdout,
            self.stderr,
            String::from_utf8_lossy(&self.log.wire)
        )
    }
}

fn compile(policies: &[&str]) -> policy_lang::ir::Program {
    let paths: Vec<PathBuf> = policies
        .iter()
        .map(|p| common::root().join(policy_path(p)))
        .collect();
    policy_lang::compile_files(&paths)
        .unwrap_or_else(|d| panic!("the policies compile:\n{}", d.render()))
        .program
}

/// Runs `module` (text) in a fresh world with the simulated host `sim` and any other
/// host functions `host` defines.
fn lib_run(
    how: Lib,
    policies: &[&str],
    preopens: Preopens,
    sim: &Sim,
    host: impl Fn(RunnerBuilder) -> RunnerBuilder,
    module: &str,
) -> (World, LibRun) {
    let w = World::new(preopens);
    let (stdout, stderr) = (
        MemoryOutputPipe::new(1 << 20),
        MemoryOutputPipe::new(1 << 20),
    );
    let mut b = Runner::builder()
        .cache_dir(None)
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    for (h, g) in w.dirs() {
        b = b.dir(h, g);
    }
    if sim.socket {
        assert_eq!(
            w.dirs().len(),
            1,
            "the socket is fd 4: preopen one directory"
        );
        let placeholder = w.t.path().join("socket");
        fs::create_dir(&placeholder).unwrap();
        b = b.dir(placeholder, "/socket");
    }
    let log: Arc<Mutex<SimLog>> = Arc::default();
    let (s, l) = (sim.clone(), Arc::clone(&log));
    b = host(b.host_functions(move |linker| s.install(linker, Arc::clone(&l))));
    let mut wasm = wat::parse_str(module).expect("the module parses");
    match how {
        Lib::Unmonitored => {}
        Lib::Run => b = b.program(compile(policies)),
        Lib::Woven => {
            wasm = instrumenter::weave(
                &wasm,
                &compile(policies),
                &instrumenter::WeaveOptions::default(),
            )
            .expect("the module weaves")
            .wasm
        }
    }
    let outcome = b.build().and_then(|r| r.run_bytes(&wasm, "module"));
    let log = log.lock().unwrap().clone();
    let text = |pipe: &MemoryOutputPipe, sim: &[u8]| {
        String::from_utf8_lossy(&[sim, &pipe.contents()[..]].concat()).into_owned()
    };
    let r = LibRun {
        stdout: text(&stdout, &log.stdout),
        stderr: text(&stderr, &log.stderr),
        outcome,
        log,
    };
    (w, r)
}

fn no_host(b: RunnerBuilder) -> RunnerBuilder {
    b
}

/// [`stopped`] for library runs: `policies` composed, the first one's sentence checked.
#[track_caller]
fn lib_stopped(
    policies: &[&str],
    preopens: Preopens,
    sim: &Sim,
    module: &str,
    effect: impl Fn(&World, &LibRun) -> bool,
) {
    let (w, r) = lib_run(Lib::Unmonitored, policies, preopens, sim, no_host, module);
    assert!(
        effect(&w, &r),
        "the attack does not work even without a policy: fix the module\n{}",
        r.show()
    );
    let failures: Vec<String> = [Lib::Run, Lib::Woven]
        .into_iter()
        .filter_map(|how| {
            let (w, r) = lib_run(how, policies, preopens, sim, no_host, module);
            let happened = effect(&w, &r);
            (!r.stopped_by(policies[0]) || happened).then(|| {
                format!(
                    "{how:?}: forbidden effect happened: {happened}\n{}",
                    r.show()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} did not hold:\n{}",
        policies[0],
        failures.join("\n")
    );
}

/// [`allowed`] for library runs.
#[track_caller]
fn lib_allowed(
    policies: &[&str],
    preopens: Preopens,
    sim: &Sim,
    module: &str,
    effect: impl Fn(&World, &LibRun) -> bool,
) {
    let failures: Vec<String> = [Lib::Run, Lib::Woven]
        .into_iter()
        .filter_map(|how| {
            let (w, r) = lib_run(how, policies, preopens, sim, no_host, module);
            let happened = effect(&w, &r);
            (r.outcome.is_err() || !happened)
                .then(|| format!("{how:?}: effect happened: {happened}\n{}", r.show()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} stopped or changed a harmless run:\n{}",
        policies[0],
        failures.join("\n")
    );
}

fn sent(r: &LibRun) -> bool {
    !r.log.wire.is_empty()
}

fn network() -> Sim {
    Sim {
        socket: true,
        ..Sim::default()
    }
}

// ---------------------------------------------------------------------------------------
// no-exfil: once the program has read from a file (fd_read, fd_pread, fd_readdir on a
// file or directory, whatever its number), nothing it does sends bytes on the network
// (sock_send, fd_write or fd_pwrite on a socket). World: /data as fd 3, a socket as fd 4.

const NO_EXFIL: &str = "no-exfil.pol";

#[test]
fn no_exfil_refuses_fd_write_on_a_socket_after_a_file_read() {
    // Attack: read /data/victim.txt, then fd_write what was read to the socket.
    let m = guest(
        r#"(func (export "_start")
        (call $write (i32.const 4) (i32.const 8192)
                     (call $read (call $open (i32.const 3) (str "victim.txt") (i32.const 0) (i64.const 2)))))"#,
    );
    lib_stopped(&[NO_EXFIL], Preopens::Data, &network(), &m, |_, r| sent(r));
}

#[test]
fn no_exfil_refuses_fd_pwrite_on_a_socket_after_a_file_read() {
    // Attack: read /data/victim.txt, then fd_pwrite it to the socket.
    let m = guest(
        r#"(func (export "_start")
        (i32.store (i32.const 0) (i32.const 8192))
        (i32.store (i32.const 4)
                   (call $read (call $open (i32.const 3) (str "victim.txt") (i32.const 0) (i64.const 2))))
        (call $ok (call $fd_pwrite (i32.const 4) (i32.const 0) (i32.const 1) (i64.const 0) (i32.const 8))))"#,
    );
    lib_stopped(&[NO_EXFIL], Preopens::Data, &network(), &m, |_, r| sent(r));
}

#[test]
fn no_exfil_refuses_a_send_after_reading_a_file_renumbered_onto_stdin() {
    // Attack: fd_renumber the opened file onto 0, read fd 0, sock_send what was read.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_renumber (call $open (i32.const 3) (str "victim.txt") (i32.const 0) (i64.const 2))
                                     (i32.const 0)))
        (call $send (i32.const 4) (i32.const 8192) (call $read (i32.const 0))))"#,
    );
    lib_stopped(&[NO_EXFIL], Preopens::Data, &network(), &m, |_, r| {
        String::from_utf8_lossy(&r.log.wire).contains("victim")
    });
}

#[test]
fn no_exfil_refuses_a_send_after_reading_a_directory() {
    // Attack: fd_readdir of /data (the listing is file-system data), then sock_send it.
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_readdir (i32.const 3) (i32.const 8192) (i32.const 4096) (i64.const 0) (i32.const 32)))
        (call $send (i32.const 4) (i32.const 8192) (i32.load (i32.const 32))))"#,
    );
    lib_stopped(&[NO_EXFIL], Preopens::Data, &network(), &m, |_, r| {
        String::from_utf8_lossy(&r.log.wire).contains("victim.txt")
    });
}

#[test]
fn no_exfil_refuses_a_send_after_fd_pread() {
    // Attack: fd_pread the file, then sock_send.
    let m = guest(
        r#"(func (export "_start")
        (i32.store (i32.const 24) (i32.const 8192))
        (i32.store (i32.const 28) (i32.const 4096))
        (call $ok (call $fd_pread (call $open (i32.const 3) (str "victim.txt") (i32.const 0) (i64.const 2))
                                  (i32.const 24) (i32.const 1) (i64.const 0) (i32.const 32)))
        (call $send (i32.const 4) (i32.const 8192) (i32.load (i32.const 32))))"#,
    );
    lib_stopped(&[NO_EXFIL], Preopens::Data, &network(), &m, |_, r| sent(r));
}

#[test]
fn no_exfil_allows_writing_stdout_after_a_file_read() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "victim.txt") (i32.const 0) (i64.const 2))))"#,
    );
    allowed(NO_EXFIL, Preopens::Data, &m, says("victim"));
}

#[test]
fn no_exfil_allows_a_send_when_nothing_was_read() {
    let m = guest(r#"(func (export "_start") (call $send (i32.const 4) (str "hello")))"#);
    lib_allowed(&[NO_EXFIL], Preopens::Data, &network(), &m, |_, r| {
        r.log.wire == b"hello"
    });
}

#[test]
fn no_exfil_allows_fd_write_on_a_socket_when_nothing_was_read() {
    let m = guest(r#"(func (export "_start") (call $write (i32.const 4) (str "hello")))"#);
    lib_allowed(&[NO_EXFIL], Preopens::Data, &network(), &m, |_, r| {
        r.log.wire == b"hello"
    });
}

#[test]
fn no_exfil_allows_a_send_after_reading_the_terminal() {
    let m = guest(
        r#"(func (export "_start")
        (call $send (i32.const 4) (i32.const 8192) (call $read (i32.const 0))))"#,
    );
    lib_allowed(&[NO_EXFIL], Preopens::Data, &network(), &m, |_, r| {
        r.log.wire == TERMINAL_SAYS
    });
}

#[test]
fn no_exfil_allows_a_send_after_reading_stdin_renumbered_onto_another_number() {
    // fd_renumber(0, f) makes f the terminal (f must be open: a file, never read).
    let m = guest(
        r#"(func (export "_start") (local $f i32)
        (local.set $f (call $open (i32.const 3) (str "victim.txt") (i32.const 0) (i64.const 2)))
        (call $ok (call $fd_renumber (i32.const 0) (local.get $f)))
        (call $send (i32.const 4) (i32.const 8192) (call $read (local.get $f))))"#,
    );
    lib_allowed(&[NO_EXFIL], Preopens::Data, &network(), &m, |_, r| {
        r.log.wire == TERMINAL_SAYS
    });
}

#[test]
fn no_exfil_allows_a_send_after_reading_the_socket() {
    // A socket is not a file: reading it does not taint.
    let m = guest(
        r#"(func (export "_start")
        (call $send (i32.const 4) (i32.const 8192) (call $read (i32.const 4))))"#,
    );
    lib_allowed(&[NO_EXFIL], Preopens::Data, &network(), &m, |_, r| {
        r.log.wire == NETWORK_SAYS
    });
}

// ---------------------------------------------------------------------------------------
// no-network-errno: no socket operation reaches the host: socket calls and fd_read /
// fd_write on socket descriptors return ERRNO_ACCES (2). World: /data as fd 3, a socket
// as fd 4. The modules exit with the errno of the call.

const NO_NETWORK_ERRNO: &str = "no-network-errno.pol";
const ERRNO_ACCES: i32 = 2;

/// The errno the module exited with (0 when it finished).
fn exit_errno(r: &LibRun) -> Option<i32> {
    match &r.outcome {
        Ok(_) => Some(0),
        Err(RunError::Exit(c)) => Some(*c),
        _ => None,
    }
}

/// Checks that without the policy the call reaches the simulated network and succeeds,
/// and that with it (hooks and woven) the call returns ERRNO_ACCES and nothing reached
/// the network (`reached`).
#[track_caller]
fn answered_with_eacces(module: &str, reached: impl Fn(&LibRun) -> bool) {
    let (_, r) = lib_run(
        Lib::Unmonitored,
        &[NO_NETWORK_ERRNO],
        Preopens::Data,
        &network(),
        no_host,
        module,
    );
    assert!(
        exit_errno(&r) == Some(0) && reached(&r),
        "the call does not reach the host even without the policy\n{}",
        r.show()
    );
    for how in [Lib::Run, Lib::Woven] {
        let (_, r) = lib_run(
            how,
            &[NO_NETWORK_ERRNO],
            Preopens::Data,
            &network(),
            no_host,
            module,
        );
        assert!(
            exit_errno(&r) == Some(ERRNO_ACCES) && !reached(&r),
            "{how:?}: the socket call was not answered with ERRNO_ACCES without reaching the host\n{}",
            r.show()
        );
    }
}

#[test]
fn no_network_errno_answers_fd_write_on_a_socket_with_eacces() {
    // Attack: fd_write on the socket instead of sock_send.
    let m = guest(
        r#"(func (export "_start")
        (i32.store (i32.const 0) (i32.const 8192))
        (i32.store (i32.const 4) (i32.const 5))
        (call $proc_exit (call $fd_write (i32.const 4) (i32.const 0) (i32.const 1) (i32.const 8))))"#,
    );
    answered_with_eacces(&m, sent);
}

#[test]
fn no_network_errno_answers_fd_read_on_a_socket_with_eacces() {
    // Attack: fd_read on the socket instead of sock_recv.
    let m = guest(
        r#"(func (export "_start")
        (i32.store (i32.const 24) (i32.const 8192))
        (i32.store (i32.const 28) (i32.const 4096))
        (call $proc_exit (call $fd_read (i32.const 4) (i32.const 24) (i32.const 1) (i32.const 32))))"#,
    );
    answered_with_eacces(&m, |r| r.log.socket_reads > 0);
}

#[test]
fn no_network_errno_answers_sock_send_with_eacces() {
    let m = guest(
        r#"(func (export "_start")
        (i32.store (i32.const 0) (i32.const 8192))
        (i32.store (i32.const 4) (i32.const 5))
        (call $proc_exit (call $sock_send (i32.const 4) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 8))))"#,
    );
    answered_with_eacces(&m, sent);
}

#[test]
fn no_network_errno_lets_fd_write_to_stdout_and_file_reads_through() {
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "victim.txt") (i32.const 0) (i64.const 2))))"#,
    );
    lib_allowed(
        &[NO_NETWORK_ERRNO],
        Preopens::Data,
        &network(),
        &m,
        |_, r| r.stdout.contains("victim") && !sent(r),
    );
}

// ---------------------------------------------------------------------------------------
// stdio-only, the network part. World: /data as fd 3, a socket as fd 4.

#[test]
fn stdio_only_refuses_sock_send() {
    // Attack: sock_send is a write through a descriptor that is not stdout or stderr.
    let m = guest(r#"(func (export "_start") (call $send (i32.const 4) (str "hello")))"#);
    lib_stopped(&[STDIO_ONLY], Preopens::Data, &network(), &m, |_, r| {
        sent(r)
    });
}

#[test]
fn stdio_only_refuses_writes_to_a_socket_renumbered_onto_stdout() {
    // Attack: fd_renumber(4, 1), then fd_write to fd 1 (now the socket).
    let m = guest(
        r#"(func (export "_start")
        (call $ok (call $fd_renumber (i32.const 4) (i32.const 1)))
        (call $print (str "hello")))"#,
    );
    lib_stopped(&[STDIO_ONLY], Preopens::Data, &network(), &m, |_, r| {
        sent(r)
    });
}

#[test]
fn stdio_only_allows_writes_to_stdout_with_a_socket_open() {
    let m = guest(r#"(func (export "_start") (call $print (str "hello")))"#);
    lib_allowed(&[STDIO_ONLY], Preopens::Data, &network(), &m, |_, r| {
        r.stdout.contains("hello") && !sent(r)
    });
}

// ---------------------------------------------------------------------------------------
// audit-files, the delivery part: a woven module writes its audit lines through its own
// fd 2, and a line that cannot be written in full stops the program. World: /tmp as fd 3
// and /data as fd 4.

#[test]
fn audit_files_stops_an_open_when_stderr_accepts_nothing() {
    // Attack: the host's stderr takes 0 bytes of every write: the audit line is lost.
    let sim = Sim {
        stderr_takes: Some(0),
        ..Sim::default()
    };
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 2))))"#,
    );
    let (_, r) = lib_run(
        Lib::Woven,
        &[AUDIT_FILES],
        Preopens::TmpData,
        &sim,
        no_host,
        &m,
    );
    assert!(
        r.stopped_by(AUDIT_FILES) && !r.stdout.contains("scratch"),
        "woven: an audit line stderr did not take did not stop the open\n{}",
        r.show()
    );
}

#[test]
fn audit_files_delivers_the_whole_line_to_a_stderr_that_takes_a_few_bytes_at_a_time() {
    let sim = Sim {
        stderr_takes: Some(5),
        ..Sim::default()
    };
    let m = guest(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 2))))"#,
    );
    let (_, r) = lib_run(
        Lib::Woven,
        &[AUDIT_FILES],
        Preopens::TmpData,
        &sim,
        no_host,
        &m,
    );
    assert!(
        r.outcome.is_ok()
            && r.stdout.contains("scratch")
            && r.stderr.contains(
                "irm: audit: policy audit_files: wasi_snapshot_preview1.path_open: file opened\n"
            ),
        "woven: the audit line did not arrive in full\n{}",
        r.show()
    );
}

// ---------------------------------------------------------------------------------------
// No window between check and call: a host that calls back into the guest while it
// writes an audit line (before the import, today) lets the guest change the checked path.
// World: `/` as fd 3; policies no-secrets and audit-files, woven.

/// Opens `etc/passwd` (at 2048) and copies it to stdout; `on_stderr` is what the guest
/// does when the host calls it back during a write to stderr.
fn opens_passwd(on_stderr: &str) -> String {
    guest(&format!(
        r#"(data (i32.const 2048) "etc/passwd")
  (data (i32.const 2064) "etc/shadow")
  (func (export "on_stderr") {on_stderr})
  (func (export "_start")
    (call $cat (call $open (i32.const 3) (i32.const 2048) (i32.const 10) (i32.const 0) (i64.const 2))))"#
    ))
}

fn reentrant_stderr() -> Sim {
    Sim {
        on_stderr: Some("on_stderr"),
        ..Sim::default()
    }
}

#[test]
fn no_secrets_holds_when_the_audit_host_calls_back_and_the_guest_rewrites_the_path() {
    // Attack: the callback copies `etc/shadow` over the checked `etc/passwd`.
    let m = opens_passwd("(memory.copy (i32.const 2048) (i32.const 2064) (i32.const 10))");
    let (_, r) = lib_run(
        Lib::Woven,
        &[NO_SECRETS, AUDIT_FILES],
        Preopens::Root,
        &reentrant_stderr(),
        no_host,
        &m,
    );
    assert!(
        r.log.callbacks > 0,
        "the host never called back: the attack was not tried\n{}",
        r.show()
    );
    assert!(
        !r.stdout.contains("SHADOW HASH") && (r.outcome.is_ok() || r.stopped_by(NO_SECRETS)),
        "woven: the path changed between the guard and the call\n{}",
        r.show()
    );
}

#[test]
fn no_secrets_allows_a_harmless_open_with_an_audit_host_that_calls_back() {
    let m = opens_passwd("");
    let (_, r) = lib_run(
        Lib::Woven,
        &[NO_SECRETS, AUDIT_FILES],
        Preopens::Root,
        &reentrant_stderr(),
        no_host,
        &m,
    );
    assert!(
        r.log.callbacks > 0 && r.outcome.is_ok() && r.stdout.contains("users"),
        "woven\n{}",
        r.show()
    );
}

// ---------------------------------------------------------------------------------------
// WASI preview 0 with a host that links it (as the wasmtime CLI does): the policies see
// `wasi_unstable.path_open` as `path_open`.

fn preview0() -> Sim {
    Sim {
        wasi_unstable: true,
        ..Sim::default()
    }
}

#[test]
fn no_secrets_refuses_etc_shadow_through_wasi_unstable_when_the_host_links_it() {
    // Attack: the open imported from wasi_unstable, so that the policy is elided.
    let m = guest_p0(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "etc/shadow") (i32.const 0) (i64.const 2))))"#,
    );
    lib_stopped(&[NO_SECRETS], Preopens::Root, &preview0(), &m, |_, r| {
        r.stdout.contains("SHADOW HASH")
    });
}

#[test]
fn no_secrets_allows_etc_motd_through_wasi_unstable_when_the_host_links_it() {
    let m = guest_p0(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "etc/motd") (i32.const 0) (i64.const 2))))"#,
    );
    lib_allowed(&[NO_SECRETS], Preopens::Root, &preview0(), &m, |_, r| {
        r.stdout.contains("welcome")
    });
}

#[test]
fn tmp_writes_refuses_creating_in_data_through_wasi_unstable_when_the_host_links_it() {
    // Attack: path_open(/data, "x", CREAT) imported from wasi_unstable.
    let m = guest_p0(
        r#"(func (export "_start")
        (call $write (call $open (i32.const 4) (str "x") (i32.const 1) (i64.const 66)) (str "planted")))"#,
    );
    lib_stopped(&[TMP_WRITES], Preopens::TmpData, &preview0(), &m, |w, _| {
        w.exists("/data/x")
    });
}

#[test]
fn audit_files_reports_opens_through_wasi_unstable_when_the_host_links_it() {
    let m = guest_p0(
        r#"(func (export "_start")
        (call $cat (call $open (i32.const 3) (str "scratch.txt") (i32.const 0) (i64.const 2))))"#,
    );
    let (_, r) = lib_run(
        Lib::Run,
        &[AUDIT_FILES],
        Preopens::TmpData,
        &preview0(),
        no_host,
        &m,
    );
    let audited = r.outcome.as_ref().map_or(0, |done| done.audits.len());
    assert!(
        audited == 1 && r.stdout.contains("scratch"),
        "run: {audited} audits\n{}",
        r.show()
    );
    let (_, r) = lib_run(
        Lib::Woven,
        &[AUDIT_FILES],
        Preopens::TmpData,
        &preview0(),
        no_host,
        &m,
    );
    assert!(
        r.outcome.is_ok() && r.stderr.contains("irm: audit: policy audit_files"),
        "woven\n{}",
        r.show()
    );
}

// ---------------------------------------------------------------------------------------
// max-windows: at most three windows are open at once, counted before the call (a
// re-entrant host sees the count), and a close only counts for a handle the monitor saw
// opened. The host is `env.open_window(width, height) -> handle` and
// `env.close_window(handle)`, as in examples/windows.

const MAX_WINDOWS: &str = "max-windows.pol";

/// The host's windows.
#[derive(Debug, Default)]
struct Desktop {
    open: Vec<i32>,
    next: i32,
    /// The most windows open at once.
    most: usize,
}

#[derive(Clone, Copy, Default)]
struct WindowHost {
    /// A guest export the host calls back during each open, after opening the window,
    /// while fewer than six windows were opened.
    reenter: Option<&'static str>,
    /// Opens of this width open the window, then fail (the handle cannot be delivered).
    fail_after_opening: Option<i32>,
}

impl WindowHost {
    fn define<T: 'static>(
        self,
        linker: &mut Linker<T>,
        desktop: Arc<Mutex<Desktop>>,
    ) -> anyhow::Result<()> {
        let d = Arc::clone(&desktop);
        linker.func_wrap(
            "env",
            "open_window",
            move |mut caller: Caller<'_, T>, width: i32, _h: i32| -> wasmtime::Result<i32> {
                let (handle, opened) = {
                    let mut d = d.lock().unwrap();
                    d.next += 1;
                    let handle = d.next;
                    d.open.push(handle);
                    d.most = d.most.max(d.open.len());
                    (handle, d.next)
                };
                if let (Some(export), true) = (self.reenter, opened < 6) {
                    let f = caller
                        .get_export(export)
                        .and_then(Extern::into_func)
                        .ok_or_else(|| wasmtime::format_err!("the guest exports no `{export}`"))?;
                    f.call(&mut caller, &[], &mut [])?;
                }
                if self.fail_after_opening == Some(width) {
                    wasmtime::bail!("window {handle} opened, but its handle cannot be delivered");
                }
                Ok(handle)
            },
        )?;
        linker.func_wrap("env", "close_window", move |handle: i32| {
            desktop.lock().unwrap().open.retain(|h| *h != handle);
        })?;
        Ok(())
    }
}

/// A windows guest: `fields` with the two imports, `$open` (640x480, drops the handle)
/// and the export `nested` (one more open, for the host to call back).
fn windows_guest(fields: &str) -> String {
    format!(
        r#"(module
  (import "env" "open_window" (func $open_window (param i32 i32) (result i32)))
  (import "env" "close_window" (func $close_window (param i32)))
  (memory (export "memory") 1)
  (func $open (drop (call $open_window (i32.const 640) (i32.const 480))))
  (func (export "nested") (call $open))
  {fields})"#
    )
}

/// Runs a windows guest with `host`, unmonitored, with max-windows (hooks) or woven.
fn windows_run(
    how: Lib,
    host: WindowHost,
    module: &str,
) -> (Result<monitor_rt::Finished, RunError>, Desktop) {
    let desktop: Arc<Mutex<Desktop>> = Arc::default();
    let d = Arc::clone(&desktop);
    let mut b = Runner::builder()
        .cache_dir(None)
        .host_functions(move |linker| host.define(linker, Arc::clone(&d)));
    let mut wasm = wat::parse_str(module).expect("the module parses");
    match how {
        Lib::Unmonitored => {}
        Lib::Run => b = b.program(compile(&[MAX_WINDOWS])),
        Lib::Woven => {
            wasm = instrumenter::weave(
                &wasm,
                &compile(&[MAX_WINDOWS]),
                &instrumenter::WeaveOptions::default(),
            )
            .expect("the module weaves")
            .wasm
        }
    }
    let outcome = b.build().and_then(|r| r.run_bytes(&wasm, "windows"));
    let desktop = std::mem::take(&mut *desktop.lock().unwrap());
    (outcome, desktop)
}

fn stopped_by_max_windows(outcome: &Result<monitor_rt::Finished, RunError>) -> bool {
    matches!(outcome, Err(RunError::Violation(v)) if v.policy == "max_windows")
}

#[test]
fn max_windows_counts_windows_a_reentrant_host_opens_during_an_open() {
    // Attack: one open; the host calls `nested` back before the open returns, and each
    // nested open does the same.
    let host = WindowHost {
        reenter: Some("nested"),
        ..WindowHost::default()
    };
    let m = windows_guest(r#"(func (export "_start") (call $open))"#);
    let (_, d) = windows_run(Lib::Unmonitored, host, &m);
    assert!(
        d.most > 3,
        "the attack does not open more than 3 windows without the policy: {d:?}"
    );
    for how in [Lib::Run, Lib::Woven] {
        let (outcome, d) = windows_run(how, host, &m);
        assert!(
            stopped_by_max_windows(&outcome) && d.most <= 3,
            "{how:?}: {} windows were open at once; outcome {outcome:?}",
            d.most
        );
    }
}

#[test]
fn max_windows_allows_three_windows_with_a_host_that_calls_back_harmlessly() {
    let host = WindowHost {
        reenter: Some("tick"),
        ..WindowHost::default()
    };
    let m = windows_guest(
        r#"(global $ticks (mut i32) (i32.const 0))
  (func (export "tick") (global.set $ticks (i32.add (global.get $ticks) (i32.const 1))))
  (func (export "_start") (call $open) (call $open) (call $open)
    (if (i32.ne (global.get $ticks) (i32.const 3)) (then unreachable)))"#,
    );
    for how in [Lib::Run, Lib::Woven] {
        let (outcome, d) = windows_run(how, host, &m);
        assert!(
            outcome.is_ok() && d.open.len() == 3,
            "{how:?}: {outcome:?}, {d:?}"
        );
    }
}

#[test]
fn max_windows_ignores_closing_a_handle_that_was_never_opened() {
    // Attack: three opens, close_window(77) (never opened; the host ignores it), open.
    let m = windows_guest(
        r#"(func (export "_start") (call $open) (call $open) (call $open)
    (call $close_window (i32.const 77))
    (call $open))"#,
    );
    let (_, d) = windows_run(Lib::Unmonitored, WindowHost::default(), &m);
    assert_eq!(
        d.most, 4,
        "the attack does not open a fourth window without the policy"
    );
    for how in [Lib::Run, Lib::Woven] {
        let (outcome, d) = windows_run(how, WindowHost::default(), &m);
        assert!(
            stopped_by_max_windows(&outcome) && d.most <= 3,
            "{how:?}: {} windows were open at once; outcome {outcome:?}",
            d.most
        );
    }
}

#[test]
fn max_windows_ignores_closing_a_window_twice() {
    // Attack: three opens, the first closed twice (the host ignores the second), two opens.
    let m = windows_guest(
        r#"(func (export "_start") (local $first i32)
    (local.set $first (call $open_window (i32.const 640) (i32.const 480)))
    (call $open) (call $open)
    (call $close_window (local.get $first))
    (call $close_window (local.get $first))
    (call $open) (call $open))"#,
    );
    let (_, d) = windows_run(Lib::Unmonitored, WindowHost::default(), &m);
    assert_eq!(
        d.most, 4,
        "the attack does not open a fourth window without the policy"
    );
    for how in [Lib::Run, Lib::Woven] {
        let (outcome, d) = windows_run(how, WindowHost::default(), &m);
        assert!(
            stopped_by_max_windows(&outcome) && d.most <= 3,
            "{how:?}: {} windows were open at once; outcome {outcome:?}",
            d.most
        );
    }
}

#[test]
fn max_windows_allows_another_window_after_closing_an_opened_one() {
    let m = windows_guest(
        r#"(func (export "_start") (local $first i32)
    (local.set $first (call $open_window (i32.const 640) (i32.const 480)))
    (call $open) (call $open)
    (call $close_window (local.get $first))
    (call $open))"#,
    );
    for how in [Lib::Run, Lib::Woven] {
        let (outcome, d) = windows_run(how, WindowHost::default(), &m);
        assert!(
            outcome.is_ok() && d.open.len() == 3 && d.next == 4,
            "{how:?}: {outcome:?}, {d:?}"
        );
    }
}

/// A windows guest woven with max-windows (or not), instantiated in plain wasmtime so
/// that the embedder can call it again after a trap.
struct Embedded {
    store: wasmtime::Store<()>,
    instance: Instance,
    desktop: Arc<Mutex<Desktop>>,
}

impl Embedded {
    fn new(woven: bool, host: WindowHost, module: &str) -> Embedded {
        let mut wasm = wat::parse_str(module).expect("the module parses");
        if woven {
            wasm = instrumenter::weave(
                &wasm,
                &compile(&[MAX_WINDOWS]),
                &instrumenter::WeaveOptions::default(),
            )
            .expect("the module weaves")
            .wasm;
        }
        let engine = wasmtime::Engine::default();
        let module = Module::new(&engine, &wasm).expect("the module compiles");
        let desktop: Arc<Mutex<Desktop>> = Arc::default();
        let mut linker = Linker::new(&engine);
        host.define(&mut linker, Arc::clone(&desktop)).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = linker
            .instantiate(&mut store, &module)
            .expect("the module links");
        Embedded {
            store,
            instance,
            desktop,
        }
    }

    /// Calls export `name`; whether it returned normally.
    fn call(&mut self, name: &str) -> bool {
        let f = self
            .instance
            .get_func(&mut self.store, name)
            .expect("the export exists");
        f.call(&mut self.store, &[], &mut []).is_ok()
    }

    fn violation(&mut self) -> i32 {
        self.instance
            .get_global(&mut self.store, instrumenter::manifest::VIOLATION_GLOBAL)
            .and_then(|g| g.get(&mut self.store).i32())
            .unwrap_or(0)
    }

    fn most(&self) -> usize {
        self.desktop.lock().unwrap().most
    }
}

#[test]
fn max_windows_counts_an_open_that_failed_after_opening_when_the_embedder_calls_again() {
    // Attack: each open of width 1 opens a window, then fails in the host (the handle
    // cannot be delivered), so the post phase never counts it; the embedder calls the
    // instance again four times.
    let host = WindowHost {
        fail_after_opening: Some(1),
        ..WindowHost::default()
    };
    let m = windows_guest(
        r#"(func (export "open_failing") (drop (call $open_window (i32.const 1) (i32.const 1))))"#,
    );
    let mut plain = Embedded::new(false, host, &m);
    for _ in 0..4 {
        plain.call("open_failing");
    }
    assert_eq!(
        plain.most(),
        4,
        "the attack does not open four windows without the policy"
    );
    let mut woven = Embedded::new(true, host, &m);
    for _ in 0..4 {
        woven.call("open_failing");
    }
    assert!(
        woven.most() <= 3 && woven.violation() != 0,
        "woven: {} windows open at once, irm:violation = {}",
        woven.most(),
        woven.violation()
    );
}

#[test]
fn max_windows_allows_opens_after_a_trap_outside_any_import() {
    let m =
        windows_guest(r#"(func (export "crash") unreachable) (func (export "open") (call $open))"#);
    let mut woven = Embedded::new(true, WindowHost::default(), &m);
    assert!(!woven.call("crash"));
    for i in 0..3 {
        assert!(
            woven.call("open"),
            "open {} after the trap was refused",
            i + 1
        );
    }
    assert_eq!(woven.most(), 3);
}
