//! Board profiles name their chip's flash timing (the datasheet table in
//! `dfu_hil_sim::device::flash_timing`) for internal flash on the first core only.

use dfu_hil_board::hw::profile::BoardProfile;
use dfu_hil_sim::device::flash_timing::{NRF52840, NRF5340_APP};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn board(name: &str) -> BoardProfile {
    BoardProfile::find(&root().join("boards"), name).unwrap()
}

#[test]
fn bundled_boards_have_their_chips_timing() {
    assert_eq!(board("nrf52840dk").flash_timing(), Some(NRF52840));
    assert_eq!(board("nrf5340dk").flash_timing(), Some(NRF5340_APP));
    assert_eq!(board("thingy53").flash_timing(), Some(NRF5340_APP));
}

#[test]
fn only_internal_flash_of_the_first_core_is_timed() {
    let dk = board("nrf5340dk");
    assert_eq!(dk.memory_flash_timing("internal"), Some(NRF5340_APP));
    // The network core's own flash has its own NVMC: not in the table.
    assert_eq!(dk.memory_flash_timing("netcore-flash"), None);
    assert_eq!(dk.memory_flash_timing("netcore-ram"), None);
    assert_eq!(dk.memory_flash_timing("mx25r64"), None);
    assert_eq!(dk.memory_flash_timing("no-such-memory"), None);
    assert_eq!(
        board("nrf52840dk").memory_flash_timing("internal"),
        Some(NRF52840)
    );
}
