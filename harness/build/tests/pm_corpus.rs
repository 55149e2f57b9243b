//! Every Partition Manager file of the real-build corpus (`../shared/corpus`, or
//! `DFU_HIL_CORPUS`) imports, or is refused with a reason naming file:line and the partition;
//! and what each import says agrees with the FACTS tables (`ncs-builds/*/SOURCE.md`) and the
//! static-file table (`pm-static/SOURCES.md`) the corpus records. Skips with a reason when the
//! corpus is absent, fails then when `DFU_HIL_REQUIRE_CORPUS=1`.

use dfu_hil_build::chip;
use dfu_hil_build::pm::{self, ImportOptions, PmImport};
use dfu_hil_mcuboot::layout::DeviceKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("DFU_HIL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    let why = format!("corpus not found at {} (set DFU_HIL_CORPUS)", dir.display());
    if std::env::var("DFU_HIL_REQUIRE_CORPUS").as_deref() == Ok("1") {
        panic!("DFU_HIL_REQUIRE_CORPUS=1 but {why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// `| Fact | Value | Read from |` rows of a SOURCE.md, by fact (first cell).
fn facts(source_md: &str) -> BTreeMap<String, String> {
    source_md
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() >= 4 && !cells[1].is_empty()).then(|| (cells[1].into(), cells[2].into()))
        })
        .collect()
}

fn fact<'a>(f: &'a BTreeMap<String, String>, prefix: &str) -> Option<&'a str> {
    f.iter()
        .find(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v.as_str())
}

fn harness_device(region: &str) -> &'static str {
    match region {
        "flash_primary" => "internal",
        "external_flash" => "external",
        "ram_flash" => "ram_flash",
        _ => "?",
    }
}

/// "`mcuboot_primary` 0xd0000 @ flash_primary = 208 x 4 KiB; …" → (name, size, region).
fn slot_facts(v: &str) -> Vec<(String, u32, String)> {
    v.split(';')
        .filter_map(|part| {
            let mut w = part.split_whitespace();
            let name = w.next()?.trim_matches('`').to_string();
            let size = u32::from_str_radix(w.next()?.strip_prefix("0x")?, 16).ok()?;
            (w.next()? == "@").then_some(())?;
            Some((name, size, w.next()?.to_string()))
        })
        .collect()
}

/// A region the import either made a device of, or said it did not model.
fn region_accounted(imp: &PmImport, region: &str) -> bool {
    let dev = harness_device(region);
    imp.layout.flash.iter().any(|d| d.name == dev)
        || imp.notes.iter().any(|n| n.contains(region))
        // flash_primary with nothing kept on it (everything nested) still has a device.
        || region == "flash_primary"
}

fn assert_refusal_names_line(e: &pm::PmError, file: &Path) {
    let s = e.to_string();
    let name = file.display().to_string();
    let rest = s.strip_prefix(&name).unwrap_or_else(|| panic!("{s}"));
    assert!(
        rest.starts_with(':') && rest[1..].chars().next().is_some_and(|c| c.is_ascii_digit()),
        "refusal without file:line: {s}"
    );
}

