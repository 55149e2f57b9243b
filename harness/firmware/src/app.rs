//! What the simulated CPU executes: synthetic but structurally real firmware.
//!
//! A simulated app binary is laid out like Zephyr's `zephyr.bin` for an MCUboot slot:
//! `rom_start_offset` zero bytes (the room MCUboot's header takes), then a Cortex-M vector table
//! (initial SP, reset vector), then — where the reset vector points — a descriptor that tells the
//! simulator what this firmware does (its name, version, which SMP groups it has). The simulator
//! follows the vector table exactly as MCUboot's `do_boot` does, so an image signed with the
//! wrong `--header-size` jumps into zeros and faults, with no special case anywhere.
//! (The bootloader partition holds a similar descriptor: [`crate::mcuboot_build`].)

use crate::descriptor;
use serde::{Deserialize, Serialize};

/// Start of RAM on nRF52/nRF53 application cores; a valid initial SP lies above it.
pub const RAM_START: u32 = 0x2000_0000;
pub const RAM_END: u32 = 0x2008_0000;
/// Where the descriptor sits after the vector table (the reset handler's address).
pub(crate) const CODE_OFFSET: u32 = 0x100;
const APP_MAGIC: &[u8; 8] = b"SIMAPP\0\x01";

/// Description of a simulated application, as built into its binary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AppDescriptor {
    /// Firmware name printed in the boot banner.
    pub name: String,
    /// Version string the app reports (kept for the banner; SMP reports the header's version).
    pub version: String,
    /// SMP groups compiled in (Zephyr `CONFIG_MCUMGR_GRP_*`): 0 = OS, 1 = image.
    #[serde(default = "default_groups")]
    pub smp_groups: Vec<u16>,
    /// The app confirms itself at boot (`boot_write_img_confirmed()` in main).
    #[serde(default)]
    pub confirm_on_boot: bool,
    /// `CONFIG_MCUBOOT_BOOT_MAX_ALIGN` the app's bootutil was built with (8 unless set).
    #[serde(default = "default_max_align")]
    pub max_align: u32,
    /// `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE`.
    #[serde(default = "default_buf_size")]
    pub buf_size: u32,
    /// `CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT`.
    #[serde(default = "default_buf_count")]
    pub buf_count: u32,
    /// `CONFIG_UART_MCUMGR_RX_BUF_SIZE`: bytes of one received SMP line, `\n` included
    /// (Zephyr's default 128).
    #[serde(default = "default_uart_rx_buf_size")]
    pub uart_rx_buf_size: u32,
    /// `CONFIG_UART_MCUMGR_RX_BUF_COUNT`: received lines the UART transport can hold (Zephyr's
    /// default 2).
    #[serde(default = "default_uart_rx_buf_count")]
    pub uart_rx_buf_count: u32,
    /// `CONFIG_MCUMGR_GRP_OS_RESET_MS`: how long the app keeps running after it answered
    /// `os reset` (Zephyr's default 250).
    #[serde(default = "default_reset_ms")]
    pub reset_ms: u32,
    /// The Zephyr (and NCS) release the app was built from: version-dependent SMP server
    /// behaviour (img_mgmt, error encodings) follows it.
    #[serde(default)]
    pub release: crate::release::Release,
    /// Where the app's vector table is linked, from the start of its slot, when the build says
    /// (NCS with Partition Manager: `mcuboot_pad`, i.e. `mcuboot_primary_app` − slot; plain
    /// Zephyr: `CONFIG_ROM_START_OFFSET`). Only a model of a real image carries it: the
    /// simulated board then knows whether MCUboot's jump to `slot + hdr_size` lands on the
    /// vector table the code was linked with. `None` = unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_offset: Option<u32>,
    /// Set only on a model of a real image the simulator cannot run: what the model was taken
    /// from (`the build's .config (…)`, or Zephyr's defaults). Evidence and boot log say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modelled_from: Option<String>,
}

fn default_groups() -> Vec<u16> {
    vec![0, 1]
}
fn default_max_align() -> u32 {
    8
}
fn default_buf_size() -> u32 {
    384
}
fn default_buf_count() -> u32 {
    4
}
fn default_uart_rx_buf_size() -> u32 {
    dfu_hil_smp::limits::DEFAULT_LINE_SIZE as u32
}
fn default_uart_rx_buf_count() -> u32 {
    dfu_hil_smp::limits::DEFAULT_LINE_COUNT as u32
}
fn default_reset_ms() -> u32 {
    250
}

