//! One module per subcommand; each exposes `Args` (clap) and `run(Args) -> Result<u8>`.
pub mod compile;
pub mod input;
pub mod run;
pub mod show;
pub mod test;
pub mod weave;
