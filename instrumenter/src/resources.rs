//! Generated code for the monitor's resource model: resolving guest paths and keeping the
//! descriptor table, the woven twins of `policy_lang::path` and `policy_lang::descriptors`.
//!
//! Everything lives in the private memory, at [`Layout`]'s offsets; the module's own code
//! never names that memory. Strings the module passes are read from the *host memory*
//! (the memory the WASI host reads, exported as `memory`), after the wrapper checked they
//! lie inside it.
use policy_lang::descriptors::{Kind, MAX_FDS};
use policy_lang::path::MAX_PATH;
use wasm_encoder::{BlockType, Function, Instruction as I, ValType};

use crate::fngen::{mem, FnGen};

/// Bytes of one descriptor-table entry: kind `u8`, writable `u8`, 2 unused, path length
/// `u32` (0: no known path).
pub(crate) const ENTRY: u32 = 8;
/// Bytes of one resolved-path buffer: room for a directory path, `/` and an argument.
pub(crate) const RESOLVED: u32 = 2 * MAX_PATH as u32 + 8;
/// Resolved-path buffers per call: the most path parameters a WASI call resolves (two
/// paths and a link target).
pub(crate) const RESOLVED_BUFFERS: u32 = 3;
/// Bytes of host memory a host call of the monitor borrows (fdstat, prestat, a preopen's
/// name), saved into the private memory and restored around the call.
pub(crate) const HOST_SCRATCH: u32 = MAX_PATH as u32 + 32;

/// Where the resource model's data lies in the private memory, from `base` on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub base: u32,
}

impl Layout {
    /// Entry `fd` of the table is at `table() + fd * ENTRY`.
    pub fn table(self) -> u32 {
        self.base
    }
    /// Descriptor `fd`'s path is at `paths() + fd * MAX_PATH`.
    pub fn paths(self) -> u32 {
        self.table() + MAX_FDS * ENTRY
    }
    /// Resolved-path buffer `k` (`k < RESOLVED_BUFFERS`).
    pub fn resolved(self, k: u32) -> u32 {
        self.paths() + MAX_FDS * MAX_PATH as u32 + k * RESOLVED
    }
    /// Where host scratch bytes are saved while the monitor borrows them.
    pub fn host_save(self) -> u32 {
        self.resolved(RESOLVED_BUFFERS)
    }
    /// The first byte after the layout.
    pub fn end(self) -> u32 {
        self.host_save() + HOST_SCRATCH
    }
}

