//! The monitor's own table of the module's descriptors: what each descriptor number is.
//!
//! A guard on a raw descriptor number is easy to fool: `fd_renumber` moves a file onto 1,
//! `fd_close` frees the number of a preopen and the next `path_open` is handed it again.
//! The monitor therefore keeps its own table, filled from what the host says and from the
//! calls that change descriptors, and guards ask it what a descriptor *is*: its
//! [`Kind`], its resolved guest path, whether it may write. This module is the one
//! definition of how the table changes; the woven monitor implements the same rules in
//! its private memory and is tested against it.
//!
//! # The table (normative)
//!
//! * **At start** (before the first monitored call is decided) the table holds what the
//!   host reports for descriptors `0, 1, 2, ...` up to the first one at or above 3 that
//!   is not open ([`Descriptors::from_world`]): 0, 1 and 2 are [`Kind::Stdin`],
//!   [`Kind::Stdout`] and [`Kind::Stderr`] (whatever their file type), directories are
//!   [`Kind::Directory`] with the preopen's name as their path when that name is
//!   absolute, sockets [`Kind::Socket`], anything else [`Kind::File`].
//! * **Changes** happen at the end of the post phase of a call whose import returned
//!   `0` (success) ([`Descriptors::apply`]): `path_open` adds the descriptor it wrote to
//!   `opened_fd`, with the resolved path and the file type the host reports for it;
//!   `sock_accept` adds `ro_fd` as a socket; `fd_close` removes `fd`; `fd_renumber(fd,
//!   to)` moves `fd`'s entry to `to` (replacing what `to` was) unless they are equal.
//! * **A component's table** (WASI 0.2 `descriptor` handles) is a second table, numbered
//!   apart from preview 1's. It starts **empty** (no scan: a component holds no
//!   descriptor before it asks). At the end of the post phase `get-directories` adds each
//!   `(handle, name)` of the list behind `retptr` as a directory
//!   ([`preopened_directory`]); `open-at` adds the handle behind `retptr` when the
//!   result's discriminant is 0 (`ok`), with the resolved `path`, [`opened_at_kind`] and
//!   [`opens_at_for_writing`]; `[resource-drop]descriptor` removes `self`. These are
//!   every catalogue function that hands out a descriptor (tested against the WIT).
//! * **Limits.** Descriptor numbers below [`MAX_FDS`] are tracked. A call that would
//!   add one at or above it is a fault ([`crate::ir::RuntimeFault::DescriptorLimit`]),
//!   so no descriptor the module holds is ever missing from the table. A path longer than
//!   [`crate::path::MAX_PATH`] is recorded as unknown.
use std::collections::BTreeMap;

/// Descriptor numbers `0..MAX_FDS` are tracked; the woven monitor's table has this many
/// slots.
pub const MAX_FDS: u32 = 1024;

/// What a descriptor is. The numeric values are bit positions of
/// [`crate::ir::Expr::FdIs`] masks and the codes the woven table stores (zero-filled
/// memory is a table of closed descriptors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Not in the table: never opened, or closed.
    Closed = 0,
    Stdin = 1,
    Stdout = 2,
    Stderr = 3,
    File = 4,
    Directory = 5,
    Socket = 6,
}

impl Kind {
    /// Every kind, in code order.
    pub const ALL: [Kind; 7] = [
        Kind::Closed,
        Kind::Stdin,
        Kind::Stdout,
        Kind::Stderr,
        Kind::File,
        Kind::Directory,
        Kind::Socket,
    ];

    /// The name policies use (`fd is socket`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Stdin => "stdin",
            Kind::Stdout => "stdout",
            Kind::Stderr => "stderr",
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Socket => "socket",
            Kind::Closed => "closed",
        }
    }

    /// This kind's bit in a kind mask.
    pub fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The kinds named `name` in a guard: one kind, or `stdio` for the three streams.
    pub fn mask_named(name: &str) -> Option<u8> {
        if name == "stdio" {
            return Some(Kind::Stdin.bit() | Kind::Stdout.bit() | Kind::Stderr.bit());
        }
        Kind::ALL.iter().find(|k| k.name() == name).map(|k| k.bit())
    }

    /// The kind WASI's `filetype` (as `fd_fdstat_get` reports it) stands for, for a
    /// descriptor other than 0, 1 and 2.
    pub fn from_filetype(filetype: u8) -> Kind {
        match filetype {
            FILETYPE_DIRECTORY => Kind::Directory,
            FILETYPE_SOCKET_DGRAM | FILETYPE_SOCKET_STREAM => Kind::Socket,
            _ => Kind::File,
        }
    }

    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.get(code as usize).copied()
    }
}

