//! Validation fused with the weaver's own passes, so a 100 MB module is decoded as few
//! times as possible.
//!
//! * The input's module-level sections are validated during [`crate::module::ModuleInfo::scan`],
//!   which keeps one [`FuncToValidate`] per body. Each body is validated while the emitter
//!   looks for references to wrapped imports ([`body`]): one operator decode does both.
//!   Bodies are independent, so [`bodies`] spreads them over threads; this is most of a
//!   weave's time.
//! * The output is validated again, but a body copied byte for byte from the (already
//!   validated) input is not: in the default mode nothing it names moves (types,
//!   functions, globals, memories, tables, data and element segments are only appended to),
//!   so it is valid in the output exactly as it was in the input. Every new or re-encoded
//!   body, and every module-level section, is validated ([`output`]).
use wasmparser::{
    BinaryReaderError, FrameKind, FrameStack, FuncToValidate, FuncValidatorAllocations,
    FunctionBody, ValidPayload, Validator, ValidatorResources, VisitOperator, VisitSimdOperator,
};

use crate::WeaveError;
use std::sync::Mutex;

pub(crate) fn invalid(e: BinaryReaderError) -> WeaveError {
    WeaveError::Invalid {
        offset: e.offset(),
        message: e.message().to_string(),
    }
}

/// A reference to a function index found in a body: `(function_index, kind)` with kind 0
/// = `call`, 1 = `return_call`, 2 = `ref.func`.
pub(crate) type FuncRef = (u32, u8);

/// Validates `body` and reports every `call`, `return_call` and `ref.func` whose target
/// `interesting` accepts.
pub(crate) fn body(
    to_validate: FuncToValidate<ValidatorResources>,
    allocs: FuncValidatorAllocations,
    body: &FunctionBody<'_>,
    interesting: &(dyn Fn(u32) -> bool + Sync),
    found: &mut Vec<FuncRef>,
) -> Result<FuncValidatorAllocations, WeaveError> {
    let mut fv = to_validate.into_validator(allocs);
    let mut reader = body.get_binary_reader();
    fv.read_locals(&mut reader).map_err(invalid)?;
    reader.set_features(crate::features());
    while !reader.eof() {
        let pos = reader.original_position();
        let mut tap = Tap {
            inner: fv.visitor(pos),
            interesting,
            found: &mut *found,
        };
        reader
            .visit_operator(&mut tap)
            .map_err(invalid)?
            .map_err(invalid)?;
    }
    reader
        .finish_expression(&fv.visitor(reader.original_position()))
        .map_err(invalid)?;
    Ok(fv.into_allocations())
}

/// A contiguous run of bodies and their validators, validated by one thread.
type Share<'a, 'b> = (
    Vec<FuncToValidate<ValidatorResources>>,
    &'a [FunctionBody<'b>],
);

