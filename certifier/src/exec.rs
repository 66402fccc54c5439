//! A small interpreter of the WebAssembly subset monitor functions use.
//!
//! It runs the module's own code (the monitors and their helpers) on a fresh instance's
//! globals and memories; calls of imports go to a [`Host`]. It is deliberately partial:
//! integer arithmetic, locals and globals, loads and stores on any 32-bit memory, bulk
//! memory, and structured control flow. Any other instruction (floats beyond moving
//! bits, tables, references, exceptions, atomics, SIMD, GC) stops the run as
//! [`Stop::Unsupported`], which the behaviour check turns into "not certified": it never
//! guesses what an instruction does. The module is validated before it runs here, so
//! operand types are never checked again.
use std::collections::HashMap;
use std::rc::Rc;

use wasmparser::{BlockType, FunctionBody, MemArg, Operator};

use crate::module::Module;

const PAGE: usize = 65536;
/// Instructions one call may execute before it is given up as not terminating.
const FUEL: u64 = 50_000_000;

/// Why a run stopped without returning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A Wasm trap (`unreachable`, out of bounds, division by zero, ...).
    Trap(String),
    /// The host (a called import) trapped.
    HostTrap,
    /// The host refused a call it did not expect; the message says why.
    Refused(String),
    /// An instruction or construct this interpreter does not model.
    Unsupported {
        func: u32,
        offset: usize,
        what: String,
    },
}

/// Answers calls of imports.
pub trait Host {
    fn call(&mut self, inst: &mut Instance, import: u32, args: &[u64]) -> Result<Vec<u64>, Stop>;
}

/// A function body decoded once: its operators and where each block ends.
struct Code<'a> {
    ops: Vec<(Operator<'a>, usize)>,
    locals: Vec<wasmparser::ValType>,
    /// For the index of a `block`, `loop` or `if`: the index of its `end`; for an `if`,
    /// also the index of its `else`.
    end: Vec<usize>,
    els: Vec<Option<usize>>,
}

/// The mutable state of one instance.
pub struct Instance<'m, 'a> {
    pub module: &'m Module<'a>,
    /// Bits of every global (an `i32` zero-extended).
    pub globals: Vec<u64>,
    /// `None` for a memory this interpreter does not model (64-bit, custom
    /// page size): an access to it stops the run.
    pub memories: Vec<Option<Vec<u8>>>,
    dropped: Vec<bool>,
    /// Ranges `(memory, at, len)` written since the caller last took them, so it can
    /// reset memories without copying them whole.
    pub dirty: Vec<(u32, u32, u32)>,
    codes: HashMap<u32, Rc<Code<'a>>>,
    fuel: u64,
}

struct Label {
    /// The operator index a branch continues at.
    target: usize,
    arity: usize,
    height: usize,
}

fn trap(why: &str) -> Stop {
    Stop::Trap(why.to_string())
}

