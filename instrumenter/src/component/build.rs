//! The core modules the component weave adds: the monitor's stub (woven by the core
//! weaver), the trampolines that stand for the wrappers before the monitor exists, and
//! the fixup that points the trampolines at the wrappers.
use wasm_encoder::{
    CodeSection, ConstExpr, ElementSection, Elements, EntityType, ExportKind, ExportSection,
    Function, FunctionSection, ImportSection, Instruction, MemoryType, Module, RefType,
    TableSection, TableType, TypeSection,
};
use wasmparser::FuncType;

use super::read::Plan;

/// The module and field the stub imports the host memory under, and exports it as
/// `memory`, which tells the core weaver that it is the memory the host reads.
pub const MEMORY_IMPORT: (&str, &str) = ("irm:host", "memory");

/// Export name of the wrapper (in the monitor) or trampoline (in the trampoline module)
/// of stub import `i`.
pub fn func_export(i: usize) -> String {
    format!("f{i}")
}

/// Export name of the trampolines' table.
pub const TABLE_EXPORT: &str = "table";

fn types(plan: &Plan) -> TypeSection {
    let mut t = TypeSection::new();
    for i in &plan.imports {
        func_type(&mut t, &i.ty);
    }
    t
}

fn func_type(t: &mut TypeSection, ty: &FuncType) {
    let conv = |v: &wasmparser::ValType| -> wasm_encoder::ValType {
        wasm_encoder::reencode::RoundtripReencoder
            .val_type(*v)
            .expect("a lowered function has plain value types")
    };
    t.ty()
        .function(ty.params().iter().map(conv), ty.results().iter().map(conv));
}

use wasm_encoder::reencode::Reencode;

/// The stub the monitor is woven from: it imports every monitored lowering (type `i` is
/// import `i`'s) and the memory they read, and exports them again.
pub fn stub(plan: &Plan) -> Vec<u8> {
    let mut m = Module::new();
    m.section(&types(plan));
    let mut imports = ImportSection::new();
    for (i, imp) in plan.imports.iter().enumerate() {
        imports.import(&imp.module, &imp.field, EntityType::Function(i as u32));
    }
    if let Some((_, ty)) = &plan.memory {
        imports.import(
            MEMORY_IMPORT.0,
            MEMORY_IMPORT.1,
            EntityType::Memory(MemoryType {
                minimum: ty.initial,
                maximum: ty.maximum,
                memory64: ty.memory64,
                shared: ty.shared,
                page_size_log2: ty.page_size_log2,
            }),
        );
    }
    m.section(&imports);
    let mut exports = ExportSection::new();
    for i in 0..plan.imports.len() {
        exports.export(&func_export(i), ExportKind::Func, i as u32);
    }
    if plan.memory.is_some() {
        exports.export("memory", ExportKind::Memory, 0);
    }
    m.section(&exports);
    m.finish()
}

fn table(n: u32) -> TableType {
    TableType {
        element_type: RefType::FUNCREF,
        table64: false,
        minimum: n as u64,
        maximum: Some(n as u64),
        shared: false,
    }
}

/// The trampolines: function `i` calls entry `i` of its own table with its arguments.
pub fn trampolines(plan: &Plan) -> Vec<u8> {
    let n = plan.imports.len() as u32;
    let mut m = Module::new();
    m.section(&types(plan));
    let mut funcs = FunctionSection::new();
    for i in 0..n {
        funcs.function(i);
    }
    m.section(&funcs);
    let mut tables = TableSection::new();
    tables.table(table(n));
    m.section(&tables);
    let mut exports = ExportSection::new();
    for i in 0..n {
        exports.export(&func_export(i as usize), ExportKind::Func, i);
    }
    exports.export(TABLE_EXPORT, ExportKind::Table, 0);
    m.section(&exports);
    let mut code = CodeSection::new();
    for (i, imp) in plan.imports.iter().enumerate() {
        let mut f = Function::new([]);
        for p in 0..imp.ty.params().len() as u32 {
            f.instruction(&Instruction::LocalGet(p));
        }
        f.instruction(&Instruction::I32Const(i as i32));
        f.instruction(&Instruction::CallIndirect {
            type_index: i as u32,
            table_index: 0,
        });
        f.instruction(&Instruction::End);
        code.function(&f);
    }
    m.section(&code);
    m.finish()
}

/// The fixup: imports the trampolines' table and the wrappers (module `""`, the names
/// [`TABLE_EXPORT`] and [`func_export`]) and fills the table with them.
pub fn fixup(plan: &Plan) -> Vec<u8> {
    let n = plan.imports.len() as u32;
    let mut m = Module::new();
    m.section(&types(plan));
    let mut imports = ImportSection::new();
    imports.import("", TABLE_EXPORT, EntityType::Table(table(n)));
    for i in 0..n {
        imports.import("", &func_export(i as usize), EntityType::Function(i));
    }
    m.section(&imports);
    let mut elems = ElementSection::new();
    let funcs: Vec<u32> = (0..n).collect();
    elems.active(
        Some(0),
        &ConstExpr::i32_const(0),
        Elements::Functions(funcs.into()),
    );
    m.section(&elems);
    m.finish()
}
