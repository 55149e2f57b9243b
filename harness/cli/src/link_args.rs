//! Command-line options for what the client assumes about the device's SMP link, shared by
//! `scenario`, `run` and `farm` so they cannot drift apart.

use std::time::Duration;

use dfu_hil_runner::run::DeviceLinkOptions;
use dfu_hil_smp::LineSetting;

/// The device's SMP link facts (see docs/device-model.md).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DeviceLinkArgs {
    /// The device's SMP serial receive lines, COUNTxSIZE (its CONFIG_UART_MCUMGR_RX_BUF_COUNT
    /// x CONFIG_UART_MCUMGR_RX_BUF_SIZE; Zephyr's default 2x128), or `auto` to find the count
    /// with echo probes before the first upload. Requests are sized so a whole frame fits
    /// (wins over a scenario's `device: serial-lines`).
    #[arg(long, value_name = "COUNTxSIZE|auto")]
    pub serial_lines: Option<LineSetting>,
    /// How long the app keeps answering after `os reset`, in ms (its
    /// CONFIG_MCUMGR_GRP_OS_RESET_MS; Zephyr's default 250).
    #[arg(long, value_name = "MS")]
    pub reset_delay_ms: Option<u64>,
    /// How long a device may take after a reset before it answers SMP, in seconds [default: 60].
    #[arg(long, value_name = "S")]
    pub boot_timeout_s: Option<u64>,
}

impl DeviceLinkArgs {
    /// As the runner takes them; unset options leave the scenario's or the default value.
    pub fn options(&self) -> DeviceLinkOptions {
        DeviceLinkOptions {
            serial_lines: self.serial_lines,
            serial_lines_source: self
                .serial_lines
                .map(|l| format!("--serial-lines {l}"))
                .unwrap_or_default(),
            // Beyond any real device, and far from overflowing an Instant.
            reset_delay: self
                .reset_delay_ms
                .map(|ms| Duration::from_millis(ms.min(3_600_000))),
            boot_timeout: self
                .boot_timeout_s
                .map(|s| Duration::from_secs(s.min(86_400))),
        }
    }
}