/// witx `filetype` values the table distinguishes.
pub const FILETYPE_CHARACTER_DEVICE: u8 = 2;
pub const FILETYPE_REGULAR_FILE: u8 = 4;
pub const FILETYPE_DIRECTORY: u8 = 3;
pub const FILETYPE_SOCKET_DGRAM: u8 = 5;
pub const FILETYPE_SOCKET_STREAM: u8 = 6;

/// One open descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub kind: Kind,
    /// The resolved guest path of a file or directory; `None` when unknown (a preopen
    /// with a relative name, a path too long) and for streams and sockets.
    pub path: Option<Vec<u8>>,
    /// Whether the descriptor may write.
    pub writable: bool,
}

/// A descriptor the host reports at start, as [`Descriptors::from_world`] takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Initial {
    pub fd: u32,
    /// witx `filetype` from `fd_fdstat_get`; `None` when it failed with an error other
    /// than `EBADF` (open, but undescribed).
    pub filetype: Option<u8>,
    /// `fs_rights_base` from `fd_fdstat_get`.
    pub rights: u64,
    /// The preopen's name from `fd_prestat_dir_name`, for preopened directories.
    pub preopen: Option<Vec<u8>>,
}

impl Initial {
    /// Standard stream `fd` (0, 1 or 2) as a host reports it: a character device that
    /// reads (0) or writes.
    pub fn stream(fd: u32) -> Initial {
        Initial {
            fd,
            filetype: Some(FILETYPE_CHARACTER_DEVICE),
            rights: if fd == 0 { 2 } else { RIGHTS_FD_WRITE },
            preopen: None,
        }
    }
}

/// What a successful call handed out, as the host reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The descriptor number written to the out-pointer (`opened_fd`, `ro_fd`).
    pub fd: u32,
    /// witx `filetype` of the new descriptor (`fd_fdstat_get`).
    pub filetype: u8,
}

/// The WASI calls that change the table when they succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// `path_open`: adds `opened_fd`.
    Open,
    /// `sock_accept`: adds `ro_fd`, a socket.
    Accept,
    /// `fd_close`: removes `fd`.
    Close,
    /// `fd_renumber`: moves `fd` to `to`.
    Renumber,
    /// WASI 0.2 `[method]descriptor.open-at`: adds the descriptor behind `retptr`.
    OpenAt,
    /// WASI 0.2 `get-directories`: adds each preopened directory of the list behind
    /// `retptr`.
    Preopens,
    /// WASI 0.2 `[resource-drop]descriptor`: removes `self`.
    Drop,
}

impl Effect {
    /// The effect of catalogue function `field`, if it changes the table.
    pub fn of(field: &str) -> Option<Effect> {
        Some(match field {
            "path_open" => Effect::Open,
            "sock_accept" => Effect::Accept,
            "fd_close" => Effect::Close,
            "fd_renumber" => Effect::Renumber,
            _ => return None,
        })
    }

    /// The effect of import `module.field`: a WASI preview 1 (or 0) function's, or a
    /// WASI 0.2 one's ([`Effect::COMPONENT_FUNCTIONS`], at any compatible version).
    pub fn of_import(module: &str, field: &str) -> Option<Effect> {
        if crate::wasi::is_wasi_module(module) {
            return Effect::of(field);
        }
        let (interface, _) = crate::wit::split_interface(module)?;
        crate::wit::find(module, field)?;
        Effect::COMPONENT_FUNCTIONS
            .iter()
            .find(|(i, f, _)| *i == interface && *f == field)
            .map(|(_, _, e)| *e)
    }

