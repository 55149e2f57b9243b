//! `Probe::flash_with_progress` on the backends that can be tested here: the simulated board
//! (sector by sector), the native-sim flash file, and the trait's default.

use dfu_hil_board::native_sim::FlashFile;
use dfu_hil_board::{sim, BoardError, CoreState, Probe, ResetKind};
use dfu_hil_mcuboot::layout::Layout;
use std::path::Path;

fn layout(name: &str) -> Layout {
    Layout::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../partitions")
            .join(format!("{name}.yaml")),
    )
    .unwrap()
}

/// An image that is not a whole number of 4 KiB sectors nor of 4-byte writes.
fn image() -> Vec<u8> {
    (0..0x2345u32).map(|i| (i * 7 + 3) as u8).collect()
}

fn flash_reporting(probe: &mut dyn Probe, region: &str, bytes: &[u8]) -> Vec<(u64, u64)> {
    let mut seen = Vec::new();
    probe
        .flash_with_progress(region, bytes, &mut |done, total| seen.push((done, total)))
        .unwrap();
    seen
}

#[test]
fn sim_reports_each_sector_and_programs_what_flash_does() {
    let (mut board, _) = sim::open(layout("nrf52840-internal"), "a");
    let (mut plain, _) = sim::open(layout("nrf52840-internal"), "b");
    let img = image();
    let ops = board.probe.flash_op_cuts().unwrap().flash_op_count();
    let seen = flash_reporting(board.probe.as_mut(), "slot0", &img);
    assert_eq!(
        seen,
        vec![(0x1000, 0x2345), (0x2000, 0x2345), (0x2345, 0x2345)]
    );
    assert_eq!(
        board.probe.flash_op_cuts().unwrap().flash_op_count() - ops,
        6,
        "an erase and a write per sector"
    );

    plain.probe.flash("slot0", &img).unwrap();
    let a = board.probe.read("slot0", 0, 0x4000).unwrap();
    let b = plain.probe.read("slot0", 0, 0x4000).unwrap();
    assert_eq!(a, b);
    assert_eq!(&a[..img.len()], &img[..]);
    assert!(a[img.len()..].iter().all(|&x| x == 0xff));
}

#[test]
fn sim_stale_sector_contents_are_erased() {
    let (mut board, _) = sim::open(layout("nrf52840-internal"), "a");
    board.probe.flash("slot0", &[0u8; 0x3000]).unwrap();
    flash_reporting(board.probe.as_mut(), "slot0", &[0x5a; 10]);
    let got = board.probe.read("slot0", 0, 0x1000).unwrap();
    assert_eq!(&got[..10], &[0x5a; 10]);
    assert!(
        got[10..].iter().all(|&x| x == 0xff),
        "rest of the sector erased"
    );
    assert_eq!(board.probe.read("slot0", 0x1000, 4).unwrap(), vec![0; 4]);
}

#[test]
fn sim_too_large_or_unknown_region_fails_before_erasing() {
    let (mut board, _) = sim::open(layout("nrf52840-internal"), "a");
    let ops = board.probe.flash_op_cuts().unwrap().flash_op_count();
    let size = board.probe.region_size("mcuboot").unwrap() as usize;
    let mut seen = Vec::new();
    let e = board
        .probe
        .flash_with_progress("mcuboot", &vec![1; size + 1], &mut |d, t| seen.push((d, t)))
        .unwrap_err();
    assert!(matches!(e, BoardError::Flash { .. }), "{e}");
    let e = board
        .probe
        .flash_with_progress("nope", &[1], &mut |d, t| seen.push((d, t)))
        .unwrap_err();
    assert!(matches!(e, BoardError::NoRegion(_)), "{e}");
    assert!(seen.is_empty());
    assert_eq!(board.probe.flash_op_cuts().unwrap().flash_op_count(), ops);
}

#[test]
fn sim_power_cut_lands_between_sectors() {
    let (mut board, _) = sim::open(layout("nrf52840-internal"), "a");
    let img = image();
    // Ops: erase 0, write 0, erase 1, write 1, …: cut before the 4th (sector 1's write).
    board
        .probe
        .flash_op_cuts()
        .unwrap()
        .cut_before_flash_op(4)
        .unwrap();
    let mut seen = Vec::new();
    let e = board
        .probe
        .flash_with_progress("slot0", &img, &mut |d, t| seen.push((d, t)))
        .unwrap_err();
    assert!(e.to_string().contains("power"), "{e}");
    assert_eq!(seen, vec![(0x1000, 0x2345)]);
    let got = board.probe.read("slot0", 0, 0x2000).unwrap();
    assert_eq!(&got[..0x1000], &img[..0x1000]);
    assert!(
        got[0x1000..].iter().all(|&x| x == 0xff),
        "sector 1 erased only"
    );
}

#[test]
fn sim_empty_image_reports_zero_of_zero() {
    let (mut board, _) = sim::open(layout("nrf52840-internal"), "a");
    assert_eq!(
        flash_reporting(board.probe.as_mut(), "slot0", &[]),
        vec![(0, 0)]
    );
}

#[test]
fn flash_file_reports_each_sector_and_matches_program() {
    let dir = tempfile::tempdir().unwrap();
    let a = FlashFile::new(dir.path().join("a.bin"), layout("nrf52840-internal"));
    let b = FlashFile::new(dir.path().join("b.bin"), layout("nrf52840-internal"));
    let img = image();
    let mut seen = Vec::new();
    a.program_with_progress("slot1", &img, &mut |d, t| seen.push((d, t)))
        .unwrap();
    assert_eq!(
        seen,
        vec![(0x1000, 0x2345), (0x2000, 0x2345), (0x2345, 0x2345)]
    );
    b.program("slot1", &img).unwrap();
    assert_eq!(
        std::fs::read(&a.path).unwrap(),
        std::fs::read(&b.path).unwrap()
    );
    assert_eq!(&a.read("slot1", 0, img.len() as u32).unwrap(), &img);

    let mut seen = Vec::new();
    a.program_with_progress("slot0", &[], &mut |d, t| seen.push((d, t)))
        .unwrap();
    assert_eq!(seen, vec![(0, 0)]);
}

/// Only the required methods: `flash_with_progress` comes from the trait.
struct Minimal {
    flashed: Vec<(String, usize)>,
}

impl Probe for Minimal {
    fn flash(&mut self, region: &str, bytes: &[u8]) -> Result<(), BoardError> {
        self.flashed.push((region.to_owned(), bytes.len()));
        Ok(())
    }
    fn read(&mut self, _: &str, _: u32, len: u32) -> Result<Vec<u8>, BoardError> {
        Ok(vec![0; len as usize])
    }
    fn erase(&mut self, _: &str, _: u32, _: u32) -> Result<(), BoardError> {
        Ok(())
    }
    fn region_size(&self, _: &str) -> Result<u32, BoardError> {
        Ok(0x1000)
    }
    fn reset(&mut self, _: ResetKind) -> Result<(), BoardError> {
        Ok(())
    }
    fn core_state(&mut self) -> Result<CoreState, BoardError> {
        Ok(CoreState::Running)
    }
}

#[test]
fn default_reports_the_end_only_and_ignores_elfs() {
    let mut p = Minimal {
        flashed: Vec::new(),
    };
    assert_eq!(
        flash_reporting(&mut p, "slot0", &[1; 300]),
        vec![(300, 300)]
    );
    assert_eq!(p.flashed, vec![("slot0".to_owned(), 300)]);
    p.load_elfs(&[("app".into(), b"not even an ELF".to_vec())])
        .unwrap();
}
