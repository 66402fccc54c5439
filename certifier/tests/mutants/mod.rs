//! Mutants of woven modules: simulated weaver bugs, for the certifier's tests.
//!
//! Test-only code. Unlike the certifier it may trust the weaver: targets are found through
//! the `irm.monitor` manifest (wrappers, monitor globals) and the name section (`irm:`
//! helper functions). Every mutant is a re-encoding of the woven module with exactly one
//! edit; only mutants that validate are returned, the others are counted in [`Stats`].
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{ExportKind, Instruction as I};
use wasmparser::{ElementItems, KnownCustom, Name, Operator, Parser, Payload, TableInit, TypeRef};

/// The simulated weaver bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A `call`/`return_call`/`ref.func` of a wrapper in original code names its import.
    CallToImport,
    /// An element segment item naming a wrapper names its import.
    ElementToImport,
    /// A global initialiser's `ref.func` of a wrapper names its import.
    GlobalInitToImport,
    /// A table initialiser's `ref.func` of a wrapper names its import.
    TableInitToImport,
    /// A wrapped import is exported.
    ExportImport,
    /// A wrapped import is the start function (valid only for a `[] -> []` import).
    StartToImport,
    /// The first original function starts by writing a monitor global.
    MonitorGlobalWrittenOutside,
    /// A monitor global (mutable) is exported.
    MonitorGlobalExportedMutable,
    /// A comparison in a monitor function is negated or made (non-)strict.
    ComparisonFlipped,
    /// An `i32.const`/`i64.const` in a monitor function is off by one.
    ConstantOffByOne,
    /// A `global.set` of a monitor global in a monitor function is a `drop`.
    StateUpdateSkipped,
    /// A `br`/`br_if` to a wrapper's deny path is a `nop`/`drop`, or its `unreachable` a `nop`.
    DenyToAllow,
    /// A load in a monitor function reads the other memory (host <-> private).
    WrongMemory,
    /// A monitor global is kept in the host memory as well, and every read of it in the
    /// monitor functions loads it from there (memory the module can write).
    StateInHostMemory,
}

pub const KINDS: [Kind; 14] = [
    Kind::CallToImport,
    Kind::ElementToImport,
    Kind::GlobalInitToImport,
    Kind::TableInitToImport,
    Kind::ExportImport,
    Kind::StartToImport,
    Kind::MonitorGlobalWrittenOutside,
    Kind::MonitorGlobalExportedMutable,
    Kind::ComparisonFlipped,
    Kind::ConstantOffByOne,
    Kind::StateUpdateSkipped,
    Kind::DenyToAllow,
    Kind::WrongMemory,
    Kind::StateInHostMemory,
];

pub struct Mutant {
    pub kind: Kind,
    /// What was changed, e.g. "function 16 op 27: I32Eq -> I32Ne".
    pub what: String,
    pub wasm: Vec<u8>,
}

/// Per kind: the sites found, and of the (at most [`CAP`]) candidates built from them, how
/// many validated (`produced`) and how many did not (`invalid`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub sites: usize,
    pub produced: usize,
    pub invalid: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub per_kind: BTreeMap<Kind, Count>,
}

impl Stats {
    pub fn get(&self, kind: Kind) -> Count {
        self.per_kind.get(&kind).copied().unwrap_or_default()
    }
}

/// At most this many candidates per kind, spread evenly over the sites.
pub const CAP: usize = 8;

