//! The lab inventory: the example file loads and fits the bundled profiles, bad entries are
//! refused with a reason, `--board` selection helps with typos, and `discover`'s comparison
//! (fed with made-up discovery results) reports what differs.

use dfu_hil_board::hw::inventory::{
    diff, DiscoveredPort, DiscoveredProbe, Discovery, Finding, Inventory, InventoryError, PortRole,
    ProbeSelector,
};
use dfu_hil_board::hw::profile::{BoardProfile, Capability};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example() -> Inventory {
    Inventory::load(&root().join("ci/lab.example.yaml")).unwrap()
}

fn jlink(pid: u16, serial: &str) -> DiscoveredProbe {
    DiscoveredProbe {
        vid: 0x1366,
        pid,
        interface: None,
        serial: Some(serial.into()),
        identifier: "J-Link".into(),
    }
}

fn port(tty: &str, by_id: &str, usb_serial: Option<&str>) -> DiscoveredPort {
    DiscoveredPort {
        path: tty.into(),
        by_id: vec![by_id.into()],
        usb_serial: usb_serial.map(str::to_owned),
    }
}

#[test]
fn example_inventory_loads_and_fits_the_profiles() {
    let inv = example();
    assert_eq!(inv.lab.as_deref(), Some("desk-example"));
    let ids: Vec<&str> = inv.boards.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "nrf52840dk-1",
            "nrf52840dk-qspi",
            "nrf5340dk-1",
            "thingy53-1"
        ]
    );
    assert_eq!(
        inv.check_profiles(&root().join("boards")),
        Vec::<String>::new()
    );

    let b = inv.select("nrf5340dk-1").unwrap();
    assert_eq!(b.probe.to_string(), "1366:1051:001050000003");
    let smp = b.smp_port().unwrap();
    assert!(smp.port.ends_with("-if02"));
    assert_eq!(smp.role, PortRole::Smp);
    assert_eq!(smp.baud, 115_200);

    // Lab edits on top of the profile: a hub port adds power-cut, the box takes BLE away.
    let q = inv.select("nrf52840dk-qspi").unwrap();
    let p = BoardProfile::find(&root().join("boards"), &q.profile).unwrap();
    let caps = q.capabilities(&p);
    assert!(caps.contains(&Capability::PowerCut));
    assert!(!caps.contains(&Capability::Ble));
    assert!(caps.contains(&Capability::Serial));
    assert!(q.hooks.power_off.as_deref().unwrap().contains("uhubctl"));

    let nightly = ["nightly".to_owned()];
    let tagged: Vec<&str> = inv.with_tags(&nightly).map(|b| b.id.as_str()).collect();
    assert_eq!(
        tagged,
        vec!["nrf52840dk-1", "nrf52840dk-qspi", "nrf5340dk-1"]
    );
}

#[test]
fn board_selection_suggests_the_closest_id() {
    let inv = example();
    let e = inv.select("nrf5340-1").unwrap_err();
    assert!(matches!(e, InventoryError::NoBoard { .. }));
    let msg = e.to_string();
    assert!(msg.contains("did you mean `nrf5340dk-1`"), "{msg}");
    let msg = inv.select("zzzzzzzzzzzzzzzzzzzz").unwrap_err().to_string();
    assert!(!msg.contains("did you mean"), "{msg}");
    assert!(msg.contains("thingy53-1"), "{msg}");
}

#[test]
fn selectors_parse_print_and_match() {
    let s: ProbeSelector = "1366:1015:000683000001".parse().unwrap();
    assert_eq!((s.vid, s.pid), (0x1366, 0x1015));
    assert_eq!(s.serial.as_deref(), Some("000683000001"));
    assert_eq!(s.to_string(), "1366:1015:000683000001");
    assert!(s.matches(&jlink(0x1015, "000683000001")));
    assert!(!s.matches(&jlink(0x1015, "000683000002")));
    assert!(!s.matches(&jlink(0x1051, "000683000001")));

    let any: ProbeSelector = "1366:1015".parse().unwrap();
    assert!(any.matches(&jlink(0x1015, "whatever")));
    let cmsis: ProbeSelector = "0d28:0204-1:ABC".parse().unwrap();
    assert_eq!(cmsis.interface, Some(1));
    assert_eq!(cmsis.to_string(), "0d28:0204-1:ABC");

    for bad in ["1366", "xyz:1015", "1366:10150", "1366:1015-x:1"] {
        let e = bad.parse::<ProbeSelector>().unwrap_err().to_string();
        assert!(e.contains(bad) && e.contains("VID:PID"), "{e}");
    }
}

