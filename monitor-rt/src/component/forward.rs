//! The forwarder: the small component through which host enforcement calls wasmtime-wasi's
//! own implementation of a function it wraps.
//!
//! wasmtime's component linker cannot hand back a function it holds, and wasmtime refuses
//! a component that re-exports an imported function. So the real function is reached
//! through a component that imports it, lowers it into a core module and lifts a
//! pass-through of it as the export `forward<i>` (`i` its position in the list given to
//! [`build`]), with the same WIT type. Its core module's memory is a bump heap the
//! canonical ABI allocates arguments and results in; every export's post-return empties
//! it. Calls never overlap: the forwarder calls only the host, which never calls back.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use wasm_encoder::{
    CodeSection, ConstExpr, EntityType, ExportKind, ExportSection, Function, FunctionSection,
    GlobalSection, GlobalType, ImportSection, Instruction as I, MemorySection, MemoryType, Module,
    TypeSection, ValType,
};
use wit_parser::abi::{AbiVariant, WasmSignature, WasmType};
use wit_parser::{Handle, Resolve, Type, TypeDefKind, TypeId, TypeOwner};

/// Where the heap starts: never at 0, which the canonical ABI reads as "no allocation".
const HEAP_BASE: i32 = 16;

/// The name of the export that forwards the `i`-th function.
pub(crate) fn export_name(i: usize) -> String {
    format!("forward{i}")
}

/// A component that forwards each of `functions` (`(interface, function)` of the WASI 0.2
/// catalogue, the interface without its version: `wasi:filesystem/types`,
/// `[method]descriptor.open-at`) to its import.
pub(crate) fn build(functions: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut resolve = Resolve::default();
    for (name, text) in policy_lang::wit::FILES {
        resolve
            .push_str(name, text)
            .map_err(|e| format!("{name}: {e:#}"))?;
    }
    let mut found = Vec::new();
    for (interface, name) in functions {
        let f = find(&resolve, interface, name)
            .ok_or_else(|| format!("{interface}.{name} is not a WASI 0.2 function"))?;
        found.push((interface.as_str(), f.clone()));
    }
    let found: Vec<(&str, &wit_parser::Function)> = found.iter().map(|(i, f)| (*i, f)).collect();
    let wit = world_text(&resolve, &found)?;
    let pkg = resolve
        .push_str("irm-forward.wit", &wit)
        .map_err(|e| format!("the forwarder's world: {e:#}\n{wit}"))?;
    let world = resolve
        .select_world(&[pkg], Some("forward"))
        .map_err(|e| format!("{e:#}"))?;
    let mut module = core_module(&resolve, world, &found)?;
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(|e| format!("{e:#}"))?;
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("{e:#}"))
}

fn find<'r>(resolve: &'r Resolve, interface: &str, name: &str) -> Option<&'r wit_parser::Function> {
    resolve.interfaces.iter().find_map(|(_, iface)| {
        let pkg = &resolve.packages[iface.package?].name;
        let full = format!("{}:{}/{}", pkg.namespace, pkg.name, iface.name.as_deref()?);
        (full == interface).then(|| iface.functions.get(name))?
    })
}

fn versioned(interface: &str) -> String {
    format!("{interface}@{}", policy_lang::wit::VERSION)
}

/// The forwarder's world: the interfaces imported, the types the exports name brought in
/// by `use` (as `t<n>`), and one export per function.
fn world_text(
    resolve: &Resolve,
    functions: &[(&str, &wit_parser::Function)],
) -> Result<String, String> {
    let mut names = TypeNames::default();
    let mut exports = String::new();
    for (i, (_, f)) in functions.iter().enumerate() {
        let params: Vec<String> = f
            .params
            .iter()
            .enumerate()
            .map(|(n, p)| Ok(format!("p{n}: {}", names.print(resolve, &p.ty)?)))
            .collect::<Result<_, String>>()?;
        let result = match &f.result {
            Some(t) => format!(" -> {}", names.print(resolve, t)?),
            None => String::new(),
        };
        let _ = writeln!(
            exports,
            "  export {}: func({}){result};",
            export_name(i),
            params.join(", ")
        );
    }
    let mut text = String::from("package irm:forward;\n\nworld forward {\n");
    let imported: std::collections::BTreeSet<&str> = functions.iter().map(|(i, _)| *i).collect();
    for interface in imported {
        let _ = writeln!(text, "  import {};", versioned(interface));
    }
    for (interface, alias, name) in &names.used {
        let _ = writeln!(
            text,
            "  use {}.{{{name} as {alias}}};",
            versioned(interface)
        );
    }
    text.push_str(&exports);
    text.push_str("}\n");
    Ok(text)
}