/// One edit of the module.
#[derive(Clone, Debug)]
enum Edit {
    /// `Ops([(func, op, with), ..])`: operator `op` of function `func` becomes `with`, for
    /// each entry.
    Ops(Vec<(u32, usize, Vec<I<'static>>)>),
    /// `Memory(func, op, to)`: operator `op` of `func` uses memory `to`.
    Memory(u32, usize, u32),
    /// `Prepend(func, with)`: `with` is inserted before the first operator of `func`.
    Prepend(u32, Vec<I<'static>>),
    /// `Ref(place, from, to)`: the first reference to `from` in the `place`-th table,
    /// global or element segment (in section order) names `to`.
    Ref(usize, u32, u32),
    Export(String, ExportKind, u32),
    Start(u32),
    /// Nothing: the module re-encoded as it is.
    Nothing,
}

type Site = (String, Edit);

/// Operator `k` (`op`) of function `f` replaced by `with`.
fn op_site(f: u32, k: usize, op: &Operator, with: Vec<I<'static>>) -> Site {
    let shown: Vec<String> = with.iter().map(|i| format!("{i:?}")).collect();
    let what = format!("function {f} op {k}: {op:?} -> {}", shown.join("; "));
    (what, Edit::Ops(vec![(f, k, with)]))
}

fn export_site(name: String, kind: ExportKind, index: u32) -> Site {
    let what = format!("export `{name}` = {kind:?} {index}");
    (what, Edit::Export(name, kind, index))
}

/// What the generator knows about the woven module.
#[derive(Default)]
struct Info<'a> {
    func_imports: u32,
    /// Operators of each defined function (with its final `end`).
    bodies: Vec<Vec<Operator<'a>>>,
    /// Every table, global and element segment in section order: the kind of mutant that
    /// redirects one of its function references, its name, and those references.
    places: Vec<(Kind, String, Vec<u32>)>,
    /// Whether each global is an i64.
    global_i64: Vec<bool>,
    host_memory: Option<u32>,
    memories: u32,
    func_names: BTreeMap<u32, String>,
}

fn func_refs(expr: &wasmparser::ConstExpr) -> Vec<u32> {
    let mut ops = expr.get_operators_reader();
    let mut out = Vec::new();
    while let Ok(op) = ops.read() {
        if let Operator::RefFunc { function_index } = op {
            out.push(function_index);
        }
    }
    out
}

impl<'a> Info<'a> {
    fn read(wasm: &'a [u8]) -> Info<'a> {
        let mut i = Info::default();
        let (mut tables, mut elems) = (0, 0);
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.expect("a woven module parses") {
                Payload::ImportSection(r) => {
                    for imp in r.into_imports() {
                        match imp.unwrap().ty {
                            TypeRef::Func(_) | TypeRef::FuncExact(_) => i.func_imports += 1,
                            TypeRef::Global(g) => i
                                .global_i64
                                .push(g.content_type == wasmparser::ValType::I64),
                            TypeRef::Table(_) => tables += 1,
                            TypeRef::Memory(_) => i.memories += 1,
                            TypeRef::Tag(_) => {}
                        }
                    }
                }
                Payload::TableSection(r) => {
                    for t in r {
                        let refs = match t.unwrap().init {
                            TableInit::Expr(e) => func_refs(&e),
                            TableInit::RefNull => vec![],
                        };
                        let name = format!("table {tables}");
                        i.places.push((Kind::TableInitToImport, name, refs));
                        tables += 1;
                    }
                }
                Payload::MemorySection(r) => i.memories += r.count(),
                Payload::GlobalSection(r) => {
                    for g in r {
                        let g = g.unwrap();
                        let name = format!("global {}", i.global_i64.len());
                        let refs = func_refs(&g.init_expr);
                        i.places.push((Kind::GlobalInitToImport, name, refs));
                        i.global_i64
                            .push(g.ty.content_type == wasmparser::ValType::I64);
                    }
                }
                Payload::ExportSection(r) => {
                    for e in r.into_iter().map(Result::unwrap) {
                        if e.name == "memory" && e.kind == wasmparser::ExternalKind::Memory {
                            i.host_memory = Some(e.index);
                        }
                    }
                }
                Payload::ElementSection(r) => {
                    for e in r {
                        let refs = match e.unwrap().items {
                            ElementItems::Functions(fs) => fs.into_iter().flatten().collect(),
                            ElementItems::Expressions(_, es) => es
                                .into_iter()
                                .flatten()
                                .flat_map(|x| func_refs(&x))
                                .collect(),
                        };
                        let name = format!("element segment {elems}");
                        i.places.push((Kind::ElementToImport, name, refs));
                        elems += 1;
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let mut ops = body.get_operators_reader().unwrap();
                    let mut v = Vec::new();
                    while !ops.eof() {
                        v.push(ops.read().unwrap());
                    }
                    i.bodies.push(v);
                }
                Payload::CustomSection(c) => {
                    if let KnownCustom::Name(names) = c.as_known() {
                        for n in names {
                            if let Ok(Name::Function(m)) = n {
                                for n in m.into_iter().flatten() {
                                    i.func_names.insert(n.index, n.name.to_string());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        i
    }

    /// Defined functions with their index and operators.
    fn funcs(&self) -> impl Iterator<Item = (u32, &Vec<Operator<'a>>)> {
        let first = self.func_imports;
        (first..).zip(&self.bodies)
    }
}

/// The reencoder applying one [`Edit`].
struct Mutator {
    edit: Edit,
    /// Index of the next defined function.
    func: u32,
    /// The table, global or element segment being encoded, and the next one's.
    place: Option<usize>,
    next_place: usize,
    /// Whether the `Ref` edit was made.
    done: bool,
    /// The memory the current operator is switched to.
    memory: Option<u32>,
}

type R<T> = Result<T, reencode::Error>;

impl Mutator {
    fn enter_place(&mut self) {
        self.place = Some(self.next_place);
        self.next_place += 1;
    }
}

impl Reencode for Mutator {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, f: u32) -> R<u32> {
        match self.edit {
            Edit::Ref(place, from, to) if !self.done && self.place == Some(place) && f == from => {
                self.done = true;
                Ok(to)
            }
            _ => Ok(f),
        }
    }

    fn memory_index(&mut self, m: u32) -> R<u32> {
        Ok(self.memory.unwrap_or(m))
    }

    fn parse_table(&mut self, t: &mut wasm_encoder::TableSection, x: wasmparser::Table) -> R<()> {
        self.enter_place();
        reencode::utils::parse_table(self, t, x)
    }

    fn parse_global(
        &mut self,
        g: &mut wasm_encoder::GlobalSection,
        x: wasmparser::Global,
    ) -> R<()> {
        self.enter_place();
        reencode::utils::parse_global(self, g, x)
    }

    fn parse_element(
        &mut self,
        e: &mut wasm_encoder::ElementSection,
        x: wasmparser::Element,
    ) -> R<()> {
        self.enter_place();
        reencode::utils::parse_element(self, e, x)
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> R<()> {
        reencode::utils::parse_export_section(self, exports, section)?;
        if let Edit::Export(name, kind, index) = &self.edit {
            exports.export(name, *kind, *index);
        }
        Ok(())
    }

    fn start_section(&mut self, start: u32) -> R<u32> {
        Ok(match self.edit {
            Edit::Start(f) => f,
            _ => start,
        })
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        after: Option<wasm_encoder::SectionId>,
        before: Option<wasm_encoder::SectionId>,
    ) -> R<()> {
        use wasm_encoder::SectionId;
        self.place = None;
        // A woven module always has an export section (`irm:violation`).
        if let Edit::Start(f) = self.edit {
            if after == Some(SectionId::Export) && before != Some(SectionId::Start) {
                module.section(&wasm_encoder::StartSection { function_index: f });
            }
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        body: wasmparser::FunctionBody<'_>,
    ) -> R<()> {
        let func = self.func;
        self.func += 1;
        let mut f = self.new_function_with_parsed_locals(&body)?;
        if let Edit::Prepend(g, with) = &self.edit {
            if *g == func {
                for i in with {
                    f.instruction(i);
                }
            }
        }
        let mut reader = body.get_operators_reader()?;
        let mut n = 0;
        while !reader.eof() {
            let op = reader.read()?;
            let with = match &self.edit {
                Edit::Ops(edits) => edits
                    .iter()
                    .find(|(g, k, _)| (*g, *k) == (func, n))
                    .map(|(_, _, with)| with),
                _ => None,
            };
            match (&self.edit, with) {
                (_, Some(with)) => {
                    for i in with {
                        f.instruction(i);
                    }
                }
                (&Edit::Memory(g, k, to), None) if (g, k) == (func, n) => {
                    self.memory = Some(to);
                    f.instruction(&self.instruction(op)?);
                    self.memory = None;
                }
                _ => {
                    f.instruction(&self.instruction(op)?);
                }
            }
            n += 1;
        }
        code.function(&f);
        Ok(())
    }
}

fn apply(woven: &[u8], info: &Info, edit: Edit) -> Vec<u8> {
    let mut m = Mutator {
        edit,
        func: info.func_imports,
        place: None,
        next_place: 0,
        done: false,
        memory: None,
    };
    let mut module = wasm_encoder::Module::new();
    m.parse_core_module(&mut module, Parser::new(0), woven)
        .expect("a woven module re-encodes");
    module.finish()
}

/// `woven` re-encoded without an edit (what every mutant differs from by one edit).
pub fn roundtrip(woven: &[u8]) -> Vec<u8> {
    apply(woven, &Info::read(woven), Edit::Nothing)
}

/// `cap` items spread evenly over `v`.
fn sample<T: Clone>(v: &[T], cap: usize) -> Vec<T> {
    if v.len() <= cap {
        return v.to_vec();
    }
    (0..cap).map(|k| v[k * v.len() / cap].clone()).collect()
}

/// The negation and the strict/non-strict twin of a comparison.
fn flips(op: &Operator) -> Vec<I<'static>> {
    use Operator as O;
    match op {
        O::I32Eq => vec![I::I32Ne],
        O::I32Ne => vec![I::I32Eq],
        O::I64Eq => vec![I::I64Ne],
        O::I64Ne => vec![I::I64Eq],
        O::I32LtS => vec![I::I32GeS, I::I32LeS],
        O::I32LtU => vec![I::I32GeU, I::I32LeU],
        O::I32GtS => vec![I::I32LeS, I::I32GeS],
        O::I32GtU => vec![I::I32LeU, I::I32GeU],
        O::I32LeS => vec![I::I32GtS, I::I32LtS],
        O::I32LeU => vec![I::I32GtU, I::I32LtU],
        O::I32GeS => vec![I::I32LtS, I::I32GtS],
        O::I32GeU => vec![I::I32LtU, I::I32GtU],
        O::I64LtS => vec![I::I64GeS, I::I64LeS],
        O::I64LtU => vec![I::I64GeU, I::I64LeU],
        O::I64GtS => vec![I::I64LeS, I::I64GeS],
        O::I64GtU => vec![I::I64LeU, I::I64GeU],
        O::I64LeS => vec![I::I64GtS, I::I64LtS],
        O::I64LeU => vec![I::I64GtU, I::I64LtU],
        O::I64GeS => vec![I::I64LtS, I::I64GtS],
        O::I64GeU => vec![I::I64LtU, I::I64GtU],
        _ => vec![],
    }
}

/// The memory a scalar load reads.
fn load_memory(op: &Operator) -> Option<u32> {
    use Operator as O;
    match op {
        O::I32Load { memarg }
        | O::I64Load { memarg }
        | O::F32Load { memarg }
        | O::F64Load { memarg }
        | O::I32Load8S { memarg }
        | O::I32Load8U { memarg }
        | O::I32Load16S { memarg }
        | O::I32Load16U { memarg }
        | O::I64Load8S { memarg }
        | O::I64Load8U { memarg }
        | O::I64Load16S { memarg }
        | O::I64Load16U { memarg }
        | O::I64Load32S { memarg }
        | O::I64Load32U { memarg } => Some(memarg.memory),
        _ => None,
    }
}

/// The `br`/`br_if` operators of a wrapper that jump to its deny path: the target is the
/// last top-level block ending before the function's final `unreachable`.
fn deny_branches(ops: &[Operator]) -> Vec<usize> {
    let Some(unreachable) = ops.iter().rposition(|o| matches!(o, Operator::Unreachable)) else {
        return vec![];
    };
    let mut stack: Vec<usize> = Vec::new();
    let mut deny = None;
    let mut branches = Vec::new(); // (operator, start of the target block)
    for (i, op) in ops.iter().enumerate() {
        match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. } => stack.push(i),
            Operator::End => {
                let start = stack.pop();
                if let (Some(s), true) = (start, stack.is_empty() && i < unreachable) {
                    if matches!(ops[s], Operator::Block { .. }) {
                        deny = Some(s);
                    }
                }
            }
            Operator::Br { relative_depth } | Operator::BrIf { relative_depth } => {
                let depth = *relative_depth as usize;
                if let Some(d) = stack.len().checked_sub(1 + depth) {
                    branches.push((i, stack[d]));
                }
            }
            _ => {}
        }
    }
    let to_deny = branches.into_iter().filter(|&(_, s)| Some(s) == deny);
    to_deny.map(|(i, _)| i).collect()
}

/// Every mutant of `woven` (woven by `instrumenter::weave` with default options), at most
/// [`CAP`] candidates per kind, with per-kind statistics. Deterministic.
pub fn mutants(woven: &[u8]) -> (Vec<Mutant>, Stats) {
    let manifest = instrumenter::manifest::read(woven)
        .expect("a woven module's manifest reads")
        .expect("a woven module has a manifest");
    let info = Info::read(woven);
    let wrapped: BTreeMap<u32, u32> = manifest
        .wrapped
        .iter()
        .map(|w| (w.wrapper_index, w.import_index))
        .collect();
    let helpers = info
        .func_names
        .iter()
        .filter(|(_, n)| n.starts_with("irm:"));
    let monitors: BTreeSet<u32> = wrapped
        .keys()
        .copied()
        .chain(helpers.map(|(&f, _)| f))
        .collect();
    let g = &manifest.globals;
    let state: Vec<u32> = (g.states.iter().flatten())
        .chain(g.vars.iter().flatten())
        .chain(&g.busy)
        .chain(&g.ready)
        .copied()
        .collect();
    let originals = || info.funcs().filter(|(f, _)| !monitors.contains(f));
    let mut candidates: Vec<(Kind, Vec<Site>)> = Vec::new();

    // References to a wrapper in original code, one per (wrapper, operator kind).
    let mut seen = BTreeSet::new();
    let mut sites = Vec::new();
    for (f, ops) in originals() {
        for (k, op) in ops.iter().enumerate() {
            let (w, tag, with): (u32, u8, fn(u32) -> I<'static>) = match *op {
                Operator::Call { function_index } => (function_index, 0, I::Call),
                Operator::ReturnCall { function_index } => (function_index, 1, I::ReturnCall),
                Operator::RefFunc { function_index } => (function_index, 2, I::RefFunc),
                _ => continue,
            };
            if let (Some(&import), true) = (wrapped.get(&w), seen.insert((w, tag))) {
                sites.push(op_site(f, k, op, vec![with(import)]));
            }
        }
    }
    candidates.push((Kind::CallToImport, sites));

    // Tables, globals and element segments referring to a wrapper: its first reference.
    for kind in [
        Kind::ElementToImport,
        Kind::GlobalInitToImport,
        Kind::TableInitToImport,
    ] {
        let mut sites = Vec::new();
        for (p, (k, name, refs)) in info.places.iter().enumerate() {
            if let Some((&from, &to)) = refs.iter().find_map(|f| wrapped.get_key_value(f)) {
                if *k == kind {
                    let what = format!("{name}: ref.func {from} -> import {to}");
                    sites.push((what, Edit::Ref(p, from, to)));
                }
            }
        }
        candidates.push((kind, sites));
    }

    let wrapped_imports = || manifest.wrapped.iter();
    let exports = wrapped_imports().map(|w| {
        let name = format!("irm-mutant:{}.{}", w.module, w.field);
        export_site(name, ExportKind::Func, w.import_index)
    });
    candidates.push((Kind::ExportImport, exports.collect()));
    let starts = wrapped_imports().map(|w| {
        let what = format!("start = import {}", w.import_index);
        (what, Edit::Start(w.import_index))
    });
    candidates.push((Kind::StartToImport, starts.collect()));

    // Monitor globals written by the first original function, or exported.
    let mut sites = Vec::new();
    if let Some((func, _)) = originals().next() {
        for (n, &gl) in state.iter().enumerate() {
            let zero = match info.global_i64[gl as usize] {
                true => I::I64Const(0),
                false => I::I32Const(0),
            };
            let mut writes = vec![vec![zero, I::GlobalSet(gl)]];
            if n == 0 {
                writes.push(vec![I::GlobalGet(gl), I::GlobalSet(gl)]);
            }
            for with in writes {
                let what = format!("function {func} starts with {with:?}");
                sites.push((what, Edit::Prepend(func, with)));
            }
        }
    }
    candidates.push((Kind::MonitorGlobalWrittenOutside, sites));
    let exports = state.iter().map(|&gl| {
        let name = format!("irm-mutant:global{gl}");
        export_site(name, ExportKind::Global, gl)
    });
    candidates.push((Kind::MonitorGlobalExportedMutable, exports.collect()));

    // Operator edits in monitor functions.
    let [mut cmp, mut consts, mut sets, mut deny, mut mem]: [Vec<Site>; 5] = Default::default();
    let host = info.host_memory;
    let private = (0..info.memories).rev().find(|&m| Some(m) != host);
    for (f, ops) in info.funcs().filter(|(f, _)| monitors.contains(f)) {
        for (k, op) in ops.iter().enumerate() {
            // The negation or the twin, alternating over the sites.
            let flipped = flips(op);
            if let Some(new) = flipped.get(k % flipped.len().max(1)) {
                cmp.push(op_site(f, k, op, vec![new.clone()]));
            }
            let d = if k % 2 == 0 { 1 } else { -1 };
            match *op {
                Operator::I32Const { value } => {
                    consts.push(op_site(f, k, op, vec![I::I32Const(value.wrapping_add(d))]))
                }
                Operator::I64Const { value } => consts.push(op_site(
                    f,
                    k,
                    op,
                    vec![I::I64Const(value.wrapping_add(d as i64))],
                )),
                Operator::GlobalSet { global_index } if state.contains(&global_index) => {
                    sets.push(op_site(f, k, op, vec![I::Drop]))
                }
                Operator::Unreachable => deny.push(op_site(f, k, op, vec![I::Nop])),
                _ => {}
            }
            let other = match (load_memory(op), host, private) {
                (Some(m), Some(h), Some(p)) if m == h => Some(p),
                (Some(m), Some(h), Some(p)) if m == p => Some(h),
                _ => None,
            };
            if let Some(to) = other {
                let what = format!("function {f} op {k}: {op:?} reads memory {to}");
                mem.push((what, Edit::Memory(f, k, to)));
            }
        }
        for k in deny_branches(ops) {
            let with = match ops[k] {
                Operator::Br { .. } => I::Nop,
                _ => I::Drop,
            };
            deny.push(op_site(f, k, &ops[k], vec![with]));
        }
    }
    candidates.push((Kind::ComparisonFlipped, cmp));
    candidates.push((Kind::ConstantOffByOne, consts));
    candidates.push((Kind::StateUpdateSkipped, sets));
    candidates.push((Kind::DenyToAllow, deny));
    candidates.push((Kind::WrongMemory, mem));

    // Each i32 monitor global kept at the top of the host memory's first page: written
    // through to it, read back from it.
    let mut sites = Vec::new();
    if let Some(host) = host {
        let memarg = wasm_encoder::MemArg {
            offset: 0,
            align: 2,
            memory_index: host,
        };
        for &gl in state.iter().filter(|&&g| !info.global_i64[g as usize]) {
            let at = I::I32Const(65_532);
            let mut edits = Vec::new();
            for (f, ops) in info.funcs().filter(|(f, _)| monitors.contains(f)) {
                for (k, op) in ops.iter().enumerate() {
                    match *op {
                        Operator::GlobalGet { global_index } if global_index == gl => {
                            edits.push((f, k, vec![at.clone(), I::I32Load(memarg)]));
                        }
                        Operator::GlobalSet { global_index } if global_index == gl => {
                            edits.push((
                                f,
                                k,
                                vec![
                                    I::GlobalSet(gl),
                                    at.clone(),
                                    I::GlobalGet(gl),
                                    I::I32Store(memarg),
                                ],
                            ));
                        }
                        _ => {}
                    }
                }
            }
            if !edits.is_empty() {
                let what = format!("global {gl} kept at host memory {host} byte 65532");
                sites.push((what, Edit::Ops(edits)));
            }
        }
    }
    candidates.push((Kind::StateInHostMemory, sites));

    let mut out = Vec::new();
    let mut stats = Stats::default();
    for (kind, sites) in candidates {
        let count = stats.per_kind.entry(kind).or_default();
        count.sites += sites.len();
        for (what, edit) in sample(&sites, CAP) {
            let wasm = apply(woven, &info, edit);
            let mut validator = wasmparser::Validator::new_with_features(instrumenter::features());
            if validator.validate_all(&wasm).is_ok() {
                count.produced += 1;
                out.push(Mutant { kind, what, wasm });
            } else {
                count.invalid += 1;
            }
        }
    }
    (out, stats)
}