/// `(base, base_len, raw, raw_len, out) -> len`: writes the normalisation of
/// `base + "/" + raw` to `out` and returns its length, or -1 when `raw` or the result is
/// longer than `MAX_PATH` (`policy_lang::path::resolve`, byte for byte).
///
/// `base` and `out` are private-memory addresses, `base` a normalised absolute path
/// (ignored when `raw` starts with `/`); `raw` lies in host memory, inside its bounds.
pub(crate) fn resolve(host: u32, private: u32) -> Function {
    let mut g = FnGen::new(5);
    let (base, base_len, raw, raw_len, out) = (0, 1, 2, 3, 4);
    let n = g.local(ValType::I32);
    let i = g.local(ValType::I32);
    let s = g.local(ValType::I32);
    let seg = g.local(ValType::I32);
    let d = g.local(ValType::I32);

    g.op(I::LocalGet(raw_len));
    g.op(I::I32Const(MAX_PATH as i32));
    g.op(I::I32GtU);
    g.if_(BlockType::Empty);
    g.op(I::I32Const(-1));
    g.op(I::Return);
    g.end();

    // The base, unless the argument is absolute; the root contributes no segment.
    g.op(I::LocalGet(raw_len));
    g.op(I::If(BlockType::Result(ValType::I32)));
    g.op(I::LocalGet(raw));
    g.op(I::I32Load8U(mem(host, 0, 0)));
    g.op(I::I32Const(b'/' as i32));
    g.op(I::I32Eq);
    g.op(I::Else);
    g.op(I::I32Const(0));
    g.op(I::End);
    g.op(I::I32Eqz);
    g.op(I::LocalGet(base_len));
    g.op(I::I32Const(1));
    g.op(I::I32GtU);
    g.op(I::I32And);
    g.if_(BlockType::Empty);
    // A byte loop, not `memory.copy` (a call into the engine): directory paths are short.
    let copied = g.block();
    let copy = g.loop_();
    g.op(I::LocalGet(n));
    g.op(I::LocalGet(base_len));
    g.op(I::I32GeU);
    g.br_if(copied);
    g.op(I::LocalGet(out));
    g.op(I::LocalGet(n));
    g.op(I::I32Add);
    g.op(I::LocalGet(base));
    g.op(I::LocalGet(n));
    g.op(I::I32Add);
    g.op(I::I32Load8U(mem(private, 0, 0)));
    g.op(I::I32Store8(mem(private, 0, 0)));
    inc(&mut g, n);
    g.br(copy);
    g.end(); // copy
    g.end(); // copied
    g.end();

    let done = g.block();
    let next = g.loop_();
    // i >= raw_len: done.
    g.op(I::LocalGet(i));
    g.op(I::LocalGet(raw_len));
    g.op(I::I32GeU);
    g.br_if(done);
    // A `/`: skip it.
    g.op(I::LocalGet(raw));
    g.op(I::LocalGet(i));
    g.op(I::I32Add);
    g.op(I::I32Load8U(mem(host, 0, 0)));
    g.op(I::I32Const(b'/' as i32));
    g.op(I::I32Eq);
    g.if_(BlockType::Empty);
    inc(&mut g, i);
    g.br(next);
    g.end();
    // A segment: [s, i). It is copied to `out` behind a `/` while it is scanned (a
    // byte loop: `memory.copy` between memories is a call into the engine, which costs
    // more than copying a path segment); `.` and `..` then leave `n` as it was.
    g.op(I::LocalGet(i));
    g.op(I::LocalSet(s));
    g.op(I::LocalGet(out));
    g.op(I::LocalGet(n));
    g.op(I::I32Add);
    g.op(I::I32Const(b'/' as i32));
    g.op(I::I32Store8(mem(private, 0, 0)));
    // d + i is where byte i goes: out + n + 1 + (i - s).
    g.op(I::LocalGet(out));
    g.op(I::LocalGet(n));
    g.op(I::I32Add);
    g.op(I::I32Const(1));
    g.op(I::I32Add);
    g.op(I::LocalGet(s));
    g.op(I::I32Sub);
    g.op(I::LocalSet(d));
    let seg_end = g.block();
    let scan = g.loop_();
    g.op(I::LocalGet(d));
    g.op(I::LocalGet(i));
    g.op(I::I32Add);
    g.op(I::LocalGet(raw));
    g.op(I::LocalGet(i));
    g.op(I::I32Add);
    g.op(I::I32Load8U(mem(host, 0, 0)));
    g.op(I::I32Store8(mem(private, 0, 0)));
    inc(&mut g, i);
    g.op(I::LocalGet(i));
    g.op(I::LocalGet(raw_len));
    g.op(I::I32GeU);
    g.br_if(seg_end);
    g.op(I::LocalGet(raw));
    g.op(I::LocalGet(i));
    g.op(I::I32Add);
    g.op(I::I32Load8U(mem(host, 0, 0)));
    g.op(I::I32Const(b'/' as i32));
    g.op(I::I32Ne);
    g.br_if(scan);
    g.end(); // scan
    g.end(); // seg_end
    g.op(I::LocalGet(i));
    g.op(I::LocalGet(s));
    g.op(I::I32Sub);
    g.op(I::LocalSet(seg));
    // `.`: nothing.
    g.op(I::LocalGet(seg));
    g.op(I::I32Const(1));
    g.op(I::I32Eq);
    g.if_(BlockType::Empty);
    g.op(I::LocalGet(raw));
    g.op(I::LocalGet(s));
    g.op(I::I32Add);
    g.op(I::I32Load8U(mem(host, 0, 0)));
    g.op(I::I32Const(b'.' as i32));
    g.op(I::I32Eq);
    g.br_if(next);
    g.end();
    // `..`: drop the last segment (nothing at the root).
    g.op(I::LocalGet(seg));
    g.op(I::I32Const(2));
    g.op(I::I32Eq);
    g.if_(BlockType::Empty);
    g.op(I::LocalGet(raw));
    g.op(I::LocalGet(s));
    g.op(I::I32Add);
    g.op(I::I32Load16U(mem(host, 0, 0)));
    g.op(I::I32Const(0x2e2e));
    g.op(I::I32Eq);
    g.if_(BlockType::Empty);
    let popped = g.block();
    let pop = g.loop_();
    g.op(I::LocalGet(n));
    g.op(I::I32Eqz);
    g.br_if(popped);
    g.op(I::LocalGet(n));
    g.op(I::I32Const(1));
    g.op(I::I32Sub);
    g.op(I::LocalTee(n));
    g.op(I::LocalGet(out));
    g.op(I::I32Add);
    g.op(I::I32Load8U(mem(private, 0, 0)));
    g.op(I::I32Const(b'/' as i32));
    g.op(I::I32Ne);
    g.br_if(pop);
    g.end(); // pop
    g.end(); // popped
    g.br(next);
    g.end();
    g.end();
    // Any other segment: keep the `/` and the bytes copied behind it.
    g.op(I::LocalGet(n));
    g.op(I::LocalGet(seg));
    g.op(I::I32Add);
    g.op(I::I32Const(1));
    g.op(I::I32Add);
    g.op(I::LocalSet(n));
    g.br(next);
    g.end(); // next
    g.end(); // done

    // Nothing left is the root.
    g.op(I::LocalGet(n));
    g.op(I::I32Eqz);
    g.if_(BlockType::Empty);
    g.op(I::LocalGet(out));
    g.op(I::I32Const(b'/' as i32));
    g.op(I::I32Store8(mem(private, 0, 0)));
    g.op(I::I32Const(1));
    g.op(I::LocalSet(n));
    g.end();
    g.op(I::LocalGet(n));
    g.op(I::I32Const(MAX_PATH as i32));
    g.op(I::I32GtU);
    g.op(I::If(BlockType::Result(ValType::I32)));
    g.op(I::I32Const(-1));
    g.op(I::Else);
    g.op(I::LocalGet(n));
    g.op(I::End);
    g.finish()
}

