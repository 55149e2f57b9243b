//! Trailers written by the real imgtool (`--pad --confirm`, `--pad`) with every `--max-align`
//! and both erased values decode here with [`TrailerLayout`] in every mode: magic GOOD,
//! image_ok as requested, and the padding reads as erased.
//!
//! imgtool is found via `$IMGTOOL`, then `imgtool` on PATH, then `<workspace>/.venv/bin/imgtool`.
//! Set `DFU_HIL_SKIP_IMGTOOL=1` to skip where Python is not available.

use std::path::{Path, PathBuf};
use std::process::Command;

use dfu_hil_mcuboot::image::Image;
use dfu_hil_mcuboot::inspect::{inspect, InspectOptions};
use dfu_hil_mcuboot::trailer::{Flag, MagicState, TrailerLayout, UpgradeMode};
use rstest::rstest;

const SLOT: u32 = 0x10000;

fn find_imgtool() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IMGTOOL").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("imgtool");
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/imgtool");
    venv.is_file().then_some(venv)
}

/// The imgtool to use, or `None` when the user asked to skip. Panics with install instructions
/// otherwise, so a missing tool never turns into a silently green run.
fn imgtool() -> Option<PathBuf> {
    if let Some(p) = find_imgtool() {
        return Some(p);
    }
    if std::env::var("DFU_HIL_SKIP_IMGTOOL").as_deref() == Ok("1") {
        eprintln!("note: imgtool not found, skipping (DFU_HIL_SKIP_IMGTOOL=1)");
        return None;
    }
    panic!(
        "imgtool not found (looked at $IMGTOOL, PATH and <workspace>/.venv/bin/imgtool). Install it with \
         `python3 -m venv .venv && .venv/bin/pip install imgtool` in the workspace root, \
         or set DFU_HIL_SKIP_IMGTOOL=1 to skip these tests"
    );
}

/// Sign a Zephyr-like binary with imgtool and return the padded output.
fn imgtool_padded(max_align: u32, erased: u8, confirm: bool) -> Option<Vec<u8>> {
    let tool = imgtool()?;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("app.bin");
    let output = dir.path().join("app.signed.bin");
    let mut bin = vec![0u8; 0x200];
    // A plausible vector table (SP in RAM, Thumb reset vector), then "code".
    bin.extend_from_slice(&0x2000_8000u32.to_le_bytes());
    bin.extend_from_slice(&0x0000_c301u32.to_le_bytes());
    bin.extend((0..0x3000).map(|i| (i * 11 + 3) as u8));
    std::fs::write(&input, &bin).unwrap();
    let mut args: Vec<String> = [
        "sign",
        "--header-size",
        "0x200",
        "--align",
        "4",
        "--version",
        "1.2.3",
        "--slot-size",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("{SLOT:#x}"));
    args.extend(["--max-align".into(), max_align.to_string()]);
    args.extend([
        "-R".into(),
        if erased == 0 {
            "0".into()
        } else {
            "0xff".into()
        },
    ]);
    args.push("--pad".into());
    if confirm {
        args.push("--confirm".into());
    }
    args.push(input.display().to_string());
    args.push(output.display().to_string());
    let out = Command::new(&tool)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", tool.display()));
    assert!(
        out.status.success(),
        "imgtool {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(std::fs::read(&output).unwrap())
}

#[rstest]
fn imgtool_trailers_decode(
    #[values(8, 16, 32)] max_align: u32,
    #[values(0xff, 0x00)] erased: u8,
    #[values(true, false)] confirm: bool,
) {
    let Some(img) = imgtool_padded(max_align, erased, confirm) else {
        return;
    };
    assert_eq!(img.len(), SLOT as usize);
    let parsed = Image::parse(&img).unwrap();
    // Padding right after the TLVs is the erased value.
    assert_eq!(img[parsed.total_size], erased);
    for mode in [
        UpgradeMode::SwapMove,
        UpgradeMode::SwapScratch,
        UpgradeMode::SwapOffset,
        UpgradeMode::OverwriteOnly,
    ] {
        let layout = TrailerLayout {
            slot_size: SLOT,
            max_align,
            write_size: 4,
            erased,
            max_sectors: 128,
            mode,
        };
        // Decode from the whole slot and from just the trailer (what a probe reads).
        for tail in [&img[..], &img[(SLOT - layout.trailer_size()) as usize..]] {
            let t = layout.decode(tail).unwrap();
            let ctx = format!("max-align {max_align} erased {erased:#x} confirm {confirm} {mode}");
            assert_eq!(t.magic, MagicState::Good, "{ctx}");
            let want = if confirm { Flag::Set } else { Flag::Unset };
            assert_eq!(t.image_ok, want, "{ctx}");
            assert_eq!(t.copy_done, Flag::Unset, "{ctx}");
            assert_eq!(t.swap_info, None, "{ctx}");
            assert_eq!(t.swap_size, None, "{ctx}");
            assert_eq!(t.status_written(), 0, "{ctx}");
        }
        // A bootloader with another BOOT_MAX_ALIGN sees a BAD magic.
        for other in [8, 16, 32].into_iter().filter(|&a| a != max_align) {
            let l = TrailerLayout {
                max_align: other,
                ..layout
            };
            assert_eq!(l.decode(&img).unwrap().magic, MagicState::Bad);
        }
    }
    // inspect finds the same from the bytes alone (max-align and erased value detected).
    let r = inspect(&img, &InspectOptions::default());
    let t = r.trailer.as_ref().expect("padded image has a trailer");
    assert_eq!(t.layout.max_align, max_align);
    assert_eq!(t.layout.erased, erased);
    assert_eq!(t.decoded.magic, MagicState::Good);
    assert!(!r.has_errors(), "{r}");
}
