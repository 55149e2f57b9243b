//! The simulated board's SMP server fed arbitrary request bytes, as whole packets (the BLE and
//! UDP entry point) and as bytes on its UART (line buffers, framing, then the same server).

use std::cell::RefCell;
use std::path::Path;

use dfu_hil_firmware::{build_app, build_bootloader, AppDescriptor, BootloaderBuild};
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::sign::{sign, SignOptions};
use dfu_hil_sim::device::board::SavedState;
use dfu_hil_sim::SimBoard;

/// The board every input starts from: the bundled nRF52840 layout, MCUboot (hash-only
/// validation) and a small v1.0.0 app running from slot0. Built once per thread; each input
/// restores its flash so an erase or upload in one input cannot change the next.
fn factory_board() -> Option<(SimBoard, SavedState)> {
    let (layout, app) = factory_app()?;
    let mut board = SimBoard::new(layout);
    board
        .probe_program("mcuboot", &build_bootloader(&BootloaderBuild::default(), 0))
        .ok()?;
    board.probe_program("slot0", &app).ok()?;
    board.reset();
    let saved = board.save_state();
    Some((board, saved))
}

/// The layout and the signed (hash-only) app the factory board runs; also an image seed.
pub(crate) fn factory_app() -> Option<(Layout, Vec<u8>)> {
    let path = Path::new("partitions/nrf52840-internal.yaml");
    let layout = Layout::parse(
        include_str!("../../../partitions/nrf52840-internal.yaml"),
        path,
    )
    .ok()?;
    let slot0 = layout.partition("slot0")?;
    let (base, slot_size) = (layout.address(slot0), slot0.size);
    let desc = AppDescriptor::new("app", "1.0.0");
    let bin = build_app(&desc, base, 0x200, 8 * 1024);
    let opts = SignOptions {
        header_size: 0x200,
        version: "1.0.0".parse().ok()?,
        slot_size,
        ..SignOptions::default()
    };
    let app = sign(&bin, None, &opts).ok()?;
    Some((layout, app))
}

thread_local! {
    static BOARD: RefCell<Option<(SimBoard, SavedState)>> = RefCell::new(factory_board());
}

/// One input, two ways in: as packets (several requests may share one, as Zephyr allows) and
/// as raw UART bytes, with the board given the CPU twice so queued lines are answered.
pub fn sim_smp_server(data: &[u8]) {
    with_factory_board(|board| {
        let _ = board.smp_request(data);
    });
    with_factory_board(|board| {
        board.uart_write(data);
        let _ = board.uart_read();
        let _ = board.uart_read();
    });
}

/// Run `f` on the factory board restored to its saved state (nothing when it could not be
/// built, which the smoke test's seeds would show as no responses).
pub(crate) fn with_factory_board<T>(f: impl FnOnce(&mut SimBoard) -> T) -> Option<T> {
    BOARD.with(|cell| {
        let mut guard = cell.borrow_mut();
        let (board, saved) = guard.as_mut()?;
        board.load_state(saved);
        Some(f(board))
    })
}
