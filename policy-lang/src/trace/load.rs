//! A `.traces` file with the policies it tests: its sibling `.pol` and its `with` files,
//! compiled together.
use std::path::{Path, PathBuf};

use super::parse::{parse_text, wasi_constants, TraceError};
use super::TraceFile;

/// Why a `.traces` file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum TraceFileError {
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no policy `{}` next to `{}`", policy.display(), traces.display())]
    MissingPolicy { traces: PathBuf, policy: PathBuf },
    #[error("{0}")]
    Parse(TraceError),
    #[error("the policies of `{}` do not compile:\n{}", traces.display(), diagnostics.render())]
    Compile {
        traces: PathBuf,
        diagnostics: crate::Diagnostics,
    },
}

/// A `.traces` file with its compiled policies, ready to run.
#[derive(Debug)]
pub struct LoadedTraces {
    pub traces_path: PathBuf,
    /// The matching `.pol` first, then the `with` files.
    pub policy_paths: Vec<PathBuf>,
    pub compiled: crate::Compiled,
    pub file: TraceFile,
}

/// Reads `path` (a `.traces` file), compiles its `.pol` and `with` files, and parses it
/// against them.
pub fn load_trace_file(path: &Path) -> Result<LoadedTraces, TraceFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TraceFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let shown = path.to_string_lossy();
    let parsed = parse_text(&shown, &text).map_err(TraceFileError::Parse)?;
    let with = parsed.with_lines().map_err(TraceFileError::Parse)?;
    let policy = path.with_extension("pol");
    if !policy.is_file() {
        return Err(TraceFileError::MissingPolicy {
            traces: path.to_path_buf(),
            policy,
        });
    }
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut policy_paths = vec![policy];
    policy_paths.extend(with.iter().map(|w| dir.join(w)));
    let compiled =
        crate::compile_files(&policy_paths).map_err(|diagnostics| TraceFileError::Compile {
            traces: path.to_path_buf(),
            diagnostics,
        })?;
    let file = parsed
        .resolve(&compiled.program, &wasi_constants)
        .map_err(TraceFileError::Parse)?;
    Ok(LoadedTraces {
        traces_path: path.to_path_buf(),
        policy_paths,
        compiled,
        file,
    })
}
