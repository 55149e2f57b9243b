//! The remaining DFU-relevant commands (Zephyr's `os_mgmt.c` and `img_mgmt.c` handler tables;
//! `doc/services/device_mgmt/smp_groups/smp_group_0.rst`, `smp_group_1.rst`) and their typed
//! answers.
//!
//! Parsers accept what Zephyr sends today and keep working when a newer firmware adds keys:
//! unknown keys are ignored and missing optional keys take neutral defaults, because a test
//! harness must not fail on a device that is merely newer than the client.

use ciborium::value::Value;

use super::{unexpected, Client};
use crate::errors::SmpError;
use crate::header::{group, img_cmd, os_cmd, zephyr_cmd, Op};
use crate::packet::{map, map_array, map_bool, map_get, map_int, map_text, map_uint};
use crate::transport::Transport;

/// One thread from `taskstat` (stack figures are in 4-byte words, as Zephyr reports them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskStat {
    pub name: String,
    pub prio: i64,
    pub tid: u64,
    pub state: u64,
    pub stkuse: u64,
    pub stksiz: u64,
    pub cswcnt: u64,
    pub runtime: u64,
}

/// Parse a `taskstat` body: `{"tasks": {name: {prio, tid, state, stkuse, stksiz, …}}}`.
/// Missing figures are 0; entries that are not maps are skipped.
pub fn parse_taskstat(body: &Value) -> Result<Vec<TaskStat>, SmpError> {
    let Some(Value::Map(tasks)) = map_get(body, "tasks") else {
        return Err(unexpected("taskstat response without a `tasks` map", body));
    };
    Ok(tasks
        .iter()
        .filter_map(|(k, v)| {
            let name = match k {
                Value::Text(t) => t.clone(),
                other => crate::packet::render_value(other),
            };
            if !matches!(v, Value::Map(_)) {
                return None;
            }
            let u = |key: &str| map_uint(v, key).unwrap_or(0);
            Some(TaskStat {
                name,
                prio: map_int(v, "prio").unwrap_or(0),
                tid: u("tid"),
                state: u("state"),
                stkuse: u("stkuse"),
                stksiz: u("stksiz"),
                cswcnt: u("cswcnt"),
                runtime: u("runtime"),
            })
        })
        .collect())
}

/// Bootloader-info `{"query": "mode"}` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootloaderMode {
    /// −1 unknown, 0 single app, 1 swap using scratch, 2 overwrite-only, 3 swap without
    /// scratch, 4 DirectXIP, 5 DirectXIP with revert, 6 RAM load (Zephyr `smp_group_0.rst`,
    /// bootloader information).
    pub mode: i64,
    pub no_downgrade: bool,
}

impl BootloaderMode {
    /// Readable name of [`BootloaderMode::mode`].
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            -1 => "unknown",
            0 => "single application",
            1 => "swap using scratch",
            2 => "overwrite-only",
            3 => "swap without scratch",
            4 => "DirectXIP",
            5 => "DirectXIP with revert",
            6 => "RAM load",
            _ => "not defined",
        }
    }
}

/// One slot in a slot-info answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotInfo {
    pub slot: u32,
    pub size: u64,
    /// Present on the slot an upload to this image would go to.
    pub upload_image_id: Option<u32>,
}

/// One image in a slot-info answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSlots {
    pub image: u32,
    pub slots: Vec<SlotInfo>,
    pub max_image_size: Option<u64>,
}

/// Parse a slot-info body (Zephyr `img_mgmt.c`, `img_mgmt_slot_info`).
pub fn parse_slot_info(body: &Value) -> Result<Vec<ImageSlots>, SmpError> {
    let images = map_array(body, "images")
        .ok_or_else(|| unexpected("slot info without an `images` list", body))?;
    Ok(images
        .iter()
        .filter(|m| matches!(m, Value::Map(_)))
        .map(|m| ImageSlots {
            image: map_uint(m, "image").unwrap_or(0) as u32,
            slots: map_array(m, "slots")
                .unwrap_or(&[])
                .iter()
                .filter(|s| matches!(s, Value::Map(_)))
                .map(|s| SlotInfo {
                    slot: map_uint(s, "slot").unwrap_or(0) as u32,
                    size: map_uint(s, "size").unwrap_or(0),
                    upload_image_id: map_uint(s, "upload_image_id").map(|n| n as u32),
                })
                .collect(),
            max_image_size: map_uint(m, "max_image_size"),
        })
        .collect())
}

impl<T: Transport> Client<T> {
    /// OS/application info (`uname`-like). `format` selects fields, e.g. `"s"` kernel name,
    /// `"a"` everything; `None` lets the device choose (Zephyr: kernel name).
    pub fn os_info(&mut self, format: Option<&str>) -> Result<String, SmpError> {
        let body = match format {
            Some(f) => map([("format", Value::Text(f.to_string()))]),
            None => map([]),
        };
        let rsp = self.request(Op::Read, group::OS, os_cmd::INFO, body)?;
        map_text(&rsp, "output")
            .map(str::to_string)
            .ok_or_else(|| unexpected("os info response without `output`", &rsp))
    }