/// The imports and functions the descriptor scan calls.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScanImports {
    pub fd_fdstat_get: u32,
    pub fd_prestat_get: u32,
    pub fd_prestat_dir_name: u32,
    /// The [`resolve`] function.
    pub resolve: u32,
}

/// `init() -> status`: fills the descriptor table from what the host reports
/// (`policy_lang::descriptors::Descriptors::from_world`, the scan it describes): 0 when
/// every open descriptor fit, 1 when the host reports one at or above `MAX_FDS`, 2 when
/// the host memory is too small to borrow scratch bytes from.
///
/// Scratch: the top [`HOST_SCRATCH`] bytes of host memory, saved to the private memory
/// first and restored after, so the module's data there survives.
pub(crate) fn init(host: u32, private: u32, layout: Layout, imports: ScanImports) -> Function {
    let mut g = FnGen::new(0);
    let fd = g.local(ValType::I32);
    let status = g.local(ValType::I32);
    let kind = g.local(ValType::I32);
    let scratch = g.local(ValType::I32);
    let n = g.local(ValType::I32);
    let entry = g.local(ValType::I32);

    // A memory smaller than the scratch area (or of 4 GiB, whose size wraps) cannot lend it.
    g.op(I::MemorySize(host));
    g.op(I::I32Const(16));
    g.op(I::I32Shl);
    g.op(I::LocalTee(scratch));
    g.op(I::I32Const(HOST_SCRATCH as i32));
    g.op(I::I32LtU);
    g.op(I::LocalGet(scratch));
    g.op(I::I32Eqz);
    g.op(I::I32Or);
    g.if_(BlockType::Empty);
    g.op(I::I32Const(2));
    g.op(I::Return);
    g.end();
    borrow_scratch(&mut g, host, private, layout, scratch);
    let done = g.block();
    let scan = g.loop_();
    g.op(I::LocalGet(fd));
    g.op(I::I32Const(MAX_FDS as i32));
    g.op(I::I32GeU);
    g.if_(BlockType::Empty);
    g.op(I::I32Const(1));
    g.op(I::LocalSet(status));
    g.br(done);
    g.end();
    // entry := table + fd * ENTRY
    g.op(I::LocalGet(fd));
    g.op(I::I32Const(ENTRY as i32));
    g.op(I::I32Mul);
    g.op(I::I32Const(layout.table() as i32));
    g.op(I::I32Add);
    g.op(I::LocalSet(entry));
    g.op(I::LocalGet(fd));
    g.op(I::LocalGet(scratch));
    g.op(I::Call(imports.fd_fdstat_get));
    g.op(I::LocalTee(status));
    g.if_(BlockType::Empty);
    {
        // Not open. Below 3 a stream may be missing; from 3 on, EBADF ends the scan and
        // any other error is a descriptor the host will not describe: a file without a
        // known path that may write (when in doubt, the broader answer).
        g.op(I::LocalGet(fd));
        g.op(I::I32Const(3));
        g.op(I::I32GeU);
        g.if_(BlockType::Empty);
        g.op(I::LocalGet(status));
        g.op(I::I32Const(ERRNO_BADF));
        g.op(I::I32Eq);
        g.if_(BlockType::Empty);
        g.op(I::I32Const(0));
        g.op(I::LocalSet(status));
        g.br(done);
        g.end();
        store_entry(
            &mut g,
            private,
            entry,
            |g| g.op(I::I32Const(KIND_FILE)),
            |g| g.op(I::I32Const(1)),
        );
        g.end();
    }
    g.op(I::Else);
    {
        // kind: 0/1/2 are the streams; then by file type.
        g.op(I::LocalGet(fd));
        g.op(I::I32Const(3));
        g.op(I::I32LtU);
        g.op(I::If(BlockType::Result(ValType::I32)));
        g.op(I::LocalGet(fd));
        g.op(I::I32Const(KIND_STDIN));
        g.op(I::I32Add);
        g.op(I::Else);
        g.op(I::LocalGet(scratch));
        g.op(I::I32Load8U(mem(host, 0, 0)));
        g.op(I::LocalTee(kind));
        g.op(I::I32Const(FILETYPE_DIRECTORY));
        g.op(I::I32Eq);
        g.op(I::If(BlockType::Result(ValType::I32)));
        g.op(I::I32Const(KIND_DIRECTORY));
        g.op(I::Else);
        g.op(I::LocalGet(kind));
        g.op(I::I32Const(FILETYPE_SOCKET_DGRAM));
        g.op(I::I32Eq);
        g.op(I::LocalGet(kind));
        g.op(I::I32Const(FILETYPE_SOCKET_STREAM));
        g.op(I::I32Eq);
        g.op(I::I32Or);
        g.op(I::If(BlockType::Result(ValType::I32)));
        g.op(I::I32Const(KIND_SOCKET));
        g.op(I::Else);
        g.op(I::I32Const(KIND_FILE));
        g.op(I::End);
        g.op(I::End);
        g.op(I::End);
        g.op(I::LocalSet(kind));
        // writable: stdin no; stdout, stderr, directories yes; else RIGHTS_FD_WRITE.
        store_entry(
            &mut g,
            private,
            entry,
            |g| g.op(I::LocalGet(kind)),
            |g| {
                g.op(I::LocalGet(kind));
                g.op(I::I32Const(KIND_STDIN));
                g.op(I::I32Eq);
                g.op(I::If(BlockType::Result(ValType::I32)));
                g.op(I::I32Const(0));
                g.op(I::Else);
                g.op(I::LocalGet(kind));
                g.op(I::I32Const(KIND_FILE));
                g.op(I::I32Eq);
                g.op(I::LocalGet(kind));
                g.op(I::I32Const(KIND_SOCKET));
                g.op(I::I32Eq);
                g.op(I::I32Or);
                g.op(I::If(BlockType::Result(ValType::I32)));
                g.op(I::LocalGet(scratch));
                g.op(I::I64Load(mem(host, 8, 3)));
                g.op(I::I64Const(RIGHTS_FD_WRITE));
                g.op(I::I64And);
                g.op(I::I64Const(0));
                g.op(I::I64Ne);
                g.op(I::Else);
                g.op(I::I32Const(1));
                g.op(I::End);
                g.op(I::End);
            },
        );
        // A preopened directory with an absolute name: its normalised name is its path.
        g.op(I::LocalGet(kind));
        g.op(I::I32Const(KIND_DIRECTORY));
        g.op(I::I32Eq);
        g.if_(BlockType::Empty);
        let named = g.block();
        g.op(I::LocalGet(fd));
        g.op(I::LocalGet(scratch));
        g.op(I::Call(imports.fd_prestat_get));
        g.br_if(named);
        g.op(I::LocalGet(scratch));
        g.op(I::I32Load8U(mem(host, 0, 0)));
        g.br_if(named); // not a directory preopen
        g.op(I::LocalGet(scratch));
        g.op(I::I32Load(mem(host, 4, 2)));
        g.op(I::LocalTee(n));
        g.op(I::I32Eqz);
        g.br_if(named);
        g.op(I::LocalGet(n));
        g.op(I::I32Const(MAX_PATH as i32));
        g.op(I::I32GtU);
        g.br_if(named);
        g.op(I::LocalGet(fd));
        g.op(I::LocalGet(scratch));
        g.op(I::I32Const(8));
        g.op(I::I32Add);
        g.op(I::LocalGet(n));
        g.op(I::Call(imports.fd_prestat_dir_name));
        g.br_if(named);
        g.op(I::LocalGet(scratch));
        g.op(I::I32Load8U(mem(host, 8, 0)));
        g.op(I::I32Const(b'/' as i32));
        g.op(I::I32Ne);
        g.br_if(named);
        g.op(I::I32Const(layout.resolved(0) as i32));
        g.op(I::I32Const(1));
        g.op(I::LocalGet(scratch));
        g.op(I::I32Const(8));
        g.op(I::I32Add);
        g.op(I::LocalGet(n));
        g.op(I::I32Const(layout.resolved(0) as i32));
        g.op(I::Call(imports.resolve));
        g.op(I::LocalTee(n));
        g.op(I::I32Const(0));
        g.op(I::I32LeS);
        g.br_if(named);
        // paths + fd * MAX_PATH <- resolved(0), n bytes; entry.len := n
        g.op(I::LocalGet(fd));
        g.op(I::I32Const(MAX_PATH as i32));
        g.op(I::I32Mul);
        g.op(I::I32Const(layout.paths() as i32));
        g.op(I::I32Add);
        g.op(I::I32Const(layout.resolved(0) as i32));
        g.op(I::LocalGet(n));
        g.op(I::MemoryCopy {
            src_mem: private,
            dst_mem: private,
        });
        g.op(I::LocalGet(entry));
        g.op(I::LocalGet(n));
        g.op(I::I32Store(mem(private, 4, 2)));
        g.end(); // named
        g.end(); // directory
    }
    g.end(); // fdstat
    inc(&mut g, fd);
    g.br(scan);
    g.end(); // scan
    g.end(); // done
    return_scratch(&mut g, host, private, layout, scratch);
    g.op(I::LocalGet(status));
    g.finish()
}

