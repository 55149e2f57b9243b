//! `doctor` over every real build of the corpus (`../shared/corpus`, or `$DFU_HIL_CORPUS`),
//! recreated with the corpus's own `materialize` script: it finds what each `SOURCE.md` FACTS
//! table says is there and nothing the table says is not — slot sectors against
//! `CONFIG_BOOT_MAX_IMG_SECTORS`, a secondary slot on external flash without a driver in MCUboot,
//! the image/OS groups behind an SMP transport, the header room. Then the same builds with one
//! line of MCUboot's `.config` changed (fewer max sectors, the NOR driver unset) must produce the
//! finding, pointing at that line.
//!
//! Skips with a reason when the corpus is absent, unless `DFU_HIL_REQUIRE_CORPUS=1` (CI).

use dfu_hil_build::build::Build;
use dfu_hil_build::doctor::{self, Report, Severity};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const SECTORS: &str = "slot-sectors-over-max";
const EXT_DRIVER: &str = "ext-flash-no-driver";
const NO_IMG: &str = "smp-no-img-group";
const NO_OS: &str = "smp-no-os-group";
const NO_TRANSPORT: &str = "smp-no-transport";
const ROM_WITH_PAD: &str = "header-rom-offset-with-pad";
const UNALIGNED: &str = "slot-not-sector-aligned";
const SB_PAD: &str = "header-sysbuild-pad-mismatch";
const BT_SMALL: &str = "smp-bt-netbuf-below-mtu";

fn corpus() -> Option<PathBuf> {
    let path = std::env::var_os("DFU_HIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if path.join("ncs-builds").is_dir() && path.join("materialize").is_file() {
        return Some(path);
    }
    if std::env::var("DFU_HIL_REQUIRE_CORPUS").as_deref() == Ok("1") {
        panic!(
            "DFU_HIL_REQUIRE_CORPUS=1 but the corpus is not at {} (set DFU_HIL_CORPUS)",
            path.display()
        );
    }
    println!(
        "skipped: no corpus at {} (set DFU_HIL_CORPUS to run doctor over it)",
        path.display()
    );
    None
}

/// Every build of the corpus recreated under `dest`: (folder name, build directory).
fn materialize(corpus: &Path, dest: &Path) -> Vec<(String, PathBuf)> {
    let out = Command::new("python3")
        .arg(corpus.join("materialize"))
        .arg(dest)
        .output()
        .expect("python3 runs the corpus's materialize script");
    assert!(
        out.status.success(),
        "materialize failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut builds: Vec<(String, PathBuf)> = std::fs::read_dir(corpus.join("ncs-builds"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("SOURCE.md").is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = dest.join(&name).join("build");
            (name, dir)
        })
        .collect();
    builds.sort();
    builds
}

/// One FACTS row: its value and the "Read from" cell.
struct Row {
    value: String,
    from: String,
}

fn facts(corpus: &Path, folder: &str) -> BTreeMap<String, Row> {
    let text =
        std::fs::read_to_string(corpus.join("ncs-builds").join(folder).join("SOURCE.md")).unwrap();
    let section = text.split("## FACTS").nth(1).unwrap_or("");
    let mut rows = BTreeMap::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() >= 5
            && !cells[1].is_empty()
            && cells[1] != "Fact"
            && !cells[1].starts_with("---")
        {
            rows.insert(
                cells[1].to_string(),
                Row {
                    value: cells[2].to_string(),
                    from: cells[3].to_string(),
                },
            );
        }
    }
    rows
}

/// A row that describes files the corpus holds (not "(read, not copied)").
fn row<'a>(f: &'a BTreeMap<String, Row>, key: &str) -> Option<&'a str> {
    f.get(key)
        .filter(|r| !r.from.contains("read, not copied"))
        .map(|r| r.value.as_str())
}

/// `= N x 4 KiB` figures of the "Slot sizes in 4 KiB sectors …" row, by partition.
fn slot_sectors(f: &BTreeMap<String, Row>) -> Vec<(String, u64)> {
    let Some(r) = f
        .iter()
        .find(|(k, r)| {
            k.starts_with("Slot sizes in 4 KiB sectors") && !r.from.contains("read, not copied")
        })
        .map(|(_, r)| r)
    else {
        return Vec::new();
    };
    r.value
        .split(';')
        .filter_map(|part| {
            let name = part.split('`').nth(1)?.to_string();
            let n = part.split("= ").nth(1)?.split_whitespace().next()?;
            Some((name, n.parse::<u64>().ok()?))
        })
        .collect()
}

