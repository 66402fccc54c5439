//! What the numbers were measured on: machine, toolchain and library versions, date.

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory: String,
    pub os: String,
    pub rustc: String,
    pub versions: Vec<(String, String)>,
    pub wasm_opt: Option<String>,
    pub date: String,
    pub commit: String,
    /// Top-level paths with uncommitted changes when the run started (the numbers are of
    /// the working tree, which then differs from `commit`).
    pub dirty: Vec<String>,
    /// `/proc/loadavg` when the run started: other work on the machine shows up here.
    pub load: String,
}

impl Machine {
    pub fn detect(workspace: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".into());
        let os = command_line("uname", &["-sr"]).unwrap_or_else(|| "unknown".into());
        let rustc = command_line("rustc", &["--version"]).unwrap_or_else(|| "unknown".into());
        let lock = std::fs::read_to_string(workspace.join("Cargo.lock")).unwrap_or_default();
        let versions = ["wasmtime", "wasmparser", "wasm-encoder", "walrus", "pest"]
            .iter()
            .map(|name| {
                let v = locked_versions(&lock, name);
                let v = if v.is_empty() {
                    "?".to_string()
                } else {
                    v.join(", ")
                };
                (name.to_string(), v)
            })
            .collect();
        let wasm_opt = command_line("wasm-opt", &["--version"]);
        let date = command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
            .unwrap_or_else(|| "unknown".into());
        let commit = git(workspace, &["rev-parse", "--short", "HEAD"])
            .map(|o| o.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let dirty = git(
            workspace,
            &["status", "--porcelain", "--untracked-files=no"],
        )
        .map(|o| dirty_paths(&o))
        .unwrap_or_default();
        let load = std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            dirty,
            load,
            cpu,
            cores,
            memory,
            os,
            rustc,
            versions,
            wasm_opt,
            date,
            commit,
        }
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("| | |\n|---|---|\n");
        s.push_str(&format!("| date | {} |\n", self.date));
        if self.dirty.is_empty() {
            s.push_str(&format!("| commit | `{}` |\n", self.commit));
        } else {
            s.push_str(&format!(
                "| commit | `{}` plus uncommitted changes in {} |\n",
                self.commit,
                self.dirty.join(", ")
            ));
        }
        s.push_str(&format!(
            "| load average at start (1, 5, 15 min) | {} |\n",
            self.load
        ));
        s.push_str(&format!("| CPU | {} |\n", self.cpu));
        s.push_str(&format!("| cores available | {} |\n", self.cores));
        s.push_str(&format!("| memory | {} |\n", self.memory));
        s.push_str(&format!("| OS | {} |\n", self.os));
        s.push_str(&format!("| rustc | {} |\n", self.rustc));
        for (name, v) in &self.versions {
            s.push_str(&format!("| {name} | {v} |\n"));
        }
        s.push_str(&format!(
            "| binaryen wasm-opt | {} |\n",
            self.wasm_opt.as_deref().unwrap_or("not installed")
        ));
        s
    }
}

/// The trimmed standard output of `program args`, if it ran and succeeded.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    command_output(Command::new(program).args(args)).map(|o| o.trim().to_string())
}

/// The standard output of `git args` run in `workspace`, untrimmed (the leading blanks of
/// `git status --porcelain` are meaningful), if it succeeded.
fn git(workspace: &Path, args: &[&str]) -> Option<String> {
    command_output(Command::new("git").args(args).current_dir(workspace))
}

/// The standard output of `cmd`, if it ran and succeeded.
fn command_output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The distinct top-level folders (or root files) named in `git status --porcelain`.
pub fn dirty_paths(status: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in status.lines() {
        let Some(path) = line.get(3..) else { continue };
        let path = path.rsplit(" -> ").next().unwrap_or(path);
        let top = match path.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => path.to_string(),
        };
        if !out.contains(&top) {
            out.push(top);
        }
    }
    out
}

/// Every version of package `name` in a Cargo.lock, in file order.
pub fn locked_versions(lock: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{name}\"") {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                out.push(v.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_paths_are_grouped_by_top_level_folder() {
        let status = " M instrumenter/src/lib.rs\n M instrumenter/src/emit.rs\nM  Cargo.lock\nR  a/x.rs -> b/y.rs\n";
        assert_eq!(dirty_paths(status), ["instrumenter/", "Cargo.lock", "b/"]);
    }

    #[test]
    fn locked_versions_lists_every_copy_of_a_package() {
        let lock = "[[package]]\nname = \"wasmparser\"\nversion = \"0.245.1\"\n\n\
                    [[package]]\nname = \"wasmparser-x\"\nversion = \"9\"\n\n\
                    [[package]]\nname = \"wasmparser\"\nversion = \"0.254.2\"\n";
        assert_eq!(locked_versions(lock, "wasmparser"), ["0.245.1", "0.254.2"]);
    }
}
