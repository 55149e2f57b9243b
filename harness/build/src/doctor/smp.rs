//! What the application can answer over SMP: the transports, the groups a phone app calls, and
//! the SMP buffer against the Bluetooth MTU.
//!
//! - Groups (Zephyr `subsys/mgmt/mcumgr/grp/*/Kconfig`): an upload is the image group (1,
//!   `CONFIG_MCUMGR_GRP_IMG`, legacy `CONFIG_MCUMGR_CMD_IMG_MGMT`); nRF Connect Device Manager and
//!   `smp image upload` then reset through the OS group (0, `CONFIG_MCUMGR_GRP_OS`: reset, echo,
//!   `mcumgr_params`); "erase storage" is the zephyr_basic group (63, command 0,
//!   `CONFIG_MCUMGR_GRP_ZBASIC` + `CONFIG_MCUMGR_GRP_ZBASIC_STORAGE_ERASE`). A request for a group
//!   that is not compiled in is answered `MGMT_ERR_ENOTSUP` (`smp.c`, `smp_handle_single_req`).
//! - Bluetooth (`subsys/mgmt/mcumgr/transport/src/smp_bt.c`, `smp_bt_chr_write`): without
//!   `CONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY` each GATT write must be one whole SMP packet that fits
//!   the net_buf (`net_buf_tailroom(nb) < len` → ATT "insufficient resources"); with reassembly a
//!   packet of up to `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE` bytes spans several writes. A write
//!   carries at most ATT_MTU − 3 bytes, and the ATT MTU the device offers is
//!   `MIN(BT_L2CAP_RX_MTU, BT_L2CAP_TX_MTU)` (`subsys/bluetooth/host/att_internal.h`,
//!   `BT_LOCAL_ATT_MTU_UATT`) with `BT_L2CAP_RX_MTU = CONFIG_BT_BUF_ACL_RX_SIZE − 4`
//!   (`include/zephyr/bluetooth/l2cap.h`). NCS's `CONFIG_NCS_SAMPLE_MCUMGR_BT_OTA_DFU_SPEEDUP`
//!   (sdk-nrf `subsys/mgmt/mcumgr/Kconfig`) sets MTU 498, ACL RX 502 and a 2475-byte buffer:
//!   exactly five writes of 495 bytes per SMP packet.

use super::slots::transport_absent;
use super::text::{kconfig_evidence, kconfig_line, symbol_evidence};
use super::{Evidence, Finding, Severity};
use crate::build::Build;
use crate::facts::{AppFacts, Fact};
use std::path::Path;

pub const NO_TRANSPORT: &str = "smp-no-transport";
pub const NO_IMG: &str = "smp-no-img-group";
pub const NO_OS: &str = "smp-no-os-group";
pub const NO_BASIC: &str = "smp-no-basic-group";
pub const BT_NETBUF_SMALL: &str = "smp-bt-netbuf-below-mtu";
pub const BT_NETBUF_SPLIT: &str = "smp-bt-netbuf-not-mtu-multiple";

/// Zephyr's default `CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE` (`subsys/mgmt/mcumgr/transport/Kconfig`)
/// without the UDP transport.
const NETBUF_DEFAULT: u32 = 384;

/// Whether the config uses the pre-Zephyr-3.2 mcumgr symbol names: no `CONFIG_MCUMGR_GRP_*` /
/// `CONFIG_MCUMGR_TRANSPORT_*` line at all (set or not), and a legacy `CONFIG_MCUMGR_CMD_*` /
/// `CONFIG_MCUMGR_SMP_*` one. (New configs still carry `CONFIG_MCUMGR_SMP_CBOR_*`.)
fn legacy(config: &Path) -> bool {
    let Ok(t) = std::fs::read_to_string(config) else {
        return false;
    };
    let new = t
        .lines()
        .any(|l| l.contains("CONFIG_MCUMGR_GRP_") || l.contains("CONFIG_MCUMGR_TRANSPORT_"));
    !new && t
        .lines()
        .any(|l| l.contains("CONFIG_MCUMGR_CMD_") || l.contains("CONFIG_MCUMGR_SMP_"))
}

fn has(list: &[Fact<String>], names: &[&str]) -> bool {
    list.iter()
        .any(|f| names.iter().any(|n| f.value.eq_ignore_ascii_case(n)))
}