/// Table entry at `entry`: kind and writable from the closures, no known path.
fn store_entry(
    g: &mut FnGen,
    private: u32,
    entry: u32,
    kind: impl FnOnce(&mut FnGen),
    writable: impl FnOnce(&mut FnGen),
) {
    g.op(I::LocalGet(entry));
    kind(g);
    g.op(I::I32Store8(mem(private, 0, 0)));
    g.op(I::LocalGet(entry));
    writable(g);
    g.op(I::I32Store8(mem(private, 1, 0)));
    g.op(I::LocalGet(entry));
    g.op(I::I32Const(0));
    g.op(I::I32Store(mem(private, 4, 2)));
}

/// Sets `scratch` to the top [`HOST_SCRATCH`] bytes of host memory and saves them into the
/// private memory. The caller knows the memory holds at least that much (the scan checked).
pub(crate) fn borrow_scratch(g: &mut FnGen, host: u32, private: u32, layout: Layout, scratch: u32) {
    g.op(I::MemorySize(host));
    g.op(I::I32Const(16));
    g.op(I::I32Shl);
    g.op(I::I32Const(HOST_SCRATCH as i32));
    g.op(I::I32Sub);
    g.op(I::LocalSet(scratch));
    g.op(I::I32Const(layout.host_save() as i32));
    g.op(I::LocalGet(scratch));
    g.op(I::I32Const(HOST_SCRATCH as i32));
    g.op(I::MemoryCopy {
        src_mem: host,
        dst_mem: private,
    });
}

