//! SMP errors in a scenario's words: matching a device error against `expect-error`, and
//! explaining an upload that ended on silence.

use super::Ctx;
use crate::result::Failure;
use dfu_hil_smp::{SmpError, Transport};

impl Ctx<'_> {
    /// An upload that ended on silence, explained: when not one upload request since
    /// `first` (a transcript index) was answered while the link sized them for more serial
    /// lines than Zephyr's default, the likeliest cause is a device with fewer receive lines,
    /// which drops such requests without a word.
    pub(super) fn silent_upload(&mut self, first: usize, e: SmpError) -> Failure {
        let base = Failure::from(e);
        let uploads: Vec<_> = self.client.transcript()[first..]
            .iter()
            .filter(|x| x.request.header.group == dfu_hil_smp::group::IMAGE)
            .filter(|x| x.request.header.id == dfu_hil_smp::img_cmd::UPLOAD)
            .collect();
        if uploads.is_empty() || uploads.iter().any(|x| x.response.is_some()) {
            return base;
        }
        let largest = uploads
            .iter()
            .map(|x| x.request.header.len as usize + dfu_hil_smp::HEADER_LEN)
            .max()
            .unwrap_or(0);
        let Some(limits) = self.client.transport_mut().line_limits() else {
            return base;
        };
        let lines = limits.lines_for(largest);
        if lines <= dfu_hil_smp::limits::DEFAULT_LINE_COUNT {
            return base;
        }
        base.context(
            "",
            &format!(
                ": no upload request was answered. Each was {largest} B = {lines} serial \
                 lines, sized for {limits}; a device with Zephyr's default \
                 CONFIG_UART_MCUMGR_RX_BUF_COUNT=2 drops such requests silently (try \
                 --serial-lines 2x128 or auto, or check the app's configuration)"
            ),
        )
    }
}

/// Does a device error match the name a scenario gives (`NO_FREE_SLOT`, `image/NO_FREE_SLOT`,
/// `NOT_SUPPORTED`, `ENOTSUP`, or a number)?
pub(super) fn error_matches(want: &str, got: &dfu_hil_smp::DeviceError) -> bool {
    use dfu_hil_smp::DeviceError;
    let (group, name) = match want.split_once('/') {
        Some((g, n)) => (Some(g.to_ascii_lowercase()), n),
        None => (None, want),
    };
    let name = name.trim().to_ascii_uppercase();
    let (g, rc) = match got {
        DeviceError::Mgmt { rc } => (None, *rc),
        DeviceError::Group { group, rc } => (Some(*group), *rc),
    };
    if let Some(gname) = &group {
        let ok = match g {
            None => gname == "smp" || gname == "mgmt",
            Some(n) => {
                dfu_hil_smp::header::group_name(n).is_some_and(|s| s.eq_ignore_ascii_case(gname))
                    || gname == &n.to_string()
            }
        };
        if !ok {
            return false;
        }
    }
    if name.parse::<u32>().ok() == Some(rc) {
        return true;
    }
    let names: Vec<String> = match g {
        None => vec![
            dfu_hil_smp::mgmt_err_name(rc).to_ascii_uppercase(),
            dfu_hil_smp::errors::mgmt_err_human(rc).to_ascii_uppercase(),
        ],
        Some(grp) => dfu_hil_smp::group_err_name(grp, rc)
            .map(|n| vec![n.to_ascii_uppercase()])
            .unwrap_or_default(),
    };
    names
        .iter()
        .any(|n| n == &name || n.trim_start_matches("MGMT_ERR_") == name)
}