fn ids(r: &Report) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.id).collect()
}

#[test]
fn doctor_finds_what_the_facts_say_on_every_corpus_build() {
    let Some(corpus) = corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let builds = materialize(&corpus, tmp.path());
    assert_eq!(builds.len(), 30, "the corpus has 30 builds");
    let mut problems = Vec::new();
    let mut checked = BTreeMap::<&str, usize>::new();
    for (folder, dir) in &builds {
        let f = facts(&corpus, folder);
        let build = match Build::open(dir) {
            Ok(b) => b,
            Err(e) => {
                problems.push(format!("{folder}: does not open: {e}"));
                continue;
            }
        };
        let report = doctor::run(&build);
        let got = ids(&report);
        println!("{folder}: {got:?}");
        let mut expect = |id: &'static str, want: bool, why: String| {
            *checked.entry(id).or_default() += 1;
            if got.contains(&id) != want {
                problems.push(format!(
                    "{folder}: {id} {} but FACTS say {why}\n{}",
                    if want { "missing" } else { "reported" },
                    report.to_text()
                ));
            }
        };
        let under_mcuboot = row(&f, "app CONFIG_BOOTLOADER_MCUBOOT") == Some("`y`");
        if build.files.contains_key("partitions.yml") {
            expect(
                doctor::LAYOUT_UNREADABLE,
                false,
                "a readable partitions.yml".into(),
            );
        }
        if let Some(v) = row(
            &f,
            "Partitions not aligned to 4 KiB (besides pad/app spans)",
        ) {
            let slot = v.contains("`mcuboot_primary`") || v.contains("`mcuboot_secondary`");
            expect(UNALIGNED, slot, format!("\"{v}\""));
        }
        if let (Some(sb), Some(pad)) = (
            row(&f, "SB_CONFIG_PM_MCUBOOT_PAD"),
            row(
                &f,
                "Image header area (`mcuboot_pad` size, = imgtool --header-size in PM builds)",
            ),
        ) {
            if under_mcuboot {
                expect(SB_PAD, sb != pad, format!("SB pad {sb}, mcuboot_pad {pad}"));
            }
        }
        if let Some(v) = row(&f, "Slot sectors exceed BOOT_MAX_IMG_SECTORS") {
            expect(SECTORS, v.starts_with("yes"), format!("\"{v}\""));
        }
        if let (Some(ext), Some(driver)) = (
            row(&f, "Secondary slot on external flash"),
            row(&f, "MCUboot external-flash driver"),
        ) {
            let want = ext.starts_with("yes") && driver.starts_with("none");
            expect(
                EXT_DRIVER,
                want,
                format!("external \"{ext}\", driver \"{driver}\""),
            );
        }
        if let (Some(groups), Some(transports)) = (
            row(&f, "app mcumgr groups"),
            row(&f, "app mcumgr transports"),
        ) {
            let has_transport = transports != "none";
            let serial_recovery = row(&f, "Other MCUboot options set")
                .is_some_and(|v| v.contains("CONFIG_MCUBOOT_SERIAL"));
            if under_mcuboot {
                expect(
                    NO_TRANSPORT,
                    !has_transport && !serial_recovery,
                    format!("transports \"{transports}\""),
                );
                expect(
                    NO_IMG,
                    has_transport && !groups.contains("IMG"),
                    format!("groups \"{groups}\""),
                );
                expect(
                    NO_OS,
                    has_transport && !groups.contains("OS"),
                    format!("groups \"{groups}\""),
                );
            }
        }
        // The SMP buffer against the largest write the device's ATT MTU allows:
        // min(L2CAP TX MTU, ACL RX − 4) − 3.
        let num = |k: &str| {
            row(&f, k).and_then(|v| {
                v.split_whitespace()
                    .last()
                    .and_then(|n| n.parse::<u32>().ok())
            })
        };
        if let Some(t) = row(&f, "app mcumgr transports") {
            if t.starts_with("BT") {
                let mtu = match (
                    num("app CONFIG_BT_L2CAP_TX_MTU"),
                    num("app CONFIG_BT_BUF_ACL_RX_SIZE"),
                ) {
                    (Some(tx), Some(rx)) => Some(tx.min(rx.saturating_sub(4))),
                    (Some(tx), None) => Some(tx),
                    (None, Some(rx)) => Some(rx.saturating_sub(4)),
                    (None, None) => None,
                };
                if let Some(mtu) = mtu {
                    let netbuf = num("app CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE").unwrap_or(384);
                    expect(
                        BT_SMALL,
                        netbuf < mtu.saturating_sub(3),
                        format!("netbuf {netbuf}, ATT MTU {mtu}"),
                    );
                }
            }
        }
        if let Some(rom) = row(&f, "app CONFIG_ROM_START_OFFSET") {
            if under_mcuboot && build.files.contains_key("partitions.yml") {
                expect(
                    ROM_WITH_PAD,
                    rom != "`0`",
                    format!("ROM_START_OFFSET {rom}"),
                );
            }
        }
        // Nothing the harness itself cannot read.
        for x in &report.findings {
            if x.id == doctor::IMAGE_UNREADABLE {
                problems.push(format!("{folder}: {}", x.title));
            }
        }
    }
    println!("checked against FACTS: {checked:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(
        checked.get(SECTORS).copied().unwrap_or(0) >= 20,
        "{checked:?}"
    );
    assert!(
        checked.get(EXT_DRIVER).copied().unwrap_or(0) >= 20,
        "{checked:?}"
    );
}