impl AppDescriptor {
    pub fn new(name: &str, version: &str) -> Self {
        AppDescriptor {
            name: name.to_owned(),
            version: version.to_owned(),
            smp_groups: default_groups(),
            confirm_on_boot: false,
            max_align: 8,
            buf_size: default_buf_size(),
            buf_count: default_buf_count(),
            uart_rx_buf_size: default_uart_rx_buf_size(),
            uart_rx_buf_count: default_uart_rx_buf_count(),
            reset_ms: default_reset_ms(),
            release: crate::release::Release::default(),
            link_offset: None,
            modelled_from: None,
        }
    }
}

/// Build an unsigned app binary linked to run at `link_base + rom_start_offset` (the address of
/// its vector table), `size` bytes long (at least big enough for the descriptor). The filler is
/// a deterministic pattern derived from the name and version so two versions differ everywhere,
/// like two real builds.
pub fn build_app(
    desc: &AppDescriptor,
    link_base: u32,
    rom_start_offset: u32,
    size: u32,
) -> Vec<u8> {
    let vt = link_base + rom_start_offset;
    let code = descriptor::encode(APP_MAGIC, desc);
    let min = (rom_start_offset + CODE_OFFSET) as usize + code.len();
    let total = (size as usize).max(min);
    let mut bin = vec![0u8; total];
    let o = rom_start_offset as usize;
    bin[o..o + 4].copy_from_slice(&(RAM_START + 0x4_0000).to_le_bytes());
    bin[o + 4..o + 8].copy_from_slice(&((vt + CODE_OFFSET) | 1).to_le_bytes());
    let c = o + CODE_OFFSET as usize;
    bin[c..c + code.len()].copy_from_slice(&code);
    // xorshift filler seeded from the identity: reproducible, incompressible-ish, distinct per build.
    let mut seed: u32 = 0x811c_9dc5;
    for b in desc.name.bytes().chain(desc.version.bytes()) {
        seed = (seed ^ b as u32).wrapping_mul(0x0100_0193);
    }
    for byte in bin[c + code.len()..].iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        *byte = seed as u8;
    }
    bin
}

/// Read an app descriptor at `code` (bytes at the reset handler's address).
pub fn read_app(code: &[u8]) -> Option<AppDescriptor> {
    descriptor::decode(code, APP_MAGIC)
}

/// Where a simulated app's code really is in `bytes` (a slot's contents): the offset of its
/// descriptor, and the descriptor. The simulated board uses it as the evidence of where the
/// synthetic app's code was placed when the reset vector does not land on it (the code was
/// linked for another header room), the way a real app's ELF would tell.
pub fn find_app(bytes: &[u8]) -> Option<(usize, AppDescriptor)> {
    bytes
        .windows(APP_MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == APP_MAGIC)
        .find_map(|(o, _)| read_app(&bytes[o..]).map(|d| (o, d)))
}

/// Offset of the reset handler from the vector table in a simulated app (what its reset
/// vector points at, less the Thumb bit).
pub const RESET_HANDLER_OFFSET: u32 = CODE_OFFSET;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_round_trip_through_vector_table() {
        let d = AppDescriptor::new("blinky", "1.0.0");
        let bin = build_app(&d, 0xc000, 0x200, 0x4000);
        assert_eq!(bin.len(), 0x4000);
        assert!(bin[..0x200].iter().all(|&b| b == 0));
        let reset = u32::from_le_bytes(bin[0x204..0x208].try_into().unwrap());
        assert_eq!(reset & 1, 1);
        let off = ((reset & !1) - 0xc000) as usize;
        assert_eq!(read_app(&bin[off..]), Some(d.clone()));
        let other = build_app(
            &AppDescriptor::new("blinky", "2.0.0"),
            0xc000,
            0x200,
            0x4000,
        );
        assert_ne!(bin[0x1000..], other[0x1000..]);
        assert_eq!(bin, build_app(&d, 0xc000, 0x200, 0x4000), "reproducible");
    }
}