    /// The catalogue functions with an effect: a tracking program monitors all of them.
    pub const FUNCTIONS: [&'static str; 4] =
        ["path_open", "sock_accept", "fd_close", "fd_renumber"];

    /// The WASI 0.2 functions with an effect (interface without version, function): a
    /// tracking program that names component imports monitors all of them. These are
    /// every way a component gets or loses a descriptor (tested against the WIT).
    pub const COMPONENT_FUNCTIONS: [(&'static str, &'static str, Effect); 3] = [
        (
            "wasi:filesystem/preopens",
            "get-directories",
            Effect::Preopens,
        ),
        (
            "wasi:filesystem/types",
            "[method]descriptor.open-at",
            Effect::OpenAt,
        ),
        (
            "wasi:filesystem/types",
            "[resource-drop]descriptor",
            Effect::Drop,
        ),
    ];
}

/// A preopened directory named `name` by the host: its path is the name normalised when
/// the name is absolute, and unknown otherwise (a relative name says nothing about where
/// the directory is).
pub fn preopened_directory(name: &[u8]) -> Descriptor {
    Descriptor {
        kind: Kind::Directory,
        path: name
            .starts_with(b"/")
            .then(|| crate::path::normalize(name).ok())
            .flatten(),
        writable: true,
    }
}

/// WIT `open-flags` and `descriptor-flags` bits `open-at` is judged by (tested against
/// the catalogue's constants).
pub const OPEN_FLAGS_CREATE: i64 = 1;
pub const OPEN_FLAGS_DIRECTORY: i64 = 2;
pub const OPEN_FLAGS_TRUNCATE: i64 = 8;
pub const DESCRIPTOR_FLAGS_WRITE: i64 = 2;
pub const DESCRIPTOR_FLAGS_MUTATE_DIRECTORY: i64 = 32;

/// Whether a descriptor `open-at` hands out may change the file system: it was asked to
/// write or to change the directory, or the call creates or truncates.
pub fn opens_at_for_writing(open_flags: i64, flags: i64) -> bool {
    flags & (DESCRIPTOR_FLAGS_WRITE | DESCRIPTOR_FLAGS_MUTATE_DIRECTORY) != 0
        || open_flags & (OPEN_FLAGS_CREATE | OPEN_FLAGS_TRUNCATE) != 0
}

/// The kind `open-at` gives its descriptor: a directory when it was opened as one
/// (`open-flags.directory`), else a file. Either is a file-system object; a directory
/// opened without the flag is a file to the table, which no policy can tell apart from
/// one by the calls it makes through it.
pub fn opened_at_kind(open_flags: i64) -> Kind {
    if open_flags & OPEN_FLAGS_DIRECTORY != 0 {
        Kind::Directory
    } else {
        Kind::File
    }
}

/// The change a call makes to the table, decided before its post phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Add { fd: u32, descriptor: Descriptor },
    Remove { fd: u32 },
    Renumber { from: u32, to: u32 },
}

/// The table. Descriptor numbers are `u32` as WASI's `fd` is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Descriptors {
    entries: BTreeMap<u32, Descriptor>,
}

const RIGHTS_FD_WRITE: u64 = 1 << 6;

impl Descriptors {
    /// An empty table (nothing open).
    pub fn new() -> Self {
        Descriptors::default()
    }

    /// Descriptors 0, 1 and 2 as the standard streams, nothing else: the world of a host
    /// that preopens nothing.
    pub fn standard_streams() -> Self {
        Descriptors::from_world(&[Initial::stream(0), Initial::stream(1), Initial::stream(2)])
            .expect("three streams fit the table")
    }

