//! Guest paths as policies see them: joined with their directory and normalised lexically.
//!
//! WASI preview 1 names a file by a directory descriptor and a path relative to it, so the
//! bytes a call passes (`x`, `tmp/../data/x`, `./x`) say little on their own. Policies test
//! the **resolved** path instead: the directory descriptor's guest path joined with the
//! argument and normalised without looking at the file system. These functions are the
//! one definition of that normalisation; the weaver's generated code implements the same
//! algorithm and is tested against them.
//!
//! # Normalisation (normative)
//!
//! A path is split on `/`. Empty segments and `.` are dropped; `..` drops the segment
//! before it, and at the root it is dropped too (the root's parent is the root). The
//! segments left are joined under a leading `/`. So the result is always absolute, never
//! ends with `/` unless it is `/` itself, and contains no `.`, `..` or empty segment:
//! `/tmp/../data//x/.` is `/data/x`, `/..` is `/`.
//!
//! # What this cannot see
//!
//! The host resolves symbolic links and `..` physically, on its own file system. A
//! symbolic link that already exists (`notes.txt -> id.pem`) is seen by its name, and
//! `a/..` where `a` is a link to elsewhere is taken lexically. Hosts with case-insensitive
//! file systems resolve `ID.PEM` to `id.pem`; the comparison here is byte-exact.

/// The longest resolved path the monitor handles (bytes, after normalisation). The
/// woven monitor stores descriptor paths in slots of this size, so the interpreter and
/// the generated code share the limit.
pub const MAX_PATH: usize = 1024;

/// Why a path could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// The argument or the result is longer than [`MAX_PATH`] bytes.
    TooLong,
}

/// Normalises the concatenation `base + "/" + rel` (see the module docs). `base` is a
/// directory's path (absolute and normalised), `rel` the argument as passed. When `rel`
/// is absolute, `base` is ignored, as `openat(2)` ignores its directory for absolute
/// paths.
pub fn resolve(base: &[u8], rel: &[u8]) -> Result<Vec<u8>, ResolveError> {
    if rel.len() > MAX_PATH {
        return Err(ResolveError::TooLong);
    }
    let mut out = Vec::with_capacity(base.len() + rel.len() + 1);
    if !rel.starts_with(b"/") {
        push_segments(&mut out, base);
    }
    push_segments(&mut out, rel);
    if out.is_empty() {
        out.push(b'/');
    }
    if out.len() > MAX_PATH {
        return Err(ResolveError::TooLong);
    }
    Ok(out)
}

/// Normalises an absolute or relative path on its own (as if under `/`).
pub fn normalize(path: &[u8]) -> Result<Vec<u8>, ResolveError> {
    resolve(b"/", path)
}

/// The directory part of a normalised absolute path: `/a/b` -> `/a`, `/a` -> `/`, `/` ->
/// `/`. Symbolic-link contents are resolved relative to the directory the link is in.
pub fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/",
        Some(i) => &path[..i],
    }
}

/// Appends the segments of `path` to `out` (a normalised path without its trailing `/`,
/// empty for the root), applying `.`, `..` and empty segments.
fn push_segments(out: &mut Vec<u8>, path: &[u8]) {
    for segment in path.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            s => {
                out.push(b'/');
                out.extend_from_slice(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(base: &str, rel: &str) -> String {
        String::from_utf8(resolve(base.as_bytes(), rel.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn a_relative_path_joins_its_directory() {
        assert_eq!(r("/data", "x"), "/data/x");
        assert_eq!(r("/", "data/x"), "/data/x");
    }

    #[test]
    fn every_spelling_of_one_file_resolves_alike() {
        assert_eq!(r("/tmp", "../data/x"), "/data/x");
        assert_eq!(r("/", "tmp/../data/x"), "/data/x");
        assert_eq!(r("/data", "./x"), "/data/x");
        assert_eq!(r("/data", ".//x/"), "/data/x");
        assert_eq!(r("/data/a", "../a/./../x"), "/data/x");
    }

    #[test]
    fn dot_dot_stops_at_the_root() {
        assert_eq!(r("/", ".."), "/");
        assert_eq!(r("/tmp", "../../../etc/shadow"), "/etc/shadow");
    }

    #[test]
    fn an_absolute_argument_ignores_the_directory() {
        assert_eq!(r("/tmp", "/etc/shadow"), "/etc/shadow");
        assert_eq!(r("/tmp", "//etc//shadow/"), "/etc/shadow");
    }

    #[test]
    fn the_directory_itself_resolves_to_its_path() {
        assert_eq!(r("/data", "."), "/data");
        assert_eq!(r("/data", ""), "/data");
        assert_eq!(r("/", "."), "/");
    }

    #[test]
    fn names_with_dots_are_ordinary_segments() {
        assert_eq!(r("/d", "...x/.x/..y"), "/d/...x/.x/..y");
    }

    #[test]
    fn bytes_are_kept_as_they_are() {
        assert_eq!(
            resolve(b"/d", b"\xff\x00a").unwrap(),
            b"/d/\xff\x00a".to_vec()
        );
    }

    #[test]
    fn too_long_arguments_and_results_are_refused() {
        let long = "a".repeat(MAX_PATH + 1);
        assert_eq!(resolve(b"/", long.as_bytes()), Err(ResolveError::TooLong));
        let base = format!("/{}", "b".repeat(MAX_PATH - 3));
        assert_eq!(resolve(base.as_bytes(), b"cc"), Err(ResolveError::TooLong));
        assert!(resolve(base.as_bytes(), b"..").is_ok());
    }

    #[test]
    fn parent_of_a_path_is_its_directory() {
        assert_eq!(parent(b"/a/b"), b"/a");
        assert_eq!(parent(b"/a"), b"/");
        assert_eq!(parent(b"/"), b"/");
    }
}