/// Restores the host bytes [`borrow_scratch`] saved.
pub(crate) fn return_scratch(g: &mut FnGen, host: u32, private: u32, layout: Layout, scratch: u32) {
    g.op(I::LocalGet(scratch));
    g.op(I::I32Const(layout.host_save() as i32));
    g.op(I::I32Const(HOST_SCRATCH as i32));
    g.op(I::MemoryCopy {
        src_mem: private,
        dst_mem: host,
    });
}

const ERRNO_BADF: i32 = 8;
const RIGHTS_FD_WRITE: i64 = 1 << 6;
const FILETYPE_DIRECTORY: i32 = policy_lang::descriptors::FILETYPE_DIRECTORY as i32;
const FILETYPE_SOCKET_DGRAM: i32 = policy_lang::descriptors::FILETYPE_SOCKET_DGRAM as i32;
const FILETYPE_SOCKET_STREAM: i32 = policy_lang::descriptors::FILETYPE_SOCKET_STREAM as i32;
pub(crate) const KIND_STDIN: i32 = Kind::Stdin as i32;
pub(crate) const KIND_FILE: i32 = Kind::File as i32;
pub(crate) const KIND_DIRECTORY: i32 = Kind::Directory as i32;
pub(crate) const KIND_SOCKET: i32 = Kind::Socket as i32;
const _: () = assert!(HOST_SCRATCH.is_multiple_of(8) && HOST_SCRATCH as usize >= 8 + MAX_PATH);

/// `(base, value) -> i32`: whether the set at `base` (length `u32`, 4 unused bytes, then
/// `i64` members) holds `value`.
pub(crate) fn set_has(private: u32) -> Function {
    let mut g = FnGen::new(2);
    let (base, value) = (0, 1);
    let i = g.local(ValType::I32);
    for_member_equal_to(&mut g, private, base, value, i, |g| {
        g.op(I::I32Const(1));
        g.op(I::Return);
    });
    g.op(I::I32Const(0));
    g.finish()
}