/// Named types as the world brings them in: `use iface.{name as t<n>}`.
#[derive(Default)]
struct TypeNames {
    by_id: BTreeMap<TypeId, String>,
    /// (interface, alias, WIT name)
    used: Vec<(String, String, String)>,
}

impl TypeNames {
    fn named(&mut self, resolve: &Resolve, id: TypeId) -> Result<String, String> {
        if let Some(alias) = self.by_id.get(&id) {
            return Ok(alias.clone());
        }
        let def = &resolve.types[id];
        let TypeOwner::Interface(owner) = def.owner else {
            return Err(format!(
                "type {:?} is not defined by an interface",
                def.name
            ));
        };
        let iface = &resolve.interfaces[owner];
        let pkg = iface
            .package
            .map(|p| &resolve.packages[p].name)
            .ok_or("an interface without a package")?;
        let interface = format!(
            "{}:{}/{}",
            pkg.namespace,
            pkg.name,
            iface.name.as_deref().ok_or("an anonymous interface")?
        );
        let alias = format!("t{}", self.by_id.len());
        let name = def.name.clone().ok_or("an anonymous named type")?;
        self.used.push((interface, alias.clone(), name));
        self.by_id.insert(id, alias.clone());
        Ok(alias)
    }

    fn print(&mut self, resolve: &Resolve, ty: &Type) -> Result<String, String> {
        Ok(match ty {
            Type::Bool => "bool".into(),
            Type::U8 => "u8".into(),
            Type::U16 => "u16".into(),
            Type::U32 => "u32".into(),
            Type::U64 => "u64".into(),
            Type::S8 => "s8".into(),
            Type::S16 => "s16".into(),
            Type::S32 => "s32".into(),
            Type::S64 => "s64".into(),
            Type::F32 => "f32".into(),
            Type::F64 => "f64".into(),
            Type::Char => "char".into(),
            Type::String => "string".into(),
            Type::ErrorContext => return Err("error-context is not supported".into()),
            Type::Id(id) => {
                let def = &resolve.types[*id];
                if def.name.is_some() {
                    return self.named(resolve, *id);
                }
                match &def.kind {
                    TypeDefKind::Type(t) => self.print(resolve, t)?,
                    TypeDefKind::Handle(Handle::Own(r)) => self.named(resolve, *r)?,
                    TypeDefKind::Handle(Handle::Borrow(r)) => {
                        format!("borrow<{}>", self.named(resolve, *r)?)
                    }
                    TypeDefKind::List(t) => format!("list<{}>", self.print(resolve, t)?),
                    TypeDefKind::Option(t) => format!("option<{}>", self.print(resolve, t)?),
                    TypeDefKind::Tuple(t) => {
                        let items: Vec<String> = t
                            .types
                            .iter()
                            .map(|t| self.print(resolve, t))
                            .collect::<Result<_, _>>()?;
                        format!("tuple<{}>", items.join(", "))
                    }
                    TypeDefKind::Result(r) => match (&r.ok, &r.err) {
                        (None, None) => "result".into(),
                        (Some(ok), None) => format!("result<{}>", self.print(resolve, ok)?),
                        (None, Some(err)) => format!("result<_, {}>", self.print(resolve, err)?),
                        (Some(ok), Some(err)) => format!(
                            "result<{}, {}>",
                            self.print(resolve, ok)?,
                            self.print(resolve, err)?
                        ),
                    },
                    other => return Err(format!("an anonymous {other:?} is not supported")),
                }
            }
        })
    }
}

