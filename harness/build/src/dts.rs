//! Plain Zephyr builds without Partition Manager: the flash partitions from the devicetree the
//! build produced (`zephyr/zephyr.dts`, `fixed-partitions` nodes). Being written for #13.

use dfu_hil_mcuboot::layout::Layout;
use std::path::Path;

/// The layout described by a build's `zephyr.dts`.
pub fn layout_from_dts(dts: &Path) -> Result<Layout, crate::pm::PmError> {
    Err(crate::pm::PmError::Invalid {
        at: dts.display().to_string(),
        message: "devicetree partitions are not read yet".into(),
    })
}
