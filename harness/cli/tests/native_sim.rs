//! The native-sim board backend driving `dfu-hil sim serve` as if it were a Zephyr native_sim
//! executable: one flash file, a PTY announced on stdout, SMP over that PTY, resets by
//! restarting the process.

use dfu_hil_board::native_sim::{self, CommandSpec, NativeSimConfig};
use dfu_hil_board::{Board, CoreState, ResetKind};
use dfu_hil_mcuboot::image::IMAGE_MAGIC;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::trailer::UpgradeMode;
use dfu_hil_smp::{BootWait, Client};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn native_sim_backend_runs_sim_serve() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::load(&root().join("partitions/nrf52840-internal.yaml")).unwrap();
    let app = CommandSpec {
        program: PathBuf::from(env!("CARGO_BIN_EXE_dfu-hil")),
        args: vec![
            "--root".into(),
            root().to_string_lossy().into_owned(),
            "sim".into(),
            "serve".into(),
            "--flash".into(),
            "{flash}".into(),
        ],
    };
    let built = sim_cmd::build_fixtures(
        &root(),
        &layout,
        UpgradeMode::SwapMove,
        &["mcuboot", "app-v1"],
    )
    .unwrap();
    let mut cfg = NativeSimConfig::new(layout, dir.path().join("flash.bin"), app);
    cfg.ready_timeout = Duration::from_secs(60);
    let (board, handle) = native_sim::open(cfg, "native-sim").unwrap();
    let Board {
        mut probe, link, ..
    } = board;
    // Nothing runs before the first reset; flash MCUboot and an app, then reset, as the
    // runner's `flash` step does.
    assert_eq!(probe.core_state().unwrap(), CoreState::Off);
    assert_eq!(handle.boots(), 0);
    probe.flash("mcuboot", &built["mcuboot"].bytes).unwrap();
    probe.flash("slot0", &built["app-v1"].bytes).unwrap();
    probe.reset(ResetKind::Run).unwrap();
    assert_eq!(probe.core_state().unwrap(), CoreState::Running);
    let first_pty = handle.pty().unwrap();
    assert!(
        first_pty.to_string_lossy().starts_with("/dev/"),
        "{first_pty:?}"
    );

    let mut smp = Client::new(link);
    smp.set_timeout(Duration::from_secs(5));
    // A request in the first milliseconds of a boot is lost (the SMP UART transport is not
    // registered yet), as on native_sim: wait for readiness after every reset.
    let boot = BootWait::default();
    smp.wait_ready(&boot).unwrap();
    assert_eq!(smp.echo("hello").unwrap(), "hello");
    let slots = smp.image_state().unwrap();
    let s0 = slots.iter().find(|s| s.slot == 0).expect("slot 0 listed");
    assert!(s0.active && s0.confirmed, "{slots:?}");

    // Trailer-style reads come from the flash file (sim serve saves it after going idle; the
    // backend waits for link silence first).
    probe.reset(ResetKind::Run).unwrap();
    smp.wait_ready(&boot).unwrap();
    assert_eq!(smp.echo("after reset").unwrap(), "after reset");
    // The provisioned slot0 starts with an image header.
    let head = probe.read("slot0", 0, 4).unwrap();
    assert_eq!(u32::from_le_bytes(head.try_into().unwrap()), IMAGE_MAGIC);

    // Copy slot0's image into slot1 through the "probe" (the flash file), then reset: the
    // process restarts and the link reconnects to the new PTY by itself.
    let image = probe.read("slot0", 0, 0x8000).unwrap();
    probe.flash("slot1", &image).unwrap();
    assert_eq!(probe.core_state().unwrap(), CoreState::Off);
    probe.reset(ResetKind::Run).unwrap();
    assert_eq!(handle.boots(), 3);
    smp.wait_ready(&boot).unwrap();
    assert_eq!(smp.echo("again").unwrap(), "again");
    let slots = smp.image_state().unwrap();
    assert!(slots.iter().any(|s| s.slot == 1), "{slots:?}");
    assert_eq!(probe.read("slot1", 0, 0x8000).unwrap(), image);

    // Erase it again through the probe; after the reset SMP no longer lists it.
    let size = probe.region_size("slot1").unwrap();
    probe.erase("slot1", 0, size).unwrap();
    probe.reset(ResetKind::Run).unwrap();
    smp.wait_ready(&boot).unwrap();
    let slots = smp.image_state().unwrap();
    assert!(!slots.iter().any(|s| s.slot == 1), "{slots:?}");
    assert_eq!(probe.read("slot1", 0, 16).unwrap(), vec![0xff; 16]);

    // The sim's own output (not SMP) lands in the device log.
    let log = probe.take_log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("uart connected to pseudotty: ")),
        "{log:?}"
    );
}

