//! What a file is, from its content: a file may be called anything (`pm_static_ZReleaseB0.yml`,
//! `my-layout.yml`), so `pm import` and a scenario's `layout:` look inside instead of trusting
//! the name.

/// The kinds of file a user may hand over as a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A Partition Manager map (`partitions.yml`, `pm_static*.yml`): top-level partitions with
    /// `address`/`size`/`span`.
    PmMap,
    /// `regions.yml`: top-level regions with `base_address`.
    Regions,
    /// `pm.config`: `PM_…=` lines.
    PmConfig,
    /// A dfu-hil layout (`partitions/*.yaml`): `flash:` and `partitions:` lists.
    Layout,
    /// Only comments (an empty static configuration).
    Empty,
    Unknown,
}

/// Classify a text by its first meaningful lines.
pub fn sniff(text: &str) -> FileKind {
    if super::yaml::only_comments(text) {
        return FileKind::Empty;
    }
    let meaningful: Vec<&str> = text
        .lines()
        .filter(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .collect();
    if meaningful.iter().all(|l| l.trim_start().starts_with("PM_")) {
        return FileKind::PmConfig;
    }
    let top_key = |k: &str| {
        meaningful
            .iter()
            .any(|l| l.starts_with(k) && l[k.len()..].trim_start().starts_with(':'))
    };
    if top_key("flash") && top_key("partitions") {
        return FileKind::Layout;
    }
    let has = |k: &str| {
        meaningful.iter().any(|l| {
            let t = l.trim_start().trim_start_matches('{');
            t.starts_with(k) || l.contains(&format!("{{{k}")) || l.contains(&format!(" {k}"))
        })
    };
    if has("base_address:") && !has("address:") {
        return FileKind::Regions;
    }
    if has("address:") || has("span:") || has("size:") {
        return FileKind::PmMap;
    }
    FileKind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_content_not_name() {
        assert_eq!(
            sniff("app: {address: 0x0, size: 0x1000}\n"),
            FileKind::PmMap
        );
        assert_eq!(
            sniff("# x\nmcuboot:\n    address: 0x0\n    size: 0xc000\n"),
            FileKind::PmMap
        );
        assert_eq!(
            sniff("flash_primary:\n  base_address: 0x0\n  size: 0x100000\n"),
            FileKind::Regions
        );
        assert_eq!(sniff("PM_B0_ID=0\nPM_B0_NAME=b0\n"), FileKind::PmConfig);
        assert_eq!(
            sniff("name: x\nflash:\n  - {}\npartitions:\n  - {}\n"),
            FileKind::Layout
        );
        assert_eq!(sniff("# all\n# comments\n"), FileKind::Empty);
        assert_eq!(sniff("hello: world\n"), FileKind::Unknown);
    }
}
