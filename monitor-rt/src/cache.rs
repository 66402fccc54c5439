//! The on-disk cache of compiled modules.
//!
//! A compiled module is stored under `<dir>/<key>.cwasm`, where the key is the SHA-256 of
//! the exact module bytes, the wasmtime version and the engine's compatibility hash (the
//! compiler settings that matter to the machine code). A 99 MB module then compiles
//! once. Entries are written to a temporary file and renamed into place, so a concurrent
//! run sees either no entry or a complete one; an entry that fails to load (corrupt, or
//! written by an incompatible wasmtime) is compiled again and replaced.
//!
//! The directory is kept under [`MAX_BYTES`]: after storing an entry, the least recently
//! used ones (by modification time, refreshed on every hit) are removed until it fits.
//!
//! Loading an entry runs native code from the cache directory without verifying it, so
//! the directory must be writable only by the user running `irm` (the default, under
//! `$XDG_CACHE_HOME` or `~/.cache`, is).
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

/// The size the cache directory is trimmed to after each store (a compiled CPython is
/// about 250 MB).
pub const MAX_BYTES: u64 = 4 << 30;

/// The default cache directory: `$XDG_CACHE_HOME/irm`, else `~/.cache/irm`; `None` when
/// neither variable is set.
pub fn default_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty());
    if let Some(x) = xdg {
        return Some(PathBuf::from(x).join("irm"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache/irm"))
}

/// Feeds a `Hash` value into SHA-256.
struct ShaHasher<'a>(&'a mut Sha256);

impl Hasher for ShaHasher<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The cache key of `wasm` compiled by `engine`.
pub fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut sha = Sha256::new();
    sha.update(b"irm module cache v1\0");
    sha.update(wasmtime_version().as_bytes());
    sha.update([0]);
    engine
        .precompile_compatibility_hash()
        .hash(&mut ShaHasher(&mut sha));
    sha.update((wasm.len() as u64).to_le_bytes());
    sha.update(wasm);
    sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn wasmtime_version() -> &'static str {
    // The engine's compatibility hash covers the version too; this keeps keys of
    // different wasmtime releases apart even if that ever changes.
    "wasmtime-48"
}

/// Whether the module came from the cache or was compiled (and then stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Stored,
    /// Compiled; storing failed (the reason is in the warning).
    StoreFailed,
    Disabled,
}

/// Compiles `wasm`, through the cache in `dir` when given. Returns the module, what the
/// cache did, and a warning to show when the cache could not be used (never fatal).
pub fn compile(
    engine: &Engine,
    wasm: &[u8],
    dir: Option<&Path>,
) -> wasmtime::Result<(Module, CacheUse, Option<String>)> {
    let Some(dir) = dir else {
        return Ok((Module::new(engine, wasm)?, CacheUse::Disabled, None));
    };
    let path = dir.join(format!("{}.cwasm", key(engine, wasm)));
    if path.is_file() {
        // SAFETY: entries are written only by `store` below, from `Module::serialize` of a
        // module compiled by this engine configuration (the key covers it); wasmtime
        // checks the header and refuses artifacts of another version or configuration.
        if let Ok(m) = unsafe { Module::deserialize_file(engine, &path) } {
            // Mark it recently used; failing to is harmless.
            let _ = touch(&path, std::time::SystemTime::now());
            return Ok((m, CacheUse::Hit, None));
        }
    }
    let module = Module::new(engine, wasm)?;
    match store(&module, dir, &path) {
        Ok(()) => {
            trim(dir, &path, MAX_BYTES);
            Ok((module, CacheUse::Stored, None))
        }
        Err(e) => Ok((
            module,
            CacheUse::StoreFailed,
            Some(format!(
                "cannot store the compiled module in `{}`: {e}",
                dir.display()
            )),
        )),
    }
}

/// Sets the modification time `trim` orders entries by.
fn touch(path: &Path, t: std::time::SystemTime) -> std::io::Result<()> {
    std::fs::File::options()
        .append(true)
        .open(path)?
        .set_modified(t)
}

fn store(module: &Module, dir: &Path, path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let bytes = module.serialize().map_err(|e| e.to_string())?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}

/// Removes the least recently used `.cwasm` entries (never `keep`) until the directory's
/// entries take at most `max` bytes. Errors are ignored: the cache is an optimisation.
fn trim(dir: &Path, keep: &Path, max: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let path = e.path();
            if path.extension()? != "cwasm" {
                return None;
            }
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), path))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max {
            break;
        }
        if path != keep && std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(module (func (export "f") (result i32) i32.const 7))"#;

    #[test]
    fn key_changes_with_the_module_bytes() {
        let engine = Engine::default();
        let a = wat::parse_str(WAT).unwrap();
        let b = wat::parse_str(r#"(module (func (export "f") (result i32) i32.const 8))"#).unwrap();
        assert_ne!(key(&engine, &a), key(&engine, &b));
        assert_eq!(key(&engine, &a), key(&engine, &a));
    }

    #[test]
    fn second_compile_is_a_cache_hit() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let wasm = wat::parse_str(WAT).unwrap();
        let (_, first, _) = compile(&engine, &wasm, Some(dir.path())).unwrap();
        let (m, second, _) = compile(&engine, &wasm, Some(dir.path())).unwrap();
        assert_eq!((first, second), (CacheUse::Stored, CacheUse::Hit));
        assert!(m.get_export("f").is_some());
    }

    #[test]
    fn trimming_removes_the_least_recently_used_entries_first() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.cwasm");
        let new = dir.path().join("new.cwasm");
        let kept = dir.path().join("kept.cwasm");
        for (p, age) in [(&old, 300), (&new, 100), (&kept, 200)] {
            std::fs::write(p, [0u8; 100]).unwrap();
            let t = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
            touch(p, t).unwrap();
        }
        trim(dir.path(), &kept, 200);
        assert!(!old.exists(), "the oldest goes first");
        assert!(new.exists() && kept.exists());
    }

    #[test]
    fn corrupt_entry_is_compiled_again() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let wasm = wat::parse_str(WAT).unwrap();
        let path = dir.path().join(format!("{}.cwasm", key(&engine, &wasm)));
        std::fs::write(&path, b"not a compiled module").unwrap();
        let (_, used, _) = compile(&engine, &wasm, Some(dir.path())).unwrap();
        assert_eq!(used, CacheUse::Stored);
        let (_, again, _) = compile(&engine, &wasm, Some(dir.path())).unwrap();
        assert_eq!(again, CacheUse::Hit);
    }
}