    /// The table at start, from what the host reports for each open descriptor (see the
    /// module docs). Entries at or above [`MAX_FDS`] are refused with their number. A
    /// descriptor from 3 on that the host would not describe is a file of unknown path
    /// that may write (when in doubt, the broader answer); a stream it would not describe
    /// is left closed.
    pub fn from_world(initial: &[Initial]) -> Result<Self, u32> {
        let mut t = Descriptors::new();
        for d in initial {
            if d.fd >= MAX_FDS {
                return Err(d.fd);
            }
            let Some(filetype) = d.filetype else {
                if d.fd >= 3 {
                    t.entries.insert(
                        d.fd,
                        Descriptor {
                            kind: Kind::File,
                            path: None,
                            writable: true,
                        },
                    );
                }
                continue;
            };
            let kind = match d.fd {
                0 => Kind::Stdin,
                1 => Kind::Stdout,
                2 => Kind::Stderr,
                _ => Kind::from_filetype(filetype),
            };
            let path = match (kind, &d.preopen) {
                (Kind::Directory, Some(name)) => preopened_directory(name).path,
                _ => None,
            };
            let writable = match kind {
                Kind::Stdin => false,
                Kind::Stdout | Kind::Stderr | Kind::Directory => true,
                _ => d.rights & RIGHTS_FD_WRITE != 0,
            };
            t.entries.insert(
                d.fd,
                Descriptor {
                    kind,
                    path,
                    writable,
                },
            );
        }
        Ok(t)
    }

    /// The entry for `fd`, if it is open.
    pub fn get(&self, fd: i64) -> Option<&Descriptor> {
        u32::try_from(fd).ok().and_then(|fd| self.entries.get(&fd))
    }

    /// `fd`'s kind; [`Kind::Closed`] when it is not open (any number, negative too).
    pub fn kind(&self, fd: i64) -> Kind {
        self.get(fd).map_or(Kind::Closed, |d| d.kind)
    }

