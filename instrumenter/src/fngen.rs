//! A function under construction: instructions, locals, and block depth for labels.
use wasm_encoder::{BlockType, Function, Instruction as I, MemArg, ValType};

/// A function under construction that knows how deep its blocks nest.
pub(crate) struct FnGen {
    insts: Vec<I<'static>>,
    locals: Vec<ValType>,
    nparams: u32,
    depth: u32,
}

impl FnGen {
    pub fn new(nparams: u32) -> Self {
        FnGen {
            insts: Vec::new(),
            locals: Vec::new(),
            nparams,
            depth: 0,
        }
    }
    pub fn local(&mut self, t: ValType) -> u32 {
        self.locals.push(t);
        self.nparams + self.locals.len() as u32 - 1
    }
    /// Appends an instruction. Every instruction that opens or closes a block is
    /// counted, however it is written (`op(I::If(..))` or [`FnGen::if_`]), so labels
    /// stay right: a branch computed inside a block opened with a raw `op` once
    /// escaped one block too few.
    pub fn op(&mut self, i: I<'static>) {
        match &i {
            I::Block(_) | I::Loop(_) | I::If(_) | I::TryTable(..) => self.depth += 1,
            I::End => self.depth -= 1,
            _ => {}
        }
        self.insts.push(i);
    }
    /// Opens a block and returns its label.
    pub fn block(&mut self) -> u32 {
        self.op(I::Block(BlockType::Empty));
        self.depth
    }
    pub fn if_(&mut self, bt: BlockType) {
        self.op(I::If(bt));
    }
    /// Opens a loop and returns its label (a branch to it continues the loop).
    pub fn loop_(&mut self) -> u32 {
        self.op(I::Loop(BlockType::Empty));
        self.depth
    }
    pub fn end(&mut self) {
        self.op(I::End);
    }
    pub fn br(&mut self, label: u32) {
        self.op(I::Br(self.depth - label));
    }
    pub fn br_if(&mut self, label: u32) {
        self.op(I::BrIf(self.depth - label));
    }
    pub fn finish(self) -> Function {
        let mut f = Function::new(self.locals.iter().map(|t| (1, *t)));
        for i in &self.insts {
            f.instruction(i);
        }
        f.instruction(&I::End);
        f
    }
}

pub(crate) fn mem(memory_index: u32, offset: u64, align: u32) -> MemArg {
    MemArg {
        offset,
        align,
        memory_index,
    }
}
