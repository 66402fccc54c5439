//! The core modules the component weave adds: the monitor's stub (woven by the core
//! weaver), the trampolines that stand for the wrappers before the monitor exists, the
//! fixup that points the trampolines at the wrappers, and the copier that serves
//! `get-directories` with its fill.
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

/// Where the copier keeps what it allocated in the component's memory: the name block
/// of element `i` at `NAMES + 4 * i`; its bump allocator stays below.
const NAMES: u32 = 0x8_0000;
/// The copier's own memory: 16 pages (1 MiB), no more.
const COPIER_PAGES: u64 = 16;

/// The copier: it serves `get-directories` to the monitor so that what the monitor reads
/// afterwards was written by no code of the component's.
///
/// Imports the component's memory and `realloc` (module `guest`, `memory` and
/// `realloc`); exports `memory` (its own), `realloc` (a bump allocator over its own
/// memory, for the host), `table` (one slot, where the component's second lowering of
/// `get-directories` goes: into the copier's memory, through the copier's `realloc`)
/// and `get-directories` (`retptr`: the function the monitor imports). A call lets the
/// host write the list into the copier's memory, then allocates every block in the
/// component's memory with the component's `realloc` (the last component code that
/// runs), refuses blocks that overlap each other or `retptr`'s 8 bytes (a trap), and
/// only then writes the names, the elements and `(pointer, length)` at `retptr`.
pub fn copier(memory: &MemoryType) -> Vec<u8> {
    use wasm_encoder::{BlockType, GlobalType, MemArg, ValType};
    use Instruction as I;
    let mut m = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32; 4], [ValType::I32]); // 0: realloc
    types.ty().function([ValType::I32], []); // 1: get-directories (retptr)
    types.ty().function([ValType::I32; 4], [ValType::I32]); // 2: overlaps
    m.section(&types);
    let mut imports = ImportSection::new();
    imports.import("guest", "realloc", EntityType::Function(0)); // func 0
    imports.import("guest", "memory", EntityType::Memory(*memory)); // memory 0
    m.section(&imports);
    let mut funcs = FunctionSection::new();
    funcs.function(0); // 1: own realloc
    funcs.function(1); // 2: get-directories
    funcs.function(2); // 3: overlaps
    m.section(&funcs);
    let mut tables = TableSection::new();
    tables.table(table(1));
    m.section(&tables);
    let mut mems = wasm_encoder::MemorySection::new();
    mems.memory(MemoryType {
        minimum: COPIER_PAGES,
        maximum: Some(COPIER_PAGES),
        memory64: false,
        shared: false,
        page_size_log2: None,
    }); // memory 1
    m.section(&mems);
    let mut globals = wasm_encoder::GlobalSection::new();
    globals.global(
        GlobalType {
            val_type: ValType::I32,
            mutable: true,
            shared: false,
        },
        &ConstExpr::i32_const(16),
    );
    m.section(&globals);
    let mut exports = ExportSection::new();
    exports.export("realloc", ExportKind::Func, 1);
    exports.export("get-directories", ExportKind::Func, 2);
    exports.export("memory", ExportKind::Memory, 1);
    exports.export(TABLE_EXPORT, ExportKind::Table, 0);
    m.section(&exports);
    let own = |offset: u64| MemArg {
        offset,
        align: 2,
        memory_index: 1,
    };
    let guest = |offset: u64| MemArg {
        offset,
        align: 2,
        memory_index: 0,
    };
    let mut code = CodeSection::new();

    // realloc(old_ptr, old_size, align, new_size): fresh blocks only, below NAMES.
    let mut f = Function::new([(1, ValType::I32)]);
    let at = 4;
    f.instruction(&I::LocalGet(0));
    f.instruction(&I::If(BlockType::Empty));
    f.instruction(&I::Unreachable);
    f.instruction(&I::End);
    // at = (bump + align - 1) & -align
    f.instruction(&I::GlobalGet(0));
    f.instruction(&I::LocalGet(2));
    f.instruction(&I::I32Add);
    f.instruction(&I::I32Const(1));
    f.instruction(&I::I32Sub);
    f.instruction(&I::I32Const(0));
    f.instruction(&I::LocalGet(2));
    f.instruction(&I::I32Sub);
    f.instruction(&I::I32And);
    f.instruction(&I::LocalTee(at));
    f.instruction(&I::I64ExtendI32U);
    f.instruction(&I::LocalGet(3));
    f.instruction(&I::I64ExtendI32U);
    f.instruction(&I::I64Add);
    f.instruction(&I::I64Const(NAMES as i64));
    f.instruction(&I::I64GtU);
    f.instruction(&I::If(BlockType::Empty));
    f.instruction(&I::Unreachable);
    f.instruction(&I::End);
    f.instruction(&I::LocalGet(at));
    f.instruction(&I::LocalGet(3));
    f.instruction(&I::I32Add);
    f.instruction(&I::GlobalSet(0));
    f.instruction(&I::LocalGet(at));
    f.instruction(&I::End);
    code.function(&f);

    // get-directories(retptr)
    let (retptr, list, n, arr, i, j, elem) = (0, 1, 2, 3, 4, 5, 6);
    let mut f = Function::new([(6, ValType::I32)]);
    // The host writes the list into the copier's memory: `(pointer, length)` at 0.
    f.instruction(&I::I32Const(16));
    f.instruction(&I::GlobalSet(0));
    f.instruction(&I::I32Const(0));
    f.instruction(&I::I32Const(0));
    f.instruction(&I::CallIndirect {
        type_index: 1,
        table_index: 0,
    });
    f.instruction(&I::I32Const(0));
    f.instruction(&I::I32Load(own(0)));
    f.instruction(&I::LocalSet(list));
    f.instruction(&I::I32Const(0));
    f.instruction(&I::I32Load(own(4)));
    f.instruction(&I::LocalTee(n));
    f.instruction(&I::I32Const(
        ((COPIER_PAGES * 65536 - NAMES as u64) / 4) as i32,
    ));
    f.instruction(&I::I32GeU);
    f.instruction(&I::If(BlockType::Empty));
    f.instruction(&I::Unreachable);
    f.instruction(&I::End);
    // Every block from the component's realloc, before anything is written.
    f.instruction(&I::I32Const(0));
    f.instruction(&I::I32Const(0));
    f.instruction(&I::I32Const(4));
    f.instruction(&I::LocalGet(n));
    f.instruction(&I::I32Const(12));
    f.instruction(&I::I32Mul);
    f.instruction(&I::Call(0));
    f.instruction(&I::LocalSet(arr));
    // Element i's fields live at `list + 12 i` in the copier's memory.
    let for_each = |f: &mut Function, body: &dyn Fn(&mut Function)| {
        counted_loop(f, i, n, &|f| {
            f.instruction(&I::LocalGet(list));
            f.instruction(&I::LocalGet(i));
            f.instruction(&I::I32Const(12));
            f.instruction(&I::I32Mul);
            f.instruction(&I::I32Add);
            f.instruction(&I::LocalSet(elem));
            body(f);
        });
    };
    // The component's block for element k's name.
    let name_at = |f: &mut Function, k: u32| {
        f.instruction(&I::LocalGet(k));
        f.instruction(&I::I32Const(4));
        f.instruction(&I::I32Mul);
        f.instruction(&I::I32Load(own(NAMES as u64)));
    };
    // names[i] = realloc(0, 0, 1, len_i)
    for_each(&mut f, &|f| {
        f.instruction(&I::LocalGet(i));
        f.instruction(&I::I32Const(4));
        f.instruction(&I::I32Mul);
        f.instruction(&I::I32Const(0));
        f.instruction(&I::I32Const(0));
        f.instruction(&I::I32Const(1));
        f.instruction(&I::LocalGet(elem));
        f.instruction(&I::I32Load(own(8)));
        f.instruction(&I::Call(0));
        f.instruction(&I::I32Store(own(NAMES as u64)));
    });
    // No block overlaps retptr's 8 bytes, the array, or an earlier name.
    let trap_if_overlap = |f: &mut Function| {
        f.instruction(&I::Call(3));
        f.instruction(&I::If(BlockType::Empty));
        f.instruction(&I::Unreachable);
        f.instruction(&I::End);
    };
    f.instruction(&I::LocalGet(arr));
    f.instruction(&I::LocalGet(n));
    f.instruction(&I::I32Const(12));
    f.instruction(&I::I32Mul);
    f.instruction(&I::LocalGet(retptr));
    f.instruction(&I::I32Const(8));
    trap_if_overlap(&mut f);
    let name_block = |f: &mut Function, k: u32| {
        name_at(f, k);
        f.instruction(&I::LocalGet(list));
        f.instruction(&I::LocalGet(k));
        f.instruction(&I::I32Const(12));
        f.instruction(&I::I32Mul);
        f.instruction(&I::I32Add);
        f.instruction(&I::I32Load(own(8)));
    };
    for_each(&mut f, &|f| {
        for (other, other_len) in [(retptr, None), (arr, Some(12))] {
            name_block(f, i);
            f.instruction(&I::LocalGet(other));
            match other_len {
                None => {
                    f.instruction(&I::I32Const(8));
                }
                Some(size) => {
                    f.instruction(&I::LocalGet(n));
                    f.instruction(&I::I32Const(size));
                    f.instruction(&I::I32Mul);
                }
            }
            trap_if_overlap(f);
        }
        // Earlier names: j in 0..i.
        counted_loop(f, j, i, &|f| {
            name_block(f, i);
            name_block(f, j);
            trap_if_overlap(f);
        });
    });
    // Then the writes: names, elements, `(pointer, length)`.
    for_each(&mut f, &|f| {
        name_at(f, i);
        f.instruction(&I::LocalGet(elem));
        f.instruction(&I::I32Load(own(4)));
        f.instruction(&I::LocalGet(elem));
        f.instruction(&I::I32Load(own(8)));
        f.instruction(&I::MemoryCopy {
            src_mem: 1,
            dst_mem: 0,
        });
        // arr + 12 i: handle, name pointer, length
        let slot = |f: &mut Function| {
            f.instruction(&I::LocalGet(arr));
            f.instruction(&I::LocalGet(i));
            f.instruction(&I::I32Const(12));
            f.instruction(&I::I32Mul);
            f.instruction(&I::I32Add);
        };
        slot(f);
        f.instruction(&I::LocalGet(elem));
        f.instruction(&I::I32Load(own(0)));
        f.instruction(&I::I32Store(guest(0)));
        slot(f);
        name_at(f, i);
        f.instruction(&I::I32Store(guest(4)));
        slot(f);
        f.instruction(&I::LocalGet(elem));
        f.instruction(&I::I32Load(own(8)));
        f.instruction(&I::I32Store(guest(8)));
    });
    f.instruction(&I::LocalGet(retptr));
    f.instruction(&I::LocalGet(arr));
    f.instruction(&I::I32Store(guest(0)));
    f.instruction(&I::LocalGet(retptr));
    f.instruction(&I::LocalGet(n));
    f.instruction(&I::I32Store(guest(4)));
    f.instruction(&I::End);
    code.function(&f);

    // overlaps(a, a_len, b, b_len): both non-empty and a < b + b_len && b < a + a_len.
    let mut f = Function::new([]);
    let wide = |f: &mut Function, x: u32| {
        f.instruction(&I::LocalGet(x));
        f.instruction(&I::I64ExtendI32U);
    };
    f.instruction(&I::LocalGet(1));
    f.instruction(&I::I32Eqz);
    f.instruction(&I::LocalGet(3));
    f.instruction(&I::I32Eqz);
    f.instruction(&I::I32Or);
    f.instruction(&I::If(BlockType::Result(ValType::I32)));
    f.instruction(&I::I32Const(0));
    f.instruction(&I::Else);
    wide(&mut f, 0);
    wide(&mut f, 2);
    wide(&mut f, 3);
    f.instruction(&I::I64Add);
    f.instruction(&I::I64LtU);
    wide(&mut f, 2);
    wide(&mut f, 0);
    wide(&mut f, 1);
    f.instruction(&I::I64Add);
    f.instruction(&I::I64LtU);
    f.instruction(&I::I32And);
    f.instruction(&I::End);
    f.instruction(&I::End);
    code.function(&f);
    m.section(&code);
    m.finish()
}

