//! What a file that is not an MCUboot image looks like, so `image inspect` can say "this is a
//! zip (a DFU package), not an image" instead of reporting a bad header magic.

/// A file format people hand to `image inspect` by mistake, recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A zip archive (nRF Connect SDK `dfu_application.zip`, mcumgr/nRF Connect app packages).
    Zip,
    /// Intel HEX text (`zephyr.hex`, `merged.hex`).
    IntelHex,
    /// An ELF file (`zephyr.elf`): the linker's output, before `objcopy` and signing.
    Elf,
}

impl FileKind {
    /// Recognise `bytes` by their start; `None` for anything else.
    pub fn sniff(bytes: &[u8]) -> Option<FileKind> {
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            return Some(FileKind::Zip);
        }
        if bytes.starts_with(b"\x7fELF") {
            return Some(FileKind::Elf);
        }
        // A record is `:LLAAAATT…` in hex digits; check the first line's start.
        let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        if line.len() >= 11 && line[0] == b':' && line[1..11].iter().all(u8::is_ascii_hexdigit) {
            return Some(FileKind::IntelHex);
        }
        None
    }

    /// What the file is and what to give instead.
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Zip => {
                "a zip archive (a DFU package?); inspect the signed image inside it \
                 (e.g. zephyr.signed.bin / app_update.bin)"
            }
            FileKind::IntelHex => {
                "an Intel HEX file; inspect the signed binary (zephyr.signed.bin), or convert \
                 the hex with objcopy -I ihex -O binary"
            }
            FileKind::Elf => {
                "an ELF file (the unsigned linker output); inspect the signed binary \
                 (zephyr.signed.bin), and give the ELF as --elf"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_zip_hex_elf_and_nothing_else() {
        assert_eq!(FileKind::sniff(b"PK\x03\x04rest"), Some(FileKind::Zip));
        assert_eq!(FileKind::sniff(b"PK\x05\x06"), Some(FileKind::Zip));
        assert_eq!(
            FileKind::sniff(b":020000040000FA\n:10000000"),
            Some(FileKind::IntelHex)
        );
        assert_eq!(FileKind::sniff(b"\x7fELF\x01\x01"), Some(FileKind::Elf));
        assert_eq!(FileKind::sniff(&[0x3d, 0xb8, 0xf3, 0x96]), None);
        assert_eq!(FileKind::sniff(b":nothex"), None);
        assert_eq!(FileKind::sniff(b""), None);
    }
}