fn core(t: &WasmType) -> ValType {
    match t {
        WasmType::I32 | WasmType::Pointer | WasmType::Length => ValType::I32,
        WasmType::I64 | WasmType::PointerOrI64 => ValType::I64,
        WasmType::F32 => ValType::F32,
        WasmType::F64 => ValType::F64,
    }
}

fn core_types(ts: &[WasmType]) -> Vec<ValType> {
    ts.iter().map(core).collect()
}

/// The core module: `memory`, `cabi_realloc` (a bump allocator), and per function `forward<i>`
/// calling the import and `cabi_post_forward<i>` emptying the heap.
fn core_module(
    resolve: &Resolve,
    world: wit_parser::WorldId,
    functions: &[(&str, &wit_parser::Function)],
) -> Result<Vec<u8>, String> {
    let mut sizes = wit_parser::SizeAlign::default();
    sizes.fill(resolve);
    let exported: Vec<&wit_parser::Function> = (0..functions.len())
        .map(|i| {
            let key = wit_parser::WorldKey::Name(export_name(i));
            match resolve.worlds[world].exports.get(&key) {
                Some(wit_parser::WorldItem::Function(f)) => Ok(f),
                _ => Err(format!("the forwarder's world lacks {}", export_name(i))),
            }
        })
        .collect::<Result<_, _>>()?;

    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    let mut funcs = FunctionSection::new();
    let mut exports = ExportSection::new();
    let mut code = CodeSection::new();
    // The borrows each call is lent, which the forwarder must give back (drop) before it
    // returns, as any component that is lent a handle must.
    let mut drop_imports: Vec<DropImport> = Vec::new();
    let mut lent: Vec<Vec<(u32, Lent)>> = Vec::new();
    for (_, f) in functions {
        let mut these = Vec::new();
        let mut at = 0u32;
        for p in &f.params {
            if let Some((how, (module, name))) = borrowed(resolve, &p.ty)? {
                let key = (module, name);
                let index = match drop_imports.iter().position(|d| *d == key) {
                    Some(i) => i,
                    None => {
                        drop_imports.push(key);
                        drop_imports.len() - 1
                    }
                };
                these.push((index as u32, how(at)));
            }
            at += flat_count(resolve, &p.ty);
        }
        if !these.is_empty()
            && resolve
                .wasm_signature(AbiVariant::GuestImport, f)
                .indirect_params
        {
            return Err(format!("{}: borrows among more than 16 parameters", f.name));
        }
        lent.push(these);
    }
    let n = functions.len() as u32;
    let drops = n;
    // Function indices: the imports and the drops, then realloc, then each f<i> and its
    // post-return.
    let realloc = n + drop_imports.len() as u32;
    types.ty().function([ValType::I32; 4], [ValType::I32]);
    let realloc_ty = 0;
    types.ty().function([ValType::I32], []);
    let drop_ty = 1;
    let mut signatures: Vec<(WasmSignature, WasmSignature)> = Vec::new();
    for ((interface, f), e) in functions.iter().zip(&exported) {
        let import = resolve.wasm_signature(AbiVariant::GuestImport, f);
        let export = resolve.wasm_signature(AbiVariant::GuestExport, e);
        let ty = types.len();
        types
            .ty()
            .function(core_types(&import.params), core_types(&import.results));
        imports.import(&versioned(interface), &f.name, EntityType::Function(ty));
        signatures.push((import, export));
    }
    for (module, name) in &drop_imports {
        imports.import(module, name, EntityType::Function(drop_ty));
    }
    funcs.function(realloc_ty);
    code.function(&realloc_body());
    exports.export("cabi_realloc", ExportKind::Func, realloc);
    exports.export("memory", ExportKind::Memory, 0);
    for (i, ((import, export), (_, f))) in signatures.iter().zip(functions).enumerate() {
        let consistent = export.params
            == import.params[..import.params.len() - import.retptr as usize]
            && (import.retptr || export.results == import.results);
        if !consistent {
            return Err(format!(
                "{}: its lifted and lowered signatures do not pass through",
                f.name
            ));
        }
        let f_ty = types.len();
        types
            .ty()
            .function(core_types(&export.params), core_types(&export.results));
        let post_ty = types.len();
        types.ty().function(core_types(&export.results), []);
        let f_index = realloc + 1 + 2 * i as u32;
        funcs.function(f_ty);
        funcs.function(post_ty);
        let retptr = export.params.len() as u32;
        let counter = retptr + 1;
        let mut body = Function::new([(2, ValType::I32)]);
        if import.retptr {
            let ty = f
                .result
                .as_ref()
                .ok_or("results behind a pointer, but no result")?;
            body.instruction(&I::I32Const(0))
                .instruction(&I::I32Const(0))
                .instruction(&I::I32Const(sizes.align(ty).align_wasm32() as i32))
                .instruction(&I::I32Const(sizes.size(ty).size_wasm32() as i32))
                .instruction(&I::Call(realloc))
                .instruction(&I::LocalSet(retptr));
        }
        for p in 0..export.params.len() as u32 {
            body.instruction(&I::LocalGet(p));
        }
        if import.retptr {
            body.instruction(&I::LocalGet(retptr));
        }
        body.instruction(&I::Call(i as u32));
        for &(d, how) in &lent[i] {
            give_back(&mut body, drops + d, how, counter);
        }
        if import.retptr {
            body.instruction(&I::LocalGet(retptr));
        }
        body.instruction(&I::End);
        code.function(&body);
        let mut post = Function::new([]);
        post.instruction(&I::I32Const(HEAP_BASE))
            .instruction(&I::GlobalSet(0))
            .instruction(&I::End);
        code.function(&post);
        exports.export(&export_name(i), ExportKind::Func, f_index);
        exports.export(
            &format!("cabi_post_{}", export_name(i)),
            ExportKind::Func,
            f_index + 1,
        );
    }
    let (memories, globals) = heap(1, HEAP_BASE as u32);
    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&funcs)
        .section(&memories)
        .section(&globals)
        .section(&exports)
        .section(&code);
    Ok(module.finish())
}

