//! A cheap first pass over the input: the facts about the module that planning needs.
//! Module-level sections are validated here; function bodies are not looked at.
use wasmparser::{
    Encoding, FuncToValidate, FuncType, MemoryType, Parser, Payload, TypeRef, ValidPayload,
    Validator, ValidatorResources,
};

use crate::validate::invalid;
use crate::WeaveError;

pub(crate) struct FuncImport<'a> {
    pub func_index: u32,
    pub module: &'a str,
    pub field: &'a str,
    pub type_index: u32,
}

pub(crate) struct OtherImport<'a> {
    pub module: &'a str,
    pub field: &'a str,
    pub kind: &'static str,
}

pub(crate) struct ModuleInfo<'a> {
    /// By type index; `None` for non-function (GC) types.
    pub types: Vec<Option<FuncType>>,
    pub func_imports: Vec<FuncImport<'a>>,
    pub other_imports: Vec<OtherImport<'a>>,
    pub num_defined_funcs: u32,
    pub num_globals: u32,
    /// Imported, then defined.
    pub memories: Vec<MemoryType>,
    pub num_data: u32,
    pub export_names: Vec<&'a str>,
    /// The memory exported as `memory`, which WASI hosts read.
    pub memory_export: Option<u32>,
    /// One per defined function body, in order: module-level validation is done during
    /// the scan, bodies are validated while they are emitted (see `crate::validate`).
    pub bodies: Vec<FuncToValidate<ValidatorResources>>,
}

impl<'a> ModuleInfo<'a> {
    pub fn num_funcs(&self) -> u32 {
        self.func_imports.len() as u32 + self.num_defined_funcs
    }

    /// Whether the module imports any WASI preview 1 or preview 0 function.
    pub fn imports_wasi(&self) -> bool {
        self.func_imports.iter().any(|i| {
            i.module == policy_lang::wasi::MODULE || i.module == policy_lang::wasi::PREVIEW0_MODULE
        })
    }

    pub fn func_type(&self, type_index: u32) -> Option<&FuncType> {
        self.types.get(type_index as usize).and_then(|t| t.as_ref())
    }

    pub fn scan(input: &'a [u8]) -> Result<Self, WeaveError> {
        let mut info = ModuleInfo {
            types: Vec::new(),
            func_imports: Vec::new(),
            other_imports: Vec::new(),
            num_defined_funcs: 0,
            num_globals: 0,
            memories: Vec::new(),
            num_data: 0,
            export_names: Vec::new(),
            memory_export: None,
            bodies: Vec::new(),
        };
        let mut validator = Validator::new_with_features(crate::features());
        let m = WeaveError::malformed;
        for payload in Parser::new(0).parse_all(input) {
            let payload = payload.map_err(m)?;
            match &payload {
                Payload::Version {
                    encoding: Encoding::Component,
                    ..
                } => {
                    return Err(WeaveError::Component {
                        why: "a component reached the core module reader".into(),
                    })
                }
                Payload::UnknownSection { id, range, .. } => {
                    return Err(WeaveError::UnknownSection {
                        id: *id,
                        offset: range.start,
                    })
                }
                _ => {}
            }
            if let ValidPayload::Func(f, _) = validator.payload(&payload).map_err(invalid)? {
                info.bodies.push(f);
            }
            match payload {
                Payload::TypeSection(r) => {
                    for group in r {
                        for sub in group.map_err(m)?.into_types() {
                            info.types.push(match sub.composite_type.inner {
                                wasmparser::CompositeInnerType::Func(f) => Some(f),
                                _ => None,
                            });
                        }
                    }
                }
                Payload::ImportSection(r) => {
                    for imp in r.into_imports() {
                        let imp = imp.map_err(m)?;
                        let kind = match imp.ty {
                            TypeRef::Func(t) | TypeRef::FuncExact(t) => {
                                info.func_imports.push(FuncImport {
                                    func_index: info.func_imports.len() as u32,
                                    module: imp.module,
                                    field: imp.name,
                                    type_index: t,
                                });
                                continue;
                            }
                            TypeRef::Memory(mt) => {
                                info.memories.push(mt);
                                "memory"
                            }
                            TypeRef::Global(_) => {
                                info.num_globals += 1;
                                "global"
                            }
                            TypeRef::Table(_) => "table",
                            TypeRef::Tag(_) => "tag",
                        };
                        info.other_imports.push(OtherImport {
                            module: imp.module,
                            field: imp.name,
                            kind,
                        });
                    }
                }
                Payload::FunctionSection(r) => info.num_defined_funcs = r.count(),
                Payload::MemorySection(r) => {
                    for mt in r {
                        info.memories.push(mt.map_err(m)?);
                    }
                }
                Payload::GlobalSection(r) => info.num_globals += r.count(),
                Payload::ExportSection(r) => {
                    for e in r {
                        let e = e.map_err(m)?;
                        if e.name == "memory" && e.kind == wasmparser::ExternalKind::Memory {
                            info.memory_export = Some(e.index);
                        }
                        info.export_names.push(e.name);
                    }
                }
                Payload::DataSection(r) => info.num_data = r.count(),
                Payload::CustomSection(c) if c.name() == crate::manifest::SECTION => {
                    return Err(WeaveError::AlreadyWoven {
                        section: crate::manifest::SECTION,
                    });
                }
                _ => {}
            }
        }
        Ok(info)
    }
}