impl<'m, 'a> Instance<'m, 'a> {
    /// A fresh instance: globals from their constant initialisers, the host memory (at
    /// `host_pages`) and the memories in `modelled` at their minimum size, filled by the
    /// active data segments; any other memory is not modelled (an access to it stops a
    /// run). An error with the reason when this cannot be modelled.
    pub fn new(
        module: &'m Module<'a>,
        host_pages: usize,
        modelled: &std::collections::BTreeSet<u32>,
    ) -> Result<Self, String> {
        let mut globals = Vec::new();
        for (i, g) in module.globals.iter().enumerate() {
            match (g.import, g.init) {
                (None, Some(v)) => globals.push(v),
                // Imported or non-constant globals: no monitor may name them (state
                // integrity); a read of one in a monitor stops the run.
                _ => globals.push(u64::MAX ^ i as u64),
            }
        }
        let host = module.host_memory();
        let mut memories = Vec::new();
        for (i, m) in module.memories.iter().enumerate() {
            let wanted = Some(i as u32) == host || modelled.contains(&(i as u32));
            // A shared memory is modelled as any other: the sampled calls run on one thread
            // (a policy reading strings from one has opted in to that race).
            if !wanted || m.ty.memory64 || m.ty.page_size_log2.is_some() {
                memories.push(None);
                continue;
            }
            let mut pages = m.ty.initial as usize;
            if Some(i as u32) == host {
                pages = pages.max(host_pages);
                if let Some(max) = m.ty.maximum {
                    pages = pages.min(max as usize);
                }
            }
            if pages > 4096 {
                return Err(format!("memory {i} starts larger than 256 MiB"));
            }
            memories.push(Some(vec![0u8; pages * PAGE]));
        }
        for (d, data) in module.data.iter().enumerate() {
            if let Some((mem, offset)) = data.active {
                if memories.get(mem as usize).is_some_and(|m| m.is_none()) {
                    // A memory that is not modelled: no monitor reads it.
                    continue;
                }
                let offset = offset.ok_or(format!("data segment {d} has no constant offset"))?;
                let m = memories
                    .get_mut(mem as usize)
                    .and_then(|m| m.as_mut())
                    .ok_or(format!(
                        "data segment {d} fills a memory that cannot be modelled"
                    ))?;
                let start = offset as usize;
                let Some(dst) = m.get_mut(start..start + data.bytes.len()) else {
                    return Err(format!("data segment {d} does not fit its memory"));
                };
                dst.copy_from_slice(data.bytes);
            }
        }
        Ok(Instance {
            module,
            globals,
            memories,
            dropped: module.data.iter().map(|d| d.active.is_some()).collect(),
            dirty: Vec::new(),
            codes: HashMap::new(),
            fuel: 0,
        })
    }

    /// Calls function `func` with `args` (bits), returning its results.
    pub fn invoke(
        &mut self,
        func: u32,
        args: &[u64],
        host: &mut dyn Host,
    ) -> Result<Vec<u64>, Stop> {
        self.fuel = 0;
        self.call(func, args.to_vec(), host, 0)
    }

    fn code(&mut self, func: u32) -> Result<(), Stop> {
        if self.codes.contains_key(&func) {
            return Ok(());
        }
        let body = self.module.body(func).ok_or_else(|| Stop::Unsupported {
            func,
            offset: 0,
            what: "a call of a function without a body".into(),
        })?;
        let code = decode(func, body)?;
        self.codes.insert(func, Rc::new(code));
        Ok(())
    }