/// Code sections smaller than this are validated on the calling thread: spawning costs
/// more than it saves.
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// [`body`] for every body of a code section, on up to `threads` threads, each taking a
/// contiguous run of bodies of about equal total size. Returns each body's references in
/// module order, or the error of the first invalid body in module order: the same result
/// as validating one body after the other.
pub(crate) fn bodies(
    work: Vec<FuncToValidate<ValidatorResources>>,
    bodies: &[FunctionBody<'_>],
    interesting: &(dyn Fn(u32) -> bool + Sync),
    threads: usize,
) -> Result<Vec<Vec<FuncRef>>, WeaveError> {
    if work.len() != bodies.len() {
        return Err(WeaveError::Internal {
            message: format!(
                "the code section has {} bodies but the function section declares {}",
                bodies.len(),
                work.len()
            ),
        });
    }
    let run = |work: Vec<FuncToValidate<ValidatorResources>>, bodies: &[FunctionBody<'_>]| {
        let mut allocs = FuncValidatorAllocations::default();
        let mut out = Vec::with_capacity(bodies.len());
        for (to_validate, b) in work.into_iter().zip(bodies) {
            let mut found = Vec::new();
            allocs = body(to_validate, allocs, b, interesting, &mut found)?;
            out.push(found);
        }
        Ok::<_, WeaveError>(out)
    };
    let total: usize = bodies.iter().map(|b| b.range().len()).sum();
    let threads = threads.clamp(1, bodies.len().max(1));
    if threads == 1 || total < PARALLEL_MIN_BYTES {
        return run(work, bodies);
    }
    let share = total.div_ceil(threads);
    let mut chunks = Vec::with_capacity(threads);
    let (mut start, mut size) = (0, 0);
    for (i, b) in bodies.iter().enumerate() {
        size += b.range().len();
        if size >= share && chunks.len() + 1 < threads {
            chunks.push(start..i + 1);
            (start, size) = (i + 1, 0);
        }
    }
    if start < bodies.len() {
        chunks.push(start..bodies.len());
    }
    // Each share waits in a slot its thread takes it from; a share whose thread cannot be
    // started (a process limit) is then still in its slot and is validated here.
    let mut work = work.into_iter();
    let slots: Vec<Mutex<Option<Share<'_, '_>>>> = chunks
        .into_iter()
        .map(|r| Mutex::new(Some((work.by_ref().take(r.len()).collect(), &bodies[r]))))
        .collect();
    let run_slot = |slot: &Mutex<Option<Share<'_, '_>>>| {
        let share = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        share.map(|(w, b)| run(w, b))
    };
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = slots
            .iter()
            .map(|slot| {
                std::thread::Builder::new()
                    .spawn_scoped(s, || run_slot(slot))
                    .ok()
            })
            .collect();
        handles
            .into_iter()
            .zip(&slots)
            .map(|(h, slot)| {
                let ran = match h {
                    Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                    None => None,
                };
                ran.or_else(|| run_slot(slot))
                    .expect("every share is validated once")
            })
            .collect()
    });
    let mut out = Vec::with_capacity(bodies.len());
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// Validates the woven module. `copied[i]` says the output's defined function `i` is a
/// byte-for-byte copy of the input's, which was validated by [`body`].
pub(crate) fn output(wasm: &[u8], copied: &[bool]) -> Result<(), BinaryReaderError> {
    let mut validator = Validator::new_with_features(crate::features());
    let mut allocs = FuncValidatorAllocations::default();
    let mut index = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        if let ValidPayload::Func(to_validate, body) = validator.payload(&payload)? {
            let skip = copied.get(index).copied().unwrap_or(false);
            index += 1;
            if !skip {
                let mut fv = to_validate.into_validator(std::mem::take(&mut allocs));
                fv.validate(&body)?;
                allocs = fv.into_allocations();
            }
        }
    }
    Ok(())
}

/// Delegates every operator to the function validator, noting function references on
/// the way.
struct Tap<'t, V> {
    inner: V,
    interesting: &'t dyn Fn(u32) -> bool,
    found: &'t mut Vec<FuncRef>,
}

impl<V> Tap<'_, V> {
    fn note(&mut self, function_index: u32, kind: u8) {
        if (self.interesting)(function_index) {
            self.found.push((function_index, kind));
        }
    }
}

macro_rules! tap_hook {
    (visit_call $s:ident $f:ident) => {
        $s.note($f, 0)
    };
    (visit_return_call $s:ident $f:ident) => {
        $s.note($f, 1)
    };
    (visit_ref_func $s:ident $f:ident) => {
        $s.note($f, 2)
    };
    ($other:ident $s:ident $($rest:ident)*) => {};
}

macro_rules! define_tap {
    ($(@$proposal:ident $op:ident $({ $($arg:ident: $argty:ty),* })? => $visit:ident ($($ann:tt)*))*) => {
        $(
            fn $visit(&mut self $($(,$arg: $argty)*)?) -> Self::Output {
                tap_hook!($visit self $($($arg)*)?);
                self.inner.$visit($($($arg),*)?)
            }
        )*
    }
}

// `BinaryReader::visit_operator` asks the visitor for the control stack.
impl<V: FrameStack> FrameStack for Tap<'_, V> {
    fn current_frame(&self) -> Option<FrameKind> {
        self.inner.current_frame()
    }
}

impl<'a, V: VisitOperator<'a>> VisitOperator<'a> for Tap<'_, V> {
    type Output = V::Output;

    // SIMD operators never reference functions: hand them straight to the validator.
    fn simd_visitor(&mut self) -> Option<&mut dyn VisitSimdOperator<'a, Output = Self::Output>> {
        self.inner.simd_visitor()
    }

    wasmparser::for_each_visit_operator!(define_tap);
}
