//! `dfu_application.zip`: the images and their `manifest.json` (NCS
//! `scripts/bootloader/generate_zip.py` writes a deflated zip with the manifest last).

use super::manifest::{self, Manifest};
use crate::build::BuildError;
use std::io::Read;
use std::path::Path;

/// Entries larger than this are refused: no MCUboot slot is near it, and a hostile zip must
/// not make the harness allocate without bound.
const MAX_ENTRY: u64 = 64 << 20;

fn open(path: &Path) -> Result<zip::ZipArchive<std::fs::File>, BuildError> {
    let f = std::fs::File::open(path).map_err(|source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    zip::ZipArchive::new(f).map_err(|e| BuildError::Malformed {
        at: path.display().to_string(),
        message: format!("not a readable zip: {e}"),
    })
}

/// One entry's bytes.
pub fn read_entry(path: &Path, name: &str) -> Result<Vec<u8>, BuildError> {
    let mut z = open(path)?;
    let mut e = z.by_name(name).map_err(|_| BuildError::Missing {
        path: path.to_path_buf(),
        what: format!("entry `{name}`"),
        hint: String::new(),
    })?;
    let at = format!("{}!{name}", path.display());
    if e.size() > MAX_ENTRY {
        return Err(BuildError::Malformed {
            at,
            message: format!("{} bytes: larger than any image slot", e.size()),
        });
    }
    let mut out = Vec::new();
    e.by_ref()
        .take(MAX_ENTRY + 1)
        .read_to_end(&mut out)
        .map_err(|err| BuildError::Malformed {
            at,
            message: format!("cannot inflate: {err}"),
        })?;
    Ok(out)
}

/// The zip's entry names, in archive order.
pub fn entry_names(path: &Path) -> Result<Vec<String>, BuildError> {
    let z = open(path)?;
    Ok(z.file_names().map(str::to_string).collect())
}

/// The zip's `manifest.json`, or `None` when it has none.
pub fn read_manifest(path: &Path) -> Result<Option<Manifest>, BuildError> {
    if !entry_names(path)?.iter().any(|n| n == "manifest.json") {
        return Ok(None);
    }
    let bytes = read_entry(path, "manifest.json")?;
    let text = String::from_utf8_lossy(&bytes);
    manifest::parse(
        Path::new(&format!("{}!manifest.json", path.display())),
        &text,
    )
    .map(Some)
}