use dfu_hil_cli::{hw_cmd, sim_cmd};
use dfu_hil_runner::exit::Exit;

#[derive(clap::Parser)]
struct HwCli {
    #[command(subcommand)]
    cmd: hw_cmd::InventoryCmd,
}

#[test]
fn hw_commands_parse_and_run_without_hardware() {
    use clap::Parser;
    use dfu_hil_board::hw::inventory::{DiscoveredProbe, Discovery, Inventory};

    let example = root().join("ci/lab.example.yaml");
    let cli = HwCli::try_parse_from([
        "inventory",
        "list",
        "--inventory",
        example.to_str().unwrap(),
        "--board",
        "nrf5340dk-1",
    ])
    .unwrap();
    assert_eq!(
        hw_cmd::run_hw(&root(), hw_cmd::HwCmd::Inventory(cli.cmd)).unwrap(),
        Exit::Pass
    );
    let cli = HwCli::try_parse_from([
        "inventory",
        "list",
        "--inventory",
        example.to_str().unwrap(),
        "--board",
        "nope",
    ])
    .unwrap();
    let e = hw_cmd::run_hw(&root(), hw_cmd::HwCmd::Inventory(cli.cmd)).unwrap_err();
    assert!(e.to_string().contains("no board `nope`"), "{e}");

    // Discovery against a missing inventory just lists (nothing attached here, most likely).
    let cli = HwCli::try_parse_from(["inventory", "discover", "--inventory", "/nonexistent.yaml"])
        .unwrap();
    assert_eq!(
        hw_cmd::run_hw(&root(), hw_cmd::HwCmd::Inventory(cli.cmd)).unwrap(),
        Exit::Pass
    );
    assert_eq!(
        hw_cmd::run_hw(&root(), hw_cmd::HwCmd::Probe(hw_cmd::ProbeCmd::List)).unwrap(),
        Exit::Pass
    );

    // Rendering with a made-up desk: one known probe, one stranger.
    let inv = Inventory::load(&example).unwrap();
    let found = Discovery {
        probes: vec![
            DiscoveredProbe {
                vid: 0x1366,
                pid: 0x1015,
                interface: None,
                serial: Some("000683000001".into()),
                identifier: "J-Link".into(),
            },
            DiscoveredProbe {
                vid: 0x1366,
                pid: 0x1051,
                interface: None,
                serial: Some("001050099999".into()),
                identifier: "J-Link".into(),
            },
        ],
        ports: vec![],
    };
    let (text, problems) = hw_cmd::render_discovery(&found, Some(&inv), &example);
    assert!(problems > 0);
    assert!(
        text.contains("ok       nrf52840dk-1: probe 1366:1015:000683000001"),
        "{text}"
    );
    assert!(text.contains("MISSING  thingy53-1"), "{text}");
    assert!(
        text.contains("hint: to add 1366:1051:001050099999"),
        "{text}"
    );
    let board = inv.select("nrf52840dk-qspi").unwrap();
    let profile =
        dfu_hil_board::hw::BoardProfile::find(&root().join("boards"), &board.profile).unwrap();
    let shown = hw_cmd::render_board(board, &profile);
    assert!(
        shown.contains("capabilities: serial, power-cut, rtt, pc-sampling"),
        "{shown}"
    );
    assert!(shown.contains("lacks: read-external-flash, ble"), "{shown}");
}
