//! The facts about a module the checks need, read with wasmparser alone.
//!
//! Module-level sections are validated while they are read; function bodies are kept
//! for [`crate::certify`] to validate the monitor's own.
use policy_lang::wasi::is_wasi_module;
use wasmparser::{
    ConstExpr, DataKind, ElementItems, ElementKind, Encoding, Export, ExternalKind, FuncToValidate,
    FuncType, FunctionBody, Import, MemoryType, Operator, Parser, Payload, TableInit, TypeRef,
    ValidPayload, Validator, ValidatorResources, WasmFeatures,
};

use crate::Finding;

/// A global: where it is imported and, when it is a constant, its initial value's bits.
pub struct Global {
    /// The byte offset of its import entry, for an imported global.
    pub import: Option<usize>,
    /// `None` for an imported global and one whose initialiser is not a plain constant.
    pub init: Option<u64>,
}

pub struct Memory {
    pub ty: MemoryType,
    /// The byte offset of its import entry, for an imported memory.
    pub import: Option<usize>,
}

/// A data segment: its bytes and, when active, the memory and constant offset it fills.
pub struct Data<'a> {
    pub bytes: &'a [u8],
    /// `Some((memory, offset))` for an active segment; the offset is `None` when it is
    /// not a constant.
    pub active: Option<(u32, Option<u64>)>,
}

/// A function reference outside code: element segments, global and table initialisers,
/// then exports and the start function.
pub struct FuncRef {
    pub func: u32,
    pub offset: usize,
    /// What it is, e.g. "is referenced by an element segment".
    pub what: String,
}

