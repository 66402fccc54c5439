//! The built-in WASI preview 1 catalogue (`wasi_snapshot_preview1`) and its named constants.
//!
//! Every function is listed with the parameter names of the witx definition and the
//! parameter types of its core Wasm signature. witx lists (`iovs`) become a pointer and a
//! `*_len` parameter; results other than the errno become out-pointer parameters named after
//! the result. The path-like `(ptr, len)` pairs are [`ParamType::Str`], so policies can test
//! them with string guards.
use crate::ir::{Event, Param, ParamType, ValType};

/// The import module of every catalogue function.
pub const MODULE: &str = "wasi_snapshot_preview1";

use ParamType::{Str as S, I32, I64};

/// `(name, params, has errno result)`.
type Entry = (&'static str, &'static [(&'static str, ParamType)], bool);

const CATALOGUE: &[Entry] = &[
    ("args_get", &[("argv", I32), ("argv_buf", I32)], true),
    (
        "args_sizes_get",
        &[("argc", I32), ("argv_buf_size", I32)],
        true,
    ),
    (
        "environ_get",
        &[("environ", I32), ("environ_buf", I32)],
        true,
    ),
    (
        "environ_sizes_get",
        &[("environc", I32), ("environ_buf_size", I32)],
        true,
    ),
    ("clock_res_get", &[("id", I32), ("resolution", I32)], true),
    (
        "clock_time_get",
        &[("id", I32), ("precision", I64), ("time", I32)],
        true,
    ),
    (
        "fd_advise",
        &[("fd", I32), ("offset", I64), ("len", I64), ("advice", I32)],
        true,
    ),
    (
        "fd_allocate",
        &[("fd", I32), ("offset", I64), ("len", I64)],
        true,
    ),
    ("fd_close", &[("fd", I32)], true),
    ("fd_datasync", &[("fd", I32)], true),
    ("fd_fdstat_get", &[("fd", I32), ("stat", I32)], true),
    ("fd_fdstat_set_flags", &[("fd", I32), ("flags", I32)], true),
    (
        "fd_fdstat_set_rights",
        &[
            ("fd", I32),
            ("fs_rights_base", I64),
            ("fs_rights_inheriting", I64),
        ],
        true,
    ),
    ("fd_filestat_get", &[("fd", I32), ("buf", I32)], true),
    ("fd_filestat_set_size", &[("fd", I32), ("size", I64)], true),
    (
        "fd_filestat_set_times",
        &[
            ("fd", I32),
            ("atim", I64),
            ("mtim", I64),
            ("fst_flags", I32),
        ],
        true,
    ),
    (
        "fd_pread",
        &[
            ("fd", I32),
            ("iovs", I32),
            ("iovs_len", I32),
            ("offset", I64),
            ("nread", I32),
        ],
        true,
    ),
    ("fd_prestat_get", &[("fd", I32), ("buf", I32)], true),
    (
        "fd_prestat_dir_name",
        &[("fd", I32), ("path", I32), ("path_len", I32)],
        true,
    ),
    (
        "fd_pwrite",
        &[
            ("fd", I32),
            ("iovs", I32),
            ("iovs_len", I32),
            ("offset", I64),
            ("nwritten", I32),
        ],
        true,
    ),
    (
        "fd_read",
        &[
            ("fd", I32),
            ("iovs", I32),
            ("iovs_len", I32),
            ("nread", I32),
        ],
        true,
    ),
    (
        "fd_readdir",
        &[
            ("fd", I32),
            ("buf", I32),
            ("buf_len", I32),
            ("cookie", I64),
            ("bufused", I32),
        ],
        true,
    ),
    ("fd_renumber", &[("fd", I32), ("to", I32)], true),
    (
        "fd_seek",
        &[
            ("fd", I32),
            ("offset", I64),
            ("whence", I32),
            ("newoffset", I32),
        ],
        true,
    ),
    ("fd_sync", &[("fd", I32)], true),
    ("fd_tell", &[("fd", I32), ("offset", I32)], true),
    (
        "fd_write",
        &[
            ("fd", I32),
            ("iovs", I32),
            ("iovs_len", I32),
            ("nwritten", I32),
        ],
        true,
    ),
    ("path_create_directory", &[("fd", I32), ("path", S)], true),
    (
        "path_filestat_get",
        &[("fd", I32), ("flags", I32), ("path", S), ("buf", I32)],
        true,
    ),
    (
        "path_filestat_set_times",
        &[
            ("fd", I32),
            ("flags", I32),
            ("path", S),
            ("atim", I64),
            ("mtim", I64),
            ("fst_flags", I32),
        ],
        true,
    ),
    (
        "path_link",
        &[
            ("old_fd", I32),
            ("old_flags", I32),
            ("old_path", S),
            ("new_fd", I32),
            ("new_path", S),
        ],
        true,
    ),
    (
        "path_open",
        &[
            ("fd", I32),
            ("dirflags", I32),
            ("path", S),
            ("oflags", I32),
            ("fs_rights_base", I64),
            ("fs_rights_inheriting", I64),
            ("fdflags", I32),
            ("opened_fd", I32),
        ],
        true,
    ),
    (
        "path_readlink",
        &[
            ("fd", I32),
            ("path", S),
            ("buf", I32),
            ("buf_len", I32),
            ("bufused", I32),
        ],
        true,
    ),
    ("path_remove_directory", &[("fd", I32), ("path", S)], true),
    (
        "path_rename",
        &[
            ("fd", I32),
            ("old_path", S),
            ("new_fd", I32),
            ("new_path", S),
        ],
        true,
    ),
    (
        "path_symlink",
        &[("old_path", S), ("fd", I32), ("new_path", S)],
        true,
    ),
    ("path_unlink_file", &[("fd", I32), ("path", S)], true),
    (
        "poll_oneoff",
        &[
            ("in", I32),
            ("out", I32),
            ("nsubscriptions", I32),
            ("nevents", I32),
        ],
        true,
    ),
    ("proc_exit", &[("rval", I32)], false),
    ("proc_raise", &[("sig", I32)], true),
    ("sched_yield", &[], true),
    ("random_get", &[("buf", I32), ("buf_len", I32)], true),
    (
        "sock_accept",
        &[("fd", I32), ("flags", I32), ("ro_fd", I32)],
        true,
    ),
    (
        "sock_recv",
        &[
            ("fd", I32),
            ("ri_data", I32),
            ("ri_data_len", I32),
            ("ri_flags", I32),
            ("ro_datalen", I32),
            ("ro_flags", I32),
        ],
        true,
    ),
    (
        "sock_send",
        &[
            ("fd", I32),
            ("si_data", I32),
            ("si_data_len", I32),
            ("si_flags", I32),
            ("so_datalen", I32),
        ],
        true,
    ),
    ("sock_shutdown", &[("fd", I32), ("how", I32)], true),
];

/// Names of every catalogue function, in witx order.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|(name, _, _)| *name)
}

/// The event for catalogue function `name`, named `name`.
pub fn function(name: &str) -> Option<Event> {
    let (field, params, errno) = CATALOGUE.iter().find(|(n, _, _)| *n == name)?;
    Some(Event {
        name: field.to_string(),
        module: MODULE.to_string(),
        field: field.to_string(),
        params: params
            .iter()
            .map(|(n, ty)| Param {
                name: n.to_string(),
                ty: *ty,
            })
            .collect(),
        results: if *errno {
            vec![ValType::I32]
        } else {
            Vec::new()
        },
    })
}

/// What a catalogue parameter means beyond its Wasm type, for the monitor's resource model
/// ([`crate::descriptors`], [`crate::path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A descriptor number: guards may ask the descriptor table what it is.
    Descriptor,
    /// A path string resolved relative to the directory descriptor parameter `dir`.
    Path { dir: &'static str },
    /// Symbolic-link contents (`path_symlink`'s `old_path`): resolved relative to the
    /// directory of the resolved path parameter `link`, where the link is made.
    LinkTarget { link: &'static str },
    /// An out-pointer the host writes a `size`-byte value to, aligned to `align`, after
    /// the call's effect: checked before the call, because a bad one makes the import trap
    /// after it acted. `size_p0` is the size under WASI preview 0 where it differs.
    Out { size: u32, align: u32, size_p0: u32 },
}

const fn out(size: u32, align: u32) -> Role {
    Role::Out {
        size,
        align,
        size_p0: size,
    }
}

/// `filestat`: 64 bytes in preview 1, 56 in preview 0 (its `linkcount` is a `u32`).
const FILESTAT: Role = Role::Out {
    size: 64,
    align: 8,
    size_p0: 56,
};

/// `(function, parameter, role)`. Every descriptor parameter of the catalogue is listed
/// (`fd`, `old_fd`, `new_fd`, `to`), every path string, and every fixed-size out-pointer.
const ROLES: &[(&str, &str, Role)] = &[
    ("args_sizes_get", "argc", out(4, 4)),
    ("args_sizes_get", "argv_buf_size", out(4, 4)),
    ("environ_sizes_get", "environc", out(4, 4)),
    ("environ_sizes_get", "environ_buf_size", out(4, 4)),
    ("clock_res_get", "resolution", out(8, 8)),
    ("clock_time_get", "time", out(8, 8)),
    ("fd_advise", "fd", Role::Descriptor),
    ("fd_allocate", "fd", Role::Descriptor),
    ("fd_close", "fd", Role::Descriptor),
    ("fd_datasync", "fd", Role::Descriptor),
    ("fd_fdstat_get", "fd", Role::Descriptor),
    ("fd_fdstat_get", "stat", out(24, 8)),
    ("fd_fdstat_set_flags", "fd", Role::Descriptor),
    ("fd_fdstat_set_rights", "fd", Role::Descriptor),
    ("fd_filestat_get", "fd", Role::Descriptor),
    ("fd_filestat_get", "buf", FILESTAT),
    ("fd_filestat_set_size", "fd", Role::Descriptor),
    ("fd_filestat_set_times", "fd", Role::Descriptor),
    ("fd_pread", "fd", Role::Descriptor),
    ("fd_pread", "nread", out(4, 4)),
    ("fd_prestat_get", "fd", Role::Descriptor),
    ("fd_prestat_get", "buf", out(8, 4)),
    ("fd_prestat_dir_name", "fd", Role::Descriptor),
    ("fd_pwrite", "fd", Role::Descriptor),
    ("fd_pwrite", "nwritten", out(4, 4)),
    ("fd_read", "fd", Role::Descriptor),
    ("fd_read", "nread", out(4, 4)),
    ("fd_readdir", "fd", Role::Descriptor),
    ("fd_readdir", "bufused", out(4, 4)),
    ("fd_renumber", "fd", Role::Descriptor),
    ("fd_renumber", "to", Role::Descriptor),
    ("fd_seek", "fd", Role::Descriptor),
    ("fd_seek", "newoffset", out(8, 8)),
    ("fd_sync", "fd", Role::Descriptor),
    ("fd_tell", "fd", Role::Descriptor),
    ("fd_tell", "offset", out(8, 8)),
    ("fd_write", "fd", Role::Descriptor),
    ("fd_write", "nwritten", out(4, 4)),
    ("path_create_directory", "fd", Role::Descriptor),
    ("path_create_directory", "path", Role::Path { dir: "fd" }),
    ("path_filestat_get", "fd", Role::Descriptor),
    ("path_filestat_get", "path", Role::Path { dir: "fd" }),
    ("path_filestat_get", "buf", FILESTAT),
    ("path_filestat_set_times", "fd", Role::Descriptor),
    ("path_filestat_set_times", "path", Role::Path { dir: "fd" }),
    ("path_link", "old_fd", Role::Descriptor),
    ("path_link", "old_path", Role::Path { dir: "old_fd" }),
    ("path_link", "new_fd", Role::Descriptor),
    ("path_link", "new_path", Role::Path { dir: "new_fd" }),
    ("path_open", "fd", Role::Descriptor),
    ("path_open", "path", Role::Path { dir: "fd" }),
    ("path_open", "opened_fd", out(4, 4)),
    ("path_readlink", "fd", Role::Descriptor),
    ("path_readlink", "path", Role::Path { dir: "fd" }),
    ("path_readlink", "bufused", out(4, 4)),
    ("path_remove_directory", "fd", Role::Descriptor),
    ("path_remove_directory", "path", Role::Path { dir: "fd" }),
    ("path_rename", "fd", Role::Descriptor),
    ("path_rename", "old_path", Role::Path { dir: "fd" }),
    ("path_rename", "new_fd", Role::Descriptor),
    ("path_rename", "new_path", Role::Path { dir: "new_fd" }),
    (
        "path_symlink",
        "old_path",
        Role::LinkTarget { link: "new_path" },
    ),
    ("path_symlink", "fd", Role::Descriptor),
    ("path_symlink", "new_path", Role::Path { dir: "fd" }),
    ("path_unlink_file", "fd", Role::Descriptor),
    ("path_unlink_file", "path", Role::Path { dir: "fd" }),
    ("poll_oneoff", "nevents", out(4, 4)),
    ("sock_accept", "fd", Role::Descriptor),
    ("sock_accept", "ro_fd", out(4, 4)),
    ("sock_recv", "fd", Role::Descriptor),
    ("sock_recv", "ro_datalen", out(4, 4)),
    ("sock_recv", "ro_flags", out(2, 2)),
    ("sock_send", "fd", Role::Descriptor),
    ("sock_send", "so_datalen", out(4, 4)),
    ("sock_shutdown", "fd", Role::Descriptor),
];

/// The role of parameter `param` of catalogue function `function`, if it has one.
pub fn role(function: &str, param: &str) -> Option<Role> {
    ROLES
        .iter()
        .find(|(f, p, _)| *f == function && *p == param)
        .map(|(_, _, r)| *r)
}

/// The role of parameter `param` of import `module.field`: the WASI preview 1 (or 0)
/// catalogue's, or for a WASI 0.2 call that hands out streams behind `retptr`, that
/// pointer's out-pointer role ([`crate::handles::retptr_role`]).
pub fn event_role(module: &str, field: &str, param: &str) -> Option<Role> {
    if is_wasi_module(module) {
        return role(field, param);
    }
    if param == "retptr" {
        return crate::handles::retptr_role(module, field).or_else(|| {
            use crate::descriptors::Effect;
            // `result<descriptor, error-code>` and `list<...>`: 8 bytes, aligned to 4.
            let e = Effect::of_import(module, field);
            matches!(e, Some(Effect::OpenAt | Effect::Preopens)).then_some(out(8, 4))
        });
    }
    component_role(module, field, param)
}

/// The WIT resource a WASI 0.2 file-system descriptor handle is of.
pub const DESCRIPTOR_RESOURCE: &str = "wasi:filesystem/types.descriptor";

/// The role of parameter `param` of WASI 0.2 function `module.field`: a `descriptor`
/// handle is a [`Role::Descriptor`], and the path strings of `wasi:filesystem/types` are
/// resolved as preview 1's are: `path` and `old_path` against `self`, `new_path` against
/// `new-descriptor` where the call has one (`link-at`, `rename-at`) and `self` otherwise;
/// `symlink-at`'s `old_path` is the link's contents ([`Role::LinkTarget`]).
fn component_role(module: &str, field: &str, param: &str) -> Option<Role> {
    let f = crate::wit::find(module, field)?;
    if f.handle_params
        .iter()
        .any(|(p, r)| p == param && r == DESCRIPTOR_RESOURCE)
    {
        return Some(Role::Descriptor);
    }
    if f.interface != "wasi:filesystem/types" {
        return None;
    }
    let has = |name: &str| f.event.params.iter().any(|p| p.name == name);
    Some(match param {
        "path" => Role::Path { dir: "self" },
        "old_path" if field == "[method]descriptor.symlink-at" => {
            Role::LinkTarget { link: "new_path" }
        }
        "old_path" => Role::Path { dir: "self" },
        "new_path" if has("new_descriptor") => Role::Path {
            dir: "new_descriptor",
        },
        "new_path" => Role::Path { dir: "self" },
        _ => return None,
    })
    .filter(|_| has(param))
}

/// The roles of `function`'s parameters, in parameter order.
pub fn roles(function: &str) -> impl Iterator<Item = (&'static str, Role)> + '_ {
    ROLES
        .iter()
        .filter(move |(f, _, _)| *f == function)
        .map(|(_, p, r)| (*p, *r))
}

/// The import module of WASI preview 0, which the wasmtime CLI links by default.
pub const PREVIEW0_MODULE: &str = "wasi_unstable";

/// Whether `module` is WASI's module name, in preview 1 or preview 0 spelling.
pub fn is_wasi_module(module: &str) -> bool {
    module == MODULE || module == PREVIEW0_MODULE
}

/// Whether `wasi_unstable.field` is the same event as `wasi_snapshot_preview1.field`.
///
/// Checked against the two witx files (wasmtime-wasi 48's `witx/p0` and `witx/p1`): every
/// preview 0 function has the preview 1 signature, parameter for parameter; preview 1
/// added `sock_accept`. What differs is inside the types: the `whence` enumeration is
/// ordered `cur, end, set` in preview 0 (`set, cur, end` in preview 1), so a guard on
/// `fd_seek`'s `whence` would mean something else ([`preview0_meaning_differs`]), and
/// `filestat` is 8 bytes shorter ([`Role::Out::size_p0`]).
pub fn in_preview0(field: &str) -> bool {
    field != "sock_accept" && function(field).is_some()
}

/// Why a guard on parameter `param` of `wasi_unstable.field` would not mean what it says
/// under preview 1's names, if it would not.
pub fn preview0_meaning_differs(field: &str, param: &str) -> Option<&'static str> {
    match (field, param) {
        ("fd_seek", "whence") => Some(
            "WASI preview 0 numbers `whence` differently (cur = 0, end = 1, set = 2), so WHENCE_* constants do not apply",
        ),
        _ => None,
    }
}

/// witx `errno` cases in value order (`ERRNO_SUCCESS` = 0).
const ERRNO: &[&str] = &[
    "SUCCESS",
    "2BIG",
    "ACCES",
    "ADDRINUSE",
    "ADDRNOTAVAIL",
    "AFNOSUPPORT",
    "AGAIN",
    "ALREADY",
    "BADF",
    "BADMSG",
    "BUSY",
    "CANCELED",
    "CHILD",
    "CONNABORTED",
    "CONNREFUSED",
    "CONNRESET",
    "DEADLK",
    "DESTADDRREQ",
    "DOM",
    "DQUOT",
    "EXIST",
    "FAULT",
    "FBIG",
    "HOSTUNREACH",
    "IDRM",
    "ILSEQ",
    "INPROGRESS",
    "INTR",
    "INVAL",
    "IO",
    "ISCONN",
    "ISDIR",
    "LOOP",
    "MFILE",
    "MLINK",
    "MSGSIZE",
    "MULTIHOP",
    "NAMETOOLONG",
    "NETDOWN",
    "NETRESET",
    "NETUNREACH",
    "NFILE",
    "NOBUFS",
    "NODEV",
    "NOENT",
    "NOEXEC",
    "NOLCK",
    "NOLINK",
    "NOMEM",
    "NOMSG",
    "NOPROTOOPT",
    "NOSPC",
    "NOSYS",
    "NOTCONN",
    "NOTDIR",
    "NOTEMPTY",
    "NOTRECOVERABLE",
    "NOTSOCK",
    "NOTSUP",
    "NOTTY",
    "NXIO",
    "OVERFLOW",
    "OWNERDEAD",
    "PERM",
    "PIPE",
    "PROTO",
    "PROTONOSUPPORT",
    "PROTOTYPE",
    "RANGE",
    "ROFS",
    "SPIPE",
    "SRCH",
    "STALE",
    "TIMEDOUT",
    "TXTBSY",
    "XDEV",
    "NOTCAPABLE",
];

/// witx `rights` flags in bit order (`RIGHTS_FD_DATASYNC` = 1 << 0).
const RIGHTS: &[&str] = &[
    "FD_DATASYNC",
    "FD_READ",
    "FD_SEEK",
    "FD_FDSTAT_SET_FLAGS",
    "FD_SYNC",
    "FD_TELL",
    "FD_WRITE",
    "FD_ADVISE",
    "FD_ALLOCATE",
    "PATH_CREATE_DIRECTORY",
    "PATH_CREATE_FILE",
    "PATH_LINK_SOURCE",
    "PATH_LINK_TARGET",
    "PATH_OPEN",
    "FD_READDIR",
    "PATH_READLINK",
    "PATH_RENAME_SOURCE",
    "PATH_RENAME_TARGET",
    "PATH_FILESTAT_GET",
    "PATH_FILESTAT_SET_SIZE",
    "PATH_FILESTAT_SET_TIMES",
    "FD_FILESTAT_GET",
    "FD_FILESTAT_SET_SIZE",
    "FD_FILESTAT_SET_TIMES",
    "PATH_SYMLINK",
    "PATH_REMOVE_DIRECTORY",
    "PATH_UNLINK_FILE",
    "POLL_FD_READWRITE",
    "SOCK_SHUTDOWN",
    "SOCK_ACCEPT",
];

const OFLAGS: &[&str] = &["CREAT", "DIRECTORY", "EXCL", "TRUNC"];
const FDFLAGS: &[&str] = &["APPEND", "DSYNC", "NONBLOCK", "RSYNC", "SYNC"];
const LOOKUPFLAGS: &[&str] = &["SYMLINK_FOLLOW"];
const FSTFLAGS: &[&str] = &["ATIM", "ATIM_NOW", "MTIM", "MTIM_NOW"];
const CLOCKID: &[&str] = &[
    "REALTIME",
    "MONOTONIC",
    "PROCESS_CPUTIME_ID",
    "THREAD_CPUTIME_ID",
];
const WHENCE: &[&str] = &["SET", "CUR", "END"];

/// How a group's values are assigned.
#[derive(Clone, Copy)]
enum Kind {
    /// Enumeration: the i-th case has value i.
    Enum,
    /// Flags: the i-th case has value 1 << i.
    Flags,
}

const GROUPS: &[(&str, &[&str], Kind)] = &[
    ("ERRNO", ERRNO, Kind::Enum),
    ("RIGHTS", RIGHTS, Kind::Flags),
    ("OFLAGS", OFLAGS, Kind::Flags),
    ("FDFLAGS", FDFLAGS, Kind::Flags),
    ("LOOKUPFLAGS", LOOKUPFLAGS, Kind::Flags),
    ("FSTFLAGS", FSTFLAGS, Kind::Flags),
    ("CLOCKID", CLOCKID, Kind::Enum),
    ("WHENCE", WHENCE, Kind::Enum),
];

/// Every built-in constant as `(name, value)`, e.g. `("ERRNO_ACCES", 2)`: preview 1's
/// grouped by witx type in the order of [`constant_groups`], then WASI 0.2's by name.
pub fn constants() -> impl Iterator<Item = (String, i64)> {
    preview1_constants().chain(crate::wit::constants().map(|(n, v)| (n.to_string(), v)))
}

fn preview1_constants() -> impl Iterator<Item = (String, i64)> {
    GROUPS.iter().flat_map(|(prefix, cases, kind)| {
        cases.iter().enumerate().map(move |(i, case)| {
            let value = match kind {
                Kind::Enum => i as i64,
                Kind::Flags => 1i64 << i,
            };
            (format!("{prefix}_{case}"), value)
        })
    })
}

/// The prefixes of the constant groups (`ERRNO`, `RIGHTS`, ...), for documentation.
pub fn constant_groups() -> impl Iterator<Item = &'static str> {
    GROUPS.iter().map(|(p, _, _)| *p)
}

/// The value of built-in constant `name`: a WASI preview 1 constant, else one of the
/// WASI 0.2 catalogue ([`crate::wit::constant`]).
pub fn constant(name: &str) -> Option<i64> {
    preview1_constant(name).or_else(|| crate::wit::constant(name))
}

fn preview1_constant(name: &str) -> Option<i64> {
    let (prefix, case) = name.split_once('_')?;
    let (_, cases, kind) = GROUPS.iter().find(|(p, _, _)| *p == prefix)?;
    let i = cases.iter().position(|c| *c == case)?;
    Some(match kind {
        Kind::Enum => i as i64,
        Kind::Flags => 1i64 << i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_every_preview1_function() {
        assert_eq!(function_names().count(), 46);
    }

    #[test]
    fn constants_have_witx_values() {
        assert_eq!(constant("ERRNO_ACCES"), Some(2));
        assert_eq!(constant("ERRNO_BADF"), Some(8));
        assert_eq!(constant("ERRNO_NOTCAPABLE"), Some(76));
        assert_eq!(constant("OFLAGS_TRUNC"), Some(8));
        assert_eq!(constant("RIGHTS_FD_READ"), Some(2));
        assert_eq!(constant("RIGHTS_FD_WRITE"), Some(64));
        assert_eq!(constant("RIGHTS_SOCK_ACCEPT"), Some(1 << 29));
        assert_eq!(constant("LOOKUPFLAGS_SYMLINK_FOLLOW"), Some(1));
        assert_eq!(constant("FDFLAGS_SYNC"), Some(16));
        assert_eq!(constant("ERRNO_NOPE"), None);
    }

    #[test]
    fn path_open_flattens_to_its_wasm_signature() {
        let e = function("path_open").unwrap();
        use ValType::*;
        assert_eq!(
            e.wasm_params(),
            vec![I32, I32, I32, I32, I32, I64, I64, I32, I32]
        );
        assert_eq!(e.results, vec![I32]);
    }

    #[test]
    fn every_role_names_a_parameter_of_its_function() {
        for (f, p, role) in ROLES {
            let e = function(f).unwrap_or_else(|| panic!("{f} is not in the catalogue"));
            assert!(e.params.iter().any(|x| x.name == *p), "{f} has no `{p}`");
            match role {
                Role::Path { dir } => assert_eq!(super::role(f, dir), Some(Role::Descriptor)),
                Role::LinkTarget { link } => {
                    assert!(matches!(super::role(f, link), Some(Role::Path { .. })))
                }
                Role::Out { .. } | Role::Descriptor => {}
            }
        }
    }

    #[test]
    fn every_string_parameter_of_the_catalogue_is_a_path() {
        for name in function_names() {
            for p in function(name).unwrap().params {
                if p.ty == ParamType::Str {
                    assert!(
                        matches!(
                            role(name, &p.name),
                            Some(Role::Path { .. } | Role::LinkTarget { .. })
                        ),
                        "{name}.{}",
                        p.name
                    );
                }
            }
        }
    }

    #[test]
    fn every_descriptor_parameter_has_the_descriptor_role() {
        for name in function_names() {
            for p in function(name).unwrap().params {
                if ["fd", "old_fd", "new_fd", "to"].contains(&p.name.as_str()) {
                    assert_eq!(
                        role(name, &p.name),
                        Some(Role::Descriptor),
                        "{name}.{}",
                        p.name
                    );
                }
            }
        }
    }

    #[test]
    fn preview0_has_every_function_but_sock_accept() {
        assert!(in_preview0("path_open"));
        assert!(!in_preview0("sock_accept"));
        assert!(!in_preview0("no_such_function"));
        assert!(preview0_meaning_differs("fd_seek", "whence").is_some());
        assert!(preview0_meaning_differs("fd_seek", "offset").is_none());
    }

    #[test]
    fn proc_exit_has_no_result() {
        assert!(function("proc_exit").unwrap().results.is_empty());
    }
}
