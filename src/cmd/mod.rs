//! One module per subcommand; each exposes `Args` (clap) and `run(Args, &Ui) -> Result<()>`.
pub mod check;
pub mod compile;
pub mod input;
pub mod run;
pub mod show;
pub mod test;
pub mod weave;
