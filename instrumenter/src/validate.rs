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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

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
/// What validating one share gives: the function references of each body.
type ShareResult = Result<Vec<Vec<FuncRef>>, WeaveError>;

type Share<'a, 'b> = (
    Vec<FuncToValidate<ValidatorResources>>,
    &'a [FunctionBody<'b>],
);

/// Code sections smaller than this are validated on the calling thread: spawning costs
/// more than it saves.
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// Shares per thread: many small shares taken in turn by whichever thread is free, so a
/// thread slowed by other load on the machine (or by a run of large bodies) holds up the
/// others by one share at most, not by its whole part.
const SHARES_PER_THREAD: usize = 16;

/// [`body`] for every body of a code section, on up to `threads` threads (the calling
/// one among them). Bodies are cut into contiguous shares of about equal total size,
/// which the threads take in order. Returns each body's references in module order, or
/// the error of the first invalid body in module order: the same result as validating
/// one body after the other.
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
    let run = |work: Vec<FuncToValidate<ValidatorResources>>,
               bodies: &[FunctionBody<'_>],
               allocs: &mut FuncValidatorAllocations| {
        let mut out = Vec::with_capacity(bodies.len());
        for (to_validate, b) in work.into_iter().zip(bodies) {
            let mut found = Vec::new();
            *allocs = body(
                to_validate,
                std::mem::take(allocs),
                b,
                interesting,
                &mut found,
            )?;
            out.push(found);
        }
        Ok::<_, WeaveError>(out)
    };
    let total: usize = bodies.iter().map(|b| b.range().len()).sum();
    let threads = threads.clamp(1, bodies.len().max(1));
    if threads == 1 || total < PARALLEL_MIN_BYTES {
        return run(work, bodies, &mut FuncValidatorAllocations::default());
    }
    let shares = (threads * SHARES_PER_THREAD).min(bodies.len());
    let share = total.div_ceil(shares);
    let mut chunks = Vec::with_capacity(shares);
    let (mut start, mut size) = (0, 0);
    for (i, b) in bodies.iter().enumerate() {
        size += b.range().len();
        if size >= share && chunks.len() + 1 < shares {
            chunks.push(start..i + 1);
            (start, size) = (i + 1, 0);
        }
    }
    if start < bodies.len() {
        chunks.push(start..bodies.len());
    }
    // Each share waits in a slot; a thread takes the next untaken slot until none is left
    // and leaves its result beside it. Shares after the first invalid one found so far
    // are not validated: their results cannot be returned.
    let mut work = work.into_iter();
    let slots: Vec<Mutex<Option<Share<'_, '_>>>> = chunks
        .into_iter()
        .map(|r| Mutex::new(Some((work.by_ref().take(r.len()).collect(), &bodies[r]))))
        .collect();
    let results: Vec<Mutex<Option<ShareResult>>> = slots.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let first_invalid = AtomicUsize::new(usize::MAX);
    let worker = || {
        let mut allocs = FuncValidatorAllocations::default();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= slots.len() {
                break;
            }
            if i > first_invalid.load(Ordering::Relaxed) {
                continue;
            }
            let Some((w, b)) = lock(&slots[i]).take() else {
                continue;
            };
            let r = run(w, b, &mut allocs);
            if r.is_err() {
                first_invalid.fetch_min(i, Ordering::Relaxed);
            }
            *lock(&results[i]) = Some(r);
        }
    };
    std::thread::scope(|s| {
        // A helper that cannot be started (a process limit) only leaves more shares to
        // the others; the calling thread takes shares too, so every share is validated.
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, worker).ok())
            .collect();
        worker();
        for h in helpers {
            h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        }
    });
    let mut out = Vec::with_capacity(bodies.len());
    for r in results {
        match r.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(r) => out.extend(r?),
            None => unreachable!("every share up to the first invalid one is validated"),
        }
    }
    Ok(out)
}

/// A lock that a panicking holder did not spoil (slots hold plain data).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
