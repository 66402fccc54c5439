//! What each function body names: functions, globals, memories and data segments.
//!
//! The visitor is generated from wasmparser's own operator list, so an operator added by
//! a proposal cannot name a memory or global without being seen here.
use std::collections::HashSet;

use wasmparser::{FunctionBody, VisitOperator, VisitSimdOperator};

use crate::module::Module;
use crate::Finding;

/// How a body refers to a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FuncUse {
    Call,
    /// `return_call`, `ref.func` and anything else that is not a plain call.
    Other,
}

/// The indices one body names, each with the body offset of its first use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub funcs: Vec<(u32, FuncUse, usize)>,
    pub globals: Vec<(u32, usize)>,
    /// The globals the body reads (`global.get`), a subset of `globals`.
    pub global_reads: Vec<(u32, usize)>,
    pub memories: Vec<(u32, usize)>,
    pub data: Vec<(u32, usize)>,
}

impl Names {
    // A body names few memories, globals and data segments but uses them often (every
    // load names a memory): a use already noted last is skipped at once, and
    // [`Names::first_uses`] keeps the first of the rest. Functions are noted the same
    // way: a search per use would be quadratic in bodies that call hundreds of them.
    fn note(list: &mut Vec<(u32, usize)>, index: u32, offset: usize) {
        if list.last().is_none_or(|&(i, _)| i != index) {
            list.push((index, offset));
        }
    }

    /// The functions the body calls (plain `call`).
    pub fn calls(&self) -> impl Iterator<Item = u32> + '_ {
        self.funcs
            .iter()
            .filter(|f| f.1 == FuncUse::Call)
            .map(|f| f.0)
    }

    fn first_uses(&mut self) {
        let mut seen = HashSet::new();
        self.funcs.retain(|&(i, h, _)| seen.insert((i, h)));
        for list in [
            &mut self.globals,
            &mut self.global_reads,
            &mut self.memories,
            &mut self.data,
        ] {
            let mut seen = HashSet::new();
            list.retain(|&(i, _)| seen.insert(i));
        }
    }
}

macro_rules! note {
    ($n:expr, $op:ident, $at:ident, function_index, $v:ident) => {{
        let call = stringify!($op) == "Call";
        let how = if call { FuncUse::Call } else { FuncUse::Other };
        $n.funcs.push(($v, how, $at))
    }};
    ($n:expr, $op:ident, $at:ident, global_index, $v:ident) => {{
        Names::note(&mut $n.globals, $v, $at);
        if stringify!($op) == "GlobalGet" {
            Names::note(&mut $n.global_reads, $v, $at);
        }
    }};
    ($n:expr, $op:ident, $at:ident, memarg, $v:ident) => {
        Names::note(&mut $n.memories, $v.memory, $at)
    };
    ($n:expr, $op:ident, $at:ident, mem, $v:ident) => {
        Names::note(&mut $n.memories, $v, $at)
    };
    ($n:expr, $op:ident, $at:ident, dst_mem, $v:ident) => {
        Names::note(&mut $n.memories, $v, $at)
    };
    ($n:expr, $op:ident, $at:ident, src_mem, $v:ident) => {
        Names::note(&mut $n.memories, $v, $at)
    };
    ($n:expr, $op:ident, $at:ident, data_index, $v:ident) => {
        Names::note(&mut $n.data, $v, $at)
    };
    ($n:expr, $op:ident, $at:ident, array_data_index, $v:ident) => {
        Names::note(&mut $n.data, $v, $at)
    };
    ($n:expr, $op:ident, $at:ident, $other:ident, $v:ident) => {{
        let _ = $v;
    }};
}

/// Notes what each operator names, at the body offset `at` of the operator being read.
/// A visitor, not a match on [`wasmparser::Operator`]: no operator value is built.
#[derive(Default)]
struct Scanner {
    names: Names,
    at: usize,
}

