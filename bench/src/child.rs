//! Running one measurement in its own child process.
//!
//! Peak memory is only meaningful per process: `getrusage(RUSAGE_SELF)` would mix the
//! peaks of every tool measured so far, and `RUSAGE_CHILDREN` reports the maximum over
//! all children ever waited for. So each tool runs in a fresh child and we reap it with
//! `wait4`, which returns that one child's `ru_maxrss`.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one child run produced.
#[derive(Debug)]
pub struct ChildRun {
    /// Wall time from spawn to exit, as seen by the parent (includes process start-up and
    /// file I/O; used for external tools that cannot time themselves).
    pub wall: Duration,
    /// Peak resident set of the child, in KiB.
    pub max_rss_kib: u64,
    /// `Some(code)` for a normal exit, `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl ChildRun {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last few lines of stderr, for error notes in the report.
    pub fn stderr_tail(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        let start = lines.len().saturating_sub(3);
        lines[start..].join(" / ")
    }
}

/// Spawns `cmd`, drains its output, and reaps it with `wait4` to get its own peak memory.
pub fn run_measured(cmd: &mut Command) -> Result<ChildRun> {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    // Drain both pipes on threads so a chatty child cannot block on a full pipe while we wait.
    let mut out = child.stdout.take().context("child stdout")?;
    let mut err = child.stderr.take().context("child stderr")?;
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });

    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data; zeroed is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        // SAFETY: pid is our own un-reaped child; status and usage point to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall = start.elapsed();
    if reaped != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    // The child is reaped: `Child`'s destructor does not wait, so dropping it is fine.
    drop(child);
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    Ok(ChildRun {
        wall,
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
        code,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_exit_code_and_output_are_captured() {
        let run = run_measured(Command::new("sh").args(["-c", "echo hi; echo oops >&2; exit 3"]))
            .unwrap();
        assert_eq!(run.code, Some(3));
        assert_eq!(run.stdout.trim(), "hi");
        assert_eq!(run.stderr_tail(), "oops");
    }

    #[test]
    fn child_peak_memory_is_reported_per_child() {
        let run = run_measured(&mut Command::new("true")).unwrap();
        assert!(run.success());
        // Any process has some resident memory; zero would mean wait4 gave us nothing.
        assert!(run.max_rss_kib > 0);
    }
}
