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
use wasmparser::{ElementItems, KnownCustom, Name, Operator, Parser, Payload, TableInit, ValType};

/// The simulated weaver bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A `call`/`return_call`/`ref.func` of a monitor in original code names the raw import.
    CallToImport,
    ElementToImport,
    GlobalInitToImport,
    TableInitToImport,
    /// The raw import is exported.
    ExportImport,
    /// The raw import is the start function.
    StartToImport,
    /// An original function writes a monitor global.
    MonitorGlobalWrittenOutside,
    /// A monitor global is exported (mutable).
    MonitorGlobalExportedMutable,
    /// A comparison in a monitor is negated or made (non-)strict.
    ComparisonFlipped,
    /// An integer constant in a monitor is off by one.
    ConstantOffByOne,
    /// A `global.set` of a monitor global in a monitor is a `drop`.
    StateUpdateSkipped,
    /// A branch to a wrapper's deny path is removed, or its `unreachable` is a `nop`.
    DenyToAllow,
    /// A load in a monitor reads the other memory (host <-> private).
    WrongMemory,
}

pub const KINDS: [Kind; 13] = [
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
];

pub struct Mutant {
    pub kind: Kind,
    /// What was changed, e.g. "function 12 op 37: I32LtU -> I32GeU".
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
    /// Operator `op` of function `func` becomes `with`.
    Op {
        func: u32,
        op: usize,
        with: Vec<I<'static>>,
    },
    /// Operator `op` of function `func` keeps its kind but uses memory `to`.
    Memory {
        func: u32,
        op: usize,
        to: u32,
    },
    /// `with` is inserted before the first operator of `func`.
    Prepend {
        func: u32,
        with: Vec<I<'static>>,
    },
    /// The first reference to `from` in `place` names `to`.
    Ref {
        place: Place,
        from: u32,
        to: u32,
    },
    Export {
        name: String,
        kind: ExportKind,
        index: u32,
    },
    Start(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Element(usize),
    Global(u32),
    Table(u32),
}

/// What the generator knows about the woven module.
struct Info<'a> {
    func_imports: u32,
    global_imports: u32,
    table_imports: u32,
    /// Operators of each defined function (with its final `end`).
    bodies: Vec<Vec<Operator<'a>>>,
    /// Function references of each element segment, global and table initialiser.
    refs: Vec<(Place, Vec<u32>)>,
    global_types: Vec<ValType>,
    host_memory: Option<u32>,
    memories: u32,
    func_names: BTreeMap<u32, String>,
}

fn func_refs(expr: &wasmparser::ConstExpr) -> Vec<u32> {
    let mut ops = expr.get_operators_reader();
    let mut out = Vec::new();
    while !ops.eof() {
        if let Ok(Operator::RefFunc { function_index }) = ops.read() {
            out.push(function_index);
        }
    }
    out
}

