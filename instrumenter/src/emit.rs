//! Writing the woven module: one streaming pass over the input's sections.
//!
//! Sections that only gain entries (types, imports, functions, memories, data) keep
//! their original bytes and get the new entries appended. Sections that may reference a
//! wrapped import (tables, globals, exports, start, elements) are re-encoded through
//! [`Redirector`]. In the code section, a body is re-encoded only when it references a
//! wrapped import or when host hooks shift every function index; every other body is
//! copied byte for byte, in runs.
use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{ConstExpr, Encode};
use wasmparser::{BinaryReader, FuncToValidate, Name, Parser, Payload, ValidatorResources};

use crate::codegen::Registry;
use crate::plan::Plan;
use crate::report::Redirects;
use crate::validate;
use crate::WeaveError;

/// Which kind of reference `function_index` is currently mapping (for the report).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Uncounted,
    Element,
    Global,
    Table,
    Export,
    Start,
}

/// Maps function indices: wrapped imports to their wrappers, defined functions past the
/// hook imports. Used for everything except function names (names stay on the import).
pub(crate) struct Redirector<'a> {
    plan: &'a Plan,
    ctx: Ctx,
    first_wrapper: u32,
    /// Per wrapper, in plan order.
    pub counts: Vec<Redirects>,
}

impl Reencode for Redirector<'_> {
    type Error = WeaveError;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<WeaveError>> {
        match self.plan.wrapper_of(func) {
            Some(w) => {
                let c = &mut self.counts[(w - self.first_wrapper) as usize];
                match self.ctx {
                    Ctx::Uncounted => {}
                    Ctx::Element => c.element_items += 1,
                    Ctx::Global | Ctx::Table => c.global_inits += 1,
                    Ctx::Export => c.exports += 1,
                    Ctx::Start => c.start += 1,
                }
                Ok(w)
            }
            None => Ok(self.plan.shifted(func)),
        }
    }
}

fn internal(e: reencode::Error<WeaveError>) -> WeaveError {
    match e {
        reencode::Error::UserError(e) => e,
        reencode::Error::ParseError(e) => WeaveError::malformed(e),
        other => WeaveError::Internal {
            message: other.to_string(),
        },
    }
}

/// What generation produced, ready to be placed.
pub(crate) struct Generated {
    pub wrappers: Vec<wasm_encoder::Function>,
    /// The helper functions, in `Plan::helper_types` order, with their names.
    pub helpers: Vec<(wasm_encoder::Function, &'static str)>,
    pub registry: Registry,
    pub manifest_json: Vec<u8>,
    pub irm_version: &'static str,
    /// Names: wrappers (plan order), hooks, monitor globals (after `irm:violation`).
    pub wrapper_names: Vec<String>,
    pub hook_names: Vec<String>,
    pub global_names: Vec<String>,
}

pub(crate) struct Emitted {
    pub wasm: Vec<u8>,
    pub counts: Vec<Redirects>,
    pub bodies_rewritten: u32,
    pub bodies_copied: u32,
    /// Per input body: copied byte for byte.
    pub copied_mask: Vec<bool>,
    pub dropped: Vec<String>,
}

/// Section ranks in the order the binary format requires.
fn rank(id: u8) -> Option<usize> {
    Some(match id {
        1 => 0,
        2 => 1,
        3 => 2,
        4 => 3,
        5 => 4,
        13 => 5,
        6 => 6,
        7 => 7,
        8 => 8,
        9 => 9,
        12 => 10,
        10 => 11,
        11 => 12,
        _ => return None,
    })
}
const RANK_IDS: [u8; 13] = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

fn section(out: &mut Vec<u8>, id: u8, content: &[u8]) {
    out.push(id);
    (content.len() as u32).encode(out);
    out.extend_from_slice(content);
}

/// Splits a vector section's content into its count and the raw entries after it.
fn split_vec(content: &[u8], offset: usize) -> Result<(u32, &[u8]), WeaveError> {
    let mut r = BinaryReader::new(content, offset);
    let count = r.read_var_u32().map_err(WeaveError::malformed)?;
    let at = r.original_position() - offset;
    Ok((count, &content[at..]))
}

/// The raw entries of a section built with wasm-encoder (its size and count stripped).
fn items_of(s: &impl Encode) -> Vec<u8> {
    let mut v = Vec::new();
    s.encode(&mut v);
    let mut r = BinaryReader::new(&v, 0);
    let _size = r.read_var_u32().expect("wasm-encoder writes a size");
    let _count = r.read_var_u32().expect("wasm-encoder writes a count");
    let at = r.original_position();
    v[at..].to_vec()
}

fn vec_section(out: &mut Vec<u8>, id: u8, count: u32, old: &[u8], added: u32, new: &[u8]) {
    let mut content = Vec::with_capacity(old.len() + new.len() + 5);
    (count + added).encode(&mut content);
    content.extend_from_slice(old);
    content.extend_from_slice(new);
    section(out, id, &content);
}

struct Emitter<'a> {
    plan: &'a Plan,
    gen: &'a Generated,
    out: Vec<u8>,
    done: [bool; 13],
    red: Redirector<'a>,
    // New entries per section kind.
    new_types: (u32, Vec<u8>),
    new_imports: (u32, Vec<u8>),
    new_funcs: (u32, Vec<u8>),
    new_memories: (u32, Vec<u8>),
    new_globals: (u32, Vec<u8>),
    new_exports: (u32, Vec<u8>),
    new_data: (u32, Vec<u8>),
    needs_data_count: bool,
    num_data: u32,
    rewritten: u32,
    dwarf_stale: bool,
    dropped: Vec<String>,
    saw_names: bool,
    saw_producers: bool,
    /// Validation of the input's bodies, fused with the search for references.
    to_validate: Vec<FuncToValidate<ValidatorResources>>,
    threads: usize,
    /// Per input body: copied byte for byte (so the output validation may skip it).
    copied_mask: Vec<bool>,
}

