//! The monitor's own table of a component's stream handles: what each one is.
//!
//! In a WASI 0.2 component, bytes leave and enter through `wasi:io/streams` handles:
//! an `output-stream` may be stdout, a file or a TCP connection, and the call that writes
//! to it (`[method]output-stream.write`) looks the same for all three. A guard like
//! `self is socket` therefore asks this table, which the monitor fills from the calls
//! that hand streams out, never from the handle's number.
//!
//! # The table (normative)
//!
//! * It starts **empty**: a component holds no stream before it asks for one.
//! * A **grant** ([`grants`]) is a catalogue function that hands out streams, and of
//!   which kind: `get-stdin`, `get-stdout`, `get-stderr` (the standard streams),
//!   `read-via-stream`, `write-via-stream`, `append-via-stream` (a file's),
//!   `finish-connect` and `accept` (a TCP connection's two streams). At the end of its
//!   post phase, each handle the host returned is recorded with the grant's kind: the
//!   flat result for the standard streams, and for the others the handles at their
//!   offsets behind `retptr` when the `result`'s discriminant (the byte at `retptr`) is
//!   0 (`ok`). Input and output streams are numbered apart ([`Stream`]).
//! * Handles at or above [`MAX_HANDLES`] are a fault
//!   ([`crate::ir::RuntimeFault::DescriptorLimit`]), so no stream the component holds is
//!   missing from the table. Any other handle reads as [`Kind::Closed`].
//! * A **drop** (`[resource-drop]input-stream`, `[resource-drop]output-stream`: the
//!   component's `canon resource.drop`, interposed like a lowering) forgets the handle
//!   at the end of its post phase. A stream can also leave the component unseen (moved
//!   into a call that takes ownership); its entry is then stale, and is only read by
//!   calls that trap (the handle no longer exists) until a grant hands the number out
//!   again and overwrites it.
//! * This is sound because every way a stream reaches the component is a grant: the
//!   catalogue's other functions hand out no stream (tested), and the weaver refuses a
//!   component whose monitor keeps this table when it imports an interface outside the
//!   catalogue or exports anything but `wasi:cli/run`, where streams could arrive unseen.
use std::collections::BTreeMap;

use crate::descriptors::Kind;
use crate::ir::Event;

/// Stream handles `0..MAX_HANDLES` of each direction are tracked; the woven table has
/// this many one-byte slots per direction.
pub const MAX_HANDLES: u32 = 1024;

/// The two stream resources of `wasi:io/streams`; their handles are numbered apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stream {
    Input = 0,
    Output = 1,
}

impl Stream {
    /// The stream resource named `resource` (`wasi:io/streams.output-stream`).
    pub fn of_resource(resource: &str) -> Option<Stream> {
        match resource {
            "wasi:io/streams.input-stream" => Some(Stream::Input),
            "wasi:io/streams.output-stream" => Some(Stream::Output),
            _ => None,
        }
    }
}

/// Where a grant's handle is once the import returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The import's flat result.
    Result,
    /// The `i32` at this offset behind `retptr`, when the byte at `retptr` is 0 (`ok`).
    Ok(u32),
}

/// One stream a grant hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub stream: Stream,
    pub kind: Kind,
    pub at: Place,
}

const fn grant(stream: Stream, kind: Kind, at: Place) -> Grant {
    Grant { stream, kind, at }
}

/// Every grant: interface (without version), function, the streams it hands out. The
/// offsets are the canonical ABI's layout of the result types (tested against the WIT).
pub const GRANTS: &[(&str, &str, &[Grant])] = &[
    (
        "wasi:cli/stdin",
        "get-stdin",
        &[grant(Stream::Input, Kind::Stdin, Place::Result)],
    ),
    (
        "wasi:cli/stdout",
        "get-stdout",
        &[grant(Stream::Output, Kind::Stdout, Place::Result)],
    ),
    (
        "wasi:cli/stderr",
        "get-stderr",
        &[grant(Stream::Output, Kind::Stderr, Place::Result)],
    ),
    (
        "wasi:filesystem/types",
        "[method]descriptor.read-via-stream",
        &[grant(Stream::Input, Kind::File, Place::Ok(4))],
    ),
    (
        "wasi:filesystem/types",
        "[method]descriptor.write-via-stream",
        &[grant(Stream::Output, Kind::File, Place::Ok(4))],
    ),
    (
        "wasi:filesystem/types",
        "[method]descriptor.append-via-stream",
        &[grant(Stream::Output, Kind::File, Place::Ok(4))],
    ),
    (
        "wasi:sockets/tcp",
        "[method]tcp-socket.finish-connect",
        &[
            grant(Stream::Input, Kind::Socket, Place::Ok(4)),
            grant(Stream::Output, Kind::Socket, Place::Ok(8)),
        ],
    ),
    (
        "wasi:sockets/tcp",
        "[method]tcp-socket.accept",
        &[
            grant(Stream::Input, Kind::Socket, Place::Ok(8)),
            grant(Stream::Output, Kind::Socket, Place::Ok(12)),
        ],
    ),
];

