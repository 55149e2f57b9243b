//! The 8-byte SMP header (Zephyr `struct smp_hdr` in the transport's `smp_internal.h`) and the
//! group / command id tables (`mgmt_defines.h`, `os_mgmt.h`, `img_mgmt.h`).
//!
//! All multi-byte fields are big-endian. Byte 0 packs the op (bits 2..0) and the protocol
//! version (bits 4..3); bits 7..5 are reserved and ignored on decode, as Zephyr does.

use crate::errors::SmpError;

/// Size of the SMP header; the header's `len` field never counts these bytes.
pub const HEADER_LEN: usize = 8;

/// SMP operation (bits 2..0 of byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Read = 0,
    ReadRsp = 1,
    Write = 2,
    WriteRsp = 3,
}

impl Op {
    /// Op from its 3-bit wire value; values 4..7 are not defined by SMP.
    pub fn from_bits(bits: u8) -> Option<Op> {
        match bits {
            0 => Some(Op::Read),
            1 => Some(Op::ReadRsp),
            2 => Some(Op::Write),
            3 => Some(Op::WriteRsp),
            _ => None,
        }
    }

    /// The op a server answers with: a read gets read-rsp, *everything else* gets write-rsp
    /// (Zephyr `subsys/mgmt/mcumgr/smp/src/smp.c`, `smp_make_rsp_hdr`).
    pub fn response(self) -> Op {
        match self {
            Op::Read => Op::ReadRsp,
            _ => Op::WriteRsp,
        }
    }

    /// True for the two response ops.
    pub fn is_response(self) -> bool {
        matches!(self, Op::ReadRsp | Op::WriteRsp)
    }

    /// Short mnemonic used in transcripts: R, RR, W, WR.
    pub fn short(self) -> &'static str {
        match self {
            Op::Read => "R",
            Op::ReadRsp => "RR",
            Op::Write => "W",
            Op::WriteRsp => "WR",
        }
    }
}

/// SMP protocol version (bits 4..3 of byte 0). 2 and 3 are reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1 = 0,
    V2 = 1,
}

impl Version {
    pub fn from_bits(bits: u8) -> Option<Version> {
        match bits {
            0 => Some(Version::V1),
            1 => Some(Version::V2),
            _ => None,
        }
    }
}

/// A decoded, valid SMP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub op: Op,
    pub version: Version,
    pub flags: u8,
    /// Length of the CBOR payload only (header excluded).
    pub len: u16,
    pub group: u16,
    pub seq: u8,
    pub id: u8,
}

impl Header {
    /// Encode to the 8 wire bytes.
    pub fn encode(&self) -> [u8; 8] {
        let len = self.len.to_be_bytes();
        let group = self.group.to_be_bytes();
        [
            ((self.version as u8) << 3) | (self.op as u8),
            self.flags,
            len[0],
            len[1],
            group[0],
            group[1],
            self.seq,
            self.id,
        ]
    }

    /// Decode the first 8 bytes of `b`. Fails on a short buffer, an undefined op or a
    /// reserved version. A server that must *answer* such a header (e.g. with
    /// `UNSUPPORTED_TOO_NEW`) should use [`RawHeader::decode`] instead, which keeps the bits.
    pub fn decode(b: &[u8]) -> Result<Header, SmpError> {
        let raw = RawHeader::decode(b)?;
        raw.to_header()
    }

    /// The header a Zephyr server would put on its response to this request: op mapped by
    /// [`Op::response`], version copied (already clamped to v2 by construction), flags 0,
    /// group/seq/id echoed, `len` to be filled in by the encoder.
    pub fn response_header(&self) -> Header {
        Header {
            op: self.op.response(),
            version: self.version,
            flags: 0,
            len: 0,
            group: self.group,
            seq: self.seq,
            id: self.id,
        }
    }
}

/// Header fields exactly as on the wire, without validation. Exists so a simulated server can still
/// echo seq/group/id when the version bits are reserved (Zephyr `smp.c`, `smp_handle_single_req`:
/// version > 1 gets `MGMT_ERR_UNSUPPORTED_TOO_NEW`, which needs a response header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader {
    pub op_bits: u8,
    pub version_bits: u8,
    pub flags: u8,
    pub len: u16,
    pub group: u16,
    pub seq: u8,
    pub id: u8,
}

