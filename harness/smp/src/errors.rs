//! Error tables (Zephyr `include/zephyr/mgmt/mcumgr/mgmt/mgmt_defines.h`,
//! `grp/img_mgmt/img_mgmt.h`, `grp/os_mgmt/os_mgmt.h`) and this crate's error type.
//!
//! Devices report failures as bare numbers ("Error: 3"), which is the most common user complaint
//! about mcumgr tools (docs/protocol-facts.md, "Numeric errors"). Every code therefore carries a
//! name *and* a one-line explanation, and the common field failures carry a hint at the likely
//! cause.

use ciborium::value::Value;

use crate::header::group;
use crate::packet::{map_get, map_uint};

/// SMP v1 `MGMT_ERR_*` short name as in Zephyr's `enum mcumgr_err_t` (`mgmt_defines.h`),
/// e.g. 8 → "ENOTSUP". See [`mgmt_err_human`] for the spelled-out name.
pub fn mgmt_err_name(rc: u32) -> &'static str {
    mgmt_entry(rc).0
}

/// Spelled-out name of a v1 code, e.g. 8 → "NOT_SUPPORTED" (the style nRF Device Manager
/// shows users, so their reports can be matched).
pub fn mgmt_err_human(rc: u32) -> &'static str {
    mgmt_entry(rc).1
}

/// One-line meaning of a v1 code.
pub fn mgmt_err_meaning(rc: u32) -> &'static str {
    mgmt_entry(rc).2
}

fn mgmt_entry(rc: u32) -> (&'static str, &'static str, &'static str) {
    match rc {
        0 => ("EOK", "OK", "success"),
        1 => ("EUNKNOWN", "UNKNOWN", "unknown error"),
        2 => (
            "ENOMEM",
            "NO_MEMORY",
            "out of memory, or no room for the CBOR response",
        ),
        3 => ("EINVAL", "INVALID_VALUE", "bad input value"),
        4 => ("ETIMEOUT", "TIMEOUT", "operation timed out on the device"),
        5 => ("ENOENT", "NO_ENTRY", "no such entry"),
        6 => (
            "EBADSTATE",
            "BAD_STATE",
            "the current state forbids the command",
        ),
        7 => ("EMSGSIZE", "MSG_TOO_LARGE", "response too large"),
        8 => ("ENOTSUP", "NOT_SUPPORTED", "command not supported"),
        9 => ("ECORRUPT", "CORRUPT", "corrupt request"),
        10 => ("EBUSY", "BUSY", "blocked by another command"),
        11 => ("EACCESSDENIED", "ACCESS_DENIED", "access denied"),
        12 => (
            "UNSUPPORTED_TOO_OLD",
            "UNSUPPORTED_TOO_OLD",
            "requested SMP version too old",
        ),
        13 => (
            "UNSUPPORTED_TOO_NEW",
            "UNSUPPORTED_TOO_NEW",
            "requested SMP version too new",
        ),
        256.. => ("EPERUSER", "PER_USER", "application-defined error"),
        _ => ("E?", "UNDEFINED", "code not defined by SMP"),
    }
}

/// Hint for the v1 codes users actually hit in the field.
fn mgmt_hint(rc: u32) -> Option<&'static str> {
    Some(match rc {
        1 => "a v1 request collapses most image-group errors into 1; resend as SMP v2 to see the precise group error",
        2 => "the device could not fit the response; a smaller request or larger CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE helps",
        3 => "a request field is missing or has the wrong type (e.g. an image hash sent as text or null, or no `off`); Go mcumgr's `image confirm` without a hash does this",
        6 => "for an upload: no free slot (a test image is still pending), the running version is newer, or an image is already pending",
        8 => "the command (or that op) is not compiled into the running firmware; for image commands: the image group is not compiled into the running firmware, or the device sits in MCUboot serial recovery",
        9 => "the header claimed more payload than arrived; on BLE a fragmented request reached a device without reassembly",
        10 => "another command holds the resource (e.g. external flash busy); retry shortly",
        12 => "the device accepts SMP v2 only; resend with version 2",
        13 => "the device only speaks SMP v1; resend with version 1",
        _ => return None,
    })
}

/// Group-specific (SMP v2 `err`) code name, e.g. (1, 8) → "HASH_NOT_FOUND", (1, 9) → "NO_FREE_SLOT".
pub fn group_err_name(group: u16, rc: u32) -> Option<&'static str> {
    group_entry(group, rc).map(|e| e.0)
}

