//! The fake WASI host monitors are run against on a trace, one model for the certifier's
//! behaviour check and `monitor-rt`'s wasmtime judges.
//!
//! It answers the monitor's own WASI calls, which a trace does not list: the descriptor
//! scan ([`SCAN_FUNCTIONS`]) from the trace's [`World`], and lines written to descriptor
//! 2 (audits, denies), which it keeps in [`FakeHost::lines`]. It follows the host's
//! descriptors through the trace's successful calls ([`FakeHost::succeeded`]) and writes
//! the descriptor a call hands out into its out-pointer. It reaches the guest's memory
//! only through [`Memory`], so it serves an interpreter's byte slices and wasmtime alike.
use std::collections::BTreeMap;

use crate::descriptors::{Effect, FILETYPE_DIRECTORY};
use crate::handles::Place;
use crate::interp::{TraceEvent, World};
use crate::ir::Event;
use crate::wasi;

/// The WASI functions a monitor calls to learn the host's descriptors at start.
pub const SCAN_FUNCTIONS: [&str; 3] = ["fd_fdstat_get", "fd_prestat_get", "fd_prestat_dir_name"];

const ERRNO_BADF: i64 = 8;
const ERRNO_FAULT: i64 = 21;

/// The memory the host reads and writes (the guest's `memory`).
pub trait Memory {
    /// `len` bytes at `at`, if they are in bounds.
    fn read(&mut self, at: u32, len: u32) -> Option<Vec<u8>>;
    /// Writes `bytes` at `at`; false when out of bounds.
    fn write(&mut self, at: u32, bytes: &[u8]) -> bool;
}

/// The world's descriptors, followed through the calls that ran, and what the monitor
/// wrote to descriptor 2.
#[derive(Debug)]
pub struct FakeHost {
    /// fd -> (file type, preopen name).
    open: BTreeMap<u32, (u8, Option<Vec<u8>>)>,
    /// Bytes written to descriptor 2, for the caller to take.
    pub lines: Vec<u8>,
    /// Take at most this many bytes per `fd_write` to 2: a host may write short, and the
    /// monitor must go on until its line is whole.
    pub write_limit: u32,
    /// The world's preopens, which a component's `get-directories` returns.
    preopens: Vec<Vec<u8>>,
    /// Where in the guest's memory `get-directories` writes its list and the names (a
    /// real host asks the guest's `realloc`); without it the list is empty.
    pub list_area: Option<u32>,
}

impl FakeHost {
    pub fn new(world: &World) -> FakeHost {
        FakeHost {
            open: world
                .initial()
                .into_iter()
                .map(|d| (d.fd, (d.filetype.unwrap_or(0), d.preopen)))
                .collect(),
            lines: Vec::new(),
            write_limit: u32::MAX,
            preopens: world.preopens.clone(),
            list_area: None,
        }
    }

    /// Answers the monitor's own call of WASI function `field` with Wasm arguments `args`
    /// (bits, an `i32` zero-extended): its errno, or `None` when it is not one of them
    /// (or an `fd_write` whose vectors are out of bounds).
    pub fn internal(&mut self, field: &str, args: &[u64], mem: &mut dyn Memory) -> Option<i64> {
        let a = |i: usize| args.get(i).copied().unwrap_or(0) as u32;
        let written = |ok: bool| if ok { 0 } else { ERRNO_FAULT };
        Some(match field {
            "fd_fdstat_get" => match self.open.get(&a(0)) {
                Some(&(filetype, _)) => {
                    let rights: u64 = match (a(0), filetype) {
                        (0, _) => 2,
                        (1 | 2, _) => 1 << 6,
                        (_, FILETYPE_DIRECTORY) => u64::MAX >> 35,
                        _ => (1 << 1) | (1 << 6),
                    };
                    let mut stat = [0u8; 24];
                    stat[0] = filetype;
                    stat[8..16].copy_from_slice(&rights.to_le_bytes());
                    stat[16..24].copy_from_slice(&rights.to_le_bytes());
                    written(mem.write(a(1), &stat))
                }
                None => ERRNO_BADF,
            },
            "fd_prestat_get" => match self.open.get(&a(0)) {
                Some((_, Some(name))) => {
                    let mut pre = [0u8; 8];
                    pre[4..8].copy_from_slice(&(name.len() as u32).to_le_bytes());
                    written(mem.write(a(1), &pre))
                }
                _ => ERRNO_BADF,
            },
            "fd_prestat_dir_name" => match self.open.get(&a(0)) {
                Some((_, Some(name))) => {
                    let n = name.len().min(a(2) as usize);
                    written(mem.write(a(1), &name[..n]))
                }
                _ => ERRNO_BADF,
            },
            "fd_write" if a(0) == 2 => {
                let (iovs, n) = (a(1), a(2));
                let mut total: u32 = 0;
                for k in 0..n {
                    let iov = mem.read(iovs.wrapping_add(8 * k), 8)?;
                    let base = u32::from_le_bytes(iov[0..4].try_into().ok()?);
                    let len = u32::from_le_bytes(iov[4..8].try_into().ok()?);
                    let len = len.min(self.write_limit - total);
                    self.lines.extend_from_slice(&mem.read(base, len)?);
                    total += len;
                }
                written(mem.write(a(3), &total.to_le_bytes()))
            }
            _ => return None,
        })
    }

