//! The windows host under `policies/max-windows.pol`: the policy allows three open
//! windows, stops the guest at the fourth (which never reaches the host), and allows
//! another after a close — enforced woven into the guest or around the host functions.
use std::path::{Path, PathBuf};

use monitor_rt::{Enforcement, MemoryOutputPipe, RunError};
use windows_host::{guest_runner, Desktop};

fn guest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("windows.wat")
}

fn max_windows() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/max-windows.pol")
}

const MODES: [Enforcement; 2] = [Enforcement::Inline, Enforcement::Host];

/// Runs the guest with `script` (what it prints is kept out of the test log).
fn run(desktop: &Desktop, policy: bool, mode: Enforcement, script: &str) -> Result<(), RunError> {
    let policy = policy.then(max_windows);
    guest_runner(desktop, policy.as_deref(), mode, script)
        .cache_dir(None)
        .stdout(MemoryOutputPipe::new(1 << 16))
        .build()
        .and_then(|r| r.run_file(guest()))
        .map(|_| ())
}

#[test]
fn three_windows_may_be_open() {
    for mode in MODES {
        let desktop = Desktop::default();
        run(&desktop, true, mode, "ooo").unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(desktop.open().len(), 3, "{mode:?}");
    }
}

#[test]
fn fourth_open_window_is_stopped_before_the_host_opens_it() {
    for mode in MODES {
        let desktop = Desktop::default();
        match run(&desktop, true, mode, "oooo") {
            Err(RunError::Violation(v)) => {
                assert_eq!(v.policy, "max_windows", "{mode:?}");
                assert_eq!(v.import, "env.open_window", "{mode:?}");
                assert_eq!(
                    v.reason, "at most 3 windows may be open at once",
                    "{mode:?}"
                );
                let args: Vec<String> = v
                    .args
                    .iter()
                    .map(|a| format!("{}={}", a.name, a.value))
                    .collect();
                assert_eq!(args, ["width=640", "height=480"], "{mode:?}");
                assert_eq!(v.recent.len(), 4, "{mode:?}: the four opens");
            }
            other => panic!("{mode:?}: expected a violation, got {other:?}"),
        }
        assert_eq!(
            desktop.opened_total(),
            3,
            "{mode:?}: the fourth never reached the host"
        );
    }
}

#[test]
fn another_window_may_open_after_a_close() {
    for mode in MODES {
        let desktop = Desktop::default();
        run(&desktop, true, mode, "ooocoo").expect_err("the last open is stopped");
        assert_eq!(
            desktop.opened_total(),
            4,
            "{mode:?}: three, then one more after the close"
        );
        assert_eq!(desktop.open().len(), 3, "{mode:?}");
        run(&Desktop::default(), true, mode, "ooococo").unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
}

#[test]
fn refused_opens_do_not_count() {
    for mode in MODES {
        let desktop = Desktop::default();
        run(&desktop, true, mode, "xxoxoo").unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(desktop.open().len(), 3, "{mode:?}");
    }
}

#[test]
fn unmonitored_guest_opens_a_fourth_window() {
    let desktop = Desktop::default();
    run(&desktop, false, Enforcement::Inline, "oooo").expect("no policy, no limit");
    assert_eq!(desktop.open().len(), 4);
}

#[test]
fn host_without_the_window_functions_is_a_link_error_naming_them() {
    let r = monitor_rt::Runner::builder()
        .cache_dir(None)
        .build()
        .unwrap()
        .run_file(guest());
    match r {
        Err(RunError::Link(missing)) => {
            let text = missing.join("\n");
            assert!(text.contains("env.open_window"), "{text}");
            assert!(text.contains("env.close_window"), "{text}");
        }
        other => panic!("expected a link error, got {other:?}"),
    }
}
