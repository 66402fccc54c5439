//! An example embedder of `monitor-rt`: a host that gives its Wasm guest windows through
//! two custom imports, `env.open_window(width, height) -> handle` and
//! `env.close_window(handle)`, and lets `policies/max-windows.pol` keep the guest to at
//! most three open windows.
//!
//! The [`Desktop`] is the host's side of the story: which windows exist. The policy is
//! enforced in the guest (woven, [`Enforcement::Inline`]) or around the host functions
//! ([`Enforcement::Host`]); either way a fourth window never reaches the desktop.
//!
//! ```no_run
//! use windows_host::{Desktop, guest_runner};
//! use monitor_rt::Enforcement;
//!
//! let desktop = Desktop::default();
//! let runner = guest_runner(&desktop, Some("policies/max-windows.pol".as_ref()), Enforcement::Inline, "ooocoo")
//!     .build()
//!     .expect("the policy compiles");
//! let outcome = runner.run_file("examples/windows/windows.wat");
//! println!("{:?}; the host has {} windows open", outcome.map(|_| ()), desktop.open().len());
//! ```
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use monitor_rt::{Enforcement, Runner, RunnerBuilder};

/// One window the host opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub width: i32,
    pub height: i32,
}

#[derive(Debug, Default)]
struct State {
    next: i32,
    open: BTreeMap<i32, Window>,
    opened_total: usize,
    log: Vec<String>,
}

/// The host's windows. Cloning shares the same desktop.
#[derive(Clone, Debug, Default)]
pub struct Desktop {
    state: Arc<Mutex<State>>,
}

impl Desktop {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a window; a window without area is refused with -1.
    pub fn open_window(&self, width: i32, height: i32) -> i32 {
        let mut s = self.lock();
        if width <= 0 || height <= 0 {
            s.log.push(format!("refused a {width}x{height} window"));
            return -1;
        }
        s.next += 1;
        let handle = s.next;
        s.open.insert(handle, Window { width, height });
        s.opened_total += 1;
        s.log
            .push(format!("opened window {handle} ({width}x{height})"));
        handle
    }

    /// Closes a window; unknown handles are ignored.
    pub fn close_window(&self, handle: i32) {
        let mut s = self.lock();
        let closed = s.open.remove(&handle).is_some();
        s.log.push(if closed {
            format!("closed window {handle}")
        } else {
            format!("ignored closing unknown window {handle}")
        });
    }

    /// The windows open now, by handle.
    pub fn open(&self) -> BTreeMap<i32, Window> {
        self.lock().open.clone()
    }

    /// How many windows were ever opened.
    pub fn opened_total(&self) -> usize {
        self.lock().opened_total
    }

    /// What the host did, in order.
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }
}

/// A runner for the windows guest: WASI, the two window imports backed by `desktop`,
/// the policy (if any) enforced as `enforcement`, and `script` as the guest's argument.
pub fn guest_runner(
    desktop: &Desktop,
    policy: Option<&Path>,
    enforcement: Enforcement,
    script: &str,
) -> RunnerBuilder {
    let d = desktop.clone();
    let mut b = Runner::builder()
        .enforcement(enforcement)
        .arg("windows")
        .arg(script)
        .host_functions(move |linker| {
            let open = d.clone();
            linker.func_wrap("env", "open_window", move |w: i32, h: i32| -> i32 {
                open.open_window(w, h)
            })?;
            let close = d.clone();
            linker.func_wrap("env", "close_window", move |handle: i32| {
                close.close_window(handle)
            })?;
            Ok(())
        });
    if let Some(p) = policy {
        b = b.policy_file(p);
    }
    b
}
