//! Helpers shared by the end-to-end tests: running the `irm` binary from the workspace
//! root, writing test files, and finding modules in the corpus cache. Each test file
//! uses only some of them.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What one `irm` run did.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `irm` with `args` from the workspace root, with `cache` as its cache home.
pub fn irm_in(cache: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_irm"))
        .args(args)
        .current_dir(root())
        .env("XDG_CACHE_HOME", cache)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the irm binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `irm` with `args` from the workspace root, with a private cache directory.
pub fn irm(args: &[&str]) -> Run {
    let cache = tempfile::tempdir().expect("temporary directory");
    irm_in(cache.path(), args)
}

impl Run {
    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "exit code\n--- stdout\n{}--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needles: &[&str]) -> &Run {
        for n in needles {
            assert!(
                self.stderr.contains(n),
                "stderr lacks {n:?}:\n{}",
                self.stderr
            );
        }
        self
    }

    #[track_caller]
    pub fn stderr_lacks(&self, needle: &str) -> &Run {
        assert!(
            !self.stderr.contains(needle),
            "stderr has {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// Writes `text` as `name` into `dir` and returns its path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    fs::write(&p, text).expect("write test file");
    p.to_str().expect("UTF-8 path").to_string()
}

/// `wasm/NAME` in the corpus cache (`$IRM_CORPUS`, else `~/.cache/irm-corpus`), or `None`
/// with a note that the test is skipped.
pub fn corpus_file(name: &str) -> Option<PathBuf> {
    let cache = std::env::var_os("IRM_CORPUS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/irm-corpus")));
    match cache.map(|c| c.join("wasm").join(name)) {
        Some(p) if p.is_file() => Some(p),
        _ => {
            eprintln!("skipping: {name} is not in the corpus cache; run scripts/fetch-corpus.sh");
            None
        }
    }
}
