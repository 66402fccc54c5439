//! Access sets: the file-system and network accesses of every WASI call, as event sets
//! whose guards speak about the accessed resource.
//!
//! "Writes only under /tmp" is one sentence, but a dozen calls write: `path_open` with
//! the right flags, `path_rename` on both sides, `path_link`, `path_symlink`, `fd_write`
//! on a file descriptor, and so on. An access set names them all:
//!
//! ```text
//! on fs_writes when !(target glob "/tmp/**") -> deny "writes only under /tmp";
//! ```
//!
//! A transition on an access set stands for one transition per member call, whose guard
//! holds when **one of the call's accesses** satisfies the written guard: for each access
//! of the call, its condition (when the call accesses at all: `fd_write` writes a file
//! only when `fd is file`) and the guard with `target` standing for the accessed
//! resource (a resolved path parameter, or the descriptor's path). `path_rename`, which
//! writes two places, is denied above when either lies outside `/tmp`.
//!
//! The sets and conditions are data here, written in the policy language itself and
//! parsed like policy text, so `irm show` prints the expanded transitions.
use crate::ast::{self, Expr, ExprKind, NameRef, Span};
use crate::ir::BinOp;

/// One access of a call.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    /// The catalogue function.
    pub function: &'static str,
    /// When the call makes this access, in the policy language; `None`: always.
    pub when: Option<&'static str>,
    /// The accessed resource, as a string operand: a path parameter (`path`,
    /// `old_path`, ...) or `fd.path`; `None` for accesses without a path (network).
    pub target: Option<&'static str>,
}

/// A built-in access set.
#[derive(Clone, Copy, Debug)]
pub struct AccessSet {
    pub name: &'static str,
    /// What the set means, for documentation and `irm show`.
    pub doc: &'static str,
    pub accesses: &'static [Access],
}

const fn a(
    function: &'static str,
    when: Option<&'static str>,
    target: Option<&'static str>,
) -> Access {
    Access {
        function,
        when,
        target,
    }
}

const FILE_FD: Option<&str> = Some("fd is file || fd is directory");
const SOCKET_FD: Option<&str> = Some("fd is socket");
const FD_PATH: Option<&str> = Some("fd.path");
const PATH: Option<&str> = Some("path");
/// `path_open` may change the file: it creates or truncates, or asks for a descriptor that
/// may write ([`crate::descriptors::opens_for_writing`], tested to agree).
const OPENS_FOR_WRITING: Option<&str> = Some(
    "(oflags & (OFLAGS_CREAT | OFLAGS_TRUNC)) != 0 \
     || (fs_rights_base & (RIGHTS_FD_WRITE | RIGHTS_FD_ALLOCATE | RIGHTS_FD_FILESTAT_SET_SIZE \
                           | RIGHTS_FD_DATASYNC)) != 0 \
     || fdflags has FDFLAGS_APPEND",
);

const FS_READS: &[Access] = &[
    // Any open may read: a directory opened without read rights can still be listed.
    a("path_open", None, PATH),
    a("path_readlink", None, PATH),
    a("fd_read", FILE_FD, FD_PATH),
    a("fd_pread", FILE_FD, FD_PATH),
    a("fd_readdir", FILE_FD, FD_PATH),
];

const FS_WRITES: &[Access] = &[
    a("path_open", OPENS_FOR_WRITING, PATH),
    a("path_create_directory", None, PATH),
    a("path_remove_directory", None, PATH),
    a("path_unlink_file", None, PATH),
    a("path_filestat_set_times", None, PATH),
    a("path_rename", None, Some("old_path")),
    a("path_rename", None, Some("new_path")),
    // A hard link makes the old file writable under the new name, and a symbolic link
    // makes its target writable through the link: both ends are written.
    a("path_link", None, Some("old_path")),
    a("path_link", None, Some("new_path")),
    a("path_symlink", None, Some("new_path")),
    a("path_symlink", None, Some("old_path")),
    a("fd_write", FILE_FD, FD_PATH),
    a("fd_pwrite", FILE_FD, FD_PATH),
    a("fd_allocate", FILE_FD, FD_PATH),
    a("fd_filestat_set_size", FILE_FD, FD_PATH),
    a("fd_filestat_set_times", FILE_FD, FD_PATH),
];

