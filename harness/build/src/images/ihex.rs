//! Intel HEX as Zephyr's `objcopy -O ihex`, imgtool (`intelhex` in Python) and NCS's
//! `mergehex.py` write it: record types 00 data, 01 end of file, 02 extended segment address,
//! 03 start segment address, 04 extended linear address, 05 start linear address; every record
//! checked against its checksum (the two's complement of the byte sum). Errors name file:line.

use crate::build::BuildError;
use dfu_hil_mcuboot::image::{IMAGE_HEADER_SIZE, IMAGE_MAGIC, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC};
use std::path::Path;

/// The memory an Intel HEX file describes: contiguous runs of bytes, sorted by address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HexImage {
    pub segments: Vec<(u32, Vec<u8>)>,
    /// From a type 05 (or 03, as CS:IP) record, when present.
    pub start_address: Option<u32>,
}

/// Parse Intel HEX text; `path` names the file in errors.
pub fn parse(path: &Path, text: &str) -> Result<HexImage, BuildError> {
    let mut chunks: Vec<(u32, Vec<u8>)> = Vec::new();
    let mut base: u32 = 0;
    let mut start_address = None;
    let mut seen_eof = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |message: String| BuildError::Malformed {
            at: format!("{}:{line}", path.display()),
            message,
        };
        let rec = raw.trim();
        if rec.is_empty() {
            continue;
        }
        if seen_eof {
            // `intelhex` stops at the end-of-file record too; anything after it is not data.
            break;
        }
        let Some(hex) = rec.strip_prefix(':') else {
            return Err(err("an Intel HEX record starts with `:`".into()));
        };
        if hex.len() % 2 != 0 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err("a record is an even number of hex digits".into()));
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
            .collect();
        if bytes.len() < 5 {
            return Err(err("record shorter than its 5 fixed bytes".into()));
        }
        let len = usize::from(bytes[0]);
        if bytes.len() != len + 5 {
            return Err(err(format!(
                "record says {len} data bytes but holds {}",
                bytes.len() - 5
            )));
        }
        let sum = bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        if sum != 0 {
            let want = bytes[..bytes.len() - 1]
                .iter()
                .fold(0u8, |a, b| a.wrapping_add(*b))
                .wrapping_neg();
            return Err(err(format!(
                "checksum 0x{:02X}, the record's bytes give 0x{want:02X}",
                bytes[bytes.len() - 1]
            )));
        }
        let offset = u32::from(u16::from_be_bytes([bytes[1], bytes[2]]));
        let data = &bytes[4..4 + len];
        let word = |n: usize| -> Result<u32, BuildError> {
            if data.len() != n {
                return Err(err(format!(
                    "record type {:02X} carries {n} data bytes, found {}",
                    bytes[3],
                    data.len()
                )));
            }
            Ok(data.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)))
        };
        match bytes[3] {
            0x00 => {
                let addr = base.wrapping_add(offset);
                if addr.checked_add(len as u32).is_none() {
                    return Err(err(format!("data at 0x{addr:08X} runs past 4 GiB")));
                }
                chunks.push((addr, data.to_vec()));
            }
            0x01 => seen_eof = true,
            0x02 => base = word(2)? << 4,
            0x03 => {
                let v = word(4)?;
                start_address = Some(((v >> 16) << 4).wrapping_add(v & 0xffff));
            }
            0x04 => base = word(2)? << 16,
            0x05 => start_address = Some(word(4)?),
            other => return Err(err(format!("unknown record type {other:02X}"))),
        }
    }
    if !seen_eof && !chunks.is_empty() {
        // A file without its end record was cut short (a partial copy or download).
        return Err(BuildError::Malformed {
            at: path.display().to_string(),
            message: "no end-of-file record (type 01): the file is truncated".into(),
        });
    }
    Ok(HexImage {
        segments: merge(chunks),
        start_address,
    })
}

/// Sort data records by address and join touching or overlapping ones (a later record
/// overwrites an earlier one at the same address).
fn merge(mut chunks: Vec<(u32, Vec<u8>)>) -> Vec<(u32, Vec<u8>)> {
    chunks.sort_by_key(|c| c.0);
    let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
    for (addr, data) in chunks {
        if let Some((start, seg)) = out.last_mut() {
            let end = u64::from(*start) + seg.len() as u64;
            if u64::from(addr) <= end {
                let at = (addr - *start) as usize;
                let need = at + data.len();
                if need > seg.len() {
                    seg.resize(need, 0xff);
                }
                seg[at..need].copy_from_slice(&data);
                continue;
            }
        }
        out.push((addr, data));
    }
    out
}

impl HexImage {
    /// The MCUboot image that starts at `addr`, cut to its length (header + body + TLVs).
    pub fn image_at(&self, addr: u32) -> Option<Vec<u8>> {
        let (start, seg) = self
            .segments
            .iter()
            .find(|(s, d)| addr >= *s && u64::from(addr) < u64::from(*s) + d.len() as u64)?;
        let from = (addr - start) as usize;
        let len = image_len(&seg[from..])?;
        Some(seg[from..from + len].to_vec())
    }