    fn call(
        &mut self,
        func: u32,
        args: Vec<u64>,
        host: &mut dyn Host,
        depth: u32,
    ) -> Result<Vec<u64>, Stop> {
        if func < self.module.num_imports() {
            return host.call(self, func, &args);
        }
        if depth > 200 {
            return Err(trap("call stack exhausted"));
        }
        self.code(func)?;
        let ty = self
            .module
            .func_type(func)
            .cloned()
            .ok_or_else(|| Stop::Unsupported {
                func,
                offset: 0,
                what: "a function whose type is not a function type".into(),
            })?;
        let mut locals = args;
        let code = Rc::clone(&self.codes[&func]);
        let n_locals = code.locals.len();
        locals.resize(locals.len() + n_locals, 0);
        let mut stack: Vec<u64> = Vec::new();
        let mut labels = vec![Label {
            target: code.ops.len(),
            arity: ty.results().len(),
            height: 0,
        }];
        let mut pc = 0usize;
        while let Some((op, offset)) = code.ops.get(pc) {
            let (op, offset) = (op.clone(), *offset);
            self.fuel += 1;
            if self.fuel > FUEL {
                return Err(Stop::Unsupported {
                    func,
                    offset,
                    what: "a call that runs for too long".into(),
                });
            }
            let unsupported = |what: &str| Stop::Unsupported {
                func,
                offset,
                what: what.to_string(),
            };
            macro_rules! pop {
                () => {
                    stack
                        .pop()
                        .ok_or_else(|| unsupported("an empty operand stack"))?
                };
            }
            macro_rules! un32 {
                ($f:expr) => {{
                    let a = pop!() as u32;
                    #[allow(clippy::redundant_closure_call)]
                    stack.push(($f)(a) as u32 as u64);
                }};
            }
            macro_rules! bin32 {
                ($f:expr) => {{
                    let b = pop!() as u32;
                    let a = pop!() as u32;
                    #[allow(clippy::redundant_closure_call)]
                    stack.push(($f)(a, b) as u32 as u64);
                }};
            }
            macro_rules! un64 {
                ($f:expr) => {{
                    let a = pop!();
                    #[allow(clippy::redundant_closure_call)]
                    stack.push(($f)(a) as u64);
                }};
            }
            macro_rules! bin64 {
                ($f:expr) => {{
                    let b = pop!();
                    let a = pop!();
                    #[allow(clippy::redundant_closure_call)]
                    stack.push(($f)(a, b) as u64);
                }};
            }
            macro_rules! load {
                ($m:expr, $n:expr, $conv:expr) => {{
                    let addr = pop!() as u32;
                    let b = self.bytes($m, addr, $n, &unsupported)?;
                    let mut w = [0u8; 8];
                    w[..$n].copy_from_slice(b);
                    #[allow(clippy::redundant_closure_call)]
                    stack.push(($conv)(u64::from_le_bytes(w)));
                }};
            }
            macro_rules! store {
                ($m:expr, $n:expr) => {{
                    let v = pop!();
                    let addr = pop!() as u32;
                    self.touch($m.memory, addr as u64 + $m.offset, $n as u32);
                    let b = self.bytes_mut($m, addr, $n, &unsupported)?;
                    b.copy_from_slice(&v.to_le_bytes()[..$n]);
                }};
            }
            let mut next = pc + 1;
            match op {
                Operator::Nop => {}
                Operator::Unreachable => return Err(trap("unreachable")),
                Operator::Block { blockty } | Operator::Loop { blockty } => {
                    let (params, results) = self.arity(blockty, &unsupported)?;
                    let is_loop = matches!(op, Operator::Loop { .. });
                    let end = code.end[pc];
                    labels.push(Label {
                        target: if is_loop { pc } else { end },
                        arity: if is_loop { params } else { results },
                        height: stack.len() - params,
                    });
                }
                Operator::If { blockty } => {
                    let (params, results) = self.arity(blockty, &unsupported)?;
                    let c = pop!() as u32;
                    let end = code.end[pc];
                    labels.push(Label {
                        target: end,
                        arity: results,
                        height: stack.len() - params,
                    });
                    if c == 0 {
                        next = match code.els[pc] {
                            Some(e) => e + 1,
                            None => end,
                        };
                    }
                }
                // Reached at the end of a `then` branch: continue after the `end`.
                Operator::Else => {
                    let l = labels.pop().expect("validated");
                    next = l.target + 1;
                }
                Operator::End => {
                    labels.pop();
                    if labels.is_empty() {
                        break;
                    }
                }
                Operator::Br { relative_depth } => {
                    next = branch(&mut labels, &mut stack, relative_depth, &code.ops);
                }
                Operator::BrIf { relative_depth } => {
                    if pop!() as u32 != 0 {
                        next = branch(&mut labels, &mut stack, relative_depth, &code.ops);
                    }
                }
                Operator::BrTable { targets } => {
                    let i = pop!() as u32;
                    let all: Vec<u32> = targets
                        .targets()
                        .collect::<Result<_, _>>()
                        .map_err(|_| unsupported("a malformed br_table"))?;
                    let d = all.get(i as usize).copied().unwrap_or(targets.default());
                    next = branch(&mut labels, &mut stack, d, &code.ops);
                }
                Operator::Return => {
                    let d = labels.len() as u32 - 1;
                    next = branch(&mut labels, &mut stack, d, &code.ops);
                }
                Operator::Call { function_index } => {
                    let ty = self
                        .module
                        .func_type(function_index)
                        .ok_or_else(|| unsupported("a call of an unknown function"))?;
                    let n = ty.params().len();
                    let args = stack.split_off(stack.len() - n);
                    let results = self.call(function_index, args, host, depth + 1)?;
                    stack.extend(results);
                }
                Operator::Drop => {
                    pop!();
                }
                Operator::Select | Operator::TypedSelect { .. } => {
                    let c = pop!() as u32;
                    let b = pop!();
                    let a = pop!();
                    stack.push(if c != 0 { a } else { b });
                }
                Operator::LocalGet { local_index } => stack.push(locals[local_index as usize]),
                Operator::LocalSet { local_index } => locals[local_index as usize] = pop!(),
                Operator::LocalTee { local_index } => {
                    locals[local_index as usize] = *stack.last().expect("validated")
                }
                Operator::GlobalGet { global_index } => {
                    let g = &self.module.globals[global_index as usize];
                    if g.import.is_some() || g.init.is_none() {
                        return Err(unsupported(
                            "a read of a global that is imported or not a constant",
                        ));
                    }
                    stack.push(self.globals[global_index as usize]);
                }
                Operator::GlobalSet { global_index } => {
                    self.globals[global_index as usize] = pop!()
                }
                Operator::I32Const { value } => stack.push(value as u32 as u64),
                Operator::I64Const { value } => stack.push(value as u64),
                Operator::F32Const { value } => stack.push(value.bits() as u64),
                Operator::F64Const { value } => stack.push(value.bits()),
                Operator::I32Load { memarg } | Operator::F32Load { memarg } => {
                    load!(&memarg, 4, |v: u64| v)
                }
                Operator::I64Load { memarg } | Operator::F64Load { memarg } => {
                    load!(&memarg, 8, |v: u64| v)
                }
                Operator::I32Load8S { memarg } => {
                    load!(&memarg, 1, |v: u64| v as i8 as i32 as u32 as u64)
                }
                Operator::I32Load8U { memarg } | Operator::I64Load8U { memarg } => {
                    load!(&memarg, 1, |v: u64| v)
                }
                Operator::I32Load16S { memarg } => {
                    load!(&memarg, 2, |v: u64| v as i16 as i32 as u32 as u64)
                }
                Operator::I32Load16U { memarg } | Operator::I64Load16U { memarg } => {
                    load!(&memarg, 2, |v: u64| v)
                }
                Operator::I64Load8S { memarg } => load!(&memarg, 1, |v: u64| v as i8 as i64 as u64),
                Operator::I64Load16S { memarg } => {
                    load!(&memarg, 2, |v: u64| v as i16 as i64 as u64)
                }
                Operator::I64Load32S { memarg } => {
                    load!(&memarg, 4, |v: u64| v as i32 as i64 as u64)
                }
                Operator::I64Load32U { memarg } => load!(&memarg, 4, |v: u64| v),
                Operator::I32Store { memarg }
                | Operator::F32Store { memarg }
                | Operator::I64Store32 { memarg } => store!(&memarg, 4),
                Operator::I64Store { memarg } | Operator::F64Store { memarg } => store!(&memarg, 8),
                Operator::I32Store8 { memarg } | Operator::I64Store8 { memarg } => {
                    store!(&memarg, 1)
                }
                Operator::I32Store16 { memarg } | Operator::I64Store16 { memarg } => {
                    store!(&memarg, 2)
                }
                Operator::MemorySize { mem } => {
                    let m = self.memory(mem, &unsupported)?;
                    stack.push((m.len() / PAGE) as u64);
                }
                Operator::MemoryCopy { dst_mem, src_mem } => {
                    let n = pop!() as u32;
                    let s = pop!() as u32;
                    let d = pop!() as u32;
                    let from = self.range(src_mem, s, n, &unsupported)?;
                    let bytes = self.memory(src_mem, &unsupported)?[from].to_vec();
                    let to = self.range(dst_mem, d, n, &unsupported)?;
                    self.touch(dst_mem, d as u64, n);
                    self.memory_mut(dst_mem)[to].copy_from_slice(&bytes);
                }
                Operator::MemoryFill { mem } => {
                    let n = pop!() as u32;
                    let v = pop!() as u8;
                    let d = pop!() as u32;
                    let to = self.range(mem, d, n, &unsupported)?;
                    self.touch(mem, d as u64, n);
                    self.memory_mut(mem)[to].fill(v);
                }
                Operator::MemoryInit { data_index, mem } => {
                    let n = pop!() as usize;
                    let s = pop!() as u32 as usize;
                    let d = pop!() as u32;
                    let seg: &[u8] = if self.dropped[data_index as usize] {
                        &[]
                    } else {
                        self.module.data[data_index as usize].bytes
                    };
                    let Some(src) = seg.get(s..s.saturating_add(n)) else {
                        return Err(trap("out of bounds memory.init"));
                    };
                    let src = src.to_vec();
                    let to = self.range(mem, d, n as u32, &unsupported)?;
                    self.touch(mem, d as u64, n as u32);
                    self.memory_mut(mem)[to].copy_from_slice(&src);
                }
                Operator::DataDrop { data_index } => self.dropped[data_index as usize] = true,

                Operator::I32Eqz => un32!(|a: u32| a == 0),
                Operator::I32Eq => bin32!(|a: u32, b: u32| a == b),
                Operator::I32Ne => bin32!(|a: u32, b: u32| a != b),
                Operator::I32LtS => bin32!(|a: u32, b: u32| (a as i32) < b as i32),
                Operator::I32LtU => bin32!(|a: u32, b: u32| a < b),
                Operator::I32GtS => bin32!(|a: u32, b: u32| a as i32 > b as i32),
                Operator::I32GtU => bin32!(|a: u32, b: u32| a > b),
                Operator::I32LeS => bin32!(|a: u32, b: u32| a as i32 <= b as i32),
                Operator::I32LeU => bin32!(|a: u32, b: u32| a <= b),
                Operator::I32GeS => bin32!(|a: u32, b: u32| a as i32 >= b as i32),
                Operator::I32GeU => bin32!(|a: u32, b: u32| a >= b),
                Operator::I64Eqz => {
                    let a = pop!();
                    stack.push((a == 0) as u64);
                }
                Operator::I64Eq => bin64!(|a: u64, b: u64| a == b),
                Operator::I64Ne => bin64!(|a: u64, b: u64| a != b),
                Operator::I64LtS => bin64!(|a: u64, b: u64| (a as i64) < b as i64),
                Operator::I64LtU => bin64!(|a: u64, b: u64| a < b),
                Operator::I64GtS => bin64!(|a: u64, b: u64| a as i64 > b as i64),
                Operator::I64GtU => bin64!(|a: u64, b: u64| a > b),
                Operator::I64LeS => bin64!(|a: u64, b: u64| a as i64 <= b as i64),
                Operator::I64LeU => bin64!(|a: u64, b: u64| a <= b),
                Operator::I64GeS => bin64!(|a: u64, b: u64| a as i64 >= b as i64),
                Operator::I64GeU => bin64!(|a: u64, b: u64| a >= b),

                Operator::I32Clz => un32!(|a: u32| a.leading_zeros()),
                Operator::I32Ctz => un32!(|a: u32| a.trailing_zeros()),
                Operator::I32Popcnt => un32!(|a: u32| a.count_ones()),
                Operator::I32Add => bin32!(|a: u32, b: u32| a.wrapping_add(b)),
                Operator::I32Sub => bin32!(|a: u32, b: u32| a.wrapping_sub(b)),
                Operator::I32Mul => bin32!(|a: u32, b: u32| a.wrapping_mul(b)),
                Operator::I32And => bin32!(|a: u32, b: u32| a & b),
                Operator::I32Or => bin32!(|a: u32, b: u32| a | b),
                Operator::I32Xor => bin32!(|a: u32, b: u32| a ^ b),
                Operator::I32Shl => bin32!(|a: u32, b: u32| a.wrapping_shl(b)),
                Operator::I32ShrS => bin32!(|a: u32, b: u32| (a as i32).wrapping_shr(b) as u32),
                Operator::I32ShrU => bin32!(|a: u32, b: u32| a.wrapping_shr(b)),
                Operator::I32Rotl => bin32!(|a: u32, b: u32| a.rotate_left(b % 32)),
                Operator::I32Rotr => bin32!(|a: u32, b: u32| a.rotate_right(b % 32)),
                Operator::I64Clz => un64!(|a: u64| a.leading_zeros()),
                Operator::I64Ctz => un64!(|a: u64| a.trailing_zeros()),
                Operator::I64Popcnt => un64!(|a: u64| a.count_ones()),
                Operator::I64Add => bin64!(|a: u64, b: u64| a.wrapping_add(b)),
                Operator::I64Sub => bin64!(|a: u64, b: u64| a.wrapping_sub(b)),
                Operator::I64Mul => bin64!(|a: u64, b: u64| a.wrapping_mul(b)),
                Operator::I64And => bin64!(|a: u64, b: u64| a & b),
                Operator::I64Or => bin64!(|a: u64, b: u64| a | b),
                Operator::I64Xor => bin64!(|a: u64, b: u64| a ^ b),
                Operator::I64Shl => bin64!(|a: u64, b: u64| a.wrapping_shl(b as u32)),
                Operator::I64ShrS => {
                    bin64!(|a: u64, b: u64| (a as i64).wrapping_shr(b as u32) as u64)
                }
                Operator::I64ShrU => bin64!(|a: u64, b: u64| a.wrapping_shr(b as u32)),
                Operator::I64Rotl => bin64!(|a: u64, b: u64| a.rotate_left((b % 64) as u32)),
                Operator::I64Rotr => bin64!(|a: u64, b: u64| a.rotate_right((b % 64) as u32)),
                Operator::I32DivS
                | Operator::I32DivU
                | Operator::I32RemS
                | Operator::I32RemU
                | Operator::I64DivS
                | Operator::I64DivU
                | Operator::I64RemS
                | Operator::I64RemU => {
                    let b = pop!();
                    let a = pop!();
                    stack.push(div(&op, a, b)?);
                }
                Operator::I32WrapI64 => un64!(|a: u64| a as u32),
                Operator::I64ExtendI32S => un64!(|a: u64| a as u32 as i32 as i64),
                Operator::I64ExtendI32U => un64!(|a: u64| a as u32),
                Operator::I32Extend8S => un32!(|a: u32| a as i8 as i32),
                Operator::I32Extend16S => un32!(|a: u32| a as i16 as i32),
                Operator::I64Extend8S => un64!(|a: u64| a as i8 as i64),
                Operator::I64Extend16S => un64!(|a: u64| a as i16 as i64),
                Operator::I64Extend32S => un64!(|a: u64| a as i32 as i64),
                // Bits move unchanged: a float's bits are its value here.
                Operator::I32ReinterpretF32
                | Operator::F32ReinterpretI32
                | Operator::I64ReinterpretF64
                | Operator::F64ReinterpretI64 => {}
                other => {
                    return Err(unsupported(&format!("instruction {other:?}")));
                }
            }
            pc = next;
        }
        let arity = ty.results().len();
        Ok(stack.split_off(stack.len() - arity))
    }

