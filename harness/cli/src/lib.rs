//! The `dfu-hil` command line as a library: the clap types ([`args`]), one module per command
//! family, and the error that knows its exit code ([`error`]). The binary (`main.rs`) parses
//! and maps results to exit codes; tests drive the commands through this crate.

pub mod args;
pub mod bench_cmd;
pub mod build_facts;
pub mod doctor_cmd;
pub mod error;
pub mod farm_cmd;
pub mod file_kind;
pub mod hw_cmd;
pub mod image_cmd;
pub mod link_args;
pub mod project_cmd;
pub mod replay_cmd;
pub mod run_cmd;
pub mod signals;
pub mod sim_cmd;
pub mod smp_cmd;
pub mod timeout_args;

pub use args::{Cli, Command};
pub use error::{CliError, CliResult};

/// The whole clap command, as the binary parses it.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