/// One-line explanation of a group-specific code, with a hint where one is known.
pub fn group_err_meaning(group: u16, rc: u32) -> Option<&'static str> {
    group_entry(group, rc).map(|e| e.1)
}

fn group_entry(g: u16, rc: u32) -> Option<(&'static str, &'static str)> {
    match g {
        group::IMAGE => img_entry(rc),
        group::OS => os_entry(rc),
        group::ZEPHYR_BASIC => Some(match rc {
            0 => ("OK", "success"),
            1 => ("UNKNOWN", "unknown error"),
            2 => ("FLASH_OPEN_FAILED", "could not open the storage partition"),
            3 => (
                "FLASH_CONFIG_QUERY_FAIL",
                "could not query the storage partition's flash parameters",
            ),
            4 => ("FLASH_ERASE_FAILED", "erasing the storage partition failed"),
            _ => return None,
        }),
        group::ENUM => Some(match rc {
            0 => ("OK", "success"),
            1 => ("UNKNOWN", "unknown error"),
            2 => (
                "TOO_MANY_GROUP_ENTRIES",
                "more groups than the response can list",
            ),
            3 => (
                "INSUFFICIENT_HEAP_FOR_ENTRIES",
                "not enough heap to list the groups",
            ),
            4 => ("INDEX_TOO_LARGE", "group index out of range"),
            _ => return None,
        }),
        _ => None,
    }
}

fn os_entry(rc: u32) -> Option<(&'static str, &'static str)> {
    Some(match rc {
        0 => ("OK", "success"),
        1 => ("UNKNOWN", "unknown error"),
        2 => (
            "INVALID_FORMAT",
            "the `format` string of an info request is invalid",
        ),
        3 => (
            "QUERY_YIELDS_NO_ANSWER",
            "bootloader-info query not recognised",
        ),
        4 => ("RTC_NOT_SET", "the real-time clock has not been set"),
        5 => (
            "RTC_COMMAND_FAILED",
            "setting or reading the real-time clock failed",
        ),
        6 => (
            "QUERY_RESPONSE_VALUE_NOT_VALID",
            "the bootloader-info answer is not valid",
        ),
        7 => (
            "HEAP_STATS_FETCH_FAILED",
            "heap statistics could not be read",
        ),
        _ => return None,
    })
}

fn img_entry(rc: u32) -> Option<(&'static str, &'static str)> {
    Some(match rc {
        0 => ("OK", "success"),
        1 => ("UNKNOWN", "unknown error"),
        2 => ("FLASH_CONFIG_QUERY_FAIL", "could not query the flash configuration"),
        3 => ("NO_IMAGE", "no image in the slot"),
        4 => ("NO_TLVS", "the image has no TLV area"),
        5 => ("INVALID_TLV", "an image TLV is malformed"),
        6 => ("TLV_MULTIPLE_HASHES_FOUND", "the image carries more than one hash TLV"),
        7 => ("TLV_INVALID_SIZE", "an image TLV has an invalid size"),
        8 => ("HASH_NOT_FOUND", "no slot holds an image with that hash; the hash is the image's SHA-256 TLV as shown by `image list`, not the SHA-256 of the file"),
        9 => ("NO_FREE_SLOT", "no slot can take the upload: an image is pending test or a revert is scheduled; reset (or erase the slot) first"),
        10 => ("FLASH_OPEN_FAILED", "could not open the slot's flash area (multi-image builds: image number out of range)"),
        11 => ("FLASH_READ_FAILED", "reading flash failed"),
        12 => ("FLASH_WRITE_FAILED", "writing flash failed; the upload session was reset, restart the upload"),
        13 => ("FLASH_ERASE_FAILED", "erasing flash failed"),
        14 => ("INVALID_SLOT", "slot number not valid"),
        15 => ("NO_FREE_MEMORY", "out of memory"),
        16 => ("FLASH_CONTEXT_ALREADY_SET", "flash write context already set"),
        17 => ("FLASH_CONTEXT_NOT_SET", "flash write context not set"),
        18 => ("FLASH_AREA_DEVICE_NULL", "the slot's flash device is missing"),
        19 => ("INVALID_PAGE_OFFSET", "offset not on a page boundary"),
        20 => ("INVALID_OFFSET", "the request has no (or a bad) `off`"),
        21 => ("INVALID_LENGTH", "the first chunk (off 0) lacks `len`"),
        22 => ("INVALID_IMAGE_HEADER", "the first chunk is shorter than the 32-byte MCUboot header, or the header is malformed"),
        23 => ("INVALID_IMAGE_HEADER_MAGIC", "the file is not an MCUboot image (no 0x96f3b83d magic): unsigned .bin, .hex or .elf?"),
        24 => ("INVALID_HASH", "hash must be 32 bytes (sha 1..32 bytes on upload); `test` needs a hash"),
        25 => ("INVALID_FLASH_ADDRESS", "DirectXIP load address does not match the slot"),
        26 => ("VERSION_GET_FAILED", "could not read the running image's version"),
        27 => ("CURRENT_VERSION_IS_NEWER", "`upgrade` was requested and the running version is the same or newer"),
        28 => ("IMAGE_ALREADY_PENDING", "another image is already pending; reset first"),
        29 => ("INVALID_IMAGE_VECTOR_TABLE", "the image's vector table is invalid"),
        30 => ("INVALID_IMAGE_TOO_LARGE", "the image is larger than the slot"),
        31 => ("INVALID_IMAGE_DATA_OVERRUN", "chunk goes past the announced `len`"),
        32 => ("IMAGE_CONFIRMATION_DENIED", "confirming a slot of a non-active image is not allowed"),
        33 => ("IMAGE_SETTING_TEST_TO_ACTIVE_DENIED", "that hash is the running image's; testing it is refused (uploading the firmware already running?)"),
        34 => ("ACTIVE_SLOT_NOT_KNOWN", "the device cannot tell which slot is active"),
        _ => return None,
    })
}