/// Where a call's borrowed handle is among its core parameters.
#[derive(Clone, Copy, Debug)]
enum Lent {
    /// The handle itself.
    Handle(u32),
    /// A `list<borrow<R>>`: the list's pointer (its length follows).
    List(u32),
}

type LentAt = fn(u32) -> Lent;

/// An import that drops a resource: (interface, `[resource-drop]R`).
type DropImport = (String, String);

/// Whether a parameter of type `ty` lends handles, where, and the drop that gives them
/// back (`[resource-drop]R` of the interface defining `R`). Borrows anywhere else than
/// the parameter itself or a list of them are not forwarded.
fn borrowed(resolve: &Resolve, ty: &Type) -> Result<Option<(LentAt, DropImport)>, String> {
    let Type::Id(id) = ty else { return Ok(None) };
    match &resolve.types[*id].kind {
        TypeDefKind::Type(t) => borrowed(resolve, t),
        TypeDefKind::Handle(Handle::Borrow(r)) => Ok(Some((Lent::Handle, drop_of(resolve, *r)?))),
        TypeDefKind::List(t) => match borrowed(resolve, t)? {
            Some((_, d)) => Ok(Some((Lent::List, d))),
            None => Ok(None),
        },
        TypeDefKind::Handle(Handle::Own(_))
        | TypeDefKind::Resource
        | TypeDefKind::Enum(_)
        | TypeDefKind::Flags(_) => Ok(None),
        _ => {
            let mut found = false;
            any_borrow(resolve, ty, &mut found);
            if found {
                Err("a borrow inside a compound parameter".into())
            } else {
                Ok(None)
            }
        }
    }
}