    fn arity(
        &self,
        bt: BlockType,
        unsupported: &dyn Fn(&str) -> Stop,
    ) -> Result<(usize, usize), Stop> {
        Ok(match bt {
            BlockType::Empty => (0, 0),
            BlockType::Type(_) => (0, 1),
            BlockType::FuncType(t) => {
                let ty = self
                    .module
                    .types
                    .get(t as usize)
                    .and_then(|t| t.as_ref())
                    .ok_or_else(|| unsupported("a block type that is not a function type"))?;
                (ty.params().len(), ty.results().len())
            }
        })
    }

    fn memory(&self, mem: u32, unsupported: &dyn Fn(&str) -> Stop) -> Result<&[u8], Stop> {
        match self.memories.get(mem as usize) {
            Some(Some(m)) => Ok(m),
            _ => Err(unsupported(
                "a memory that is 64-bit or of custom page size",
            )),
        }
    }

    /// Notes a write to a memory.
    fn touch(&mut self, mem: u32, at: u64, len: u32) {
        if at <= u32::MAX as u64 {
            self.dirty.push((mem, at as u32, len));
        }
    }

    /// A memory already checked with [`Self::memory`].
    fn memory_mut(&mut self, mem: u32) -> &mut [u8] {
        self.memories[mem as usize].as_mut().expect("checked")
    }