/// `(base, capacity, value) -> i32`: inserts `value` unless it is a member; 1 when the
/// set is full (and `value` is not a member), else 0.
pub(crate) fn set_insert(private: u32, set_has: u32) -> Function {
    let mut g = FnGen::new(3);
    let (base, capacity, value) = (0, 1, 2);
    let len = g.local(ValType::I32);
    g.op(I::LocalGet(base));
    g.op(I::LocalGet(value));
    g.op(I::Call(set_has));
    g.if_(BlockType::Empty);
    g.op(I::I32Const(0));
    g.op(I::Return);
    g.end();
    g.op(I::LocalGet(base));
    g.op(I::I32Load(mem(private, 0, 2)));
    g.op(I::LocalTee(len));
    g.op(I::LocalGet(capacity));
    g.op(I::I32GeU);
    g.if_(BlockType::Empty);
    g.op(I::I32Const(1));
    g.op(I::Return);
    g.end();
    g.op(I::LocalGet(base));
    g.op(I::LocalGet(len));
    g.op(I::I32Const(3));
    g.op(I::I32Shl);
    g.op(I::I32Add);
    g.op(I::LocalGet(value));
    g.op(I::I64Store(mem(private, 8, 3)));
    g.op(I::LocalGet(base));
    g.op(I::LocalGet(len));
    g.op(I::I32Const(1));
    g.op(I::I32Add);
    g.op(I::I32Store(mem(private, 0, 2)));
    g.op(I::I32Const(0));
    g.finish()
}

/// `(base, value)`: removes `value` if it is a member (the last member takes its place).
pub(crate) fn set_remove(private: u32) -> Function {
    let mut g = FnGen::new(2);
    let (base, value) = (0, 1);
    let i = g.local(ValType::I32);
    let last = g.local(ValType::I32);
    for_member_equal_to(&mut g, private, base, value, i, |g| {
        // len -= 1; members[i] = members[len]
        g.op(I::LocalGet(base));
        g.op(I::LocalGet(base));
        g.op(I::I32Load(mem(private, 0, 2)));
        g.op(I::I32Const(1));
        g.op(I::I32Sub);
        g.op(I::LocalTee(last));
        g.op(I::I32Store(mem(private, 0, 2)));
        g.op(I::LocalGet(base));
        g.op(I::LocalGet(i));
        g.op(I::I32Const(3));
        g.op(I::I32Shl);
        g.op(I::I32Add);
        member(g, private, base, last);
        g.op(I::I64Store(mem(private, 8, 3)));
        g.op(I::Return);
    });
    g.finish()
}

/// For each member `i` (a local) of the set at `base` in order: when it equals `value`,
/// runs `found`, which must leave the function (sets hold each value once).
fn for_member_equal_to(
    g: &mut FnGen,
    private: u32,
    base: u32,
    value: u32,
    i: u32,
    found: impl FnOnce(&mut FnGen),
) {
    let done = g.block();
    let next = g.loop_();
    g.op(I::LocalGet(i));
    g.op(I::LocalGet(base));
    g.op(I::I32Load(mem(private, 0, 2)));
    g.op(I::I32GeU);
    g.br_if(done);
    member(g, private, base, i);
    g.op(I::LocalGet(value));
    g.op(I::I64Eq);
    g.if_(BlockType::Empty);
    found(g);
    g.end();
    inc(g, i);
    g.br(next);
    g.end();
    g.end();
}

/// Pushes member `i` (a local) of the set at `base` (a local).
fn member(g: &mut FnGen, private: u32, base: u32, i: u32) {
    g.op(I::LocalGet(base));
    g.op(I::LocalGet(i));
    g.op(I::I32Const(3));
    g.op(I::I32Shl);
    g.op(I::I32Add);
    g.op(I::I64Load(mem(private, 8, 3)));
}