impl RawHeader {
    pub fn decode(b: &[u8]) -> Result<RawHeader, SmpError> {
        if b.len() < HEADER_LEN {
            return Err(SmpError::ShortHeader(b.len()));
        }
        Ok(RawHeader {
            op_bits: b[0] & 0x07,
            version_bits: (b[0] >> 3) & 0x03,
            flags: b[1],
            len: u16::from_be_bytes([b[2], b[3]]),
            group: u16::from_be_bytes([b[4], b[5]]),
            seq: b[6],
            id: b[7],
        })
    }

    pub fn to_header(&self) -> Result<Header, SmpError> {
        let op = Op::from_bits(self.op_bits)
            .ok_or_else(|| SmpError::BadHeader(format!("undefined op {}", self.op_bits)))?;
        let version = Version::from_bits(self.version_bits).ok_or_else(|| {
            SmpError::BadHeader(format!("reserved SMP version bits {}", self.version_bits))
        })?;
        Ok(Header {
            op,
            version,
            flags: self.flags,
            len: self.len,
            group: self.group,
            seq: self.seq,
            id: self.id,
        })
    }
}

/// Management group ids (`enum mcumgr_group_t`, Zephyr `mgmt_defines.h`).
pub mod group {
    pub const OS: u16 = 0;
    pub const IMAGE: u16 = 1;
    pub const STAT: u16 = 2;
    pub const SETTINGS: u16 = 3;
    pub const LOG: u16 = 4;
    pub const CRASH: u16 = 5;
    pub const SPLIT: u16 = 6;
    pub const RUN: u16 = 7;
    pub const FS: u16 = 8;
    pub const SHELL: u16 = 9;
    pub const ENUM: u16 = 10;
    pub const TRANSPORT: u16 = 11;
    pub const ZEPHYR_BASIC: u16 = 63;
    /// First application-defined group; payloads from here on may be non-CBOR.
    pub const PERUSER: u16 = 64;
}

/// OS group command ids (`OS_MGMT_ID_*`, Zephyr
/// `include/zephyr/mgmt/mcumgr/grp/os_mgmt/os_mgmt.h`).
pub mod os_cmd {
    pub const ECHO: u8 = 0;
    pub const CONSOLE_ECHO_CTRL: u8 = 1;
    pub const TASKSTAT: u8 = 2;
    pub const MPSTAT: u8 = 3;
    pub const DATETIME: u8 = 4;
    pub const RESET: u8 = 5;
    pub const PARAMS: u8 = 6;
    pub const INFO: u8 = 7;
    pub const BOOTLOADER_INFO: u8 = 8;
}

/// Image group command ids (`IMG_MGMT_ID_*`, Zephyr `grp/img_mgmt/img_mgmt.h`; slot info, 6, is
/// newer than erase).
pub mod img_cmd {
    pub const STATE: u8 = 0;
    pub const UPLOAD: u8 = 1;
    pub const FILE: u8 = 2;
    pub const CORELIST: u8 = 3;
    pub const CORELOAD: u8 = 4;
    pub const ERASE: u8 = 5;
    pub const SLOT_INFO: u8 = 6;
}

/// Zephyr basic group (63) command ids.
pub mod zephyr_cmd {
    pub const ERASE_STORAGE: u8 = 0;
}

/// Human name of a group id, for transcripts.
pub fn group_name(g: u16) -> Option<&'static str> {
    Some(match g {
        group::OS => "OS",
        group::IMAGE => "IMAGE",
        group::STAT => "STAT",
        group::SETTINGS => "SETTINGS",
        group::LOG => "LOG",
        group::CRASH => "CRASH",
        group::SPLIT => "SPLIT",
        group::RUN => "RUN",
        group::FS => "FS",
        group::SHELL => "SHELL",
        group::ENUM => "ENUM",
        group::TRANSPORT => "TRANSPORT",
        group::ZEPHYR_BASIC => "ZEPHYR_BASIC",
        _ => return None,
    })
}