const FS_ACCESSES: &[Access] = &[
    a("path_open", None, PATH),
    a("path_create_directory", None, PATH),
    a("path_filestat_get", None, PATH),
    a("path_filestat_set_times", None, PATH),
    a("path_link", None, Some("old_path")),
    a("path_link", None, Some("new_path")),
    a("path_readlink", None, PATH),
    a("path_remove_directory", None, PATH),
    a("path_rename", None, Some("old_path")),
    a("path_rename", None, Some("new_path")),
    a("path_symlink", None, Some("new_path")),
    a("path_symlink", None, Some("old_path")),
    a("path_unlink_file", None, PATH),
    a("fd_read", FILE_FD, FD_PATH),
    a("fd_pread", FILE_FD, FD_PATH),
    a("fd_readdir", FILE_FD, FD_PATH),
    a("fd_write", FILE_FD, FD_PATH),
    a("fd_pwrite", FILE_FD, FD_PATH),
    a("fd_allocate", FILE_FD, FD_PATH),
    a("fd_filestat_get", FILE_FD, FD_PATH),
    a("fd_filestat_set_size", FILE_FD, FD_PATH),
    a("fd_filestat_set_times", FILE_FD, FD_PATH),
];

const NET_SENDS: &[Access] = &[
    a("sock_send", None, None),
    a("fd_write", SOCKET_FD, None),
    a("fd_pwrite", SOCKET_FD, None),
];

const NET_RECEIVES: &[Access] = &[
    a("sock_recv", None, None),
    a("fd_read", SOCKET_FD, None),
    a("fd_pread", SOCKET_FD, None),
];

const NET_USES: &[Access] = &[
    a("sock_accept", None, None),
    a("sock_recv", None, None),
    a("sock_send", None, None),
    a("sock_shutdown", None, None),
    a("fd_read", SOCKET_FD, None),
    a("fd_pread", SOCKET_FD, None),
    a("fd_write", SOCKET_FD, None),
    a("fd_pwrite", SOCKET_FD, None),
];

/// Every built-in access set.
pub const SETS: &[AccessSet] = &[
    AccessSet {
        name: "fs_reads",
        doc: "reads of files and directories: every path_open, path_readlink, and fd_read, fd_pread, fd_readdir on a file or directory descriptor; `target` is the path read",
        accesses: FS_READS,
    },
    AccessSet {
        name: "fs_writes",
        doc: "changes to the file system: path_open that creates, truncates or may write, path_create_directory, path_remove_directory, path_unlink_file, path_filestat_set_times, both sides of path_rename and path_link, the link and its target of path_symlink, and fd_write, fd_pwrite, fd_allocate, fd_filestat_set_size, fd_filestat_set_times on a file or directory descriptor; `target` is the path changed",
        accesses: FS_WRITES,
    },
    AccessSet {
        name: "fs_accesses",
        doc: "every path a path call names (both sides of renames and links, symbolic-link targets) and every read, write or stat through a file or directory descriptor; `target` is the path",
        accesses: FS_ACCESSES,
    },
    AccessSet {
        name: "net_sends",
        doc: "bytes sent on the network: sock_send, and fd_write, fd_pwrite on a socket descriptor",
        accesses: NET_SENDS,
    },
    AccessSet {
        name: "net_receives",
        doc: "bytes received from the network: sock_recv, and fd_read, fd_pread on a socket descriptor",
        accesses: NET_RECEIVES,
    },
    AccessSet {
        name: "net_uses",
        doc: "every socket operation: sock_accept, sock_recv, sock_send, sock_shutdown, and fd_read, fd_pread, fd_write, fd_pwrite on a socket descriptor",
        accesses: NET_USES,
    },
];

/// The built-in access set called `name`.
pub fn set(name: &str) -> Option<&'static AccessSet> {
    SETS.iter().find(|s| s.name == name)
}

impl AccessSet {
    /// The member functions, in order of first access, each once.
    pub fn functions(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for a in self.accesses {
            if !out.contains(&a.function) {
                out.push(a.function);
            }
        }
        out
    }

    /// The guard of the transition for member `function`: the disjunction over its
    /// accesses of `condition && guard[target := resource]`. `span` is where the
    /// transition names the set; built-in parts carry it. Errors: `target` used where an
    /// access has none, or as anything but the subject of a string test.
    pub fn member_guard(
        &self,
        function: &str,
        guard: Option<&Expr>,
        span: Span,
    ) -> Result<Expr, String> {
        let mut out: Option<Expr> = None;
        for acc in self.accesses.iter().filter(|a| a.function == function) {
            let mut part = match guard {
                Some(g) => substitute(g, acc.target, self.name, function)?,
                None => truth(span),
            };
            if let Some(when) = acc.when {
                let cond = crate::parse::parse_builtin_expr(when, span)
                    .expect("built-in access conditions parse (tested)");
                part = binary(BinOp::And, cond, part, span);
            }
            out = Some(match out {
                None => part,
                Some(prev) => binary(BinOp::Or, prev, part, span),
            });
        }
        Ok(out.unwrap_or_else(|| truth(span)))
    }
}

