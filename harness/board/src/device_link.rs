//! What a lab knows about the SMP link of the firmware on a board — its serial receive lines,
//! its `os reset` delay, how long it takes to boot — where that differs from Zephyr's defaults.
//! A board profile (`boards/*.yaml`) and an inventory entry may each carry it as `device-link:`;
//! the runner uses it where neither the command line nor the scenario says otherwise
//! (docs/device-model.md).

use serde::Deserialize;

/// `device-link:` in a board profile or an inventory entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceLinkFacts {
    /// `COUNTxSIZE` (the app's `CONFIG_UART_MCUMGR_RX_BUF_COUNT` × `_SIZE`) or `auto`.
    #[serde(default)]
    pub serial_lines: Option<String>,
    /// The app's `CONFIG_MCUMGR_GRP_OS_RESET_MS`.
    #[serde(default)]
    pub reset_delay_ms: Option<u64>,
    /// Seconds from a reset until SMP answers, at most.
    #[serde(default)]
    pub boot_timeout_s: Option<u64>,
}

impl DeviceLinkFacts {
    /// Check the values (a bad `serial-lines` is named with what was wrong).
    pub fn check(&self) -> Result<(), String> {
        if let Some(l) = &self.serial_lines {
            l.parse::<dfu_hil_smp::LineSetting>()
                .map_err(|e| format!("device-link.serial-lines: {e}"))?;
        }
        Ok(())
    }

    /// These facts where `self` says nothing, `under`'s otherwise (an inventory entry over its
    /// profile).
    pub fn over(&self, under: &DeviceLinkFacts) -> DeviceLinkFacts {
        DeviceLinkFacts {
            serial_lines: self
                .serial_lines
                .clone()
                .or_else(|| under.serial_lines.clone()),
            reset_delay_ms: self.reset_delay_ms.or(under.reset_delay_ms),
            boot_timeout_s: self.boot_timeout_s.or(under.boot_timeout_s),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == DeviceLinkFacts::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_wins_over_profile_field_by_field() {
        let profile = DeviceLinkFacts {
            serial_lines: Some("4x128".into()),
            reset_delay_ms: Some(500),
            boot_timeout_s: None,
        };
        let entry = DeviceLinkFacts {
            reset_delay_ms: Some(100),
            ..DeviceLinkFacts::default()
        };
        let m = entry.over(&profile);
        assert_eq!(m.serial_lines.as_deref(), Some("4x128"));
        assert_eq!(m.reset_delay_ms, Some(100));
        assert_eq!(m.boot_timeout_s, None);
        assert!(DeviceLinkFacts {
            serial_lines: Some("4xfoo".into()),
            ..DeviceLinkFacts::default()
        }
        .check()
        .unwrap_err()
        .contains("device-link.serial-lines"));
    }
}