/// Replace the line of `symbol` in a `.config` (set or unset) with `with`.
fn edit_config(path: &Path, symbol: &str, with: &str) -> u32 {
    let text = std::fs::read_to_string(path).unwrap();
    let mut line_no = 0;
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if l.starts_with(&format!("{symbol}=")) || l == format!("# {symbol} is not set") {
                line_no = i as u32 + 1;
                with.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    line_no
}

#[test]
fn doctor_reports_the_changed_line_on_real_builds() {
    let Some(corpus) = corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let builds = materialize(&corpus, tmp.path());
    let (mut sectors_cases, mut driver_cases) = (0, 0);
    let mut problems = Vec::new();
    for (folder, dir) in &builds {
        let f = facts(&corpus, folder);
        let Ok(build) = Build::open(dir) else {
            continue;
        };
        let Some(m) = build.mcuboot.clone() else {
            continue;
        };
        if build.layout().is_err() {
            continue; // refused layouts are the other test's business
        }
        // One sector fewer than the largest slot: exactly the slots at that size are reported.
        let slots = slot_sectors(&f);
        if let Some(largest) = slots.iter().map(|s| s.1).max() {
            if !m.max_sectors_auto() && largest > 1 {
                let line = edit_config(
                    &m.config,
                    "CONFIG_BOOT_MAX_IMG_SECTORS",
                    &format!("CONFIG_BOOT_MAX_IMG_SECTORS={}", largest - 1),
                );
                let b = Build::open(dir).unwrap();
                let r = doctor::run(&b);
                let found: Vec<_> = r.findings.iter().filter(|x| x.id == SECTORS).collect();
                let want = slots
                    .iter()
                    .filter(|(n, c)| *c == largest && !n.contains("scratch"))
                    .count();
                if found.len() != want
                    || found.iter().any(|x| {
                        x.severity != Severity::Error
                            || x.evidence[0].line != Some(line)
                            || !x.evidence[0].file.ends_with(".config")
                    })
                {
                    problems.push(format!(
                        "{folder}: max sectors {} → want {want} findings at line {line}\n{}",
                        largest - 1,
                        r.to_text()
                    ));
                }
                sectors_cases += 1;
                let _ = edit_config(
                    &m.config,
                    "CONFIG_BOOT_MAX_IMG_SECTORS",
                    &format!("CONFIG_BOOT_MAX_IMG_SECTORS={}", m.max_sectors.value),
                );
            }
        }
        // The NOR driver taken out of an MCUboot whose secondary is on external flash.
        if row(&f, "Secondary slot on external flash").is_some_and(|v| v.starts_with("yes"))
            && m.external_flash_driver.value
        {
            for s in ["CONFIG_NORDIC_QSPI_NOR", "CONFIG_SPI_NOR"] {
                edit_config(&m.config, s, &format!("# {s} is not set"));
            }
            let b = Build::open(dir).unwrap();
            let r = doctor::run(&b);
            let hit = r.findings.iter().find(|x| x.id == EXT_DRIVER);
            match hit {
                Some(x) if x.evidence.iter().any(|e| e.text.ends_with("is not set")) => {}
                _ => problems.push(format!("{folder}: no {EXT_DRIVER}\n{}", r.to_text())),
            }
            driver_cases += 1;
        }
    }
    println!("max-sectors cases {sectors_cases}, driver cases {driver_cases}");
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(
        sectors_cases >= 20 && driver_cases >= 7,
        "{sectors_cases} / {driver_cases}"
    );
}
