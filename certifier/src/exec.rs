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
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use wasmparser::{BlockType, FunctionBody, Operator as O};

use crate::module::Module;

pub(crate) const PAGE: usize = 65536;
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

fn trap(why: &str) -> Stop {
    Stop::Trap(why.to_string())
}

impl Stop {
    fn unsupported(func: u32, offset: usize, what: &str) -> Stop {
        let what = what.to_string();
        Stop::Unsupported { func, offset, what }
    }
}

/// Answers calls of imports.
pub trait Host {
    fn call(&mut self, inst: &mut Instance, import: u32, args: &[u64]) -> Result<Vec<u64>, Stop>;
}

/// A function body decoded once: its operators and where each block ends.
struct Code<'a> {
    ops: Vec<(O<'a>, usize)>,
    /// How many locals it declares (all start at zero bits).
    locals: usize,
    /// For the index of a `block`, `loop` or `if`: the index of its `end` and, for an
    /// `if` with one, of its `else`.
    blocks: Vec<(usize, Option<usize>)>,
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

impl<'m, 'a> Instance<'m, 'a> {
    /// A fresh instance: globals from their constant initialisers, the host memory (at
    /// `host_pages`) and the memories in `modelled` at their minimum size, filled by the
    /// active data segments; any other memory is not modelled (an access to it stops a
    /// run). An error with the reason when this cannot be modelled.
    pub fn new(
        module: &'m Module<'a>,
        host_pages: usize,
        modelled: &BTreeSet<u32>,
    ) -> Result<Self, String> {
        // Imported or non-constant globals (no `init`): no monitor may name them (state
        // integrity); a read of one in a monitor stops the run.
        let globals = module
            .globals
            .iter()
            .enumerate()
            .map(|(i, g)| g.init.unwrap_or(u64::MAX ^ i as u64))
            .collect();
        let host = module.host_memory();
        let mut memories = Vec::new();
        for (i, m) in module.memories.iter().enumerate() {
            let is_host = Some(i as u32) == host;
            // A shared memory is modelled as any other: the sampled calls run on one thread
            // (a policy reading strings from one has opted in to that race).
            let model = (is_host || modelled.contains(&(i as u32)))
                && !m.ty.memory64
                && m.ty.page_size_log2.is_none();
            let pages = if is_host {
                host_pages
            } else {
                m.ty.initial as usize
            };
            if model && pages > 4096 {
                return Err(format!("memory {i} starts larger than 256 MiB"));
            }
            memories.push(model.then(|| vec![0u8; pages * PAGE]));
        }
        for (d, data) in module.data.iter().enumerate() {
            let Some((mem, offset)) = data.active else {
                continue;
            };
            // A memory that is not modelled: no monitor reads it (validation keeps `mem`
            // in range).
            let Some(Some(m)) = memories.get_mut(mem as usize) else {
                continue;
            };
            let offset = offset.ok_or(format!("data segment {d} has no constant offset"))?;
            let start = offset as usize;
            let Some(dst) = m.get_mut(start..start + data.bytes.len()) else {
                return Err(format!("data segment {d} does not fit its memory"));
            };
            dst.copy_from_slice(data.bytes);
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
        let code = match self.codes.get(&func) {
            Some(code) => Rc::clone(code),
            None => {
                let what = "a call of a function without a body";
                let body = self.module.body(func);
                let body = body.ok_or_else(|| Stop::unsupported(func, 0, what))?;
                let code = Rc::new(decode(func, body)?);
                self.codes.insert(func, Rc::clone(&code));
                code
            }
        };
        let what = "a function whose type is not a function type";
        let ty = self.module.func_type(func);
        let ty = ty.ok_or_else(|| Stop::unsupported(func, 0, what))?;
        let arity = ty.results().len();
        let mut locals = args;
        locals.resize(locals.len() + code.locals, 0);
        let mut stack: Vec<u64> = Vec::new();
        let mut labels = vec![Label {
            target: code.ops.len(),
            arity,
            height: 0,
        }];
        let mut pc = 0usize;
        while let Some((op, offset)) = code.ops.get(pc) {
            let (op, offset) = (op.clone(), *offset);
            let unsupported = |what: &str| Stop::unsupported(func, offset, what);
            self.fuel += 1;
            if self.fuel > FUEL {
                return Err(unsupported("a call that runs for too long"));
            }
            macro_rules! pop {
                () => {
                    stack
                        .pop()
                        .ok_or_else(|| unsupported("an empty operand stack"))?
                };
            }
            // A unary operator on the top value `$a` (all bits).
            macro_rules! un {
                ($a:ident => $e:expr) => {{
                    let $a = pop!();
                    stack.push($e)
                }};
            }
            // A load of `$n` bytes, read as `$v` (zero-extended) and pushed as `$e`.
            macro_rules! load {
                ($m:expr, $n:expr, $v:ident => $e:expr) => {{
                    let at = pop!() as u32 as u64 + $m.offset;
                    let mut w = [0u8; 8];
                    w[..$n].copy_from_slice(self.bytes($m.memory, at, $n, false, &unsupported)?);
                    let $v = u64::from_le_bytes(w);
                    stack.push($e);
                }};
            }
            macro_rules! store {
                ($m:expr, $n:expr) => {{
                    let v = pop!();
                    let at = pop!() as u32 as u64 + $m.offset;
                    let b = self.bytes($m.memory, at, $n, true, &unsupported)?;
                    b.copy_from_slice(&v.to_le_bytes()[..$n]);
                }};
            }
            let mut next = pc + 1;
            match op {
                O::Nop => {}
                O::Unreachable => return Err(trap("unreachable")),
                O::Block { blockty } | O::Loop { blockty } | O::If { blockty } => {
                    let (params, results) = match blockty {
                        BlockType::Empty => (0, 0),
                        BlockType::Type(_) => (0, 1),
                        BlockType::FuncType(t) => {
                            let what = "a block type that is not a function type";
                            let ty = self.module.types.get(t as usize).and_then(Option::as_ref);
                            let ty = ty.ok_or_else(|| unsupported(what))?;
                            (ty.params().len(), ty.results().len())
                        }
                    };
                    let is_loop = matches!(op, O::Loop { .. });
                    let (end, els) = code.blocks[pc];
                    if matches!(op, O::If { .. }) && pop!() as u32 == 0 {
                        next = els.map_or(end, |e| e + 1);
                    }
                    labels.push(Label {
                        target: if is_loop { pc } else { end },
                        arity: if is_loop { params } else { results },
                        height: stack.len() - params,
                    });
                }
                // Reached at the end of a `then` branch: continue after the `end`.
                O::Else => next = labels.pop().expect("validated").target + 1,
                O::End => {
                    labels.pop();
                    if labels.is_empty() {
                        break;
                    }
                }
                O::Br { relative_depth } => {
                    next = branch(&mut labels, &mut stack, relative_depth, &code.ops);
                }
                O::BrIf { relative_depth } => {
                    if pop!() as u32 != 0 {
                        next = branch(&mut labels, &mut stack, relative_depth, &code.ops);
                    }
                }
                O::BrTable { targets } => {
                    let i = pop!() as u32;
                    let all: Result<Vec<u32>, _> = targets.targets().collect();
                    let all = all.map_err(|_| unsupported("a malformed br_table"))?;
                    let d = all.get(i as usize).copied().unwrap_or(targets.default());
                    next = branch(&mut labels, &mut stack, d, &code.ops);
                }
                O::Return => {
                    let d = labels.len() as u32 - 1;
                    next = branch(&mut labels, &mut stack, d, &code.ops);
                }
                O::Call { function_index } => {
                    let ty = self.module.func_type(function_index);
                    let ty = ty.ok_or_else(|| unsupported("a call of an unknown function"))?;
                    let args = stack.split_off(stack.len() - ty.params().len());
                    let results = self.call(function_index, args, host, depth + 1)?;
                    stack.extend(results);
                }
                O::Drop => {
                    pop!();
                }
                O::Select | O::TypedSelect { .. } => {
                    let c = pop!() as u32;
                    let b = pop!();
                    let a = pop!();
                    stack.push(if c != 0 { a } else { b });
                }
                O::LocalGet { local_index } => stack.push(locals[local_index as usize]),
                O::LocalSet { local_index } => locals[local_index as usize] = pop!(),
                O::LocalTee { local_index } => {
                    locals[local_index as usize] = *stack.last().expect("validated")
                }
                O::GlobalGet { global_index } => {
                    if self.module.globals[global_index as usize].init.is_none() {
                        let what = "a read of a global that is imported or not a constant";
                        return Err(unsupported(what));
                    }
                    stack.push(self.globals[global_index as usize]);
                }
                O::GlobalSet { global_index } => self.globals[global_index as usize] = pop!(),
                O::I32Const { value } => stack.push(value as u32 as u64),
                O::I64Const { value } => stack.push(value as u64),
                O::F32Const { value } => stack.push(value.bits() as u64),
                O::F64Const { value } => stack.push(value.bits()),
                O::I32Load { memarg } | O::F32Load { memarg } => load!(memarg, 4, v => v),
                O::I64Load { memarg } | O::F64Load { memarg } => load!(memarg, 8, v => v),
                O::I32Load8S { memarg } => load!(memarg, 1, v => v as i8 as u32 as u64),
                O::I32Load8U { memarg } | O::I64Load8U { memarg } => load!(memarg, 1, v => v),
                O::I32Load16S { memarg } => load!(memarg, 2, v => v as i16 as u32 as u64),
                O::I32Load16U { memarg } | O::I64Load16U { memarg } => load!(memarg, 2, v => v),
                O::I64Load8S { memarg } => load!(memarg, 1, v => v as i8 as u64),
                O::I64Load16S { memarg } => load!(memarg, 2, v => v as i16 as u64),
                O::I64Load32S { memarg } => load!(memarg, 4, v => v as i32 as u64),
                O::I64Load32U { memarg } => load!(memarg, 4, v => v),
                O::I32Store { memarg } | O::F32Store { memarg } | O::I64Store32 { memarg } => {
                    store!(memarg, 4)
                }
                O::I64Store { memarg } | O::F64Store { memarg } => store!(memarg, 8),
                O::I32Store8 { memarg } | O::I64Store8 { memarg } => store!(memarg, 1),
                O::I32Store16 { memarg } | O::I64Store16 { memarg } => store!(memarg, 2),
                O::MemorySize { mem } => {
                    let len = self.memory(mem, &unsupported)?.len();
                    stack.push((len / PAGE) as u64);
                }
                O::MemoryCopy { dst_mem, src_mem } => {
                    let n = pop!() as u32 as usize;
                    let s = pop!() as u32 as u64;
                    let d = pop!() as u32 as u64;
                    let bytes = self.bytes(src_mem, s, n, false, &unsupported)?.to_vec();
                    self.bytes(dst_mem, d, n, true, &unsupported)?
                        .copy_from_slice(&bytes);
                }
                O::MemoryFill { mem } => {
                    let n = pop!() as u32 as usize;
                    let v = pop!() as u8;
                    let d = pop!() as u32 as u64;
                    self.bytes(mem, d, n, true, &unsupported)?.fill(v);
                }
                O::MemoryInit { data_index, mem } => {
                    let n = pop!() as u32 as usize;
                    let s = pop!() as u32 as usize;
                    let d = pop!() as u32 as u64;
                    let seg: &[u8] = if self.dropped[data_index as usize] {
                        &[]
                    } else {
                        self.module.data[data_index as usize].bytes
                    };
                    let Some(src) = seg.get(s..s.saturating_add(n)) else {
                        return Err(trap("out of bounds memory.init"));
                    };
                    self.bytes(mem, d, n, true, &unsupported)?
                        .copy_from_slice(src);
                }
                O::DataDrop { data_index } => self.dropped[data_index as usize] = true,
                O::I32WrapI64 | O::I64ExtendI32U => un!(a => a as u32 as u64),
                O::I64ExtendI32S => un!(a => a as i32 as u64),
                O::I32Extend8S => un!(a => a as i8 as u32 as u64),
                O::I32Extend16S => un!(a => a as i16 as u32 as u64),
                O::I64Extend8S => un!(a => a as i8 as u64),
                O::I64Extend16S => un!(a => a as i16 as u64),
                O::I64Extend32S => un!(a => a as i32 as u64),
                // Bits move unchanged: a float's bits are its value here.
                O::I32ReinterpretF32
                | O::F32ReinterpretI32
                | O::I64ReinterpretF64
                | O::F64ReinterpretI64 => {}
                other => numeric(&other, &mut stack).map_err(|trap| {
                    trap.unwrap_or_else(|| unsupported(&format!("instruction {other:?}")))
                })?,
            }
            pc = next;
        }
        Ok(stack.split_off(stack.len() - arity))
    }

    /// Memory `mem`, or `unsupported` when this interpreter does not model it.
    fn memory(
        &mut self,
        mem: u32,
        unsupported: &dyn Fn(&str) -> Stop,
    ) -> Result<&mut Vec<u8>, Stop> {
        self.memories
            .get_mut(mem as usize)
            .and_then(|m| m.as_mut())
            .ok_or_else(|| unsupported("a memory that is 64-bit or of custom page size"))
    }

    /// `n` bytes of memory `mem` at `at`, noted as written when `write`; a trap when
    /// they are out of bounds.
    fn bytes(
        &mut self,
        mem: u32,
        at: u64,
        n: usize,
        write: bool,
        unsupported: &dyn Fn(&str) -> Stop,
    ) -> Result<&mut [u8], Stop> {
        if write && at <= u32::MAX as u64 {
            self.dirty.push((mem, at as u32, n as u32));
        }
        self.memory(mem, unsupported)?
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
        let dst = self.bytes(mem, at as u64, bytes.len(), true, &|_| Stop::HostTrap);
        dst.map(|d| d.copy_from_slice(bytes)).is_ok()
    }
}

/// The integer operators of both widths, each written once over `U` and `S`, the
/// unsigned and signed type of its width: operands are the low bits of stack values,
/// and an `i32` result is kept zero-extended. `Err(None)` for any other operator,
/// `Err(Some(trap))` when it traps.
fn numeric(op: &O, stack: &mut Vec<u64>) -> Result<(), Option<Stop>> {
    macro_rules! both {
        ($($o32:ident $o64:ident |$($x:ident),+| $e:expr;)*) => {
            match op {
                $(
                    O::$o32 => both!(@ u32 i32 ($($x),+) $e),
                    O::$o64 => both!(@ u64 i64 ($($x),+) $e),
                )*
                _ => return Err(None),
            }
        };
        (@ $u:ident $s:ident ($($x:ident),+) $e:expr) => {{
            type U = $u;
            #[allow(dead_code)]
            type S = $s;
            both!(@pop $($x),+);
            stack.push(($e) as U as u64);
        }};
        (@pop $a:ident) => {
            let $a = stack.pop().ok_or(None)? as U;
        };
        (@pop $a:ident, $b:ident) => {
            let $b = stack.pop().ok_or(None)? as U;
            let $a = stack.pop().ok_or(None)? as U;
        };
    }
    // A division without a result: by zero, or of the minimum by -1.
    let undefined = |by_zero: bool| {
        Some(trap(if by_zero {
            "integer divide by zero"
        } else {
            "integer overflow"
        }))
    };
    both! {
        I32Eqz I64Eqz |a| a == 0;
        I32Eq I64Eq |a, b| a == b;
        I32Ne I64Ne |a, b| a != b;
        I32LtS I64LtS |a, b| (a as S) < b as S;
        I32LtU I64LtU |a, b| a < b;
        I32GtS I64GtS |a, b| a as S > b as S;
        I32GtU I64GtU |a, b| a > b;
        I32LeS I64LeS |a, b| a as S <= b as S;
        I32LeU I64LeU |a, b| a <= b;
        I32GeS I64GeS |a, b| a as S >= b as S;
        I32GeU I64GeU |a, b| a >= b;
        I32Clz I64Clz |a| a.leading_zeros();
        I32Ctz I64Ctz |a| a.trailing_zeros();
        I32Popcnt I64Popcnt |a| a.count_ones();
        I32Add I64Add |a, b| a.wrapping_add(b);
        I32Sub I64Sub |a, b| a.wrapping_sub(b);
        I32Mul I64Mul |a, b| a.wrapping_mul(b);
        I32DivU I64DivU |a, b| a.checked_div(b).ok_or_else(|| undefined(true))?;
        I32DivS I64DivS |a, b| (a as S).checked_div(b as S).ok_or_else(|| undefined(b == 0))?;
        I32RemU I64RemU |a, b| a.checked_rem(b).ok_or_else(|| undefined(true))?;
        // The minimum's remainder by -1 is 0, not an overflow.
        I32RemS I64RemS |a, b| match b {
            0 => return Err(undefined(true)),
            _ => (a as S).wrapping_rem(b as S),
        };
        I32And I64And |a, b| a & b;
        I32Or I64Or |a, b| a | b;
        I32Xor I64Xor |a, b| a ^ b;
        I32Shl I64Shl |a, b| a.wrapping_shl(b as u32);
        I32ShrS I64ShrS |a, b| (a as S).wrapping_shr(b as u32);
        I32ShrU I64ShrU |a, b| a.wrapping_shr(b as u32);
        I32Rotl I64Rotl |a, b| a.rotate_left(b as u32 % U::BITS);
        I32Rotr I64Rotr |a, b| a.rotate_right(b as u32 % U::BITS);
    }
    Ok(())
}

/// Moves the branch's values down to the label's height and returns where to continue:
/// after the `loop` itself, whose label stays, or past a block's `end`, whose label goes.
fn branch(labels: &mut Vec<Label>, stack: &mut Vec<u64>, depth: u32, ops: &[(O, usize)]) -> usize {
    let keep = labels.len() - 1 - depth as usize;
    let l = &labels[keep];
    let vals = stack.split_off(stack.len() - l.arity);
    stack.truncate(l.height);
    stack.extend(vals);
    let target = l.target;
    let is_loop = matches!(ops.get(target), Some((O::Loop { .. }, _)));
    labels.truncate(keep + is_loop as usize);
    target + 1
}

fn decode<'a>(func: u32, body: &FunctionBody<'a>) -> Result<Code<'a>, Stop> {
    let bad = |e: wasmparser::BinaryReaderError| {
        let what = format!("a malformed body: {}", e.message());
        Stop::unsupported(func, e.offset(), &what)
    };
    let mut locals = 0;
    for l in body.get_locals_reader().map_err(bad)? {
        let (n, _) = l.map_err(bad)?;
        if n > 100_000 {
            let what = "a function with too many locals";
            return Err(Stop::unsupported(func, 0, what));
        }
        locals += n as usize;
    }
    let mut ops = Vec::new();
    let mut reader = body.get_operators_reader().map_err(bad)?;
    while !reader.eof() {
        let at = reader.original_position();
        ops.push((reader.read().map_err(bad)?, at));
    }
    let mut blocks = vec![(0, None); ops.len()];
    let mut open: Vec<usize> = Vec::new();
    for (i, (op, _)) in ops.iter().enumerate() {
        match op {
            O::Block { .. } | O::Loop { .. } | O::If { .. } => open.push(i),
            O::Else => {
                if let Some(&b) = open.last() {
                    blocks[b].1 = Some(i);
                }
            }
            O::End => {
                if let Some(b) = open.pop() {
                    blocks[b].0 = i;
                }
            }
            _ => {}
        }
    }
    Ok(Code {
        ops,
        locals,
        blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i32v(v: i32) -> u64 {
        v as u32 as u64
    }

    /// `op` applied to `args`: its one result, or a trap.
    fn apply(op: O, args: &[u64]) -> Result<u64, Stop> {
        let mut stack = args.to_vec();
        numeric(&op, &mut stack).map_err(|e| e.expect("an integer operator"))?;
        assert_eq!(stack.len(), 1);
        Ok(stack[0])
    }

    fn num(op: O, args: &[u64]) -> u64 {
        apply(op, args).expect("no trap")
    }

    fn div(op: O, a: u64, b: u64) -> Result<u64, Stop> {
        apply(op, &[a, b])
    }

    #[test]
    fn i32_operators_read_the_low_half_and_keep_their_result_zero_extended() {
        assert_eq!(num(O::I32Add, &[i32v(-1), 1]), 0);
        assert_eq!(num(O::I32Sub, &[0, 1]), i32v(-1));
        assert_eq!(num(O::I32Eqz, &[1 << 32]), 1);
        assert_eq!(num(O::I32LtS, &[i32v(-1), 0]), 1);
        assert_eq!(num(O::I32LtU, &[i32v(-1), 0]), 0);
        assert_eq!(num(O::I32GeS, &[i32v(i32::MIN), i32v(-1)]), 0);
        assert_eq!(num(O::I32Clz, &[1]), 31);
        assert_eq!(num(O::I32Ctz, &[0]), 32);
        assert_eq!(num(O::I32Popcnt, &[u64::MAX]), 32);
        assert_eq!(num(O::I32Mul, &[0x1_0000, 0x1_0000]), 0);
    }

    #[test]
    fn shifts_and_rotations_count_modulo_the_width() {
        assert_eq!(num(O::I32Shl, &[1, 33]), 2);
        assert_eq!(num(O::I64Shl, &[1, 65]), 2);
        assert_eq!(num(O::I32ShrS, &[i32v(i32::MIN), 1]), i32v(i32::MIN >> 1));
        assert_eq!(num(O::I32ShrU, &[i32v(i32::MIN), 1]), 0x4000_0000);
        assert_eq!(
            num(O::I64ShrS, &[i64::MIN as u64, 65]),
            (i64::MIN >> 1) as u64
        );
        assert_eq!(num(O::I32Rotl, &[0x8000_0001, 33]), 3);
        assert_eq!(num(O::I32Rotr, &[3, 1]), 0x8000_0001);
        assert_eq!(num(O::I64Rotl, &[1 << 63 | 1, 65]), 3);
        assert_eq!(num(O::I64Rotr, &[3, (1 << 32) + 1]), 1 << 63 | 1);
    }

    #[test]
    fn i64_operators_use_all_64_bits() {
        assert_eq!(num(O::I64Add, &[u64::MAX, 2]), 1);
        assert_eq!(num(O::I64LtS, &[u64::MAX, 0]), 1);
        assert_eq!(num(O::I64LtU, &[u64::MAX, 0]), 0);
        assert_eq!(num(O::I64Eqz, &[1 << 32]), 0);
        assert_eq!(num(O::I64Clz, &[1]), 63);
        assert_eq!(numeric(&O::I32WrapI64, &mut vec![1]), Err(None));
    }

    #[test]
    fn signed_i32_division_reads_the_low_half_as_signed_and_truncates_toward_zero() {
        assert_eq!(div(O::I32DivS, i32v(-7), i32v(2)).ok(), Some(i32v(-3)));
        assert_eq!(div(O::I32RemS, i32v(-7), i32v(2)).ok(), Some(i32v(-1)));
    }

    #[test]
    fn unsigned_i32_division_reads_the_low_half_as_unsigned() {
        assert_eq!(div(O::I32DivU, i32v(-2), 2).ok(), Some(0x7fff_ffff));
        assert_eq!(div(O::I32RemU, i32v(-1), 10).ok(), Some(5));
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
            assert_eq!(div(div_op, min, m1), Err(trap("integer overflow")));
            assert_eq!(div(rem_op, min, m1).ok(), Some(0));
        }
    }

    #[test]
    fn division_by_zero_traps_at_either_width() {
        for op in [O::I32DivU, O::I32RemS, O::I64DivS, O::I64RemU] {
            assert_eq!(div(op, 1, 0), Err(trap("integer divide by zero")));
        }
        // Only the low half of an i32 divisor counts.
        assert!(matches!(div(O::I32DivU, 1, 1 << 32), Err(Stop::Trap(_))));
    }

    #[test]
    fn i64_division_uses_all_64_bits() {
        assert_eq!(div(O::I64DivU, u64::MAX, 2).ok(), Some(u64::MAX / 2));
        assert_eq!(
            div(O::I64DivS, (-9i64) as u64, 2).ok(),
            Some((-4i64) as u64)
        );
    }
}