pub(crate) fn emit(
    input: &[u8],
    plan: &Plan,
    gen: &Generated,
    num_data: u32,
    bodies: Vec<FuncToValidate<ValidatorResources>>,
    threads: usize,
) -> Result<Emitted, WeaveError> {
    let first_wrapper = plan.wrappers.first().map(|w| w.index).unwrap_or(u32::MAX);
    let reg = &gen.registry;
    let mut e = Emitter {
        plan,
        gen,
        out: Vec::with_capacity(input.len() + input.len() / 64 + 4096),
        done: [false; 13],
        red: Redirector {
            plan,
            ctx: Ctx::Uncounted,
            first_wrapper,
            counts: vec![Redirects::default(); plan.wrappers.len()],
        },
        new_types: (0, Vec::new()),
        new_imports: (0, Vec::new()),
        new_funcs: (0, Vec::new()),
        new_memories: (0, Vec::new()),
        new_globals: (0, Vec::new()),
        new_exports: (0, Vec::new()),
        new_data: (0, Vec::new()),
        needs_data_count: false,
        num_data,
        rewritten: 0,
        dwarf_stale: plan.any() || plan.shift > 0,
        dropped: Vec::new(),
        saw_names: false,
        saw_producers: false,
        to_validate: bodies,
        threads,
        copied_mask: Vec::new(),
    };

    let mut types = wasm_encoder::TypeSection::new();
    for (params, results) in &plan.types {
        types
            .ty()
            .function(params.iter().copied(), results.iter().copied());
    }
    e.new_types = (types.len(), items_of(&types));

    let mut imports = wasm_encoder::ImportSection::new();
    for h in &plan.hooks {
        imports.import(
            crate::manifest::HOOK_MODULE,
            &h.field,
            wasm_encoder::EntityType::Function(h.type_index),
        );
    }
    for a in &plan.added_imports {
        imports.import(
            a.module,
            a.field,
            wasm_encoder::EntityType::Function(a.type_index),
        );
    }
    e.new_imports = (imports.len(), items_of(&imports));

    let mut funcs = wasm_encoder::FunctionSection::new();
    for w in &plan.wrappers {
        funcs.function(w.type_index);
    }
    for t in plan.helper_types() {
        funcs.function(t);
    }
    e.new_funcs = (funcs.len(), items_of(&funcs));

    let private_pages = reg.private_len().div_ceil(65536).max(1);
    let uses_private = reg.private_len() > 0;
    if uses_private {
        let mut mems = wasm_encoder::MemorySection::new();
        mems.memory(wasm_encoder::MemoryType {
            minimum: private_pages,
            maximum: Some(private_pages),
            memory64: false,
            shared: false,
            page_size_log2: None,
        });
        e.new_memories = (mems.len(), items_of(&mems));
    }

    let mut globals = wasm_encoder::GlobalSection::new();
    let gt = |val_type| wasm_encoder::GlobalType {
        val_type,
        mutable: true,
        shared: false,
    };
    globals.global(gt(wasm_encoder::ValType::I32), &ConstExpr::i32_const(0));
    for &(t, init) in &plan.state_inits {
        let c = if t == wasm_encoder::ValType::I32 {
            ConstExpr::i32_const(init as i32)
        } else {
            ConstExpr::i64_const(init)
        };
        globals.global(gt(t), &c);
    }
    e.new_globals = (globals.len(), items_of(&globals));

    let mut exports = wasm_encoder::ExportSection::new();
    exports.export(
        crate::manifest::VIOLATION_GLOBAL,
        wasm_encoder::ExportKind::Global,
        plan.globals.violation,
    );
    e.new_exports = (exports.len(), items_of(&exports));

    let mut data = wasm_encoder::DataSection::new();
    if reg.uses_messages {
        data.passive(reg.messages.iter().copied());
        e.needs_data_count = true;
    }
    if reg.uses_dfas() {
        data.active(
            plan.private_memory,
            &ConstExpr::i32_const(reg.dfa_start as i32),
            reg.dfa_bytes.iter().copied(),
        );
    }
    e.new_data = (data.len(), items_of(&data));

    e.out.extend_from_slice(&[0, b'a', b's', b'm', 1, 0, 0, 0]);
    for payload in Parser::new(0).parse_all(input) {
        let payload = payload.map_err(WeaveError::malformed)?;
        match payload {
            Payload::Version { .. } => {}
            Payload::CodeSectionStart { count, range, .. } => {
                e.before(10)?;
                let content = &input[range.clone()];
                let (_, rest) = split_vec(content, range.start)?;
                let header_len = content.len() - rest.len();
                let mut st = CodeState {
                    count,
                    pieces: Vec::new(),
                    encoded: Vec::new(),
                    run: None,
                    prev_end: range.start + header_len,
                    header_len,
                };
                (count + e.new_funcs.0).encode(&mut st.encoded);
                st.pieces.push(Piece::Encoded(0..st.encoded.len()));
                // The whole section at once, so its bodies can be validated in parallel;
                // the parser's `CodeSectionEntry` payloads that follow are then skipped.
                let reader = wasmparser::CodeSectionReader::new(BinaryReader::new_features(
                    content,
                    range.start,
                    crate::features(),
                ))
                .map_err(WeaveError::malformed)?;
                let bodies = reader
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(WeaveError::malformed)?;
                let plan = e.plan;
                let found = validate::bodies(
                    std::mem::take(&mut e.to_validate),
                    &bodies,
                    &|f| plan.wrapper_of(f).is_some(),
                    e.threads,
                )?;
                for (body, found) in bodies.into_iter().zip(found) {
                    e.body(&mut st, body, found)?;
                }
                e.finish_code(st, input)?;
            }
            Payload::CodeSectionEntry(_) => {}
            Payload::CustomSection(c) => e.custom(c, input)?,
            Payload::End(_) => {}
            other => {
                let Some((id, range)) = other.as_section() else {
                    return Err(WeaveError::UnknownSection { id: 0, offset: 0 });
                };
                if rank(id).is_none() {
                    return Err(WeaveError::UnknownSection {
                        id,
                        offset: range.start,
                    });
                }
                e.before(id)?;
                e.known(other, &input[range.clone()], range.start)?;
            }
        }
    }
    e.before_end()?;
    if !e.saw_names && plan.any() {
        let names = e.names(None)?;
        if let Some(n) = names {
            section(&mut e.out, 0, &n);
        }
    }
    if !e.saw_producers {
        let mut p = wasm_encoder::ProducersSection::new();
        let mut f = wasm_encoder::ProducersField::new();
        f.value("irm", gen.irm_version);
        p.field("processed-by", &f);
        section(&mut e.out, 0, &section_content(&p));
    }
    let cs = custom_bytes(crate::manifest::SECTION, &gen.manifest_json);
    section(&mut e.out, 0, &cs);
    Ok(Emitted {
        wasm: e.out,
        counts: e.red.counts,
        bodies_rewritten: e.rewritten,
        bodies_copied: e.copied_mask.iter().filter(|&&c| c).count() as u32,
        copied_mask: std::mem::take(&mut e.copied_mask),
        dropped: e.dropped,
    })
}