/// IMAGE group code → the v1 `rc` Zephyr sends when the request was v1
/// (Zephyr `grp/img_mgmt/src/img_mgmt.c`, `img_mgmt_translate_error_code`). Unknown codes map to
/// EUNKNOWN (1).
pub fn img_err_to_v1(rc: u32) -> u32 {
    match rc {
        0 => 0,
        3 | 4 => 5,                            // ENOENT
        9 | 27 | 28 => 6,                      // EBADSTATE
        14 | 19 | 20 | 21 | 22 | 24 | 25 => 3, // EINVAL
        15 => 2,                               // ENOMEM
        _ => 1,                                // EUNKNOWN
    }
}

/// OS group code → v1 `rc`, newest Zephyr behaviour (`grp/os_mgmt/src/os_mgmt.c`,
/// `os_mgmt_translate_error_code`; older trees map two more codes to ENOENT): INVALID_FORMAT →
/// EINVAL, everything else → EUNKNOWN.
pub fn os_err_to_v1(rc: u32) -> u32 {
    match rc {
        0 => 0,
        2 => 3,
        _ => 1,
    }
}

/// Group code → v1 `rc` for the groups whose translation is documented; other groups → 1.
pub fn group_err_to_v1(group: u16, rc: u32) -> u32 {
    match group {
        group::IMAGE => img_err_to_v1(rc),
        group::OS => os_err_to_v1(rc),
        _ if rc == 0 => 0,
        _ => 1,
    }
}

/// An error the device reported in a response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceError {
    /// SMP-level (v1 style) top-level `rc`.
    Mgmt { rc: u32 },
    /// SMP v2 group error `err: {group, rc}`.
    Group { group: u16, rc: u32 },
}

impl DeviceError {
    /// Short name: "NOT_SUPPORTED" for v1 codes, "HASH_NOT_FOUND" for group codes
    /// (or "group 7 rc 3" when the group's table is unknown).
    pub fn name(&self) -> String {
        match *self {
            DeviceError::Mgmt { rc } => mgmt_err_human(rc).to_string(),
            DeviceError::Group { group, rc } => match group_err_name(group, rc) {
                Some(n) => n.to_string(),
                None => format!("group {group} rc {rc}"),
            },
        }
    }

    /// One-line explanation plus, for common field errors, a hint at the usual cause.
    pub fn explain(&self) -> String {
        match *self {
            DeviceError::Mgmt { rc } => {
                let mut s = format!("MGMT_ERR_{}: {}", mgmt_err_name(rc), mgmt_err_meaning(rc));
                if let Some(h) = mgmt_hint(rc) {
                    s.push_str(" — ");
                    s.push_str(h);
                }
                s
            }
            DeviceError::Group { group, rc } => match group_err_meaning(group, rc) {
                Some(m) => {
                    let mut s = m.to_string();
                    if group == group::IMAGE {
                        let v1 = img_err_to_v1(rc);
                        s.push_str(&format!(
                            " (a v1 client sees rc {v1} {})",
                            mgmt_err_name(v1)
                        ));
                    }
                    s
                }
                None => "no description for this group's code".to_string(),
            },
        }
    }