    fn range(
        &self,
        mem: u32,
        at: u32,
        n: u32,
        unsupported: &dyn Fn(&str) -> Stop,
    ) -> Result<std::ops::Range<usize>, Stop> {
        let len = self.memory(mem, unsupported)?.len();
        let end = at as usize + n as usize;
        if end > len {
            return Err(trap("out of bounds memory access"));
        }
        Ok(at as usize..end)
    }

    fn bytes(
        &self,
        memarg: &MemArg,
        addr: u32,
        n: usize,
        unsupported: &dyn Fn(&str) -> Stop,
    ) -> Result<&[u8], Stop> {
        let at = addr as u64 + memarg.offset;
        let m = self.memory(memarg.memory, unsupported)?;
        m.get(at as usize..at as usize + n)
            .ok_or_else(|| trap("out of bounds memory access"))
    }

    fn bytes_mut(
        &mut self,
        memarg: &MemArg,
        addr: u32,
        n: usize,
        unsupported: &dyn Fn(&str) -> Stop,
    ) -> Result<&mut [u8], Stop> {
        let at = addr as u64 + memarg.offset;
        self.memory(memarg.memory, unsupported)?;
        self.memory_mut(memarg.memory)
            .get_mut(at as usize..at as usize + n)
            .ok_or_else(|| trap("out of bounds memory access"))
    }

