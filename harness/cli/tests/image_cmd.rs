//! Runs the unit tests of `src/image_cmd.rs` (`image inspect|derive|sign`, `trailer inspect`)
//! through the module's own entry points, so they are checked whether or not `main.rs` wires the
//! subcommands in yet.

#[allow(dead_code)]
#[path = "../src/image_cmd.rs"]
mod image_cmd;