macro_rules! define_visit {
    ($(@$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
        $(
            fn $visit(&mut self $($(, $arg: $argty)*)?) {
                let at = self.at;
                $($( note!(self.names, $op, at, $arg, $arg); )*)?
                let _ = at;
            }
        )*
    };
}

impl<'a> VisitOperator<'a> for Scanner {
    type Output = ();

    fn simd_visitor(&mut self) -> Option<&mut dyn VisitSimdOperator<'a, Output = ()>> {
        Some(self)
    }

    wasmparser::for_each_visit_operator!(define_visit);
}

impl VisitSimdOperator<'_> for Scanner {
    wasmparser::for_each_visit_simd_operator!(define_visit);
}

/// The names of function `index`'s body; a body that does not decode is a finding.
pub fn body_names(index: u32, body: &FunctionBody<'_>) -> Result<Names, Finding> {
    let bad = |e: wasmparser::BinaryReaderError| {
        let message = format!("malformed body: {}", e.message());
        Finding::in_function(index, e.offset(), message)
    };
    let mut scanner = Scanner::default();
    let mut ops = body.get_operators_reader().map_err(bad)?;
    while !ops.eof() {
        scanner.at = ops.original_position();
        ops.visit_operator(&mut scanner).map_err(bad)?;
    }
    ops.finish().map_err(bad)?;
    scanner.names.first_uses();
    Ok(scanner.names)
}

/// The names of every defined body, in order; bodies are scanned on one thread per core.
pub fn module_names(m: &Module<'_>) -> Result<Vec<Names>, Finding> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = m.bodies.len().div_ceil(threads).max(1);
    let imports = m.num_imports();
    let scan = |c: usize, bodies: &[FunctionBody<'_>]| -> Result<Vec<Names>, Finding> {
        let first = (c * chunk) as u32 + imports;
        (first..)
            .zip(bodies)
            .map(|(f, b)| body_names(f, b))
            .collect()
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = m
            .bodies
            .chunks(chunk)
            .enumerate()
            .map(|(c, bodies)| scope.spawn(move || scan(c, bodies)))
            .collect();
        // The first malformed body in module order is the finding.
        let mut out = Vec::with_capacity(m.bodies.len());
        for h in handles {
            out.extend(h.join().expect("a scan thread does not panic")?);
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmparser::WasmFeatures;

    fn names(wat: &str) -> Names {
        let wasm = wat::parse_str(wat).unwrap();
        let m = Module::read(&wasm, WasmFeatures::WASM3).unwrap();
        body_names(m.num_imports(), &m.bodies[0]).unwrap()
    }

    #[test]
    fn calls_and_other_function_references_are_told_apart() {
        let n = names(
            r#"(module (import "m" "f" (func $f)) (elem declare func $f)
                 (func call $f ref.func $f drop return_call $f))"#,
        );
        let uses: Vec<(u32, FuncUse)> = n.funcs.iter().map(|&(i, h, _)| (i, h)).collect();
        assert_eq!(uses, vec![(0, FuncUse::Call), (0, FuncUse::Other)]);
    }

    #[test]
    fn every_memory_an_instruction_names_is_seen() {
        let n = names(
            r#"(module (memory 1) (memory $b 1) (memory $c 1) (data $d "x")
                 (func (drop (i32.load $b (i32.const 0)))
                       (memory.copy 0 2 (i32.const 0) (i32.const 0) (i32.const 0))
                       (memory.init $c $d (i32.const 0) (i32.const 0) (i32.const 0))))"#,
        );
        let mems: Vec<u32> = n.memories.iter().map(|m| m.0).collect();
        assert_eq!(mems, vec![1, 0, 2]);
        assert_eq!(n.data.iter().map(|d| d.0).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn global_reads_and_writes_are_seen() {
        let n = names(
            r#"(module (global $a (mut i32) (i32.const 0)) (global $b (mut i32) (i32.const 0))
                 (func (global.set $b (global.get $a))))"#,
        );
        assert_eq!(
            n.globals.iter().map(|g| g.0).collect::<Vec<_>>(),
            vec![0, 1]
        );
    }
}