#[derive(Default)]
pub struct Module<'a> {
    /// By type index; `None` for non-function types.
    pub types: Vec<Option<FuncType>>,
    /// The function imports, each with the byte offset of its entry.
    pub imports: Vec<(usize, Import<'a>)>,
    /// Type index of every function, imported then defined.
    pub func_types: Vec<u32>,
    pub globals: Vec<Global>,
    pub memories: Vec<Memory>,
    /// Each with the byte offset of its entry.
    pub exports: Vec<(usize, Export<'a>)>,
    pub bodies: Vec<FunctionBody<'a>>,
    pub to_validate: Vec<FuncToValidate<ValidatorResources>>,
    pub data: Vec<Data<'a>>,
    pub func_refs: Vec<FuncRef>,
    /// Globals read by global and table initialisers and element expressions.
    pub const_global_reads: Vec<(u32, usize)>,
}

impl<'a> Module<'a> {
    pub fn num_imports(&self) -> u32 {
        self.imports.len() as u32
    }

    pub fn func_type(&self, func: u32) -> Option<&FuncType> {
        let t = *self.func_types.get(func as usize)?;
        self.types.get(t as usize)?.as_ref()
    }

    /// The defined function's body, by function index.
    pub fn body(&self, func: u32) -> Option<&FunctionBody<'a>> {
        self.bodies
            .get(func.checked_sub(self.num_imports())? as usize)
    }

    /// The memory the host reads strings from: the one exported as `memory` (WASI hosts
    /// read that one), or memory 0 of a module that imports no WASI function (a custom
    /// host, which can only mean its first memory).
    pub fn host_memory(&self) -> Option<u32> {
        let exported = self
            .exports
            .iter()
            .find(|(_, e)| e.name == "memory" && e.kind == ExternalKind::Memory)
            .map(|(_, e)| e.index);
        let wasi = self.imports.iter().any(|(_, i)| is_wasi_module(i.module));
        exported.or((!wasi && !self.memories.is_empty()).then_some(0))
    }

    pub fn read(input: &'a [u8], features: WasmFeatures) -> Result<Module<'a>, Finding> {
        let mut m = Module::default();
        let mut start = None;
        let mut validator = Validator::new_with_features(features);
        let bad = |e: wasmparser::BinaryReaderError| {
            Finding::at(e.offset(), format!("not a valid module: {}", e.message()))
        };
        for payload in Parser::new(0).parse_all(input) {
            let payload = payload.map_err(bad)?;
            if let Payload::Version {
                encoding: Encoding::Component,
                range,
                ..
            } = &payload
            {
                let message = "a component: only core modules can be certified";
                return Err(Finding::at(range.start, message.into()));
            }
            if let ValidPayload::Func(f, body) = validator.payload(&payload).map_err(bad)? {
                m.to_validate.push(f);
                m.bodies.push(body);
            }
            match payload {
                Payload::TypeSection(r) => {
                    for group in r {
                        for sub in group.map_err(bad)?.into_types() {
                            m.types.push(match sub.composite_type.inner {
                                wasmparser::CompositeInnerType::Func(f) => Some(f),
                                _ => None,
                            });
                        }
                    }
                }
                Payload::ImportSection(r) => {
                    for imp in r.into_imports_with_offsets() {
                        let (offset, imp) = imp.map_err(bad)?;
                        let import = Some(offset);
                        match imp.ty {
                            TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                                m.imports.push((offset, imp));
                                m.func_types.push(t);
                            }
                            TypeRef::Memory(ty) => m.memories.push(Memory { ty, import }),
                            TypeRef::Global(_) => m.globals.push(Global { import, init: None }),
                            TypeRef::Table(_) | TypeRef::Tag(_) => {}
                        }
                    }
                }
                Payload::FunctionSection(r) => {
                    for t in r {
                        m.func_types.push(t.map_err(bad)?);
                    }
                }
                Payload::TableSection(r) => {
                    for t in r {
                        if let TableInit::Expr(e) = t.map_err(bad)?.init {
                            m.const_expr(&e, "a table initialiser")?;
                        }
                    }
                }
                Payload::MemorySection(r) => {
                    for ty in r {
                        let ty = ty.map_err(bad)?;
                        m.memories.push(Memory { ty, import: None });
                    }
                }
                Payload::GlobalSection(r) => {
                    for g in r {
                        let g = g.map_err(bad)?;
                        let init = m.const_expr(&g.init_expr, "a global initialiser")?;
                        m.globals.push(Global { import: None, init });
                    }
                }
                Payload::ExportSection(r) => {
                    for e in r.into_iter_with_offsets() {
                        m.exports.push(e.map_err(bad)?);
                    }
                }
                Payload::StartSection { func, range } => start = Some((func, range.start)),
                Payload::ElementSection(r) => {
                    for e in r {
                        let e = e.map_err(bad)?;
                        if let ElementKind::Active { offset_expr, .. } = &e.kind {
                            m.const_expr(offset_expr, "an element offset")?;
                        }
                        match e.items {
                            ElementItems::Functions(fs) => {
                                for f in fs.into_iter_with_offsets() {
                                    let (offset, func) = f.map_err(bad)?;
                                    let what = "is referenced by an element segment".into();
                                    m.func_refs.push(FuncRef { func, offset, what });
                                }
                            }
                            ElementItems::Expressions(_, es) => {
                                for x in es {
                                    m.const_expr(&x.map_err(bad)?, "an element expression")?;
                                }
                            }
                        }
                    }
                }
                Payload::DataSection(r) => {
                    for d in r {
                        let d = d.map_err(bad)?;
                        let active = match d.kind {
                            DataKind::Passive => None,
                            DataKind::Active {
                                memory_index,
                                offset_expr,
                            } => Some((memory_index, m.const_expr(&offset_expr, "a data offset")?)),
                        };
                        let bytes = d.data;
                        m.data.push(Data { bytes, active });
                    }
                }
                _ => {}
            }
        }
        // Exports and the start function come last, as the findings about them do.
        let funcs = m.exports.iter().filter(|x| x.1.kind == ExternalKind::Func);
        for (offset, e) in funcs {
            let (func, offset, what) = (e.index, *offset, format!("is exported as `{}`", e.name));
            m.func_refs.push(FuncRef { func, offset, what });
        }
        if let Some((func, offset)) = start {
            let what = "is the start function".into();
            m.func_refs.push(FuncRef { func, offset, what });
        }
        Ok(m)
    }

    /// Records the references a constant expression makes and returns its value when it
    /// is a plain numeric constant.
    fn const_expr(
        &mut self,
        e: &ConstExpr<'a>,
        place: &'static str,
    ) -> Result<Option<u64>, Finding> {
        let mut value = None;
        let mut ops = e.get_operators_reader();
        let mut count = 0;
        while !ops.eof() {
            let offset = ops.original_position();
            let op = ops.read().map_err(|e| {
                Finding::at(e.offset(), format!("malformed {place}: {}", e.message()))
            })?;
            count += 1;
            match op {
                Operator::RefFunc { function_index } => {
                    let (func, what) = (function_index, format!("is referenced by {place}"));
                    self.func_refs.push(FuncRef { func, offset, what })
                }
                Operator::GlobalGet { global_index } => {
                    self.const_global_reads.push((global_index, offset))
                }
                Operator::I32Const { value: v } => value = Some(v as u32 as u64),
                Operator::I64Const { value: v } => value = Some(v as u64),
                Operator::F32Const { value: v } => value = Some(v.bits() as u64),
                Operator::F64Const { value: v } => value = Some(v.bits()),
                _ => {}
            }
        }
        // `const; end` only: extended constant expressions are not evaluated here.
        Ok(if count == 2 { value } else { None })
    }
}