/// The streams a call of `event` hands out (none when it is no grant).
pub fn grants(event: &Event) -> &'static [Grant] {
    grants_of(&event.module, &event.field)
}

/// The streams a call of import `module.field` hands out (none when it is no grant).
pub fn grants_of(module: &str, field: &str) -> &'static [Grant] {
    let Some((interface, _)) = crate::wit::split_interface(module) else {
        return &[];
    };
    if crate::wit::find(module, field).is_none() {
        return &[];
    }
    GRANTS
        .iter()
        .find(|(i, f, _)| *i == interface && *f == field)
        .map_or(&[], |(_, _, g)| g)
}

/// The out-pointer role of a grant's `retptr`: the host writes the result there after
/// the call acted, and traps when it cannot, so a bad one is denied before the call as
/// WASI preview 1's out-pointers are. Its size covers the discriminant and the handles.
pub fn retptr_role(module: &str, field: &str) -> Option<crate::wasi::Role> {
    let end = grants_of(module, field)
        .iter()
        .filter_map(|g| match g.at {
            Place::Ok(off) => Some(off + 4),
            Place::Result => None,
        })
        .max()?;
    Some(crate::wasi::Role::Out {
        size: end,
        align: 4,
        size_p0: end,
    })
}

/// Whether a call of `event` answers behind `retptr` with handles it hands out: a stream
/// grant behind `retptr`, `open-at` or `get-directories` (a trace's `opens N`).
pub fn hands_out_behind_retptr(event: &Event) -> bool {
    use crate::descriptors::Effect;
    grants(event).iter().any(|g| matches!(g.at, Place::Ok(_)))
        || matches!(
            Effect::of_import(&event.module, &event.field),
            Some(Effect::OpenAt | Effect::Preopens)
        )
}

/// The stream a call of `event` drops (`[resource-drop]input-stream` or
/// `[resource-drop]output-stream` of `wasi:io/streams`): its entry is forgotten.
pub fn drops(event: &Event) -> Option<Stream> {
    let (interface, _) = crate::wit::split_interface(&event.module)?;
    if interface != "wasi:io/streams" || crate::wit::find(&event.module, &event.field).is_none() {
        return None;
    }
    match event.field.as_str() {
        "[resource-drop]input-stream" => Some(Stream::Input),
        "[resource-drop]output-stream" => Some(Stream::Output),
        _ => None,
    }
}

/// The stream parameter `param` of `event` is a handle of, if it is one.
pub fn stream_param(event: &Event, param: &str) -> Option<Stream> {
    let f = crate::wit::find(&event.module, &event.field)?;
    let (_, resource) = f.handle_params.iter().find(|(p, _)| p == param)?;
    Stream::of_resource(resource)
}

/// The events a tracking program that names component imports monitors: every grant at
/// the catalogue's version, the two stream drops, and the calls that give or take a
/// file-system descriptor ([`crate::descriptors::Effect::COMPONENT_FUNCTIONS`]), named
/// (for traces and reports) by the function in snake case: `get_stdout`,
/// `read_via_stream`, `finish_connect`, `drop_output_stream`, `get_directories`,
/// `open_at`, `drop_descriptor`.
pub fn tracked_events() -> impl Iterator<Item = Event> {
    const DROPS: [(&str, &str); 2] = [
        ("wasi:io/streams", "[resource-drop]input-stream"),
        ("wasi:io/streams", "[resource-drop]output-stream"),
    ];
    let effects = crate::descriptors::Effect::COMPONENT_FUNCTIONS.iter();
    GRANTS
        .iter()
        .map(|(i, f, _)| (*i, *f))
        .chain(DROPS)
        .chain(effects.map(|(i, f, _)| (*i, *f)))
        .map(|(interface, field)| {
            let mut event =
                crate::wit::function(&format!("{interface}@{}", crate::wit::VERSION), field)
                    .expect("grants are catalogue functions")
                    .event;
            event.name = match field.strip_prefix("[resource-drop]") {
                Some(resource) => format!("drop_{}", resource.replace('-', "_")),
                None => field
                    .rsplit(['.', ']'])
                    .next()
                    .unwrap_or(field)
                    .replace('-', "_"),
            };
            event
        })
}

/// The table: a kind per handle of each direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handles {
    entries: BTreeMap<(Stream, u32), Kind>,
}

impl Handles {
    /// What handle `h` of `stream` is; [`Kind::Closed`] when no grant handed it out (any
    /// number, negative too).
    pub fn kind(&self, stream: Stream, h: i64) -> Kind {
        u32::try_from(h)
            .ok()
            .and_then(|h| self.entries.get(&(stream, h)))
            .copied()
            .unwrap_or(Kind::Closed)
    }

    /// Records handle `h` of `stream` as `kind`, overwriting what the number was;
    /// refused at or above [`MAX_HANDLES`] with the number.
    pub fn grant(&mut self, stream: Stream, h: u32, kind: Kind) -> Result<(), u32> {
        if h >= MAX_HANDLES {
            return Err(h);
        }
        self.entries.insert((stream, h), kind);
        Ok(())
    }