    /// True for errors worth retrying unchanged (EBUSY).
    pub fn is_busy(&self) -> bool {
        matches!(self, DeviceError::Mgmt { rc: 10 })
    }
}

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            DeviceError::Mgmt { rc } => write!(f, "{} (rc {rc}): {}", self.name(), self.explain()),
            DeviceError::Group { group, rc } => {
                let gname = crate::header::group_name(group)
                    .map(|s| s.to_ascii_lowercase())
                    .unwrap_or_else(|| format!("group {group}"));
                write!(
                    f,
                    "{gname} group error {} ({rc}): {}",
                    self.name(),
                    self.explain()
                )
            }
        }
    }
}

impl std::error::Error for DeviceError {}

/// Extract an error from a response body: top-level "rc" != 0, or "err": {"group","rc"} with
/// rc != 0. A v2 client must look for both: in Zephyr's `smp.c` a handler's group error goes in
/// `err` (`smp_add_cmd_err`), but a dispatch failure is answered `{"rc"}` whatever the request's
/// version (`smp_build_err_rsp`).
pub fn response_error(body: &Value) -> Option<DeviceError> {
    if let Some(v) = map_get(body, "rc") {
        if let Some(rc) = any_int_as_u32(v) {
            if rc != 0 {
                return Some(DeviceError::Mgmt { rc });
            }
        }
    }
    if let Some(err) = map_get(body, "err") {
        let rc = map_get(err, "rc").and_then(any_int_as_u32).unwrap_or(0);
        if rc != 0 {
            let group = map_uint(err, "group").map(|g| g as u16).unwrap_or(0);
            return Some(DeviceError::Group { group, rc });
        }
    }
    None
}

/// A negative rc from a misbehaving device is still an error; keep it visible as u32::MAX.
fn any_int_as_u32(v: &Value) -> Option<u32> {
    match v {
        Value::Integer(i) => Some(u32::try_from(i128::from(*i)).unwrap_or(u32::MAX)),
        _ => None,
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum SmpError {
    #[error("SMP header needs 8 bytes, got {0}")]
    ShortHeader(usize),
    #[error("malformed SMP header: {0}")]
    BadHeader(String),
    #[error("SMP header claims {header} payload bytes, {available} present")]
    Length { header: u16, available: usize },
    #[error("CBOR: {0}")]
    Cbor(String),
    #[error("serial framing: {0}")]
    Framing(String),
    #[error("timed out waiting for the response")]
    Timeout,
    #[error("device error: {0}")]
    Device(#[from] DeviceError),
    #[error("transport: {0}")]
    Transport(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("unexpected response: {0}")]
    UnexpectedResponse(String),
    #[error("request needs {needed} bytes but the link/device allows {max_packet}")]
    BufferTooSmall { max_packet: usize, needed: usize },
    #[error("upload: {0}")]
    Upload(String),
    /// An upload that the device had acknowledged in part stopped: how far it got, and why.
    /// A timeout here is not a wrong port or baud rate — the device answered this upload.
    #[error(
        "upload stopped after the device acknowledged {acked} of {total} bytes (last offset \
         {last_off:#x}, {answers} answers): {cause}"
    )]
    UploadStopped {
        /// Highest offset the device acknowledged (bytes it holds, in order).
        acked: usize,
        total: usize,
        /// The offset the device reported last (lower than `acked` after a session loss).
        last_off: usize,
        /// Upload requests the device answered.
        answers: usize,
        cause: Box<SmpError>,
    },
    /// The caller's overall deadline (a test step's timeout) passed; not retried.
    #[error("deadline passed ({0})")]
    Deadline(String),
    /// After a reset, the device never answered a readiness probe.
    #[error(
        "device did not answer SMP within {:.1} s after the reset ({probes} probes; last: {last}): \
         it may still be in the bootloader (a long swap, a fault loop), its SMP transport may \
         not be on this port, or the link settings (baud, line limits) may be wrong",
        waited.as_secs_f64()
    )]
    NotReady {
        waited: std::time::Duration,
        probes: u32,
        last: String,
    },
}