/// Human name of a command within a group, for transcripts.
pub fn command_name(g: u16, id: u8) -> Option<&'static str> {
    Some(match (g, id) {
        (group::OS, os_cmd::ECHO) => "ECHO",
        (group::OS, os_cmd::CONSOLE_ECHO_CTRL) => "CONSOLE_ECHO_CTRL",
        (group::OS, os_cmd::TASKSTAT) => "TASKSTAT",
        (group::OS, os_cmd::MPSTAT) => "MPSTAT",
        (group::OS, os_cmd::DATETIME) => "DATETIME",
        (group::OS, os_cmd::RESET) => "RESET",
        (group::OS, os_cmd::PARAMS) => "PARAMS",
        (group::OS, os_cmd::INFO) => "INFO",
        (group::OS, os_cmd::BOOTLOADER_INFO) => "BOOTLOADER_INFO",
        (group::IMAGE, img_cmd::STATE) => "STATE",
        (group::IMAGE, img_cmd::UPLOAD) => "UPLOAD",
        (group::IMAGE, img_cmd::FILE) => "FILE",
        (group::IMAGE, img_cmd::CORELIST) => "CORELIST",
        (group::IMAGE, img_cmd::CORELOAD) => "CORELOAD",
        (group::IMAGE, img_cmd::ERASE) => "ERASE",
        (group::IMAGE, img_cmd::SLOT_INFO) => "SLOT_INFO",
        (group::ENUM, 0) => "COUNT",
        (group::ENUM, 1) => "LIST",
        (group::ENUM, 2) => "SINGLE",
        (group::ENUM, 3) => "DETAILS",
        (group::ZEPHYR_BASIC, zephyr_cmd::ERASE_STORAGE) => "ERASE_STORAGE",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(Op::Read, Version::V1, 0x00)]
    #[case(Op::Read, Version::V2, 0x08)]
    #[case(Op::Write, Version::V1, 0x02)]
    #[case(Op::Write, Version::V2, 0x0a)]
    #[case(Op::ReadRsp, Version::V1, 0x01)]
    #[case(Op::ReadRsp, Version::V2, 0x09)]
    #[case(Op::WriteRsp, Version::V1, 0x03)]
    #[case(Op::WriteRsp, Version::V2, 0x0b)]
    fn byte0(#[case] op: Op, #[case] version: Version, #[case] b0: u8) {
        let h = Header {
            op,
            version,
            flags: 0,
            len: 0,
            group: 0,
            seq: 0,
            id: 0,
        };
        assert_eq!(h.encode()[0], b0);
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn echo_request_header_vector() {
        // v2 echo request, seq 0x42, 9-byte body (docs/protocol-facts.md, "Byte vectors used in
        // tests").
        let h = Header {
            op: Op::Write,
            version: Version::V2,
            flags: 0,
            len: 9,
            group: group::OS,
            seq: 0x42,
            id: os_cmd::ECHO,
        };
        assert_eq!(h.encode(), [0x0a, 0x00, 0x00, 0x09, 0x00, 0x00, 0x42, 0x00]);
    }

    #[test]
    fn upload_error_header_vector() {
        // Zephyr v1 error reply to an upload, as captured in vouch-opensource/mcumgr-client#38.
        let h =
            Header::decode(&hex::decode("0300000600 01a301".replace(' ', "")).unwrap()).unwrap();
        assert_eq!(h.op, Op::WriteRsp);
        assert_eq!(h.version, Version::V1);
        assert_eq!(h.len, 6);
        assert_eq!(h.group, group::IMAGE);
        assert_eq!(h.seq, 0xa3);
        assert_eq!(h.id, img_cmd::UPLOAD);
    }

    #[test]
    fn reserved_bits_and_errors() {
        assert!(matches!(
            Header::decode(&[0; 7]),
            Err(SmpError::ShortHeader(7))
        ));
        assert!(Header::decode(&[0x04, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(Header::decode(&[0x10, 0, 0, 0, 0, 0, 0, 0]).is_err());
        let raw = RawHeader::decode(&[0x12, 0, 0, 0, 0, 1, 7, 1]).unwrap();
        assert_eq!(raw.version_bits, 2);
        assert_eq!(raw.seq, 7);
        // Reserved top bits are ignored.
        assert_eq!(
            Header::decode(&[0xe8, 0, 0, 0, 0, 0, 0, 0]).unwrap().op,
            Op::Read
        );
    }

    #[test]
    fn response_header_rule() {
        let mut h = Header::decode(&[0x08, 0, 0, 0, 0, 0, 9, 6]).unwrap();
        assert_eq!(h.response_header().op, Op::ReadRsp);
        h.op = Op::Write;
        assert_eq!(h.response_header().op, Op::WriteRsp);
        h.op = Op::WriteRsp;
        assert_eq!(h.response_header().op, Op::WriteRsp);
        assert_eq!(h.response_header().seq, 9);
    }
}