/// `for k in 0..bound { body }` over locals `k` and `bound`.
fn counted_loop(f: &mut Function, k: u32, bound: u32, body: &dyn Fn(&mut Function)) {
    use wasm_encoder::BlockType;
    use Instruction as I;
    f.instruction(&I::I32Const(0));
    f.instruction(&I::LocalSet(k));
    f.instruction(&I::Block(BlockType::Empty));
    f.instruction(&I::Loop(BlockType::Empty));
    f.instruction(&I::LocalGet(k));
    f.instruction(&I::LocalGet(bound));
    f.instruction(&I::I32GeU);
    f.instruction(&I::BrIf(1));
    body(f);
    f.instruction(&I::LocalGet(k));
    f.instruction(&I::I32Const(1));
    f.instruction(&I::I32Add);
    f.instruction(&I::LocalSet(k));
    f.instruction(&I::Br(0));
    f.instruction(&I::End);
    f.instruction(&I::End);
}

/// Fills the copier's table: imports it (`""`, [`TABLE_EXPORT`]) and the component's
/// second lowering of `get-directories` (`""`, `f`, type `(i32) -> ()`), and puts the
/// lowering in slot 0.
pub fn copier_fill() -> Vec<u8> {
    let mut m = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([wasm_encoder::ValType::I32], []);
    m.section(&types);
    let mut imports = ImportSection::new();
    imports.import("", TABLE_EXPORT, EntityType::Table(table(1)));
    imports.import("", "f", EntityType::Function(0));
    m.section(&imports);
    let mut elems = ElementSection::new();
    elems.active(
        Some(0),
        &ConstExpr::i32_const(0),
        Elements::Functions(vec![0].into()),
    );
    m.section(&elems);
    m.finish()
}