fn inc(g: &mut FnGen, local: u32) {
    g.op(I::LocalGet(local));
    g.op(I::I32Const(1));
    g.op(I::I32Add);
    g.op(I::LocalSet(local));
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        CodeSection, ExportKind, ExportSection, FunctionSection, MemorySection, MemoryType, Module,
        TypeSection,
    };

    /// A module with host memory 0, private memory 1 and `resolve` exported.
    fn resolver_module() -> Vec<u8> {
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32; 5], [ValType::I32]);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        let mut mems = MemorySection::new();
        for _ in 0..2 {
            mems.memory(MemoryType {
                minimum: 1,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
        }
        let mut exports = ExportSection::new();
        exports.export("resolve", ExportKind::Func, 0);
        exports.export("host", ExportKind::Memory, 0);
        exports.export("private", ExportKind::Memory, 1);
        let mut code = CodeSection::new();
        code.function(&resolve(0, 1));
        let mut m = Module::new();
        m.section(&types)
            .section(&funcs)
            .section(&mems)
            .section(&exports)
            .section(&code);
        m.finish()
    }

    struct Resolver {
        store: wasmtime::Store<()>,
        func: wasmtime::TypedFunc<(i32, i32, i32, i32, i32), i32>,
        host: wasmtime::Memory,
        private: wasmtime::Memory,
    }

    impl Resolver {
        fn new() -> Self {
            let engine = wasmtime::Engine::default();
            let module = wasmtime::Module::new(&engine, resolver_module()).unwrap();
            let mut store = wasmtime::Store::new(&engine, ());
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
            Resolver {
                func: instance.get_typed_func(&mut store, "resolve").unwrap(),
                host: instance.get_memory(&mut store, "host").unwrap(),
                private: instance.get_memory(&mut store, "private").unwrap(),
                store,
            }
        }

        fn run(&mut self, base: &[u8], raw: &[u8]) -> Option<Vec<u8>> {
            const RAW: usize = 100;
            const BASE: usize = 8;
            const OUT: usize = 8 + 4096;
            self.host.data_mut(&mut self.store)[RAW..RAW + raw.len()].copy_from_slice(raw);
            self.private.data_mut(&mut self.store)[BASE..BASE + base.len()].copy_from_slice(base);
            let n = self
                .func
                .call(
                    &mut self.store,
                    (
                        BASE as i32,
                        base.len() as i32,
                        RAW as i32,
                        raw.len() as i32,
                        OUT as i32,
                    ),
                )
                .unwrap();
            (n >= 0).then(|| self.private.data(&self.store)[OUT..OUT + n as usize].to_vec())
        }
    }

    /// Host memory 0 (exported `memory`), private memory 1, WASI's three scan imports,
    /// `resolve` and `init` (exported).
    fn scanner_module(layout: Layout) -> Vec<u8> {
        use wasm_encoder::{EntityType, ImportSection};
        let wasi = "wasi_snapshot_preview1";
        let mut types = TypeSection::new();
        types.ty().function([ValType::I32; 2], [ValType::I32]); // fdstat, prestat
        types.ty().function([ValType::I32; 3], [ValType::I32]); // dir_name
        types.ty().function([ValType::I32; 5], [ValType::I32]); // resolve
        types.ty().function([], [ValType::I32]); // init
        let mut imports = ImportSection::new();
        imports.import(wasi, "fd_fdstat_get", EntityType::Function(0));
        imports.import(wasi, "fd_prestat_get", EntityType::Function(0));
        imports.import(wasi, "fd_prestat_dir_name", EntityType::Function(1));
        let mut funcs = FunctionSection::new();
        funcs.function(2);
        funcs.function(3);
        let mut mems = MemorySection::new();
        for pages in [1, (layout.end() as u64).div_ceil(65536)] {
            mems.memory(MemoryType {
                minimum: pages,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
        }
        let mut exports = ExportSection::new();
        exports.export("init", ExportKind::Func, 4);
        exports.export("memory", ExportKind::Memory, 0);
        exports.export("private", ExportKind::Memory, 1);
        let mut code = CodeSection::new();
        code.function(&resolve(0, 1));
        code.function(&init(
            0,
            1,
            layout,
            ScanImports {
                fd_fdstat_get: 0,
                fd_prestat_get: 1,
                fd_prestat_dir_name: 2,
                resolve: 3,
            },
        ));
        let mut m = Module::new();
        m.section(&types)
            .section(&imports)
            .section(&funcs)
            .section(&mems)
            .section(&exports)
            .section(&code);
        m.finish()
    }

    /// Runs `init` under real WASI with `dirs` preopened as the given guest names and
    /// returns its status, the table it built (read back from the private memory), and
    /// whether the top of host memory, filled with a pattern before, still holds it.
    fn scan(dirs: &[&str]) -> (i32, policy_lang::descriptors::Descriptors, bool) {
        use policy_lang::descriptors::{Change, Descriptor, Descriptors};
        let layout = Layout { base: 64 };
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, scanner_module(layout)).unwrap();
        let host = tempfile::tempdir().unwrap();
        let mut b = wasmtime_wasi::WasiCtxBuilder::new();
        for d in dirs {
            b.preopened_dir(host.path(), d, wasmtime_wasi::FsPerms::ReadWrite)
                .unwrap();
        }
        let mut store = wasmtime::Store::new(&engine, b.build_p1());
        let mut linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |t| t).unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        let init = instance
            .get_typed_func::<(), i32>(&mut store, "init")
            .unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        let top = memory.data_size(&store);
        let pattern: Vec<u8> = (0..HOST_SCRATCH as usize)
            .map(|i| (i * 7 + 1) as u8)
            .collect();
        memory.data_mut(&mut store)[top - pattern.len()..].copy_from_slice(&pattern);
        let status = init.call(&mut store, ()).unwrap();
        let intact = memory.data(&store)[top - pattern.len()..] == pattern[..];
        let private = instance.get_memory(&mut store, "private").unwrap();
        let data = private.data(&store);
        let mut table = Descriptors::new();
        for fd in 0..MAX_FDS {
            let e = (layout.table() + fd * ENTRY) as usize;
            let Some(kind) = Kind::from_code(data[e]) else {
                panic!("fd {fd} has kind code {}", data[e])
            };
            if kind == Kind::Closed {
                continue;
            }
            let len = u32::from_le_bytes(data[e + 4..e + 8].try_into().unwrap()) as usize;
            let p = (layout.paths() + fd * MAX_PATH as u32) as usize;
            let descriptor = Descriptor {
                kind,
                path: (len > 0).then(|| data[p..p + len].to_vec()),
                writable: data[e + 1] != 0,
            };
            table.apply(Change::Add { fd, descriptor }).unwrap();
        }
        (status, table, intact)
    }

    #[test]
    fn the_scan_finds_the_streams_and_the_preopens_with_their_paths() {
        use policy_lang::descriptors::Initial;
        let (status, table, _) = scan(&["/tmp", "/data/", ".", "/a/../b"]);
        assert_eq!(status, 0);
        let stream = |fd, rights| Initial {
            fd,
            filetype: Some(2),
            rights,
            preopen: None,
        };
        let dir = |fd, name: &str| Initial {
            fd,
            filetype: Some(3),
            rights: 0,
            preopen: Some(name.as_bytes().to_vec()),
        };
        let expected = policy_lang::descriptors::Descriptors::from_world(&[
            stream(0, 2),
            stream(1, 64),
            stream(2, 64),
            dir(3, "/tmp"),
            dir(4, "/data/"),
            dir(5, "."),
            dir(6, "/a/../b"),
        ])
        .unwrap();
        assert_eq!(table, expected);
        assert_eq!(table.get(6).unwrap().path.as_deref(), Some(&b"/b"[..]));
    }

    #[test]
    fn the_scan_gives_back_the_host_memory_it_borrowed() {
        let (status, _, intact) = scan(&["/tmp"]);
        assert_eq!(status, 0);
        assert!(intact);
    }

    #[test]
    fn without_preopens_the_scan_finds_the_three_streams() {
        let (status, table, _) = scan(&[]);
        assert_eq!(status, 0);
        let kinds: Vec<Kind> = table.iter().map(|(_, d)| d.kind).collect();
        assert_eq!(kinds, [Kind::Stdin, Kind::Stdout, Kind::Stderr]);
    }

    fn model(base: &[u8], raw: &[u8]) -> Option<Vec<u8>> {
        policy_lang::path::resolve(base, raw).ok()
    }

    #[test]
    fn generated_resolver_agrees_with_the_model_on_chosen_paths() {
        let mut r = Resolver::new();
        let cases: &[(&str, &str)] = &[
            ("/", ""),
            ("/", "."),
            ("/", ".."),
            ("/tmp", "x"),
            ("/tmp", "../data/x"),
            ("/", "tmp/../data/x"),
            ("/data", "./x/"),
            ("/data", "//x//y/"),
            ("/data/a", "../../../etc/shadow"),
            ("/tmp", "/etc/shadow"),
            ("/d", "...x/.x/..y/.."),
            ("/d", "a/.."),
            ("/d", "../.."),
        ];
        for (base, raw) in cases {
            assert_eq!(
                r.run(base.as_bytes(), raw.as_bytes()),
                model(base.as_bytes(), raw.as_bytes()),
                "{base} + {raw}"
            );
        }
    }

    #[test]
    fn generated_resolver_agrees_with_the_model_on_random_paths() {
        let mut r = Resolver::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pieces: [&[u8]; 8] = [b"/", b".", b"..", b"a", b"bc", b"/", b"\xff", b".."];
        for _ in 0..5000 {
            let mut base = b"/".to_vec();
            for _ in 0..next() % 4 {
                base.extend_from_slice(b"d");
                base.push(b'/');
            }
            let base = policy_lang::path::normalize(&base).unwrap();
            let mut raw = Vec::new();
            for _ in 0..next() % 12 {
                raw.extend_from_slice(pieces[(next() % 8) as usize]);
            }
            assert_eq!(
                r.run(&base, &raw),
                model(&base, &raw),
                "{:?} + {:?}",
                String::from_utf8_lossy(&base),
                String::from_utf8_lossy(&raw)
            );
        }
    }

    #[test]
    fn generated_resolver_refuses_what_the_model_refuses_for_length() {
        let mut r = Resolver::new();
        let long = vec![b'a'; MAX_PATH + 1];
        assert_eq!(r.run(b"/", &long), None);
        let base = [b"/".as_slice(), &vec![b'b'; MAX_PATH - 3]].concat();
        assert_eq!(r.run(&base, b"cc"), model(&base, b"cc"));
        assert_eq!(r.run(&base, b"cc"), None);
        assert_eq!(r.run(&base, b".."), model(&base, b".."));
        let exact = vec![b'c'; MAX_PATH - 1];
        assert_eq!(r.run(b"/", &exact), model(b"/", &exact));
        assert!(r.run(b"/", &exact).is_some());
    }
}
