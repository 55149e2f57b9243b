//! `image inspect --build DIR`: what the build says an image must satisfy — the slot it goes
//! to (size and address from the layout), MCUboot's mode, `BOOT_MAX_ALIGN`,
//! `BOOT_MAX_IMG_SECTORS` and key (from `mcuboot/zephyr/.config`), and the room the app left
//! for the header (`CONFIG_ROM_START_OFFSET` in the app's `.config`).

use dfu_hil_build::doctor::header::linked_header_room;
use dfu_hil_build::facts::Fact;
use dfu_hil_build::Build;
use dfu_hil_mcuboot::inspect::{Diagnosis, Report, Severity};
use dfu_hil_mcuboot::keys::PublicKey;
use dfu_hil_mcuboot::layout::Layout;
use dfu_hil_mcuboot::trailer::UpgradeMode;
use std::path::Path;

/// The slot an image of the build is checked against.
#[derive(Debug, Clone, Copy)]
pub struct SlotFacts {
    /// The secondary slot's size (what an update must fit).
    pub size: u32,
    /// The primary slot's address (where the image runs).
    pub base: u32,
    pub write_size: u32,
    pub erased: u8,
}

pub struct BuildFacts {
    pub build: Build,
    /// `None` when the layout cannot be read (said in `notes`): slot checks are then skipped.
    pub layout: Option<Layout>,
    pub key: Option<PublicKey>,
    pub mode: Option<UpgradeMode>,
    pub max_align: u32,
    pub max_sectors: u32,
    pub notes: Vec<String>,
}

impl BuildFacts {
    pub fn open(dir: &Path) -> Result<BuildFacts, String> {
        let build = Build::open(dir).map_err(|e| e.to_string())?;
        let mut notes = Vec::new();
        let layout = match build.layout() {
            Ok(l) => Some(l),
            Err(e) => {
                notes.push(format!("the build's layout cannot be read ({e}): slot size and address are not checked"));
                None
            }
        };
        let key = match build.signing_key() {
            Some(p) => match PublicKey::load(&p) {
                Ok(k) => Some(k),
                Err(e) => {
                    notes.push(format!("{}: {e}: signatures are not checked", p.display()));
                    None
                }
            },
            None => {
                if let Some(f) = build.mcuboot.as_ref().and_then(|m| m.key_file.as_ref()) {
                    notes.push(format!(
                        "MCUboot's key is not on this machine (CONFIG_BOOT_SIGNATURE_KEY_FILE=\"{}\"{}): signatures are not checked (give --key)",
                        f.value,
                        f.source.as_ref().map(|s| format!(" at {s}")).unwrap_or_default()
                    ));
                }
                None
            }
        };
        let m = build.mcuboot.as_ref();
        Ok(BuildFacts {
            mode: m.and_then(|m| m.mode.value),
            max_align: m
                .and_then(|m| m.max_align.as_ref())
                .map(|f| f.value)
                .unwrap_or(8),
            max_sectors: m.map(|m| m.max_sectors.value).unwrap_or(128),
            layout,
            key,
            notes,
            build,
        })
    }

    /// Every signed image of the build (not the merged hex files), labelled by file and role.
    pub fn images(&self) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
        use dfu_hil_build::build::ImageRole;
        let mut out = Vec::new();
        for img in &self.build.images {
            if img.role == ImageRole::Merged {
                continue;
            }
            let bytes = self.build.image_bytes(img).map_err(|e| e.to_string())?;
            let label = match &img.entry {
                Some(e) => format!("{} [{e}] ({:?})", img.path.display(), img.role),
                None => format!("{} ({:?})", img.path.display(), img.role),
            };
            let index = img.image_index.unwrap_or(match img.role {
                ImageRole::NetCore => 1,
                _ => 0,
            });
            out.push((label, bytes, index));
        }
        Ok(out)
    }

    /// The slot pair of MCUboot image `index` in the build's layout.
    pub fn slot(&self, index: u32) -> Option<SlotFacts> {
        let layout = self.layout.as_ref()?;
        let pair = layout.images.get(index as usize)?;
        let primary = layout.partition(&pair.primary)?;
        let secondary = layout.partition(&pair.secondary)?;
        let dev = layout.device_of(secondary);
        Some(SlotFacts {
            size: secondary.size,
            base: layout.address(primary),
            write_size: dev.write_size,
            erased: dev.erased,
        })
    }

    /// The image header must take exactly the room the app left for it: Zephyr links the
    /// vector table at `CONFIG_ROM_START_OFFSET` from the slot start and MCUboot's `do_boot`
    /// jumps to `hdr_size` (`boot/zephyr/main.c`, `start = flash_base + hdr_size`), so the two
    /// must be equal (`west build` passes `--header-size $CONFIG_ROM_START_OFFSET` to imgtool).
    pub fn check_header_room(&self, report: &mut Report, index: u32) {
        let app = if index == 0 {
            self.build.app.as_ref()
        } else {
            self.build.netcore.as_ref()
        };
        let (Some(app), Some(h)) = (app, &report.header) else {
            return;
        };
        // The app links its vector table at slot + the header room: Partition Manager's
        // mcuboot_pad in NCS builds (CONFIG_ROM_START_OFFSET is 0 there), else
        // CONFIG_ROM_START_OFFSET (see dfu_hil_build::doctor::header).
        // A PM build with a non-zero CONFIG_ROM_START_OFFSET is flagged by the doctor
        // (header-rom-offset-with-pad); here it is compared as written.
        let room = linked_header_room(&self.build)
            .filter(|r| r.1.starts_with("mcuboot_pad") && app.rom_start_offset.value == 0);
        let (linked, name, at) = match (index, room) {
            (0, Some(room)) => room,
            _ => {
                let Fact { value, source } = &app.rom_start_offset;
                let at = source
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| format!("{} (Kconfig default)", app.config.display()));
                (*value, format!("CONFIG_ROM_START_OFFSET={value:#x}"), at)
            }
        };
        let hdr = u32::from(h.hdr_size);
        if hdr != linked {
            report.diagnoses.push(Diagnosis {
                severity: Severity::Error,
                code: "header-size-vs-rom-start-offset",
                message: format!(
                    "the image header is {hdr:#x} bytes but the app was linked for a {linked:#x}-byte header room ({name}, {at}): MCUboot jumps to the vector table at slot + hdr_size, which is not where the app put it. Sign with `imgtool sign --header-size {linked:#x} --pad-header …` (`west sign -t imgtool -- --header-size {linked} --pad-header`){}",
                    if name.starts_with("CONFIG_ROM_START_OFFSET") { " — or without --pad-header when the binary already starts with that many zero bytes (plain Zephyr)" } else { "" }
                ),
            });
        }
    }
}