    /// `len` bytes of memory `mem` at `at`, if they are in bounds.
    pub fn read(&self, mem: u32, at: u32, len: u32) -> Option<&[u8]> {
        self.memories
            .get(mem as usize)?
            .as_ref()?
            .get(at as usize..at as usize + len as usize)
    }

    /// Writes `bytes` to memory `mem` at `at`; false when out of bounds.
    pub fn write(&mut self, mem: u32, at: u32, bytes: &[u8]) -> bool {
        self.touch(mem, at as u64, bytes.len() as u32);
        match self
            .memories
            .get_mut(mem as usize)
            .and_then(|m| m.as_mut())
            .and_then(|m| m.get_mut(at as usize..at as usize + bytes.len()))
        {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

/// Moves the branch's values down to the label's height and returns where to continue.
fn branch(
    labels: &mut Vec<Label>,
    stack: &mut Vec<u64>,
    depth: u32,
    ops: &[(Operator, usize)],
) -> usize {
    let keep = labels.len() - 1 - depth as usize;
    let l = &labels[keep];
    let vals = stack.split_off(stack.len() - l.arity);
    stack.truncate(l.height);
    stack.extend(vals);
    let target = l.target;
    if ops
        .get(target)
        .is_some_and(|o| matches!(o.0, Operator::Loop { .. }))
    {
        // A loop's label stays; execution restarts after the `loop` itself.
        labels.truncate(keep + 1);
        target + 1
    } else {
        labels.truncate(keep);
        // Past the block's `end`, whose label is already gone.
        target + 1
    }
}

/// Division and remainder of either width; i32 operands are the low halves of `a` and
/// `b`, sign-extended for the signed operators so one i64 computation serves both.
fn div(op: &Operator, a: u64, b: u64) -> Result<u64, Stop> {
    use Operator as O;
    let wide = matches!(op, O::I64DivS | O::I64DivU | O::I64RemS | O::I64RemU);
    let (a, b, sa, sb, min) = match wide {
        true => (a, b, a as i64, b as i64, i64::MIN),
        false => {
            let (a, b) = (a as u32, b as u32);
            (
                a as u64,
                b as u64,
                a as i32 as i64,
                b as i32 as i64,
                i32::MIN as i64,
            )
        }
    };
    if b == 0 {
        return Err(trap("integer divide by zero"));
    }
    let r = match op {
        O::I32DivS | O::I64DivS if sa == min && sb == -1 => return Err(trap("integer overflow")),
        O::I32DivS | O::I64DivS => (sa / sb) as u64,
        O::I32RemS | O::I64RemS => sa.wrapping_rem(sb) as u64,
        O::I32DivU | O::I64DivU => a / b,
        _ => a % b,
    };
    Ok(if wide { r } else { r as u32 as u64 })
}

fn decode<'a>(func: u32, body: &FunctionBody<'a>) -> Result<Code<'a>, Stop> {
    let bad = |e: wasmparser::BinaryReaderError| Stop::Unsupported {
        func,
        offset: e.offset(),
        what: format!("a malformed body: {}", e.message()),
    };
    let mut locals = Vec::new();
    for l in body.get_locals_reader().map_err(bad)? {
        let (n, t) = l.map_err(bad)?;
        if n > 100_000 {
            return Err(Stop::Unsupported {
                func,
                offset: 0,
                what: "a function with too many locals".into(),
            });
        }
        locals.extend(std::iter::repeat_n(t, n as usize));
    }
    let mut ops = Vec::new();
    let mut reader = body.get_operators_reader().map_err(bad)?;
    while !reader.eof() {
        let at = reader.original_position();
        ops.push((reader.read().map_err(bad)?, at));
    }
    let mut end = vec![0; ops.len()];
    let mut els = vec![None; ops.len()];
    let mut open: Vec<usize> = Vec::new();
    for (i, (op, _)) in ops.iter().enumerate() {
        match op {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => open.push(i),
            Operator::Else => {
                if let Some(&b) = open.last() {
                    els[b] = Some(i);
                }
            }
            Operator::End => {
                if let Some(b) = open.pop() {
                    end[b] = i;
                }
            }
            _ => {}
        }
    }
    Ok(Code {
        ops,
        locals,
        end,
        els,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operator as O;

    fn i32v(v: i32) -> u64 {
        v as u32 as u64
    }

    #[test]
    fn signed_i32_division_reads_the_low_half_as_signed_and_truncates_toward_zero() {
        assert_eq!(div(&O::I32DivS, i32v(-7), i32v(2)).ok(), Some(i32v(-3)));
        assert_eq!(div(&O::I32RemS, i32v(-7), i32v(2)).ok(), Some(i32v(-1)));
    }

    #[test]
    fn unsigned_i32_division_reads_the_low_half_as_unsigned() {
        assert_eq!(div(&O::I32DivU, i32v(-2), 2).ok(), Some(0x7fff_ffff));
        assert_eq!(div(&O::I32RemU, i32v(-1), 10).ok(), Some(5));
    }

    #[test]
    fn the_minimum_divided_by_minus_one_traps_and_its_remainder_is_zero() {
        for (div_op, rem_op, min) in [
            (O::I32DivS, O::I32RemS, i32v(i32::MIN)),
            (O::I64DivS, O::I64RemS, i64::MIN as u64),
        ] {
            let m1 = if min == i32v(i32::MIN) {
                i32v(-1)
            } else {
                u64::MAX
            };
            assert!(matches!(div(&div_op, min, m1), Err(Stop::Trap(_))));
            assert_eq!(div(&rem_op, min, m1).ok(), Some(0));
        }
    }

    #[test]
    fn division_by_zero_traps_at_either_width() {
        for op in [O::I32DivU, O::I32RemS, O::I64DivS, O::I64RemU] {
            assert!(matches!(div(&op, 1, 0), Err(Stop::Trap(_))));
        }
        // Only the low half of an i32 divisor counts.
        assert!(matches!(div(&O::I32DivU, 1, 1 << 32), Err(Stop::Trap(_))));
    }

    #[test]
    fn i64_division_uses_all_64_bits() {
        assert_eq!(div(&O::I64DivU, u64::MAX, 2).ok(), Some(u64::MAX / 2));
        assert_eq!(
            div(&O::I64DivS, (-9i64) as u64, 2).ok(),
            Some((-4i64) as u64)
        );
    }
}