    /// What the trace's `call` of `event`, made with Wasm arguments `args`, does when its
    /// import succeeds (returns 0): the descriptor it hands out (`opened`) is written to
    /// its out-pointer (`opened_fd`, `ro_fd`), and the host's descriptors change as WASI's
    /// do.
    pub fn succeeded(
        &mut self,
        event: &Event,
        call: &TraceEvent,
        args: &[u64],
        mem: &mut dyn Memory,
    ) {
        let arg = |name: &str| wasm_arg(event, args, name);
        if crate::handles::hands_out_behind_retptr(event) {
            let Some(at) = arg("retptr") else { return };
            if Effect::of_import(&event.module, &event.field) == Some(Effect::Preopens) {
                let list = self.directories(call, mem);
                mem.write(at, &list);
                return;
            }
            // `result<handles, error-code>`: `ok` with the trace's handles (`opens N`: N,
            // N + 1, ...) where the call's streams go (a grant) or its descriptor
            // (`open-at`, at 4), else an error.
            let Some(o) = call.opened else {
                mem.write(at, &[1]);
                return;
            };
            mem.write(at, &[0]);
            let grants = crate::handles::grants(event).iter();
            let mut offsets: Vec<u32> = grants
                .filter_map(|g| match g.at {
                    Place::Ok(off) => Some(off),
                    Place::Result => None,
                })
                .collect();
            if offsets.is_empty() {
                offsets.push(4);
            }
            for (i, off) in offsets.into_iter().enumerate() {
                let h = o.fd.wrapping_add(i as u32);
                mem.write(at.wrapping_add(off), &h.to_le_bytes());
            }
            return;
        }
        if let Some(o) = call.opened {
            let out = if event.field == "sock_accept" {
                "ro_fd"
            } else {
                "opened_fd"
            };
            if let Some(at) = arg(out) {
                mem.write(at, &o.fd.to_le_bytes());
            }
        }
        if !wasi::is_wasi_module(&event.module) {
            return;
        }
        match Effect::of(&event.field) {
            Some(Effect::Open | Effect::Accept) => {
                if let Some(o) = call.opened {
                    self.open.insert(o.fd, (o.filetype, None));
                }
            }
            Some(Effect::Close) => {
                if let Some(fd) = arg("fd") {
                    self.open.remove(&fd);
                }
            }
            Some(Effect::Renumber) => {
                if let (Some(from), Some(to)) = (arg("fd"), arg("to")) {
                    if from != to {
                        if let Some(d) = self.open.remove(&from) {
                            self.open.insert(to, d);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Writes `get-directories`' list (the world's preopens as handles `opens N`, N + 1,
    /// ...: `(handle, name pointer, name length)`, 12 bytes each, then the names) at
    /// [`FakeHost::list_area`], and returns the list's `(pointer, length)` as the 8 bytes
    /// behind `retptr`.
    fn directories(&self, call: &TraceEvent, mem: &mut dyn Memory) -> [u8; 8] {
        let mut out = [0u8; 8];
        let (Some(first), Some(area)) = (call.opened, self.list_area) else {
            return out;
        };
        let n = self.preopens.len() as u32;
        let mut name_at = area.wrapping_add(12 * n);
        for (i, name) in self.preopens.iter().enumerate() {
            let mut element = [0u8; 12];
            element[0..4].copy_from_slice(&first.fd.wrapping_add(i as u32).to_le_bytes());
            element[4..8].copy_from_slice(&name_at.to_le_bytes());
            element[8..12].copy_from_slice(&(name.len() as u32).to_le_bytes());
            mem.write(area.wrapping_add(12 * i as u32), &element);
            mem.write(name_at, name);
            name_at = name_at.wrapping_add(name.len() as u32);
        }
        out[0..4].copy_from_slice(&area.to_le_bytes());
        out[4..8].copy_from_slice(&n.to_le_bytes());
        out
    }
}

/// The Wasm argument of integer parameter `name` of `event`.
fn wasm_arg(event: &Event, args: &[u64], name: &str) -> Option<u32> {
    let p = event.params.iter().position(|p| p.name == name)?;
    args.get(event.wasm_param_index(p as u32) as usize)
        .map(|&a| a as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptors::Opened;

    impl Memory for Vec<u8> {
        fn read(&mut self, at: u32, len: u32) -> Option<Vec<u8>> {
            self.get(at as usize..at as usize + len as usize)
                .map(<[u8]>::to_vec)
        }
        fn write(&mut self, at: u32, bytes: &[u8]) -> bool {
            let range = at as usize..at as usize + bytes.len();
            self.get_mut(range)
                .map(|d| d.copy_from_slice(bytes))
                .is_some()
        }
    }

    fn wasi(name: &str) -> Event {
        crate::wasi::function(name).unwrap()
    }

    #[test]
    fn the_scan_sees_the_worlds_preopens_and_nothing_past_them() {
        let mut host = FakeHost::new(&World::with_preopens(&["/tmp"]));
        let mut mem = vec![0u8; 64];
        assert_eq!(host.internal("fd_prestat_get", &[3, 8], &mut mem), Some(0));
        assert_eq!(mem[12..16], 4u32.to_le_bytes());
        assert_eq!(
            host.internal("fd_prestat_dir_name", &[3, 16, 4], &mut mem),
            Some(0)
        );
        assert_eq!(&mem[16..20], b"/tmp");
        assert_eq!(host.internal("fd_fdstat_get", &[3, 24], &mut mem), Some(0));
        assert_eq!(mem[24], FILETYPE_DIRECTORY);
        assert_eq!(
            host.internal("fd_fdstat_get", &[4, 24], &mut mem),
            Some(ERRNO_BADF)
        );
        assert_eq!(
            host.internal("fd_prestat_get", &[1, 8], &mut mem),
            Some(ERRNO_BADF)
        );
        // An answer that does not fit the memory is a fault; other calls are not answered.
        assert_eq!(
            host.internal("fd_fdstat_get", &[0, 60], &mut mem),
            Some(ERRNO_FAULT)
        );
        assert_eq!(host.internal("fd_read", &[0, 0, 0, 0], &mut mem), None);
    }

    #[test]
    fn lines_on_2_are_kept_and_taken_at_most_write_limit_bytes_a_call() {
        let mut host = FakeHost::new(&World::default());
        let mut mem = vec![0u8; 64];
        mem[32..37].copy_from_slice(b"hello");
        mem[8..12].copy_from_slice(&32u32.to_le_bytes());
        mem[12..16].copy_from_slice(&5u32.to_le_bytes());
        host.write_limit = 3;
        assert_eq!(host.internal("fd_write", &[2, 8, 1, 20], &mut mem), Some(0));
        assert_eq!(host.lines, b"hel");
        assert_eq!(mem[20..24], 3u32.to_le_bytes());
        // Vectors out of bounds: not a call the host answers.
        assert_eq!(host.internal("fd_write", &[2, 60, 1, 20], &mut mem), None);
    }

    #[test]
    fn successful_calls_open_close_and_move_descriptors() {
        let mut host = FakeHost::new(&World::default());
        let mut mem = vec![0u8; 64];
        let open = TraceEvent {
            opened: Some(Opened {
                fd: 7,
                filetype: FILETYPE_DIRECTORY,
            }),
            ..TraceEvent::default()
        };
        let path_open = wasi("path_open");
        // fd, dirflags, path (pointer, length), oflags, two rights, fdflags, opened_fd.
        let args = [3, 0, 0, 0, 0, 0, 0, 0, 40];
        host.succeeded(&path_open, &open, &args, &mut mem);
        assert_eq!(mem[40..44], 7u32.to_le_bytes());
        assert_eq!(host.internal("fd_fdstat_get", &[7, 0], &mut mem), Some(0));
        let none = TraceEvent::default();
        host.succeeded(&wasi("fd_renumber"), &none, &[7, 9], &mut mem);
        assert_eq!(
            host.internal("fd_fdstat_get", &[7, 0], &mut mem),
            Some(ERRNO_BADF)
        );
        assert_eq!(host.internal("fd_fdstat_get", &[9, 0], &mut mem), Some(0));
        host.succeeded(&wasi("fd_close"), &none, &[9], &mut mem);
        assert_eq!(
            host.internal("fd_fdstat_get", &[9, 0], &mut mem),
            Some(ERRNO_BADF)
        );
    }
}