fn any_borrow(resolve: &Resolve, ty: &Type, found: &mut bool) {
    let Type::Id(id) = ty else { return };
    let mut each = |t: &Type| any_borrow(resolve, t, found);
    match &resolve.types[*id].kind {
        TypeDefKind::Handle(Handle::Borrow(_)) => *found = true,
        TypeDefKind::Type(t) | TypeDefKind::List(t) | TypeDefKind::Option(t) => each(t),
        TypeDefKind::Tuple(t) => t.types.iter().for_each(each),
        TypeDefKind::Record(r) => r.fields.iter().for_each(|f| each(&f.ty)),
        TypeDefKind::Result(r) => {
            r.ok.iter().for_each(&mut each);
            r.err.iter().for_each(each);
        }
        TypeDefKind::Variant(v) => v.cases.iter().filter_map(|c| c.ty.as_ref()).for_each(each),
        _ => {}
    }
}

/// The import that drops resource `r`: `[resource-drop]name` of its defining interface.
fn drop_of(resolve: &Resolve, mut r: TypeId) -> Result<DropImport, String> {
    while let TypeDefKind::Type(Type::Id(next)) = &resolve.types[r].kind {
        r = *next;
    }
    let def = &resolve.types[r];
    let TypeOwner::Interface(owner) = def.owner else {
        return Err("a resource not defined by an interface".into());
    };
    let iface = &resolve.interfaces[owner];
    let pkg = iface
        .package
        .map(|p| &resolve.packages[p].name)
        .ok_or("an interface without a package")?;
    let module = versioned(&format!(
        "{}:{}/{}",
        pkg.namespace,
        pkg.name,
        iface.name.as_deref().ok_or("an anonymous interface")?
    ));
    Ok((
        module,
        format!(
            "[resource-drop]{}",
            def.name.as_deref().ok_or("an anonymous resource")?
        ),
    ))
}

/// How many core values `ty` flattens to.
fn flat_count(resolve: &Resolve, ty: &Type) -> u32 {
    let mut storage = [WasmType::I32; 17];
    let mut flat = wit_parser::abi::FlatTypes::new(&mut storage);
    resolve.push_flat(ty, &mut flat);
    flat.to_vec().len() as u32
}

/// Drops the borrows a call was lent, once the import returned.
fn give_back(body: &mut Function, drop: u32, how: Lent, counter: u32) {
    match how {
        Lent::Handle(at) => {
            body.instruction(&I::LocalGet(at))
                .instruction(&I::Call(drop));
        }
        Lent::List(at) => {
            // for i in 0..len: drop(load(ptr + 4 * i))
            body.instruction(&I::I32Const(0))
                .instruction(&I::LocalSet(counter))
                .instruction(&I::Block(wasm_encoder::BlockType::Empty))
                .instruction(&I::Loop(wasm_encoder::BlockType::Empty))
                .instruction(&I::LocalGet(counter))
                .instruction(&I::LocalGet(at + 1))
                .instruction(&I::I32GeU)
                .instruction(&I::BrIf(1))
                .instruction(&I::LocalGet(at))
                .instruction(&I::LocalGet(counter))
                .instruction(&I::I32Const(2))
                .instruction(&I::I32Shl)
                .instruction(&I::I32Add)
                .instruction(&I::I32Load(wasm_encoder::MemArg {
                    offset: 0,
                    align: 2,
                    memory_index: 0,
                }))
                .instruction(&I::Call(drop))
                .instruction(&I::LocalGet(counter))
                .instruction(&I::I32Const(1))
                .instruction(&I::I32Add)
                .instruction(&I::LocalSet(counter))
                .instruction(&I::Br(0))
                .instruction(&I::End)
                .instruction(&I::End);
        }
    }
}

/// Memory 0 (`pages` to start with, growable) and global 0, the heap's next free byte,
/// starting at `heap_at`: the bump heap [`realloc_body`] allocates from.
pub(crate) fn heap(pages: u32, heap_at: u32) -> (MemorySection, GlobalSection) {
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: pages as u64,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut globals = GlobalSection::new();
    globals.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(heap_at as i32),
    );
    (memories, globals)
}