    /// Forgets handle `h` of `stream` (dropped): it reads as [`Kind::Closed`] again.
    pub fn forget(&mut self, stream: Stream, h: i64) {
        if let Ok(h) = u32::try_from(h) {
            self.entries.remove(&(stream, h));
        }
    }

    /// Recorded handles in order.
    pub fn iter(&self) -> impl Iterator<Item = ((Stream, u32), Kind)> + '_ {
        self.entries.iter().map(|(k, v)| (*k, *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_catalogue_function_that_hands_out_a_stream_is_a_grant() {
        let handing_out: BTreeSet<(String, String)> = crate::wit::functions()
            .filter(|f| f.hands_out.iter().any(|r| Stream::of_resource(r).is_some()))
            .map(|f| (f.interface.clone(), f.name.clone()))
            .collect();
        let grants: BTreeSet<(String, String)> = GRANTS
            .iter()
            .map(|(i, f, _)| (i.to_string(), f.to_string()))
            .collect();
        assert_eq!(handing_out, grants);
    }

    #[test]
    fn each_grant_hands_out_the_streams_its_result_holds_in_order() {
        for (interface, field, grants) in GRANTS {
            let f = crate::wit::function(&format!("{interface}@0.2.0"), field).unwrap();
            let streams: Vec<Stream> = f
                .hands_out
                .iter()
                .filter_map(|r| Stream::of_resource(r))
                .collect();
            let granted: Vec<Stream> = grants.iter().map(|g| g.stream).collect();
            assert_eq!(streams, granted, "{interface}.{field}");
            let flat = f.event.results.len() == 1;
            assert_eq!(
                grants.iter().all(|g| g.at == Place::Result),
                flat,
                "{interface}.{field}: a flat result or behind retptr"
            );
            if !flat {
                let offsets: Vec<(Stream, u32)> = f
                    .ok_handles
                    .iter()
                    .filter_map(|(r, off)| Some((Stream::of_resource(r)?, *off)))
                    .collect();
                let granted: Vec<(Stream, u32)> = grants
                    .iter()
                    .map(|g| match g.at {
                        Place::Ok(off) => (g.stream, off),
                        Place::Result => unreachable!(),
                    })
                    .collect();
                assert_eq!(offsets, granted, "{interface}.{field}: offsets");
            }
        }
    }

    #[test]
    fn the_self_of_a_stream_method_and_the_source_of_a_splice_are_stream_parameters() {
        let ev = |f: &str| {
            crate::wit::function("wasi:io/streams@0.2.0", f)
                .unwrap()
                .event
        };
        let splice = ev("[method]output-stream.splice");
        assert_eq!(stream_param(&splice, "self"), Some(Stream::Output));
        assert_eq!(stream_param(&splice, "src"), Some(Stream::Input));
        assert_eq!(stream_param(&splice, "len"), None);
        assert_eq!(
            stream_param(&ev("[method]input-stream.read"), "self"),
            Some(Stream::Input)
        );
    }

    #[test]
    fn calls_answering_behind_retptr_with_handles_are_grants_open_at_and_get_directories() {
        let ev = |module: &str, f: &str| crate::wit::function(module, f).unwrap().event;
        let fs = "wasi:filesystem/types@0.2.0";
        assert!(hands_out_behind_retptr(&ev(
            fs,
            "[method]descriptor.read-via-stream"
        )));
        assert!(hands_out_behind_retptr(&ev(
            fs,
            "[method]descriptor.open-at"
        )));
        assert!(hands_out_behind_retptr(&ev(
            "wasi:filesystem/preopens@0.2.0",
            "get-directories"
        )));
        // A flat result, and a result without handles.
        assert!(!hands_out_behind_retptr(&ev(
            "wasi:cli/stdout@0.2.0",
            "get-stdout"
        )));
        assert!(!hands_out_behind_retptr(&ev(
            fs,
            "[method]descriptor.stat-at"
        )));
    }

    #[test]
    fn a_handle_no_grant_handed_out_is_closed_and_numbers_are_per_direction() {
        let mut t = Handles::default();
        t.grant(Stream::Output, 3, Kind::Socket).unwrap();
        assert_eq!(t.kind(Stream::Output, 3), Kind::Socket);
        assert_eq!(t.kind(Stream::Input, 3), Kind::Closed);
        assert_eq!(t.kind(Stream::Output, -1), Kind::Closed);
    }

    #[test]
    fn a_number_handed_out_again_is_what_the_last_grant_said() {
        let mut t = Handles::default();
        t.grant(Stream::Output, 2, Kind::Stdout).unwrap();
        t.grant(Stream::Output, 2, Kind::Socket).unwrap();
        assert_eq!(t.kind(Stream::Output, 2), Kind::Socket);
    }

    #[test]
    fn handles_beyond_the_limit_are_refused() {
        let mut t = Handles::default();
        assert_eq!(
            t.grant(Stream::Input, MAX_HANDLES, Kind::File),
            Err(MAX_HANDLES)
        );
        assert_eq!(t.grant(Stream::Input, MAX_HANDLES - 1, Kind::File), Ok(()));
    }
}
