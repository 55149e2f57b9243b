//! `manifest.json` of `dfu_application.zip` (NCS `scripts/bootloader/generate_zip.py`; also
//! written beside the zip as `dfu_application.zip_manifest.json`). Format 0 (NCS < 2.x) has no
//! `image_index`; format 1 adds `image_index` and `slot_index_*` as strings. Fields are read
//! leniently (string or number) because both forms occur.

use crate::build::BuildError;
use serde_json::Value;
use std::path::Path;

/// One entry of `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    pub file: String,
    /// `type`: `application` for every MCUboot image NCS packs (netcore too), `wifi_fw`, …
    pub kind: Option<String>,
    pub board: Option<String>,
    pub soc: Option<String>,
    pub image_index: Option<u32>,
    pub load_address: Option<u64>,
    /// `version_MCUBOOT` (or `version`).
    pub version: Option<String>,
    pub size: Option<u64>,
}

/// The manifest, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub format_version: Option<u64>,
    pub name: Option<String>,
    pub files: Vec<ManifestFile>,
}

fn as_u64(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => crate::kconfig::parse_number(s).and_then(|n| u64::try_from(n).ok()),
        _ => None,
    }
}

fn as_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parse manifest text; `at` names the file (or `zip!manifest.json`) in errors.
pub fn parse(at: &Path, text: &str) -> Result<Manifest, BuildError> {
    let v: Value = serde_json::from_str(text).map_err(|e| BuildError::Malformed {
        at: format!("{}:{}:{}", at.display(), e.line(), e.column()),
        message: format!("not valid JSON: {e}"),
    })?;
    let bad = |message: &str| BuildError::Malformed {
        at: at.display().to_string(),
        message: message.to_string(),
    };
    let Some(files) = v.get("files").and_then(Value::as_array) else {
        return Err(bad("a DFU manifest has a `files` array"));
    };
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let Some(file) = f.get("file").and_then(Value::as_str) else {
            return Err(bad(&format!("files[{i}] has no `file` name")));
        };
        out.push(ManifestFile {
            file: file.to_string(),
            kind: as_string(f.get("type")),
            board: as_string(f.get("board")),
            soc: as_string(f.get("soc")),
            image_index: as_u64(f.get("image_index")).and_then(|n| u32::try_from(n).ok()),
            load_address: as_u64(f.get("load_address")),
            version: as_string(f.get("version_MCUBOOT")).or_else(|| as_string(f.get("version"))),
            size: as_u64(f.get("size")),
        });
    }
    Ok(Manifest {
        format_version: as_u64(v.get("format-version")),
        name: as_string(v.get("name")),
        files: out,
    })
}

/// Read a manifest file.
pub fn read(path: &Path) -> Result<Manifest, BuildError> {
    let text = std::fs::read_to_string(path).map_err(|source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_formats() {
        let m = parse(
            Path::new("m.json"),
            r#"{"format-version":1,"files":[{"type":"application","board":"nrf5340dk/nrf5340/cpunet",
            "image_index":"1","load_address":16812032,"version":"1","size":175344,"file":"ipc_radio.bin"}],
            "name":"sensing_fw"}"#,
        )
        .unwrap();
        assert_eq!(m.files[0].image_index, Some(1));
        assert_eq!(m.files[0].version.as_deref(), Some("1"));
        assert_eq!(m.name.as_deref(), Some("sensing_fw"));
        let m = parse(
            Path::new("m.json"),
            r#"{"format-version":0,"files":[{"size":21360,"file":"app_update.bin","version_MCUBOOT":"0.0.0+0"}]}"#,
        )
        .unwrap();
        assert_eq!(m.files[0].image_index, None);
        let e = parse(Path::new("m.json"), "{\n  \"files\": [,]\n}").unwrap_err();
        assert!(e.to_string().starts_with("m.json:2:"), "{e}");
        let e = parse(Path::new("m.json"), "{\"files\": [{}]}").unwrap_err();
        assert!(e.to_string().contains("files[0]"), "{e}");
    }
}
