//! placeholder
pub mod judge;