    /// Applies one change. Adding at or above [`MAX_FDS`] is refused with the number.
    pub fn apply(&mut self, change: Change) -> Result<(), u32> {
        match change {
            Change::Add { fd, descriptor } => {
                if fd >= MAX_FDS {
                    return Err(fd);
                }
                self.entries.insert(fd, descriptor);
            }
            Change::Remove { fd } => {
                self.entries.remove(&fd);
            }
            Change::Renumber { from, to } => {
                if from != to {
                    if to >= MAX_FDS {
                        return Err(to);
                    }
                    match self.entries.remove(&from) {
                        Some(d) => {
                            self.entries.insert(to, d);
                        }
                        None => {
                            self.entries.remove(&to);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Open descriptors in number order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Descriptor)> {
        self.entries.iter().map(|(fd, d)| (*fd, d))
    }
}

/// The rights that make a descriptor one that may write: the ones wasi-libc and Rust's
/// standard library ask for exactly when a file is opened for writing (wasmtime itself
/// looks at `RIGHTS_FD_WRITE` only). `RIGHTS_FD_SYNC` is not among them: wasi-libc asks
/// for it on read-only opens too.
pub const WRITE_RIGHTS: i64 = (1 << 0) // FD_DATASYNC
    | (1 << 6) // FD_WRITE
    | (1 << 8) // FD_ALLOCATE
    | (1 << 22); // FD_FILESTAT_SET_SIZE

/// `OFLAGS_CREAT | OFLAGS_TRUNC`: wasmtime opens the file for writing when either is set,
/// whatever the rights say.
pub const WRITE_OFLAGS: i64 = 1 | 8;

/// Whether `path_open`'s flags give a descriptor that may write: one of [`WRITE_RIGHTS`],
/// `FDFLAGS_APPEND`, or one of [`WRITE_OFLAGS`].
pub fn opens_for_writing(oflags: i64, fs_rights_base: i64, fdflags: i64) -> bool {
    const FDFLAGS_APPEND: i64 = 1;
    fs_rights_base & WRITE_RIGHTS != 0
        || fdflags & FDFLAGS_APPEND != 0
        || oflags & WRITE_OFLAGS != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_function_that_hands_out_a_descriptor_has_an_effect() {
        let handing_out: std::collections::BTreeSet<(String, String)> = crate::wit::functions()
            .filter(|f| {
                f.hands_out
                    .iter()
                    .any(|r| r == crate::wasi::DESCRIPTOR_RESOURCE)
            })
            .map(|f| (f.interface.clone(), f.name.clone()))
            .collect();
        let effects: std::collections::BTreeSet<(String, String)> = Effect::COMPONENT_FUNCTIONS
            .iter()
            .filter(|(_, _, e)| *e != Effect::Drop)
            .map(|(i, f, _)| (i.to_string(), f.to_string()))
            .collect();
        assert_eq!(handing_out, effects);
    }

    #[test]
    fn open_at_and_get_directories_return_behind_an_8_byte_retptr() {
        for (interface, field, effect) in Effect::COMPONENT_FUNCTIONS {
            let module = format!("{interface}@0.2.0");
            let f = crate::wit::function(&module, field).unwrap();
            assert_eq!(Effect::of_import(&module, field), Some(effect));
            let retptr = crate::wasi::event_role(&module, field, "retptr");
            match effect {
                Effect::Drop => assert!(f.event.params.iter().all(|p| p.name != "retptr")),
                _ => assert!(
                    matches!(
                        retptr,
                        Some(crate::wasi::Role::Out {
                            size: 8,
                            align: 4,
                            ..
                        })
                    ),
                    "{field}: {retptr:?}"
                ),
            }
        }
        let open_at =
            crate::wit::function("wasi:filesystem/types@0.2.0", "[method]descriptor.open-at")
                .unwrap();
        assert_eq!(
            open_at.ok_handles,
            vec![(crate::wasi::DESCRIPTOR_RESOURCE.to_string(), 4)]
        );
    }

    #[test]
    fn the_flag_constants_are_the_catalogues() {
        let c = |n: &str| crate::wit::constant(n).unwrap_or_else(|| panic!("{n}"));
        assert_eq!(c("FILESYSTEM_OPEN_FLAGS_CREATE"), OPEN_FLAGS_CREATE);
        assert_eq!(c("FILESYSTEM_OPEN_FLAGS_DIRECTORY"), OPEN_FLAGS_DIRECTORY);
        assert_eq!(c("FILESYSTEM_OPEN_FLAGS_TRUNCATE"), OPEN_FLAGS_TRUNCATE);
        assert_eq!(
            c("FILESYSTEM_DESCRIPTOR_FLAGS_WRITE"),
            DESCRIPTOR_FLAGS_WRITE
        );
        assert_eq!(
            c("FILESYSTEM_DESCRIPTOR_FLAGS_MUTATE_DIRECTORY"),
            DESCRIPTOR_FLAGS_MUTATE_DIRECTORY
        );
    }

    #[test]
    fn a_descriptor_opened_to_write_or_create_may_write_and_one_opened_as_a_directory_is_one() {
        assert!(!opens_at_for_writing(0, 1));
        assert!(opens_at_for_writing(0, DESCRIPTOR_FLAGS_WRITE));
        assert!(opens_at_for_writing(0, DESCRIPTOR_FLAGS_MUTATE_DIRECTORY));
        assert!(opens_at_for_writing(OPEN_FLAGS_CREATE, 0));
        assert!(opens_at_for_writing(OPEN_FLAGS_TRUNCATE, 0));
        assert_eq!(opened_at_kind(OPEN_FLAGS_DIRECTORY), Kind::Directory);
        assert_eq!(opened_at_kind(OPEN_FLAGS_CREATE), Kind::File);
    }

    #[test]
    fn a_preopen_named_relatively_has_no_path() {
        assert_eq!(
            preopened_directory(b"/data//x/").path,
            Some(b"/data/x".to_vec())
        );
        assert_eq!(preopened_directory(b".").path, None);
        assert_eq!(preopened_directory(b"").path, None);
    }

    fn world() -> Descriptors {
        Descriptors::from_world(&[
            Initial {
                fd: 0,
                filetype: Some(2),
                rights: 2,
                preopen: None,
            },
            Initial {
                fd: 1,
                filetype: Some(2),
                rights: 64,
                preopen: None,
            },
            Initial {
                fd: 2,
                filetype: Some(2),
                rights: 64,
                preopen: None,
            },
            Initial {
                fd: 3,
                filetype: Some(FILETYPE_DIRECTORY),
                rights: 0,
                preopen: Some(b"/tmp/".to_vec()),
            },
            Initial {
                fd: 4,
                filetype: Some(FILETYPE_DIRECTORY),
                rights: 0,
                preopen: Some(b".".to_vec()),
            },
        ])
        .unwrap()
    }

    fn file(path: &str) -> Descriptor {
        Descriptor {
            kind: Kind::File,
            path: Some(path.as_bytes().to_vec()),
            writable: false,
        }
    }

    #[test]
    fn the_first_three_descriptors_are_the_standard_streams() {
        let t = world();
        assert_eq!(t.kind(0), Kind::Stdin);
        assert_eq!(t.kind(1), Kind::Stdout);
        assert_eq!(t.kind(2), Kind::Stderr);
        assert!(!t.get(0).unwrap().writable);
        assert!(t.get(2).unwrap().writable);
    }

    #[test]
    fn a_preopen_has_its_normalised_name_as_path() {
        let t = world();
        assert_eq!(t.get(3).unwrap().path.as_deref(), Some(&b"/tmp"[..]));
        assert_eq!(t.kind(3), Kind::Directory);
    }

    #[test]
    fn a_preopen_with_a_relative_name_has_no_known_path() {
        assert_eq!(world().get(4).unwrap().path, None);
    }

    #[test]
    fn a_descriptor_the_host_will_not_describe_is_a_writable_file_of_unknown_path() {
        let t = Descriptors::from_world(&[Initial {
            fd: 3,
            filetype: None,
            rights: 0,
            preopen: None,
        }])
        .unwrap();
        let d = t.get(3).unwrap();
        assert_eq!(
            (d.kind, d.path.as_deref(), d.writable),
            (Kind::File, None, true)
        );
    }

    #[test]
    fn numbers_never_opened_and_negative_numbers_are_closed() {
        let t = world();
        assert_eq!(t.kind(9), Kind::Closed);
        assert_eq!(t.kind(-1), Kind::Closed);
        assert_eq!(t.kind(1 << 40), Kind::Closed);
    }

    #[test]
    fn renumbering_a_file_onto_stdout_makes_1_that_file() {
        let mut t = world();
        t.apply(Change::Add {
            fd: 5,
            descriptor: file("/tmp/x"),
        })
        .unwrap();
        t.apply(Change::Renumber { from: 5, to: 1 }).unwrap();
        assert_eq!(t.kind(1), Kind::File);
        assert_eq!(t.kind(5), Kind::Closed);
    }

    #[test]
    fn renumbering_onto_itself_changes_nothing() {
        let mut t = world();
        t.apply(Change::Renumber { from: 3, to: 3 }).unwrap();
        assert_eq!(t, world());
    }

    #[test]
    fn a_closed_number_handed_out_again_is_what_was_opened_last() {
        let mut t = world();
        t.apply(Change::Remove { fd: 3 }).unwrap();
        assert_eq!(t.kind(3), Kind::Closed);
        t.apply(Change::Add {
            fd: 3,
            descriptor: Descriptor {
                kind: Kind::Directory,
                path: Some(b"/data".to_vec()),
                writable: true,
            },
        })
        .unwrap();
        assert_eq!(t.get(3).unwrap().path.as_deref(), Some(&b"/data"[..]));
    }

    #[test]
    fn descriptors_beyond_the_limit_are_refused() {
        let mut t = world();
        let add = |fd| Change::Add {
            fd,
            descriptor: file("/x"),
        };
        assert_eq!(t.apply(add(MAX_FDS)), Err(MAX_FDS));
        assert_eq!(t.apply(add(MAX_FDS - 1)), Ok(()));
        assert_eq!(
            t.apply(Change::Renumber {
                from: 3,
                to: MAX_FDS
            }),
            Err(MAX_FDS)
        );
    }

    #[test]
    fn kinds_by_name_include_the_stdio_group() {
        assert_eq!(Kind::mask_named("socket"), Some(Kind::Socket.bit()));
        assert_eq!(Kind::mask_named("stdio"), Some(0b1110));
        assert_eq!(Kind::mask_named("pipe"), None);
    }

    #[test]
    fn writing_rights_or_append_open_for_writing() {
        assert!(opens_for_writing(0, 1 << 6, 0));
        assert!(opens_for_writing(0, 0, 1));
        assert!(!opens_for_writing(0, 1 << 1, 0));
    }

    #[test]
    fn creating_or_truncating_opens_for_writing_whatever_the_rights() {
        assert!(opens_for_writing(1, 0, 0));
        assert!(opens_for_writing(8, 0, 0));
        assert!(!opens_for_writing(2 | 4, 0, 0));
    }
}
