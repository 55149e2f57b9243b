//! The device link settings for one scenario (serial receive lines, reset delay, boot
//! timeout), resolved from the command line, the scenario's `device:` block, the board's facts
//! and Zephyr's defaults, in that order.

use crate::scenario::LoadedScenario;
use dfu_hil_smp::{BootWait, LineSetting};
use std::time::Duration;

/// Device link facts set on the command line (or by the board's inventory entry); `None`
/// leaves the scenario's `device:` value or Zephyr's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceLinkOptions {
    pub serial_lines: Option<LineSetting>,
    /// Where `serial_lines` came from ("--serial-lines", "inventory dk-1", …).
    pub serial_lines_source: String,
    pub reset_delay: Option<Duration>,
    pub boot_timeout: Option<Duration>,
}

/// The device link settings in force for one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLink {
    pub lines: LineSetting,
    /// Where `lines` came from, for the evidence.
    pub lines_source: String,
    pub boot: BootWait,
}

impl DeviceLinkOptions {
    /// From a board's `device-link:` facts (inventory entry over profile); `source` names them
    /// for the evidence ("inventory dk-1").
    pub fn from_facts(
        facts: &dfu_hil_board::DeviceLinkFacts,
        source: &str,
    ) -> Result<Self, String> {
        let serial_lines = match &facts.serial_lines {
            Some(t) => Some(
                t.parse::<LineSetting>()
                    .map_err(|e| format!("{source}: device-link.serial-lines: {e}"))?,
            ),
            None => None,
        };
        Ok(DeviceLinkOptions {
            serial_lines,
            serial_lines_source: format!("{source} device-link.serial-lines"),
            reset_delay: facts
                .reset_delay_ms
                .map(|ms| Duration::from_millis(ms.min(3_600_000))),
            boot_timeout: facts
                .boot_timeout_s
                .map(|s| Duration::from_secs(s.min(86_400))),
        })
    }
}

/// Resolve the device link for a scenario: the command line's settings, then the scenario's
/// `device:` block, then the board's facts, then Zephyr's defaults.
pub fn device_link(
    s: &LoadedScenario,
    opts: &DeviceLinkOptions,
    board: &DeviceLinkOptions,
) -> Result<DeviceLink, String> {
    let spec = &s.scenario.device;
    let (lines, lines_source) = match (&opts.serial_lines, &spec.serial_lines) {
        (Some(l), _) => (*l, opts.serial_lines_source.clone()),
        (None, Some(text)) => (
            text.parse::<LineSetting>()
                .map_err(|e| format!("device.serial-lines: {e}"))?,
            format!("scenario device.serial-lines: {text}"),
        ),
        (None, None) if board.serial_lines.is_some() => (
            board.serial_lines.unwrap_or_default(),
            board.serial_lines_source.clone(),
        ),
        (None, None) => (
            LineSetting::default(),
            "Zephyr defaults CONFIG_UART_MCUMGR_RX_BUF_COUNT=2, CONFIG_UART_MCUMGR_RX_BUF_SIZE=128"
                .into(),
        ),
    };
    let mut boot = BootWait::default();
    if let Some(d) = opts
        .reset_delay
        .or(spec
            .reset_delay_ms
            .map(|ms| Duration::from_millis(ms.min(3_600_000))))
        .or(board.reset_delay)
    {
        boot.reset_delay = d;
    }
    if let Some(d) = opts
        .boot_timeout
        .or(spec
            .boot_timeout_s
            .map(|s| Duration::from_secs(s.min(86_400))))
        .or(board.boot_timeout)
    {
        boot.boot_timeout = d;
    }
    Ok(DeviceLink {
        lines,
        lines_source,
        boot,
    })
}

#[cfg(test)]
mod device_link_tests {
    use super::*;
    use dfu_hil_smp::LineLimits;

    fn scenario(device: &str) -> LoadedScenario {
        let text = format!("name: t\nlayout: nrf52840-internal\n{device}steps:\n  - reset: {{}}\n");
        crate::scenario::parse(&text, std::path::Path::new("t.yaml")).unwrap()
    }

    fn lines(n: usize) -> LineSetting {
        LineSetting::Known(LineLimits::new(128, n).unwrap())
    }

    #[test]
    fn command_line_then_scenario_then_board_then_zephyr_defaults() {
        let board = DeviceLinkOptions::from_facts(
            &dfu_hil_board::DeviceLinkFacts {
                serial_lines: Some("6x128".into()),
                reset_delay_ms: Some(900),
                boot_timeout_s: Some(5),
            },
            "board dk-1",
        )
        .unwrap();
        let cli = DeviceLinkOptions {
            serial_lines: Some(lines(8)),
            serial_lines_source: "--serial-lines 8x128".into(),
            ..DeviceLinkOptions::default()
        };
        let none = DeviceLinkOptions::default();
        let plain = scenario("");
        let own = scenario("device: { serial-lines: 4x128, reset-delay-ms: 100 }\n");

        let d = device_link(&plain, &none, &none).unwrap();
        assert_eq!(d.lines, LineSetting::default());
        assert!(
            d.lines_source.starts_with("Zephyr defaults"),
            "{}",
            d.lines_source
        );
        assert_eq!(d.boot, BootWait::default());

        let d = device_link(&plain, &none, &board).unwrap();
        assert_eq!(d.lines, lines(6));
        assert_eq!(d.lines_source, "board dk-1 device-link.serial-lines");
        assert_eq!(d.boot.reset_delay, Duration::from_millis(900));
        assert_eq!(d.boot.boot_timeout, Duration::from_secs(5));

        let d = device_link(&own, &none, &board).unwrap();
        assert_eq!(d.lines, lines(4));
        assert_eq!(d.boot.reset_delay, Duration::from_millis(100));
        assert_eq!(
            d.boot.boot_timeout,
            Duration::from_secs(5),
            "board fills the gap"
        );

        let d = device_link(&own, &cli, &board).unwrap();
        assert_eq!(d.lines, lines(8));
        assert_eq!(d.lines_source, "--serial-lines 8x128");

        let bad = scenario("device: { serial-lines: lots }\n");
        let e = device_link(&bad, &none, &none).unwrap_err();
        assert!(e.contains("device.serial-lines"), "{e}");
        // A huge value waits (clamped), it does not overflow.
        let huge = scenario("device: { reset-delay-ms: 18446744073709551615 }\n");
        let d = device_link(&huge, &none, &none).unwrap();
        assert_eq!(d.boot.reset_delay, Duration::from_secs(3600));
    }
}