fn custom_bytes(name: &str, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(name.len() + data.len() + 5);
    name.encode(&mut v);
    v.extend_from_slice(data);
    v
}

/// The new code section, built as pieces so that runs of bodies copied unchanged are
/// moved once, from the input straight into the output (CPython: 75 MB).
struct CodeState {
    count: u32,
    /// The section content in order.
    pieces: Vec<Piece>,
    /// The bytes of every [`Piece::Encoded`].
    encoded: Vec<u8>,
    /// Start of the current run of bodies copied unchanged.
    run: Option<usize>,
    prev_end: usize,
    header_len: usize,
}

enum Piece {
    /// A range of the input.
    Input(std::ops::Range<usize>),
    /// A range of [`CodeState::encoded`].
    Encoded(std::ops::Range<usize>),
}

impl CodeState {
    /// Ends the current run of copied bodies at `end`.
    fn close_run(&mut self, end: usize) {
        if let Some(start) = self.run.take() {
            self.pieces.push(Piece::Input(start..end));
        }
    }

    /// Adds what `encode` writes as the next piece.
    fn encode_with(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        let start = self.encoded.len();
        encode(&mut self.encoded);
        self.pieces.push(Piece::Encoded(start..self.encoded.len()));
    }
}

impl Emitter<'_> {
    /// Emits the missing sections that must come before section `id`.
    fn before(&mut self, id: u8) -> Result<(), WeaveError> {
        let r = rank(id).expect("known section");
        self.create_missing(r)?;
        self.done[r] = true;
        Ok(())
    }

    fn before_end(&mut self) -> Result<(), WeaveError> {
        self.create_missing(RANK_IDS.len())
    }

    /// Creates every section of rank below `upto` the input lacked.
    fn create_missing(&mut self, upto: usize) -> Result<(), WeaveError> {
        for (k, &id) in RANK_IDS.iter().enumerate().take(upto) {
            if !self.done[k] {
                self.create(id)?;
                self.done[k] = true;
            }
        }
        Ok(())
    }

    /// Emits section `id`, which the input lacks, if the weave adds entries to it.
    fn create(&mut self, id: u8) -> Result<(), WeaveError> {
        let (n, bytes) = match id {
            1 => &self.new_types,
            2 => &self.new_imports,
            3 => &self.new_funcs,
            5 => &self.new_memories,
            6 => &self.new_globals,
            7 => &self.new_exports,
            11 => &self.new_data,
            12 => {
                if self.needs_data_count {
                    let mut v = Vec::new();
                    (self.num_data + self.new_data.0).encode(&mut v);
                    section(&mut self.out, 12, &v);
                }
                return Ok(());
            }
            10 => {
                if self.new_funcs.0 > 0 {
                    let mut content = Vec::new();
                    self.new_funcs.0.encode(&mut content);
                    self.append_generated(&mut content);
                    section(&mut self.out, 10, &content);
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        if *n > 0 {
            let (n, bytes) = (*n, bytes.clone());
            vec_section(&mut self.out, id, 0, &[], n, &bytes);
        }
        Ok(())
    }

    fn append_generated(&self, content: &mut Vec<u8>) {
        for f in &self.gen.wrappers {
            f.encode(content);
        }
        for (f, _) in &self.gen.helpers {
            f.encode(content);
        }
    }

    fn known(&mut self, payload: Payload, content: &[u8], offset: usize) -> Result<(), WeaveError> {
        let id = payload.as_section().map(|(id, _)| id).unwrap_or(0);
        let e = internal;
        match payload {
            Payload::TypeSection(_)
            | Payload::ImportSection(_)
            | Payload::FunctionSection(_)
            | Payload::MemorySection(_)
            | Payload::DataSection(_) => {
                let (n, new) = match id {
                    1 => &self.new_types,
                    2 => &self.new_imports,
                    3 => &self.new_funcs,
                    5 => &self.new_memories,
                    _ => &self.new_data,
                };
                let (count, old) = split_vec(content, offset)?;
                let (n, new) = (*n, new.clone());
                vec_section(&mut self.out, id, count, old, n, &new);
            }
            Payload::TableSection(r) => {
                let mut t = wasm_encoder::TableSection::new();
                self.red.ctx = Ctx::Table;
                for table in r {
                    let table = table.map_err(WeaveError::malformed)?;
                    self.red.parse_table(&mut t, table).map_err(e)?;
                }
                section(&mut self.out, 4, &section_content(&t));
            }
            Payload::GlobalSection(r) => {
                let mut g = wasm_encoder::GlobalSection::new();
                self.red.ctx = Ctx::Global;
                self.red.parse_global_section(&mut g, r).map_err(e)?;
                let (count, old) = split_vec(&section_content(&g), 0)?.to_owned_pair();
                let (n, new) = self.new_globals.clone();
                vec_section(&mut self.out, 6, count, &old, n, &new);
            }
            Payload::ExportSection(r) => {
                let mut x = wasm_encoder::ExportSection::new();
                self.red.ctx = Ctx::Export;
                self.red.parse_export_section(&mut x, r).map_err(e)?;
                let (count, old) = split_vec(&section_content(&x), 0)?.to_owned_pair();
                let (n, new) = self.new_exports.clone();
                vec_section(&mut self.out, 7, count, &old, n, &new);
            }
            Payload::StartSection { func, .. } => {
                self.red.ctx = Ctx::Start;
                let f = self.red.start_section(func).map_err(e)?;
                let mut v = Vec::new();
                f.encode(&mut v);
                section(&mut self.out, 8, &v);
            }
            Payload::ElementSection(r) => {
                let mut x = wasm_encoder::ElementSection::new();
                self.red.ctx = Ctx::Element;
                self.red.parse_element_section(&mut x, r).map_err(e)?;
                section(&mut self.out, 9, &section_content(&x));
            }
            Payload::DataCountSection { count, .. } => {
                let mut v = Vec::new();
                (count + self.new_data.0).encode(&mut v);
                section(&mut self.out, 12, &v);
            }
            Payload::TagSection(_) => section(&mut self.out, 13, content),
            _ => return Err(WeaveError::UnknownSection { id, offset }),
        }
        self.red.ctx = Ctx::Uncounted;
        Ok(())
    }

    fn body(
        &mut self,
        st: &mut CodeState,
        body: wasmparser::FunctionBody,
        found: Vec<validate::FuncRef>,
    ) -> Result<(), WeaveError> {
        let range = body.range();
        let entry_start = st.prev_end;
        st.prev_end = range.end;
        // `found` holds exactly the references to wrapped imports (see `validate::bodies`).
        let copy = found.is_empty() && self.plan.shift == 0;
        for (f, kind) in found {
            let Some(w) = self.plan.wrapper_of(f) else {
                continue;
            };
            let c = &mut self.red.counts[(w - self.red.first_wrapper) as usize];
            match kind {
                0 => c.call += 1,
                1 => c.return_call += 1,
                _ => c.ref_func += 1,
            }
        }
        self.copied_mask.push(copy);
        if copy {
            if st.run.is_none() {
                st.run = Some(entry_start);
            }
            return Ok(());
        }
        st.close_run(entry_start);
        self.rewritten += 1;
        self.red.ctx = Ctx::Uncounted;
        let mut f = self
            .red
            .new_function_with_parsed_locals(&body)
            .map_err(internal)?;
        let mut ops = body.get_operators_reader().map_err(WeaveError::malformed)?;
        while !ops.eof() {
            f.instruction(&self.red.parse_instruction(&mut ops).map_err(internal)?);
        }
        st.encode_with(|out| f.encode(out));
        Ok(())
    }

    fn finish_code(&mut self, mut st: CodeState, input: &[u8]) -> Result<(), WeaveError> {
        st.close_run(st.prev_end);
        let mut new_header = Vec::new();
        (st.count + self.new_funcs.0).encode(&mut new_header);
        // DWARF addresses code by its offset in the section: stale once any body moved.
        self.dwarf_stale = self.rewritten > 0 || new_header.len() != st.header_len;
        st.encode_with(|out| self.append_generated(out));
        let bytes = |p: &Piece| match p {
            Piece::Input(r) => &input[r.clone()],
            Piece::Encoded(r) => &st.encoded[r.clone()],
        };
        let size: usize = st.pieces.iter().map(|p| bytes(p).len()).sum();
        let size = u32::try_from(size).map_err(|_| WeaveError::Internal {
            message: "the woven code section exceeds 4 GiB".into(),
        })?;
        self.out.push(10);
        size.encode(&mut self.out);
        for p in &st.pieces {
            self.out.extend_from_slice(bytes(p));
        }
        Ok(())
    }

    fn custom(
        &mut self,
        c: wasmparser::CustomSectionReader,
        input: &[u8],
    ) -> Result<(), WeaveError> {
        let raw = &input[c.range()];
        let name = c.name();
        if name.starts_with(".debug_") && self.dwarf_stale {
            self.dropped
                .push(format!("{name} (DWARF: code offsets changed)"));
            return Ok(());
        }
        if name == "name" {
            self.saw_names = true;
            match self.names(Some(&c))? {
                Some(n) => section(&mut self.out, 0, &n),
                None if self.plan.shift == 0 => section(&mut self.out, 0, raw),
                None => self
                    .dropped
                    .push("name (malformed, and host hooks shift function indices)".into()),
            }
            return Ok(());
        }
        if name == "producers" {
            self.saw_producers = true;
            match producers(&c, self.gen.irm_version) {
                Some(p) => section(&mut self.out, 0, &p),
                None => section(&mut self.out, 0, raw),
            }
            return Ok(());
        }
        section(&mut self.out, 0, raw);
        Ok(())
    }

    /// The rewritten name section (full content with the name "name"), or None when the
    /// input's is malformed.
    fn names(
        &mut self,
        c: Option<&wasmparser::CustomSectionReader>,
    ) -> Result<Option<Vec<u8>>, WeaveError> {
        let plan = self.plan;
        let gen = self.gen;
        if let (Some(c), 0) = (c, plan.shift) {
            return Ok(self.names_appended(c));
        }
        let mut out = wasm_encoder::NameSection::new();
        let mut did = [false; 4]; // functions, memories, globals, data
        let funcs_new = |out: &mut wasm_encoder::NameSection,
                         old: Option<wasmparser::NameMap>|
         -> Result<(), wasmparser::BinaryReaderError> {
            let mut m = wasm_encoder::NameMap::new();
            let mut hooks_done = false;
            let emit_hooks = |m: &mut wasm_encoder::NameMap| {
                for (h, n) in plan.hooks.iter().zip(&gen.hook_names) {
                    m.append(h.func_index, n);
                }
                for a in &plan.added_imports {
                    m.append(
                        a.func_index,
                        &format!("irm:import:{}.{}", a.module, a.field),
                    );
                }
            };
            if let Some(old) = old {
                for n in old {
                    let n = n?;
                    if n.index >= plan.num_func_imports && !hooks_done {
                        emit_hooks(&mut m);
                        hooks_done = true;
                    }
                    m.append(plan.shifted(n.index), n.name);
                }
            }
            if !hooks_done {
                emit_hooks(&mut m);
            }
            for (w, n) in plan.wrappers.iter().zip(&gen.wrapper_names) {
                m.append(w.index, n);
            }
            for (i, (_, n)) in gen.helpers.iter().enumerate() {
                m.append(plan.first_helper + i as u32, n);
            }
            out.functions(&m);
            Ok(())
        };
        let globals_new = |out: &mut wasm_encoder::NameSection,
                           old: Option<wasmparser::NameMap>|
         -> Result<(), wasmparser::BinaryReaderError> {
            let mut m = wasm_encoder::NameMap::new();
            if let Some(old) = old {
                for n in old {
                    let n = n?;
                    m.append(n.index, n.name);
                }
            }
            m.append(plan.globals.violation, crate::manifest::VIOLATION_GLOBAL);
            for (i, n) in gen.global_names.iter().enumerate() {
                m.append(plan.globals.violation + 1 + i as u32, n);
            }
            out.globals(&m);
            Ok(())
        };
        // Any failure here only means the name section is dropped (names are advisory).
        let result: Result<(), Box<dyn std::error::Error>> = (|| {
            if let Some(c) = c {
                let reader = wasmparser::NameSectionReader::new(BinaryReader::new(
                    c.data(),
                    c.data_offset(),
                ));
                for sub in reader {
                    let sub = sub?;
                    let id = name_id(&sub);
                    if id > 1 && !did[0] {
                        did[0] = true;
                        funcs_new(&mut out, None)?;
                    }
                    if id > 7 && !did[2] {
                        did[2] = true;
                        globals_new(&mut out, None)?;
                    }
                    match sub {
                        Name::Function(m) => {
                            did[0] = true;
                            funcs_new(&mut out, Some(m))?;
                        }
                        Name::Global(m) => {
                            did[2] = true;
                            globals_new(&mut out, Some(m))?;
                        }
                        Name::Local(m) => out.locals(&shift_indirect(m, plan)?),
                        Name::Label(m) => out.labels(&shift_indirect(m, plan)?),
                        other => {
                            let mut rt = reencode::RoundtripReencoder;
                            reencode::utils::parse_custom_name_subsection(&mut rt, &mut out, other)
                                .map_err(|e| format!("name subsection: {e:?}"))?;
                        }
                    }
                }
            }
            if !did[0] {
                funcs_new(&mut out, None)?;
            }
            if !did[2] {
                globals_new(&mut out, None)?;
            }
            Ok(())
        })();
        let _ = &mut did[1];
        let _ = &mut did[3];
        match result {
            Ok(()) => Ok(Some(section_content(&out))),
            Err(_) => Ok(None),
        }
    }
}

impl Emitter<'_> {
    /// [`Self::names`] when no index moves (no host hooks, no added imports): the new
    /// functions and globals come after every old one, so their names are appended to the
    /// function and global subsections (which are created where missing) and every other
    /// subsection is copied as it is. CPython's name section is 14 MB, most of it local
    /// names that decoding and encoding again would only reproduce. None when the
    /// section's framing is malformed.
    fn names_appended(&self, c: &wasmparser::CustomSectionReader) -> Option<Vec<u8>> {
        let (plan, gen) = (self.plan, self.gen);
        let funcs: Vec<(u32, &str)> = plan
            .wrappers
            .iter()
            .map(|w| w.index)
            .zip(gen.wrapper_names.iter().map(String::as_str))
            .chain(
                gen.helpers
                    .iter()
                    .enumerate()
                    .map(|(i, (_, n))| (plan.first_helper + i as u32, *n)),
            )
            .collect();
        let violation = plan.globals.violation;
        let globals: Vec<(u32, &str)> = std::iter::once(crate::manifest::VIOLATION_GLOBAL)
            .chain(gen.global_names.iter().map(String::as_str))
            .enumerate()
            .map(|(i, n)| (violation + i as u32, n))
            .collect();
        let mut out = Vec::new();
        "name".encode(&mut out);
        let mut r = BinaryReader::new(c.data(), c.data_offset());
        let (mut did_funcs, mut did_globals) = (false, false);
        while !r.eof() {
            let id = r.read_u8().ok()?;
            let size = r.read_var_u32().ok()? as usize;
            let content = r.read_bytes(size).ok()?;
            if id > 1 && !did_funcs {
                did_funcs = true;
                name_subsection(&mut out, 1, None, &funcs)?;
            }
            if id > 7 && !did_globals {
                did_globals = true;
                name_subsection(&mut out, 7, None, &globals)?;
            }
            match id {
                1 => {
                    did_funcs = true;
                    name_subsection(&mut out, 1, Some(content), &funcs)?;
                }
                7 => {
                    did_globals = true;
                    name_subsection(&mut out, 7, Some(content), &globals)?;
                }
                _ => {
                    out.push(id);
                    (size as u32).encode(&mut out);
                    out.extend_from_slice(content);
                }
            }
        }
        if !did_funcs {
            name_subsection(&mut out, 1, None, &funcs)?;
        }
        if !did_globals {
            name_subsection(&mut out, 7, None, &globals)?;
        }
        Some(out)
    }
}

/// A name-map subsection `id`: the entries of `old` (a subsection's content: count, then
/// entries), then `added`. None when `old` has no count.
fn name_subsection(
    out: &mut Vec<u8>,
    id: u8,
    old: Option<&[u8]>,
    added: &[(u32, &str)],
) -> Option<()> {
    let (count, entries) = match old {
        Some(old) => {
            let mut r = BinaryReader::new(old, 0);
            let count = r.read_var_u32().ok()?;
            (count, &old[r.original_position()..])
        }
        None => (0, &[][..]),
    };
    let mut content = Vec::with_capacity(entries.len() + 16 * added.len() + 5);
    (count.checked_add(added.len() as u32)?).encode(&mut content);
    content.extend_from_slice(entries);
    for (index, name) in added {
        index.encode(&mut content);
        name.encode(&mut content);
    }
    out.push(id);
    (content.len() as u32).encode(out);
    out.extend_from_slice(&content);
    Some(())
}

fn name_id(n: &Name) -> u8 {
    match n {
        Name::Module { .. } => 0,
        Name::Function(_) => 1,
        Name::Local(_) => 2,
        Name::Label(_) => 3,
        Name::Type(_) => 4,
        Name::Table(_) => 5,
        Name::Memory(_) => 6,
        Name::Global(_) => 7,
        Name::Element(_) => 8,
        Name::Data(_) => 9,
        Name::Field(_) => 10,
        Name::Tag(_) => 11,
        Name::Unknown { ty, .. } => *ty,
    }
}

fn shift_indirect(
    m: wasmparser::IndirectNameMap,
    plan: &Plan,
) -> Result<wasm_encoder::IndirectNameMap, wasmparser::BinaryReaderError> {
    let mut out = wasm_encoder::IndirectNameMap::new();
    for n in m {
        let n = n?;
        let mut inner = wasm_encoder::NameMap::new();
        for x in n.names {
            let x = x?;
            inner.append(x.index, x.name);
        }
        out.append(plan.shifted(n.index), &inner);
    }
    Ok(out)
}

/// The producers section with `processed-by irm <version>` added, or None if malformed.
fn producers(c: &wasmparser::CustomSectionReader, version: &str) -> Option<Vec<u8>> {
    let reader =
        wasmparser::ProducersSectionReader::new(BinaryReader::new(c.data(), c.data_offset()))
            .ok()?;
    let mut p = wasm_encoder::ProducersSection::new();
    let mut saw = false;
    for field in reader {
        let field = field.ok()?;
        let mut f = wasm_encoder::ProducersField::new();
        for v in field.values {
            let v = v.ok()?;
            if !(field.name == "processed-by" && v.name == "irm") {
                f.value(v.name, v.version);
            }
        }
        if field.name == "processed-by" {
            f.value("irm", version);
            saw = true;
        }
        p.field(field.name, &f);
    }
    if !saw {
        let mut f = wasm_encoder::ProducersField::new();
        f.value("irm", version);
        p.field("processed-by", &f);
    }
    Some(section_content(&p))
}

/// A wasm-encoder section's content (count and entries, without id and size).
fn section_content(s: &impl Encode) -> Vec<u8> {
    let mut v = Vec::new();
    s.encode(&mut v);
    let mut r = BinaryReader::new(&v, 0);
    let _size = r.read_var_u32().expect("wasm-encoder writes a size");
    let at = r.original_position();
    v[at..].to_vec()
}

trait ToOwnedPair {
    fn to_owned_pair(self) -> (u32, Vec<u8>);
}
impl ToOwnedPair for (u32, &[u8]) {
    fn to_owned_pair(self) -> (u32, Vec<u8>) {
        (self.0, self.1.to_vec())
    }
}