/// `cabi_realloc(old, old_size, align, new_size)`: the next `new_size` bytes at `align`
/// from the bump heap of [`heap`] (growing the memory as needed), with the old block's
/// bytes copied in.
pub(crate) fn realloc_body() -> Function {
    const OLD: u32 = 0;
    const OLD_SIZE: u32 = 1;
    const ALIGN: u32 = 2;
    const NEW_SIZE: u32 = 3;
    const AT: u32 = 4;
    const END: u32 = 5;
    let mut f = Function::new([(2, ValType::I32)]);
    // at = (heap + align - 1) & -align
    f.instruction(&I::GlobalGet(0))
        .instruction(&I::LocalGet(ALIGN))
        .instruction(&I::I32Add)
        .instruction(&I::I32Const(1))
        .instruction(&I::I32Sub)
        .instruction(&I::I32Const(0))
        .instruction(&I::LocalGet(ALIGN))
        .instruction(&I::I32Sub)
        .instruction(&I::I32And)
        .instruction(&I::LocalTee(AT))
        .instruction(&I::LocalGet(NEW_SIZE))
        .instruction(&I::I32Add)
        .instruction(&I::LocalTee(END))
        // An allocation that wraps around the address space traps.
        .instruction(&I::LocalGet(AT))
        .instruction(&I::I32LtU)
        .instruction(&I::If(wasm_encoder::BlockType::Empty))
        .instruction(&I::Unreachable)
        .instruction(&I::End)
        // Grow until `end` fits: pages = ceil((end - size) / 64 KiB).
        .instruction(&I::LocalGet(END))
        .instruction(&I::MemorySize(0))
        .instruction(&I::I32Const(16))
        .instruction(&I::I32Shl)
        .instruction(&I::I32GtU)
        .instruction(&I::If(wasm_encoder::BlockType::Empty))
        .instruction(&I::LocalGet(END))
        .instruction(&I::MemorySize(0))
        .instruction(&I::I32Const(16))
        .instruction(&I::I32Shl)
        .instruction(&I::I32Sub)
        .instruction(&I::I32Const(0xffff))
        .instruction(&I::I32Add)
        .instruction(&I::I32Const(16))
        .instruction(&I::I32ShrU)
        .instruction(&I::MemoryGrow(0))
        .instruction(&I::I32Const(-1))
        .instruction(&I::I32Eq)
        .instruction(&I::If(wasm_encoder::BlockType::Empty))
        .instruction(&I::Unreachable)
        .instruction(&I::End)
        .instruction(&I::End)
        .instruction(&I::LocalGet(END))
        .instruction(&I::GlobalSet(0))
        // Copy the old block (a growing list), if any.
        .instruction(&I::LocalGet(OLD))
        .instruction(&I::If(wasm_encoder::BlockType::Empty))
        .instruction(&I::LocalGet(AT))
        .instruction(&I::LocalGet(OLD))
        .instruction(&I::LocalGet(OLD_SIZE))
        .instruction(&I::LocalGet(NEW_SIZE))
        .instruction(&I::LocalGet(OLD_SIZE))
        .instruction(&I::LocalGet(NEW_SIZE))
        .instruction(&I::I32LtU)
        .instruction(&I::Select)
        .instruction(&I::MemoryCopy {
            src_mem: 0,
            dst_mem: 0,
        })
        .instruction(&I::End)
        .instruction(&I::LocalGet(AT))
        .instruction(&I::End);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarder_of_every_catalogue_function_builds_and_validates() {
        let all: Vec<(String, String)> = policy_lang::wit::functions()
            .filter(|f| !f.name.starts_with("[resource-drop]"))
            .map(|f| (f.interface.clone(), f.name.clone()))
            .collect();
        assert!(all.len() > 100, "{}", all.len());
        let wasm = build(&all).unwrap();
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&wasm)
            .unwrap();
    }

    #[test]
    fn a_function_outside_the_catalogue_is_refused() {
        let e = build(&[("wasi:filesystem/types".into(), "open-everything".into())]).unwrap_err();
        assert!(e.contains("not a WASI 0.2 function"), "{e}");
    }
}