    /// Every MCUboot image in the file, lowest address first: where a 4-byte-aligned word is
    /// the MCUboot magic and the header's sizes lead to a TLV area.
    pub fn images(&self) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        for (start, seg) in &self.segments {
            let mut i = 0usize;
            // Align to the device address, not the segment start.
            i += ((4 - (*start as usize % 4)) % 4).min(seg.len());
            while i + IMAGE_HEADER_SIZE <= seg.len() {
                if let Some(len) = image_len(&seg[i..]) {
                    out.push((start.wrapping_add(i as u32), seg[i..i + len].to_vec()));
                    i += len.div_ceil(4) * 4;
                } else {
                    i += 4;
                }
            }
        }
        out
    }

    /// The image at `addr` when there is one there, else the lowest image in the file.
    pub fn mcuboot_image(&self, addr: Option<u32>) -> Option<(u32, Vec<u8>)> {
        if let Some(a) = addr {
            if let Some(img) = self.image_at(a) {
                return Some((a, img));
            }
        }
        self.images().into_iter().next()
    }
}

/// The length of the MCUboot image at the start of `data` (`struct image_header` in
/// `bootutil/image.h`: magic, load_addr, hdr_size u16, protect_tlv_size u16, img_size u32;
/// then the protected TLV area and the TLV info `0x6907` with its total length), or `None` when
/// `data` does not start with one that fits.
pub fn image_len(data: &[u8]) -> Option<usize> {
    let u16_at = |o: usize| data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        data.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if u32_at(0)? != IMAGE_MAGIC {
        return None;
    }
    let hdr = usize::from(u16_at(8)?);
    let prot = usize::from(u16_at(10)?);
    let body = u32_at(12)? as usize;
    if hdr < IMAGE_HEADER_SIZE {
        return None;
    }
    let mut end = hdr.checked_add(body)?;
    if prot > 0 {
        if u16_at(end)? != TLV_PROT_INFO_MAGIC {
            return None;
        }
        end = end.checked_add(prot)?;
    }
    if u16_at(end)? != TLV_INFO_MAGIC {
        return None;
    }
    let tlv_tot = usize::from(u16_at(end + 2)?);
    end = end.checked_add(tlv_tot)?;
    (end <= data.len()).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, offset: u16, data: &[u8]) -> String {
        let mut b = vec![data.len() as u8, (offset >> 8) as u8, offset as u8, kind];
        b.extend_from_slice(data);
        let sum = b.iter().fold(0u8, |a, x| a.wrapping_add(*x)).wrapping_neg();
        b.push(sum);
        format!(
            ":{}\n",
            b.iter().map(|x| format!("{x:02X}")).collect::<String>()
        )
    }

    #[test]
    fn reads_every_record_type_and_joins_runs() {
        let mut t = String::new();
        t += &record(0x04, 0, &[0x00, 0x01]); // base 0x10000
        t += &record(0x00, 0x0000, &[1, 2, 3, 4]);
        t += &record(0x00, 0x0004, &[5, 6]);
        t += &record(0x02, 0, &[0x10, 0x00]); // segment base 0x10000 again
        t += &record(0x00, 0x0010, &[9]);
        t += &record(0x03, 0, &[0, 0, 0, 0]);
        t += &record(0x05, 0, &[0x00, 0x01, 0x02, 0x01]);
        t += &record(0x01, 0, &[]);
        let h = parse(Path::new("a.hex"), &t).unwrap();
        assert_eq!(
            h.segments,
            vec![(0x10000, vec![1, 2, 3, 4, 5, 6]), (0x10010, vec![9])]
        );
        assert_eq!(h.start_address, Some(0x10201));
    }

    #[test]
    fn errors_name_the_line() {
        let good = record(0x00, 0, &[1, 2]);
        let mut bad = good.trim().to_string();
        bad.replace_range(bad.len() - 2.., "00");
        let e = parse(Path::new("m.hex"), &format!("{good}{bad}\n")).unwrap_err();
        assert!(e.to_string().starts_with("m.hex:2: checksum"), "{e}");
        let e = parse(Path::new("m.hex"), "garbage\n").unwrap_err();
        assert!(e.to_string().starts_with("m.hex:1:"), "{e}");
        let e = parse(Path::new("m.hex"), &record(0x07, 0, &[])).unwrap_err();
        assert!(e.to_string().contains("unknown record type 07"), "{e}");
        let e = parse(Path::new("m.hex"), &good).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        for odd in [
            ":",
            ":0",
            ":00000001",
            ":FF00000000",
            ":020000040001F9\n:00000001FF",
        ] {
            let _ = parse(Path::new("x"), odd);
        }
    }

    #[test]
    fn finds_an_image_by_its_header_and_tlvs() {
        let mut img = Vec::new();
        img.extend_from_slice(&IMAGE_MAGIC.to_le_bytes());
        img.extend_from_slice(&0u32.to_le_bytes());
        img.extend_from_slice(&0x20u16.to_le_bytes());
        img.extend_from_slice(&0u16.to_le_bytes());
        img.extend_from_slice(&8u32.to_le_bytes());
        img.resize(0x20 + 8, 0xaa);
        img.extend_from_slice(&TLV_INFO_MAGIC.to_le_bytes());
        img.extend_from_slice(&8u16.to_le_bytes());
        img.extend_from_slice(&[0x10, 0, 0, 0]);
        assert_eq!(image_len(&img), Some(img.len()));
        let mut seg = vec![0u8; 0x100];
        seg.extend_from_slice(&img);
        seg.extend_from_slice(&[0xff; 16]);
        let h = HexImage {
            segments: vec![(0x8000, seg)],
            start_address: None,
        };
        assert_eq!(h.images(), vec![(0x8100, img.clone())]);
        assert_eq!(h.mcuboot_image(Some(0x8000)), Some((0x8100, img.clone())));
        assert_eq!(h.image_at(0x8100), Some(img));
        assert_eq!(image_len(&[0x3d, 0xb8, 0xf3, 0x96]), None);
    }
}