const ONE: &str = r#"
boards:
  - id: a
    profile: nrf52840dk
    probe: "1366:1015:1"
    serial:
      - { port: /dev/serial/by-id/usb-SEGGER_J-Link_1-if00, role: smp }
"#;

fn parse_err(text: &str) -> String {
    match Inventory::parse(text, Path::new("lab.yaml")) {
        Ok(i) => panic!("accepted: {i:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_entries_are_refused_with_a_reason() {
    Inventory::parse(ONE, Path::new("lab.yaml")).unwrap();
    let e = parse_err(&ONE.replace("/dev/serial/by-id/usb-SEGGER_J-Link_1-if00", "/dev/ttyACM0"));
    assert!(e.contains("by-id") && e.contains("lab.yaml"), "{e}");
    let e = parse_err(&ONE.replace("role: smp", "role: modem"));
    assert!(e.contains("modem"), "{e}");
    let e = parse_err(&ONE.replace("    profile:", "    colour: red\n    profile:"));
    assert!(e.contains("colour"), "{e}");
    let e = parse_err(&ONE.replace("1366:1015:1", "1366"));
    assert!(e.contains("VID:PID"), "{e}");
    let two = format!("{ONE}{}", &ONE[ONE.find("  - id").unwrap()..]);
    let e = parse_err(&two);
    assert!(e.contains("twice"), "{e}");
    let two = two.replacen("id: a", "id: b", 1);
    let e = parse_err(&two);
    assert!(e.contains("also board"), "{e}");
    let two = two.replacen("1366:1015:1", "1366:1015", 1);
    let e = parse_err(&two);
    assert!(e.contains("no serial number"), "{e}");
    let e = parse_err(&format!("{ONE}    capabilities: {{ add: [power-cut] }}\n"));
    assert!(e.contains("power-off"), "{e}");
    let e = parse_err(&ONE.replace(
        "role: smp }",
        "role: smp }\n      - { port: /dev/serial/by-id/x, role: smp-and-log }",
    ));
    assert!(e.contains("more than one serial port"), "{e}");
}

#[test]
fn profile_problems_are_reported() {
    let inv =
        Inventory::parse(&ONE.replace("nrf52840dk", "nrf9160dk"), Path::new("l.yaml")).unwrap();
    let p = inv.check_profiles(&root().join("boards"));
    assert_eq!(p.len(), 1);
    assert!(p[0].contains("nrf9160dk"), "{p:?}");
    // BLE-capable profile without a BLE identity: warned (BLE steps will be skipped).
    let inv = Inventory::parse(ONE, Path::new("l.yaml")).unwrap();
    let p = inv.check_profiles(&root().join("boards"));
    assert!(p.iter().any(|w| w.contains("ble")), "{p:?}");
}

#[test]
fn discovery_diff_reports_what_differs() {
    let inv = example();
    let found = Discovery {
        probes: vec![
            jlink(0x1015, "000683000001"),
            jlink(0x1015, "000683000002"),
            // Not in the file.
            jlink(0x1051, "001050099999"),
        ],
        ports: vec![
            port(
                "/dev/ttyACM0",
                "/dev/serial/by-id/usb-SEGGER_J-Link_000683000001-if00",
                Some("000683000001"),
            ),
            // A second VCOM of board 1's probe that the file does not list.
            port(
                "/dev/ttyACM1",
                "/dev/serial/by-id/usb-SEGGER_J-Link_000683000001-if02",
                Some("000683000001"),
            ),
            // The unknown probe's VCOM.
            port(
                "/dev/ttyACM2",
                "/dev/serial/by-id/usb-SEGGER_J-Link_001050099999-if00",
                Some("001050099999"),
            ),
            // Unrelated USB serial adapter.
            port(
                "/dev/ttyUSB0",
                "/dev/serial/by-id/usb-FTDI_FT232R_A1B2C3-if00-port0",
                Some("A1B2C3"),
            ),
            // Built-in UART: never inventory material.
            DiscoveredPort {
                path: "/dev/ttyS0".into(),
                by_id: vec![],
                usb_serial: None,
            },
        ],
    };
    let f = diff(&inv, &found);
    let lines: Vec<String> = f.iter().map(|x| x.to_string()).collect();
    let text = lines.join("\n");
    assert_eq!(
        f[0],
        Finding::ProbeFound {
            board: "nrf52840dk-1".into(),
            probe: "1366:1015:000683000001 (J-Link)".into()
        }
    );
    assert!(f.contains(&Finding::PortFound {
        board: "nrf52840dk-1".into(),
        port: "/dev/serial/by-id/usb-SEGGER_J-Link_000683000001-if00".into()
    }));
    // Board 2's probe is there, its port is not.
    assert!(f.contains(&Finding::PortMissing {
        board: "nrf52840dk-qspi".into(),
        port: "/dev/serial/by-id/usb-SEGGER_J-Link_000683000002-if00".into()
    }));
    assert!(f.contains(&Finding::ProbeMissing {
        board: "nrf5340dk-1".into(),
        selector: "1366:1051:001050000003".into()
    }));
    assert!(f.contains(&Finding::ProbeMissing {
        board: "thingy53-1".into(),
        selector: "1366:0105:000050000004".into()
    }));
    assert!(f.contains(&Finding::UnknownProbe {
        selector: "1366:1051:001050099999".into(),
        identifier: "J-Link".into(),
        ports: vec!["/dev/serial/by-id/usb-SEGGER_J-Link_001050099999-if00".into()]
    }));
    assert!(f.contains(&Finding::UnknownPort {
        port: "/dev/serial/by-id/usb-SEGGER_J-Link_000683000001-if02".into(),
        owner: Some("nrf52840dk-1".into())
    }));
    assert!(f.contains(&Finding::UnknownPort {
        port: "/dev/serial/by-id/usb-FTDI_FT232R_A1B2C3-if00-port0".into(),
        owner: None
    }));
    // The unknown probe's port is shown with the probe, not again on its own.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("001050099999-if00"))
            .count(),
        1,
        "{text}"
    );
    assert!(!text.contains("ttyS0"), "{text}");
    assert!(text.contains("belongs to nrf52840dk-1's probe"), "{text}");
    assert!(text.contains("udev"), "{text}");
    assert_eq!(f.iter().filter(|x| x.is_problem()).count(), 9, "{text}");
}

#[test]
fn matching_desk_is_clean_and_ambiguity_is_flagged() {
    let inv = Inventory::parse(ONE, Path::new("l.yaml")).unwrap();
    let found = Discovery {
        probes: vec![jlink(0x1015, "1")],
        ports: vec![port(
            "/dev/ttyACM0",
            "/dev/serial/by-id/usb-SEGGER_J-Link_1-if00",
            Some("1"),
        )],
    };
    let f = diff(&inv, &found);
    assert!(f.iter().all(|x| !x.is_problem()), "{f:?}");

    // A selector without serial and two matching probes.
    let inv = Inventory::parse(
        &ONE.replace("1366:1015:1", "1366:1015"),
        Path::new("l.yaml"),
    )
    .unwrap();
    let found = Discovery {
        probes: vec![jlink(0x1015, "1"), jlink(0x1015, "2")],
        ports: vec![],
    };
    let f = diff(&inv, &found);
    assert_eq!(
        f[0],
        Finding::ProbeAmbiguous {
            board: "a".into(),
            selector: "1366:1015".into(),
            count: 2
        }
    );
    assert!(f[0].to_string().contains("add the serial number"));
    // Nothing attached at all.
    let f = diff(&inv, &Discovery::default());
    assert!(matches!(f[0], Finding::ProbeMissing { .. }));
}

#[test]
fn device_link_facts_are_read_and_checked() {
    let with = |block: &str| format!("{ONE}    device-link: {block}\n");
    let inv = Inventory::parse(
        &with("{ serial-lines: 4x128, reset-delay-ms: 1000 }"),
        Path::new("lab.yaml"),
    )
    .unwrap();
    let e = &inv.boards[0].device_link;
    assert_eq!(e.serial_lines.as_deref(), Some("4x128"));
    assert_eq!(e.reset_delay_ms, Some(1000));
    let e = parse_err(&with("{ serial-lines: 4xmany }"));
    assert!(
        e.contains("lab.yaml") && e.contains("board `a`") && e.contains("`many`"),
        "{e}"
    );
    let e = parse_err(&with("{ lines: 4 }"));
    assert!(e.contains("lines"), "{e}");
}
