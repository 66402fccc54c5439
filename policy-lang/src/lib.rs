//! irm's policy language.
//!
//! * [`ir`]: the compiled automaton, the contract every other crate consumes;
//! * [`pattern`]: string patterns (exact, prefix, glob) and their DFA.
pub mod ir;
pub mod pattern;
pub mod interp;