fn truth(span: Span) -> Expr {
    // `0 == 0`: the language has no boolean literal; the lowering folds it away.
    let zero = Expr {
        kind: ExprKind::Int(0),
        span,
    };
    binary(BinOp::Eq, zero.clone(), zero, span)
}

fn binary(op: BinOp, a: Expr, b: Expr, span: Span) -> Expr {
    Expr {
        kind: ExprKind::Binary(ast::BinOp::Ir(op), Box::new(a), Box::new(b)),
        span,
    }
}

/// `guard` with every string test on `target` made a test on the access's resource.
fn substitute(
    guard: &Expr,
    target: Option<&str>,
    set: &str,
    function: &str,
) -> Result<Expr, String> {
    let mut e = guard.clone();
    subst(&mut e, target, set, function)?;
    Ok(e)
}

fn subst(e: &mut Expr, target: Option<&str>, set: &str, function: &str) -> Result<(), String> {
    match &mut e.kind {
        ExprKind::StrTest(n, _, _) if n.name.name == "target" && n.field.is_none() => {
            let Some(t) = target else {
                return Err(format!(
                    "`target` has no path here: `{function}` in `{set}` accesses no file"
                ));
            };
            let span = n.name.span;
            let (name, field) = match t.split_once('.') {
                Some((a, b)) => (a, Some(b)),
                None => (t, None),
            };
            *n = NameRef {
                name: ast::Ident {
                    name: name.into(),
                    span,
                },
                field: field.map(|f| ast::Ident {
                    name: f.into(),
                    span,
                }),
            };
            Ok(())
        }
        ExprKind::Name(n) if n == "target" => Err(
            "`target` is the accessed path and can only be tested as a string (`target glob \"/tmp/**\"`)"
                .to_string(),
        ),
        ExprKind::Unary(_, a) => subst(a, target, set, function),
        ExprKind::Binary(_, a, b) => {
            subst(a, target, set, function)?;
            subst(b, target, set, function)
        }
        ExprKind::In(v, _) => subst(v, target, set, function),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_parses() {
        for s in SETS {
            for a in s.accesses {
                if let Some(w) = a.when {
                    assert!(
                        crate::parse::parse_builtin_expr(w, Span::default()).is_some(),
                        "{}: {w}",
                        s.name
                    );
                }
            }
        }
    }

    #[test]
    fn every_member_is_a_catalogue_function_with_its_target() {
        for s in SETS {
            for a in s.accesses {
                let e = crate::wasi::function(a.function)
                    .unwrap_or_else(|| panic!("{}: {} is not WASI", s.name, a.function));
                if let Some(t) = a.target {
                    let param = t.split('.').next().unwrap();
                    assert!(
                        e.params.iter().any(|p| p.name == param),
                        "{}: {} has no `{param}`",
                        s.name,
                        a.function
                    );
                }
            }
        }
    }

    #[test]
    fn the_write_rights_of_path_open_are_the_descriptor_tables() {
        let names = [
            "RIGHTS_FD_WRITE",
            "RIGHTS_FD_ALLOCATE",
            "RIGHTS_FD_FILESTAT_SET_SIZE",
            "RIGHTS_FD_DATASYNC",
        ];
        let mask = names
            .iter()
            .map(|n| crate::wasi::constant(n).unwrap())
            .fold(0, |a, b| a | b);
        assert_eq!(mask, crate::descriptors::WRITE_RIGHTS);
        let oflags = crate::wasi::constant("OFLAGS_CREAT").unwrap()
            | crate::wasi::constant("OFLAGS_TRUNC").unwrap();
        assert_eq!(oflags, crate::descriptors::WRITE_OFLAGS);
        assert!(OPENS_FOR_WRITING.unwrap().contains("RIGHTS_FD_DATASYNC)"));
    }

    #[test]
    fn members_are_listed_once_in_order() {
        let w = set("fs_writes").unwrap();
        let f = w.functions();
        assert_eq!(f[0], "path_open");
        assert_eq!(f.iter().filter(|x| **x == "path_rename").count(), 1);
    }
}