fn transports_evidence(app: &AppFacts) -> Evidence {
    let Some(first) = app.mcumgr_transports.first() else {
        return transport_absent(&app.config);
    };
    let names = app
        .mcumgr_transports
        .iter()
        .map(|f| f.value.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    match &first.source {
        Some(s) => Evidence::new(&s.file, Some(s.line), format!("SMP transport(s): {names}")),
        None => Evidence::new(&app.config, None, format!("SMP transport(s): {names}")),
    }
}

/// The application under MCUboot: an SMP transport, and the groups an update needs.
pub fn groups(build: &Build, out: &mut Vec<Finding>) {
    let Some(app) = &build.app else { return };
    if !app.bootloader_mcuboot.value {
        return;
    }
    let serial_recovery = build
        .mcuboot
        .as_ref()
        .is_some_and(|m| m.serial_recovery.value);
    if app.mcumgr_transports.is_empty() {
        if !serial_recovery {
            out.push(Finding {
                id: NO_TRANSPORT,
                severity: Severity::Warning,
                title: "the application runs under MCUboot but has no SMP transport".into(),
                cause: "nothing can upload an image to it over SMP (phone app, smpmgr, `dfu-hil \
                        smp`); fine if it updates itself another way (LTE/cloud FOTA, Matter OTA), \
                        not for an SMP scenario"
                    .into(),
                evidence: vec![
                    kconfig_evidence(&app.bootloader_mcuboot, &app.config, "CONFIG_BOOTLOADER_MCUBOOT"),
                    transport_absent(&app.config),
                ],
                fix: "enable CONFIG_MCUMGR=y with a transport (CONFIG_MCUMGR_TRANSPORT_BT or \
                      CONFIG_MCUMGR_TRANSPORT_UART; NCS: CONFIG_NCS_SAMPLE_MCUMGR_BT_OTA_DFU=y) and \
                      CONFIG_MCUMGR_GRP_IMG=y, CONFIG_MCUMGR_GRP_OS=y"
                    .into(),
            });
        }
        return;
    }
    let old = legacy(&app.config);
    let sym = |new: &'static str, old_name: &'static str| if old { old_name } else { new };
    if !has(&app.mcumgr_groups, &["img", "image"]) {
        let s = sym("CONFIG_MCUMGR_GRP_IMG", "CONFIG_MCUMGR_CMD_IMG_MGMT");
        out.push(Finding {
            id: NO_IMG,
            severity: Severity::Error,
            title: "SMP transport without the image management group".into(),
            cause: "every image request (list, upload, test, confirm) is answered \"not \
                    supported\": the phone app connects and the update fails at its first step"
                .into(),
            evidence: vec![
                symbol_evidence(&app.config, s, "not set"),
                transports_evidence(app),
            ],
            fix: format!("enable {s}=y (with CONFIG_IMG_MANAGER=y, CONFIG_STREAM_FLASH=y)"),
        });
    }
    if !has(&app.mcumgr_groups, &["os"]) {
        let s = sym("CONFIG_MCUMGR_GRP_OS", "CONFIG_MCUMGR_CMD_OS_MGMT");
        out.push(Finding {
            id: NO_OS,
            severity: Severity::Warning,
            title: "SMP transport without the OS group (reset, echo, mcumgr_params)".into(),
            cause: "after the upload the client cannot reset the device to start the swap \
                    (nRF Connect Device Manager stops at \"reset\"), and probes that use echo get \
                    \"not supported\""
                .into(),
            evidence: vec![
                symbol_evidence(&app.config, s, "not set"),
                transports_evidence(app),
            ],
            fix: format!(
                "enable {s}=y (and CONFIG_MCUMGR_GRP_OS_MCUMGR_PARAMS=y for the buffer size)"
            ),
        });
    }
    if !has(&app.mcumgr_groups, &["zephyr_basic", "zbasic", "basic"]) {
        out.push(Finding {
            id: NO_BASIC,
            severity: Severity::Info,
            title:
                "no zephyr_basic group: \"erase storage\" (group 63, command 0) is not available"
                    .into(),
            cause:
                "a phone app's \"erase application settings\" step is answered \"not supported\"; \
                    only matters if your update flow calls it"
                    .into(),
            evidence: vec![symbol_evidence(
                &app.config,
                "CONFIG_MCUMGR_GRP_ZBASIC",
                "not set",
            )],
            fix:
                "enable CONFIG_MCUMGR_GRP_ZBASIC=y and CONFIG_MCUMGR_GRP_ZBASIC_STORAGE_ERASE=y if \
                  the flow erases storage"
                    .into(),
        });
    }
}

/// Whether the Bluetooth transport reassembles packets from several writes.
fn bt_reassembly(config: &Path) -> Option<Evidence> {
    for s in [
        "CONFIG_MCUMGR_TRANSPORT_BT_REASSEMBLY",
        "CONFIG_MCUMGR_SMP_REASSEMBLY_BT",
    ] {
        if let Some((line, text)) = kconfig_line(config, s) {
            if text.ends_with("=y") {
                return Some(Evidence::new(config, Some(line), text));
            }
        }
    }
    None
}

/// The SMP buffer against the writes the Bluetooth MTU allows.
pub fn bt_buffers(build: &Build, out: &mut Vec<Finding>) {
    let Some(app) = &build.app else { return };
    if !has(&app.mcumgr_transports, &["bt", "bluetooth"]) {
        return;
    }
    // The MTU the device offers needs both of its limits; with neither in the .config the
    // defaults depend on the Zephyr version and the check says nothing.
    let tx = app.bt_l2cap_tx_mtu.as_ref();
    let rx = app.bt_acl_rx_size.as_ref();
    let mtu = match (tx, rx) {
        (Some(t), Some(r)) => t.value.min(r.value.saturating_sub(4)),
        (Some(t), None) => t.value,
        (None, Some(r)) => r.value.saturating_sub(4),
        (None, None) => return,
    };
    if mtu <= 3 {
        return;
    }
    let write = mtu - 3;
    let netbuf = app
        .netbuf_size
        .as_ref()
        .map(|f| f.value)
        .unwrap_or(NETBUF_DEFAULT);
    let mut evidence = Vec::new();
    let netbuf_ev = match &app.netbuf_size {
        Some(f) => kconfig_evidence(f, &app.config, "CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE"),
        None => Evidence::new(
            &app.config,
            None,
            format!("CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE not set: Zephyr default {NETBUF_DEFAULT}"),
        ),
    };
    evidence.push(netbuf_ev);
    if let Some(t) = tx {
        evidence.push(kconfig_evidence(t, &app.config, "CONFIG_BT_L2CAP_TX_MTU"));
    }
    if let Some(r) = rx {
        evidence.push(kconfig_evidence(
            r,
            &app.config,
            "CONFIG_BT_BUF_ACL_RX_SIZE",
        ));
    }
    let reassembly = bt_reassembly(&app.config);
    if netbuf < write {
        if let Some(r) = &reassembly {
            evidence.push(r.clone());
        }
        out.push(Finding {
            id: BT_NETBUF_SMALL,
            severity: Severity::Warning,
            title: format!(
                "SMP buffer {netbuf} bytes < {write}-byte writes the ATT MTU {mtu} allows"
            ),
            cause: if reassembly.is_some() {
                format!(
                    "a client that fills the MTU sends an SMP packet larger than the {netbuf}-byte \
                     buffer; the reassembly refuses it and the upload stalls"
                )
            } else {
                format!(
                    "without reassembly every write must be a whole SMP packet that fits the \
                     buffer: a client that sizes its chunks from the MTU ({write} bytes) gets ATT \
                     \"insufficient resources\" and the upload fails"
                )
            },
            evidence,
            fix: format!(
                "raise CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE to at least {write} (NCS: \
                 CONFIG_NCS_SAMPLE_MCUMGR_BT_OTA_DFU_SPEEDUP=y gives 2475 with MTU 498 and \
                 reassembly), or lower CONFIG_BT_L2CAP_TX_MTU / CONFIG_BT_BUF_ACL_RX_SIZE"
            ),
        });
        return;
    }
    if let Some(r) = reassembly {
        if netbuf % write != 0 {
            evidence.push(r);
            let k = netbuf / write;
            out.push(Finding {
                id: BT_NETBUF_SPLIT,
                severity: Severity::Info,
                title: format!(
                    "reassembled SMP buffer {netbuf} bytes is {k} full writes of {write} plus {} bytes",
                    netbuf % write
                ),
                cause: "each SMP packet ends with a short write, costing a connection event per \
                        packet; throughput only, when the peer negotiates the full MTU"
                    .into(),
                evidence,
                fix: format!(
                    "size CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE as a multiple of ATT MTU − 3, e.g. \
                     {} (NCS uses 5 × 495 = 2475 with MTU 498)",
                    (k.max(1)) * write
                ),
            });
        }
    }
}