    /// Thread statistics.
    pub fn taskstat(&mut self) -> Result<Vec<TaskStat>, SmpError> {
        let rsp = self.request(Op::Read, group::OS, os_cmd::TASKSTAT, map([]))?;
        parse_taskstat(&rsp)
    }

    /// Name of the bootloader (`"MCUboot"` on Zephyr).
    pub fn bootloader_name(&mut self) -> Result<String, SmpError> {
        let rsp = self.bootloader_info(None)?;
        map_text(&rsp, "bootloader")
            .map(str::to_string)
            .ok_or_else(|| unexpected("bootloader info without `bootloader`", &rsp))
    }

    /// MCUboot's mode as the application reports it.
    pub fn bootloader_mode(&mut self) -> Result<BootloaderMode, SmpError> {
        let rsp = self.bootloader_info(Some("mode"))?;
        let mode = map_int(&rsp, "mode")
            .ok_or_else(|| unexpected("bootloader mode answer without `mode`", &rsp))?;
        Ok(BootloaderMode {
            mode,
            no_downgrade: map_bool(&rsp, "no-downgrade").unwrap_or(false),
        })
    }

    /// Slot info, parsed.
    pub fn image_slots(&mut self) -> Result<Vec<ImageSlots>, SmpError> {
        let rsp = self.slot_info()?;
        parse_slot_info(&rsp)
    }

    /// Image state write in its general form: `confirm` false = test (needs a hash), true =
    /// confirm (without a hash: the running image). The hash is omitted rather than sent as
    /// null, which Zephyr would reject with EINVAL (`img_mgmt_state.c`, `img_mgmt_state_write`).
    pub fn image_state_write(
        &mut self,
        hash: Option<&[u8]>,
        confirm: bool,
    ) -> Result<Vec<super::SlotState>, SmpError> {
        let mut entries = Vec::new();
        if let Some(h) = hash {
            entries.push(("hash", Value::Bytes(h.to_vec())));
        }
        entries.push(("confirm", Value::Bool(confirm)));
        let rsp = self.request(Op::Write, group::IMAGE, img_cmd::STATE, map(entries))?;
        super::parse_image_state(&rsp)
    }

    /// Zephyr basic group: erase the `storage` partition (settings, NVS). Slow like a slot
    /// erase, so it waits as long as an upload's first chunk.
    pub fn erase_storage(&mut self) -> Result<(), SmpError> {
        self.slow_request(
            Op::Write,
            group::ZEPHYR_BASIC,
            zephyr_cmd::ERASE_STORAGE,
            map([]),
        )?;
        Ok(())
    }

    /// The reset command with an arbitrary `force` value, for probing the device's decoder
    /// (Zephyr `os_mgmt.c`, `os_mgmt_reset`, decodes a bool and ignores a failed decode).
    pub fn reset_raw(&mut self, force: Option<Value>) -> Result<(), SmpError> {
        let body = match force {
            Some(v) => map([("force", v)]),
            None => map([]),
        };
        self.request(Op::Write, group::OS, os_cmd::RESET, body)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::uint;

    #[test]
    fn taskstat_tolerates_extras() {
        let body = map([
            (
                "tasks",
                map([
                    (
                        "idle",
                        map([
                            ("prio", Value::Integer(15.into())),
                            ("stkuse", uint(40)),
                            ("stksiz", uint(80)),
                            ("future", uint(1)),
                        ]),
                    ),
                    ("main", map([("prio", Value::Integer((-1).into()))])),
                    ("junk", uint(3)),
                ]),
            ),
            ("extra", uint(0)),
        ]);
        let t = parse_taskstat(&body).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name, "idle");
        assert_eq!((t[0].prio, t[0].stkuse, t[0].stksiz), (15, 40, 80));
        assert_eq!(t[1].prio, -1);
        assert!(parse_taskstat(&map([])).is_err());
    }

    #[test]
    fn slot_info_parses() {
        let body = map([(
            "images",
            Value::Array(vec![map([
                ("image", uint(0)),
                (
                    "slots",
                    Value::Array(vec![
                        map([("slot", uint(0)), ("size", uint(0x6_0000))]),
                        map([
                            ("slot", uint(1)),
                            ("size", uint(0x6_0000)),
                            ("upload_image_id", uint(0)),
                        ]),
                    ]),
                ),
                ("max_image_size", uint(0x5_f000)),
            ])]),
        )]);
        let s = parse_slot_info(&body).unwrap();
        assert_eq!(s[0].slots.len(), 2);
        assert_eq!(s[0].slots[1].upload_image_id, Some(0));
        assert_eq!(s[0].slots[0].upload_image_id, None);
        assert_eq!(s[0].max_image_size, Some(0x5_f000));
        let mode = BootloaderMode {
            mode: 3,
            no_downgrade: false,
        };
        assert_eq!(mode.mode_name(), "swap without scratch");
    }
}