impl<'a> Info<'a> {
    fn read(wasm: &'a [u8]) -> Info<'a> {
        let mut i = Info {
            func_imports: 0,
            global_imports: 0,
            table_imports: 0,
            bodies: Vec::new(),
            refs: Vec::new(),
            global_types: Vec::new(),
            host_memory: None,
            memories: 0,
            func_names: BTreeMap::new(),
        };
        let (mut elems, mut tables) = (0, 0);
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.expect("a woven module parses") {
                Payload::ImportSection(r) => {
                    for imp in r.into_imports() {
                        match imp.unwrap().ty {
                            wasmparser::TypeRef::Func(_) | wasmparser::TypeRef::FuncExact(_) => {
                                i.func_imports += 1
                            }
                            wasmparser::TypeRef::Global(g) => {
                                i.global_imports += 1;
                                i.global_types.push(g.content_type);
                            }
                            wasmparser::TypeRef::Table(_) => i.table_imports += 1,
                            wasmparser::TypeRef::Memory(_) => i.memories += 1,
                            wasmparser::TypeRef::Tag(_) => {}
                        }
                    }
                    tables = i.table_imports;
                }
                Payload::TableSection(r) => {
                    for t in r {
                        if let TableInit::Expr(e) = t.unwrap().init {
                            i.refs.push((Place::Table(tables), func_refs(&e)));
                        }
                        tables += 1;
                    }
                }
                Payload::MemorySection(r) => i.memories += r.count(),
                Payload::GlobalSection(r) => {
                    for g in r {
                        let g = g.unwrap();
                        let index = i.global_types.len() as u32;
                        i.refs.push((Place::Global(index), func_refs(&g.init_expr)));
                        i.global_types.push(g.ty.content_type);
                    }
                }
                Payload::ExportSection(r) => {
                    for e in r {
                        let e = e.unwrap();
                        if e.name == "memory" && e.kind == wasmparser::ExternalKind::Memory {
                            i.host_memory = Some(e.index);
                        }
                    }
                }
                Payload::ElementSection(r) => {
                    for e in r {
                        let funcs = match e.unwrap().items {
                            ElementItems::Functions(fs) => {
                                fs.into_iter().map(|f| f.unwrap()).collect()
                            }
                            ElementItems::Expressions(_, es) => es
                                .into_iter()
                                .flat_map(|x| func_refs(&x.unwrap()))
                                .collect(),
                        };
                        i.refs.push((Place::Element(elems), funcs));
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
        self.bodies
            .iter()
            .enumerate()
            .map(|(d, ops)| (d as u32 + self.func_imports, ops))
    }

    /// The private memory: the last memory that is not the host's.
    fn private_memory(&self) -> Option<u32> {
        (0..self.memories)
            .rev()
            .find(|&m| Some(m) != self.host_memory)
    }
}

/// The reencoder applying one [`Edit`].
struct Mutator {
    edit: Edit,
    /// Index of the next defined function, global and table.
    func: u32,
    global: u32,
    table: u32,
    elem: usize,
    place: Option<Place>,
    done: bool,
    memory: Option<u32>,
}

type R<T> = Result<T, reencode::Error>;

impl Reencode for Mutator {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, f: u32) -> R<u32> {
        match self.edit {
            Edit::Ref { place, from, to }
                if !self.done && self.place == Some(place) && f == from =>
            {
                self.done = true;
                Ok(to)
            }
            _ => Ok(f),
        }
    }

    fn memory_index(&mut self, m: u32) -> R<u32> {
        Ok(self.memory.unwrap_or(m))
    }

    fn parse_element(
        &mut self,
        elements: &mut wasm_encoder::ElementSection,
        element: wasmparser::Element<'_>,
    ) -> R<()> {
        self.place = Some(Place::Element(self.elem));
        self.elem += 1;
        let r = reencode::utils::parse_element(self, elements, element);
        self.place = None;
        r
    }

    fn parse_global(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        global: wasmparser::Global<'_>,
    ) -> R<()> {
        self.place = Some(Place::Global(self.global));
        self.global += 1;
        let r = reencode::utils::parse_global(self, globals, global);
        self.place = None;
        r
    }

    fn parse_table(
        &mut self,
        tables: &mut wasm_encoder::TableSection,
        table: wasmparser::Table<'_>,
    ) -> R<()> {
        self.place = Some(Place::Table(self.table));
        self.table += 1;
        let r = reencode::utils::parse_table(self, tables, table);
        self.place = None;
        r
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> R<()> {
        reencode::utils::parse_export_section(self, exports, section)?;
        if let Edit::Export { name, kind, index } = &self.edit {
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
        // A woven module always has an export section (`irm:violation`).
        if let Edit::Start(f) = self.edit {
            if after == Some(wasm_encoder::SectionId::Export)
                && before != Some(wasm_encoder::SectionId::Start)
            {
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
        if let Edit::Prepend { func: g, with } = &self.edit {
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
            match &self.edit {
                Edit::Op {
                    func: g,
                    op: k,
                    with,
                } if *g == func && *k == n => {
                    for i in with {
                        f.instruction(i);
                    }
                }
                &Edit::Memory { func: g, op: k, to } if g == func && k == n => {
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
        global: info.global_imports,
        table: info.table_imports,
        elem: 0,
        place: None,
        done: false,
        memory: None,
    };
    let mut module = wasm_encoder::Module::new();
    m.parse_core_module(&mut module, Parser::new(0), woven)
        .expect("a woven module re-encodes");
    module.finish()
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

fn is_load(op: &Operator) -> Option<u32> {
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

/// The `br`/`br_if` operators of a wrapper that jump to its deny path: the top-level block
/// whose end is the last one before the function's final `unreachable`.
fn deny_branches(ops: &[Operator]) -> Vec<usize> {
    let Some(unreachable) = ops.iter().rposition(|o| matches!(o, Operator::Unreachable)) else {
        return vec![];
    };
    let mut stack: Vec<usize> = Vec::new();
    let mut top_blocks = Vec::new(); // (start, end) of top-level blocks
    let mut branches = Vec::new(); // (op, target block start)
    for (i, op) in ops.iter().enumerate() {
        match op {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::TryTable { .. } => stack.push(i),
            Operator::End => {
                if let Some(s) = stack.pop() {
                    if stack.is_empty() && matches!(ops[s], Operator::Block { .. }) {
                        top_blocks.push((s, i));
                    }
                }
            }
            Operator::Br { relative_depth } | Operator::BrIf { relative_depth } => {
                if let Some(&s) = stack
                    .len()
                    .checked_sub(1 + *relative_depth as usize)
                    .map(|d| &stack[d])
                {
                    branches.push((i, s));
                }
            }
            _ => {}
        }
    }
    let Some(&(deny, _)) = top_blocks.iter().rev().find(|&&(_, e)| e < unreachable) else {
        return vec![];
    };
    branches
        .into_iter()
        .filter(|&(_, s)| s == deny)
        .map(|(i, _)| i)
        .collect()
}

/// Every mutant of `woven` (woven by `instrumenter::weave` with default options), with
/// per-kind statistics. Deterministic.
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
    let monitors: BTreeSet<u32> = wrapped
        .keys()
        .copied()
        .chain(
            info.func_names
                .iter()
                .filter(|(_, n)| n.starts_with("irm:"))
                .map(|(&f, _)| f),
        )
        .collect();
    let g = &manifest.globals;
    let state: Vec<u32> = g
        .states
        .iter()
        .flatten()
        .chain(g.vars.iter().flatten())
        .chain(g.busy.iter())
        .chain(g.ready.iter())
        .copied()
        .collect();
    let monitor_ops = || info.funcs().filter(|(f, _)| monitors.contains(f));
    let original = info
        .funcs()
        .find(|(f, _)| !monitors.contains(f))
        .map(|(f, _)| f);

    let mut candidates: Vec<(Kind, Vec<(String, Edit)>)> = Vec::new();
    let mut add = |kind, sites: Vec<(String, Edit)>| candidates.push((kind, sites));

    // References to a wrapper in original code, one per (wrapper, operator kind).
    let mut seen = BTreeSet::new();
    let mut sites = Vec::new();
    for (f, ops) in info.funcs().filter(|(f, _)| !monitors.contains(f)) {
        for (k, op) in ops.iter().enumerate() {
            let (w, tag, with): (u32, u8, fn(u32) -> I<'static>) = match *op {
                Operator::Call { function_index } => (function_index, 0, I::Call),
                Operator::ReturnCall { function_index } => (function_index, 1, I::ReturnCall),
                Operator::RefFunc { function_index } => (function_index, 2, I::RefFunc),
                _ => continue,
            };
            let Some(&imp) = wrapped.get(&w) else {
                continue;
            };
            let new = with(imp);
            if seen.insert((w, tag)) {
                let what = format!("function {f} op {k}: {op:?} -> {new:?}");
                sites.push((
                    what,
                    Edit::Op {
                        func: f,
                        op: k,
                        with: vec![new],
                    },
                ));
            }
        }
    }
    add(Kind::CallToImport, sites);

    for kind in [
        Kind::ElementToImport,
        Kind::GlobalInitToImport,
        Kind::TableInitToImport,
    ] {
        let mut sites = Vec::new();
        for (place, funcs) in &info.refs {
            let matches = match place {
                Place::Element(_) => kind == Kind::ElementToImport,
                Place::Global(_) => kind == Kind::GlobalInitToImport,
                Place::Table(_) => kind == Kind::TableInitToImport,
            };
            if let Some((&from, &to)) = funcs
                .iter()
                .find_map(|f| wrapped.get_key_value(f))
                .filter(|_| matches)
            {
                let what = format!("{place:?}: ref {from} -> import {to}");
                sites.push((
                    what,
                    Edit::Ref {
                        place: *place,
                        from,
                        to,
                    },
                ));
            }
        }
        add(kind, sites);
    }

    let imports = || manifest.wrapped.iter();
    add(
        Kind::ExportImport,
        imports()
            .map(|w| {
                let name = format!("irm-mutant:{}.{}", w.module, w.field);
                let edit = Edit::Export {
                    name: name.clone(),
                    kind: ExportKind::Func,
                    index: w.import_index,
                };
                (format!("export `{name}` = import {}", w.import_index), edit)
            })
            .collect(),
    );
    add(
        Kind::StartToImport,
        imports()
            .map(|w| {
                (
                    format!("start = import {}", w.import_index),
                    Edit::Start(w.import_index),
                )
            })
            .collect(),
    );

    let mut sites = Vec::new();
    if let Some(func) = original {
        for (n, &gl) in state.iter().enumerate() {
            let zero = match info.global_types[gl as usize] {
                ValType::I64 => I::I64Const(0),
                _ => I::I32Const(0),
            };
            let what = format!("function {func} starts with {zero:?}; global.set {gl}");
            sites.push((
                what,
                Edit::Prepend {
                    func,
                    with: vec![zero, I::GlobalSet(gl)],
                },
            ));
            if n == 0 {
                let what = format!("function {func} starts with global.get {gl}; global.set {gl}");
                sites.push((
                    what,
                    Edit::Prepend {
                        func,
                        with: vec![I::GlobalGet(gl), I::GlobalSet(gl)],
                    },
                ));
            }
        }
    }
    add(Kind::MonitorGlobalWrittenOutside, sites);
    add(
        Kind::MonitorGlobalExportedMutable,
        state
            .iter()
            .map(|&gl| {
                let name = format!("irm-mutant:global{gl}");
                let edit = Edit::Export {
                    name: name.clone(),
                    kind: ExportKind::Global,
                    index: gl,
                };
                (format!("export `{name}` = global {gl}"), edit)
            })
            .collect(),
    );

    // Operator edits in monitors.
    let (mut cmp, mut consts, mut sets, mut deny, mut mem) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let private = info.private_memory();
    for (f, ops) in monitor_ops() {
        let site = |k: usize, op: &Operator, with: Vec<I<'static>>| {
            (
                format!("function {f} op {k}: {op:?} -> {with:?}"),
                Edit::Op {
                    func: f,
                    op: k,
                    with,
                },
            )
        };
        for (k, op) in ops.iter().enumerate() {
            // Negation or twin, alternating over the sites.
            let flipped = flips(op);
            if let Some(new) = flipped.get(k % flipped.len().max(1)) {
                cmp.push(site(k, op, vec![new.clone()]));
            }
            match *op {
                Operator::I32Const { value } => {
                    let d = if k % 2 == 0 { 1 } else { -1 };
                    consts.push(site(k, op, vec![I::I32Const(value.wrapping_add(d))]));
                }
                Operator::I64Const { value } => {
                    let d = if k % 2 == 0 { 1 } else { -1 };
                    consts.push(site(k, op, vec![I::I64Const(value.wrapping_add(d))]));
                }
                Operator::GlobalSet { global_index } if state.contains(&global_index) => {
                    sets.push(site(k, op, vec![I::Drop]));
                }
                Operator::Unreachable => deny.push(site(k, op, vec![I::Nop])),
                _ => {}
            }
            if let (Some(m), Some(host), Some(private)) = (is_load(op), info.host_memory, private) {
                let to = if m == host {
                    private
                } else if m == private {
                    host
                } else {
                    continue;
                };
                let what = format!("function {f} op {k}: {op:?} reads memory {to}");
                mem.push((what, Edit::Memory { func: f, op: k, to }));
            }
        }
        for k in deny_branches(ops) {
            let with = match ops[k] {
                Operator::Br { .. } => I::Nop,
                _ => I::Drop,
            };
            deny.push(site(k, &ops[k], vec![with]));
        }
    }
    add(Kind::ComparisonFlipped, cmp);
    add(Kind::ConstantOffByOne, consts);
    add(Kind::StateUpdateSkipped, sets);
    add(Kind::DenyToAllow, deny);
    add(Kind::WrongMemory, mem);

    let mut out = Vec::new();
    let mut stats = Stats::default();
    let features = instrumenter::features();
    for (kind, sites) in candidates {
        let count = stats.per_kind.entry(kind).or_default();
        count.sites += sites.len();
        for (what, edit) in sample(&sites, CAP) {
            let wasm = apply(woven, &info, edit);
            if wasmparser::Validator::new_with_features(features)
                .validate_all(&wasm)
                .is_ok()
            {
                count.produced += 1;
                out.push(Mutant { kind, what, wasm });
            } else {
                count.invalid += 1;
            }
        }
    }
    (out, stats)
}