impl SmpError {
    /// Worth retrying the same request: a timeout (silent drop) or EBUSY.
    pub fn is_retryable(&self) -> bool {
        match self {
            SmpError::Timeout => true,
            SmpError::Device(d) => d.is_busy(),
            _ => false,
        }
    }

    /// The error behind an [`SmpError::UploadStopped`] (itself otherwise).
    pub fn cause(&self) -> &SmpError {
        match self {
            SmpError::UploadStopped { cause, .. } => cause.cause(),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{map, uint};
    use rstest::rstest;

    #[test]
    fn same_number_different_meaning() {
        assert_eq!(mgmt_err_name(8), "ENOTSUP");
        assert_eq!(mgmt_err_human(8), "NOT_SUPPORTED");
        assert_eq!(group_err_name(1, 8), Some("HASH_NOT_FOUND"));
        assert_eq!(group_err_name(1, 9), Some("NO_FREE_SLOT"));
        let top = DeviceError::Mgmt { rc: 8 };
        let grp = DeviceError::Group { group: 1, rc: 8 };
        assert_eq!(top.name(), "NOT_SUPPORTED");
        assert_eq!(grp.name(), "HASH_NOT_FOUND");
        let s = top.to_string();
        assert!(s.starts_with("NOT_SUPPORTED (rc 8): "), "{s}");
        assert!(s.contains("MCUboot serial recovery"), "{s}");
        let s = DeviceError::Group { group: 1, rc: 9 }.to_string();
        assert!(s.starts_with("image group error NO_FREE_SLOT (9): "), "{s}");
    }

    #[rstest]
    #[case(1, 1)]
    #[case(2, 1)]
    #[case(3, 5)]
    #[case(4, 5)]
    #[case(5, 1)]
    #[case(8, 1)]
    #[case(9, 6)]
    #[case(10, 1)]
    #[case(12, 1)]
    #[case(14, 3)]
    #[case(15, 2)]
    #[case(18, 1)]
    #[case(19, 3)]
    #[case(20, 3)]
    #[case(21, 3)]
    #[case(22, 3)]
    #[case(23, 1)]
    #[case(24, 3)]
    #[case(25, 3)]
    #[case(26, 1)]
    #[case(27, 6)]
    #[case(28, 6)]
    #[case(29, 1)]
    #[case(30, 1)]
    #[case(31, 1)]
    #[case(32, 1)]
    #[case(33, 1)]
    #[case(34, 1)]
    fn img_v1_translation(#[case] img: u32, #[case] v1: u32) {
        assert_eq!(img_err_to_v1(img), v1);
    }

    #[test]
    fn all_tables_named() {
        for rc in 0..=34 {
            assert!(group_err_name(group::IMAGE, rc).is_some(), "img {rc}");
        }
        for rc in 0..=13 {
            assert_ne!(mgmt_err_name(rc), "E?");
        }
        assert_eq!(mgmt_err_name(300), "EPERUSER");
        for rc in 0..=7 {
            assert!(group_err_name(group::OS, rc).is_some());
        }
        for rc in 0..=4 {
            assert!(group_err_name(group::ZEPHYR_BASIC, rc).is_some());
        }
        assert_eq!(group_err_name(group::IMAGE, 99), None);
        assert_eq!(os_err_to_v1(2), 3);
        assert_eq!(os_err_to_v1(3), 1);
        assert!(DeviceError::Group { group: 77, rc: 3 }
            .to_string()
            .contains("group 77"));
    }

    #[test]
    fn extract_errors() {
        assert_eq!(
            response_error(&map([("rc", uint(3))])),
            Some(DeviceError::Mgmt { rc: 3 })
        );
        assert_eq!(
            response_error(&map([("rc", uint(0)), ("off", uint(5))])),
            None
        );
        assert_eq!(response_error(&map([("off", uint(5))])), None);
        let e = map([("group", uint(1)), ("rc", uint(21))]);
        assert_eq!(
            response_error(&map([("off", uint(0)), ("err", e)])),
            Some(DeviceError::Group { group: 1, rc: 21 })
        );
        let ok = map([("group", uint(1)), ("rc", uint(0))]);
        assert_eq!(response_error(&map([("err", ok)])), None);
        assert!(SmpError::Device(DeviceError::Mgmt { rc: 10 }).is_retryable());
        assert!(!SmpError::Device(DeviceError::Mgmt { rc: 3 }).is_retryable());
    }
}