#[test]
fn every_corpus_build_map_imports_and_agrees_with_its_facts() {
    let Some(root) = corpus() else { return };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("ncs-builds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 30, "the corpus README lists 30 builds");
    let (mut imported, mut refused, mut partial) = (0, Vec::new(), Vec::new());
    for dir in &dirs {
        let f = facts(&std::fs::read_to_string(dir.join("SOURCE.md")).unwrap());
        let config = ["app.config", "sysbuild.config"]
            .iter()
            .find_map(|c| std::fs::read_to_string(dir.join(c)).ok())
            .unwrap_or_default();
        let chip = chip::from_config(&config)
            .unwrap_or_else(|| panic!("{}: no SoC in its .config", dir.display()));
        // The table's SoC (`NRF9151_LACA (...)`) names the same chip.
        let soc_fact = fact(&f, "SoC").unwrap();
        let table_chip = chip::lookup(soc_fact.split_whitespace().next().unwrap());
        assert_eq!(table_chip, Some(chip), "{}: {soc_fact}", dir.display());

        // The network core's own map, read against the network core.
        let net_map = dir.join("partitions_CPUNET.yml");
        if net_map.is_file() {
            let net_cfg = std::fs::read_to_string(dir.join("netcore.config")).unwrap_or_default();
            let net_chip = chip::from_config(&net_cfg).unwrap_or(&chip::NRF5340_NET);
            assert_eq!(net_chip, &chip::NRF5340_NET, "{}", dir.display());
            let c = dir.join("pm_CPUNET.config");
            let imp = pm::import_build(
                &net_map,
                None,
                c.is_file().then_some(c.as_path()),
                Some("nRF5340_CPUNET_QKAA"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let d = &imp.layout.flash[0];
            assert_eq!(
                (d.base, d.sector_size),
                (0x0100_0000, 2048),
                "{}",
                net_map.display()
            );
            imported += 1;
        }
        let regions = dir.join("regions.yml");
        // The project's own pm_static.yml, read against the same chip.
        let st = dir.join("pm_static.yml");
        if st.is_file() {
            match pm::import_build(
                &st,
                regions.is_file().then_some(regions.as_path()),
                None,
                Some(chip.soc),
            ) {
                Ok(imp) => {
                    imported += 1;
                    if imp.partial {
                        partial.push(st.display().to_string());
                    }
                }
                Err(e) => {
                    assert_refusal_names_line(&e, &st);
                    refused.push(format!("{}: {e}", st.display()));
                }
            }
        }
        let map = dir.join("partitions.yml");
        let cfg = dir.join("pm.config");
        let r = pm::import_build(
            &map,
            regions.is_file().then_some(regions.as_path()),
            cfg.is_file().then_some(cfg.as_path()),
            Some(chip.soc),
        );
        let slots = fact(&f, "Slot sizes").map(slot_facts).unwrap_or_default();
        let imp = match r {
            Ok(imp) => imp,
            Err(e) => {
                assert_refusal_names_line(&e, &map);
                // Refusals the files themselves justify: a slot off the 4 KiB pages (the
                // facts table says so), or a partition past CONFIG_FLASH_SIZE.
                let v = fact(&f, "Slot sizes").unwrap_or("");
                let flash_kib: Option<u64> = config
                    .lines()
                    .find_map(|l| l.strip_prefix("CONFIG_FLASH_SIZE="))
                    .and_then(|v| v.parse().ok());
                let text = std::fs::read_to_string(&map).unwrap();
                let past_end = flash_kib.is_some_and(|kib| {
                    pm::yaml::read_map(&text, &map).unwrap().iter().any(|p| {
                        p.region.as_deref().unwrap_or("flash_primary") == "flash_primary"
                            && p.address + p.size > kib * 1024
                    })
                });
                let s = e.to_string();
                assert!(
                    (v.contains("not a multiple of 4 KiB") && s.contains("erase units"))
                        || (past_end && s.contains("past the end")),
                    "{}: {e}",
                    dir.display()
                );
                refused.push(format!(
                    "{}: {e}",
                    dir.file_name().unwrap().to_string_lossy()
                ));
                continue;
            }
        };
        imported += 1;
        assert!(!imp.chip_assumed);
        if imp.partial {
            partial.push(dir.display().to_string());
        }
        // Slot sizes and where they are.
        for (name, size, region) in &slots {
            let h = pm::flatten::harness_name(name);
            let p = imp
                .layout
                .partition(h)
                .unwrap_or_else(|| panic!("{}: no {h} ({name})", dir.display()));
            assert_eq!(
                (p.size, p.device.as_str()),
                (*size, harness_device(region)),
                "{}: {name}",
                dir.display()
            );
        }
        // Secondary on external flash, yes or no.
        if let Some(v) = fact(&f, "Secondary slot on external flash") {
            let s1 = imp.layout.partition("slot1").expect("a secondary slot");
            let ext = imp.layout.device_of(s1).kind == DeviceKind::External;
            assert_eq!(ext, v.starts_with("yes"), "{}: {v}", dir.display());
        }
        // Every region the table lists is a device or said in the notes.
        if let Some(v) = fact(&f, "Partition regions") {
            for region in v.split(',').map(str::trim) {
                assert!(
                    region_accounted(&imp, region),
                    "{}: region {region} dropped silently: {:?}",
                    dir.display(),
                    imp.notes
                );
            }
        }
        // MCUboot builds: a complete layout with one pair per mcuboot_primary* slot in the table.
        let pairs = slots
            .iter()
            .filter(|(n, _, _)| n.starts_with("mcuboot_primary"))
            .count();
        assert_eq!(imp.layout.images.len(), pairs, "{}", dir.display());
        if pairs > 0 {
            assert!(
                imp.is_complete(),
                "{}: {:?} {:?}",
                dir.display(),
                imp.missing,
                imp.notes
            );
        }
        // IDs come from pm.config and name partitions of this map.
        if cfg.is_file() {
            assert!(!imp.ids.is_empty(), "{}", dir.display());
            if imp.layout.partition("slot1").is_some() {
                assert!(
                    imp.ids.contains_key("mcuboot_secondary"),
                    "{}",
                    dir.display()
                );
            }
        }
    }
    eprintln!(
        "corpus builds: {imported} maps imported ({} partial), {} refused",
        partial.len(),
        refused.len()
    );
    for p in &partial {
        eprintln!("  partial: {p}");
    }
    for r in &refused {
        eprintln!("  refused: {r}");
    }
}

/// The static files carry no SoC; the one a user would pass with `--soc` is the board the
/// file's project targets, which its path names.
fn soc_of_static(file: &str) -> &'static str {
    if file.contains("54l15") {
        "nrf54l15"
    } else if file.contains("5340")
        || file.contains("_53")
        || file.contains("thingy53")
        || file.contains("xip")
        || file.contains("non_sim")
    {
        "nrf5340_cpuapp"
    } else if file.contains("9160") {
        "nrf9160"
    } else if file.contains("52833") {
        "nrf52833"
    } else {
        "nrf52840"
    }
}

#[test]
fn every_static_partition_file_imports_or_is_refused_at_a_line() {
    let Some(root) = corpus() else { return };
    let dir = root.join("pm-static");
    let table = std::fs::read_to_string(dir.join("SOURCES.md")).unwrap();
    let mut rows = 0;
    let (mut imported, mut partial, mut refused) = (0, Vec::new(), Vec::new());
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let file = cells[1].trim_matches('`');
        let (entries, features, parsing) = (cells[5], cells[6], cells[7]);
        rows += 1;
        let path = dir.join(file);
        let r = pm::import_file(
            &path,
            &ImportOptions {
                soc: Some(soc_of_static(file).into()),
                ..Default::default()
            },
        );
        let imp = match r {
            Ok(imp) => imp,
            Err(e) => {
                assert_refusal_names_line(&e, &path);
                assert!(parsing.contains("every line is a comment"), "{file}: {e}");
                refused.push(format!("{file}: {e}"));
                continue;
            }
        };
        imported += 1;
        // Every entry the table counts was read.
        let n: usize = entries.split_whitespace().next().unwrap().parse().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(pm::yaml::read_map(&text, &path).unwrap().len(), n, "{file}");
        if let Some(regions) = entries.split("regions ").nth(1) {
            for region in regions.split(',').map(str::trim).filter(|r| *r != "(none)") {
                assert!(
                    region_accounted(&imp, region),
                    "{file}: {region}: {:?}",
                    imp.notes
                );
            }
        }
        if features.contains("secondary on external_flash") {
            let s1 = imp.layout.partition("slot1").unwrap();
            assert_eq!(
                imp.layout.device_of(s1).kind,
                DeviceKind::External,
                "{file}"
            );
        }
        if features.contains("second MCUboot image") {
            // Image 1's pair, or its secondary named as missing with the reason said (it
            // shares image 0's secondary: a non-simultaneous network-core update).
            let shared = imp.missing.iter().any(|m| m == "mcuboot_secondary_1")
                && imp
                    .notes
                    .iter()
                    .any(|n| n.contains("`mcuboot_secondary_1`") && n.contains("inside"));
            assert!(
                imp.layout.images.len() >= 2 || shared,
                "{file}: {:?} {:?}",
                imp.layout.images,
                imp.notes
            );
            let region = if features.contains("region ram_flash") {
                DeviceKind::RamEmulated
            } else {
                DeviceKind::External
            };
            let p1 = imp.layout.partition("mcuboot_primary_1").unwrap();
            assert_eq!(imp.layout.device_of(p1).kind, region, "{file}");
        }
        if features.contains("third MCUboot image") {
            assert_eq!(imp.layout.images.len(), 3, "{file}");
        }
        if features.contains("pcd_sram") {
            assert!(imp.notes.iter().any(|n| n.contains("pcd_sram")), "{file}");
        }
        if imp.partial || !imp.missing.is_empty() {
            partial.push(format!("{file}: missing {:?}", imp.missing));
        }
    }
    assert_eq!(rows, 20, "SOURCES.md lists 20 static files");
    eprintln!(
        "static files: {imported} imported ({} partial or without a slot pair), {} refused",
        partial.len(),
        refused.len()
    );
    for p in &partial {
        eprintln!("  incomplete: {p}");
    }
    for r in &refused {
        eprintln!("  refused: {r}");
    }
}
