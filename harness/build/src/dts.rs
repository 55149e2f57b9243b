//! Plain Zephyr builds without Partition Manager: the flash partitions from the devicetree the
//! build produced (`build/zephyr/zephyr.dts`, or `build/<app>/zephyr/zephyr.dts` with sysbuild).
//!
//! `zephyr.dts` is the fully merged devicetree `scripts/dts/gen_defines.py` writes out (board,
//! SoC `.dtsi`, overlays), so it is the truth the image was built with:
//!
//! - the SoC flash is the `compatible = "soc-nv-flash"` node under the flash controller, with
//!   `reg = <base size>`, `erase-block-size` and `write-block-size`
//!   (`dts/bindings/mtd/soc-nv-flash.yaml`);
//! - partitions are the children of a `compatible = "fixed-partitions"` node inside a flash
//!   node (`dts/bindings/mtd/fixed-partitions.yaml`): `reg = <offset size>` relative to that
//!   flash, named by node label (`boot_partition`, `slot0_partition`, `slot1_partition`,
//!   `slot2_partition`/`slot3_partition` for image 1, `scratch_partition`, `storage_partition`)
//!   or, in older trees, `label = "mcuboot"`, `"image-0"`, `"image-1"`, `"image-scratch"`;
//! - an external NOR is a `nordic,qspi-nor` or `jedec,spi-nor` node whose `size` is in *bits*
//!   (`dts/bindings/mtd/jedec,spi-nor-common.yaml`); Zephyr's drivers erase it in 4 KiB sectors
//!   and write it in 4-byte (`drivers/flash/nrf_qspi_nor.c`) or 1-byte
//!   (`drivers/flash/spi_nor.c`) units.
//!
//! MCUboot finds its slots by these labels (`FIXED_PARTITION_ID(slot0_partition)` in
//! `boot/zephyr/include/sysflash/sysflash.h`), so they become the harness's `mcuboot`, `slot0`,
//! `slot1`, `mcuboot_primary_1`, `mcuboot_secondary_1`, `scratch`; other partitions keep their
//! node label.

use crate::pm::PmError;
use dfu_hil_mcuboot::layout::{DeviceKind, FlashDevice, ImagePair, Layout, Partition};
use std::path::Path;

/// One devicetree node: labels, name (`partition@c000`), properties and children, with lines.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub labels: Vec<String>,
    pub name: String,
    pub line: u32,
    pub props: Vec<Prop>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone)]
pub struct Prop {
    pub name: String,
    pub line: u32,
    /// The raw value text (`< 0x0 0xc000 >`, `"mcuboot"`), empty for a boolean property.
    pub value: String,
}

impl Node {
    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.props.iter().find(|p| p.name == name)
    }

    /// The strings of a string(-list) property (`compatible = "a", "b";`).
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.prop(name)
            .map(|p| {
                p.value
                    .split('"')
                    .enumerate()
                    .filter(|(i, _)| i % 2 == 1)
                    .map(|(_, s)| s.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn compatible(&self, c: &str) -> bool {
        self.strings("compatible").iter().any(|s| s == c)
    }

    /// The cells of a `< … >` property as numbers.
    pub fn cells(&self, name: &str, file: &Path) -> Result<Option<Vec<u64>>, PmError> {
        let Some(p) = self.prop(name) else {
            return Ok(None);
        };
        let inner: String = p.value.chars().filter(|c| *c != '<' && *c != '>').collect();
        inner
            .split_whitespace()
            .map(|w| {
                let n = match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
                    Some(h) => u64::from_str_radix(h, 16),
                    None => w.parse(),
                };
                n.map_err(|_| PmError::Invalid {
                    at: format!("{}:{}", file.display(), p.line),
                    message: format!("node `{}`: `{name}` cell `{w}` is not a number", self.name),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn cell(&self, name: &str, file: &Path) -> Result<Option<u64>, PmError> {
        Ok(self.cells(name, file)?.and_then(|c| c.first().copied()))
    }

    /// Every node of this subtree, depth first.
    pub fn walk<'a>(&'a self, out: &mut Vec<&'a Node>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    file: &'a Path,
}

impl<'a> Lexer<'a> {
    fn line(&self) -> u32 {
        u32::try_from(self.text[..self.pos].matches('\n').count() + 1).unwrap_or(u32::MAX)
    }

    fn err(&self, message: String) -> PmError {
        PmError::Invalid {
            at: format!("{}:{}", self.file.display(), self.line()),
            message,
        }
    }

    /// Skip blanks, `//` and `/* */` comments and `#…` lines (`#include` never survives into
    /// zephyr.dts, but a hand-written test input may carry one).
    fn skip(&mut self) {
        loop {
            let rest = &self.text[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            let directive = ["#include", "#define", "#if", "#else", "#endif", "#undef"]
                .iter()
                .any(|d| trimmed.starts_with(d));
            if trimmed.starts_with("//") || directive {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if trimmed.starts_with("/*") {
                self.pos += trimmed.find("*/").map(|i| i + 2).unwrap_or(trimmed.len());
            } else {
                return;
            }
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip();
        self.text[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> Result<(), PmError> {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            let got: String = self.text[self.pos..].chars().take(20).collect();
            Err(self.err(format!("expected `{c}`, found `{got}`")))
        }
    }

    /// A name, label or property name: anything up to a delimiter.
    fn word(&mut self) -> Result<String, PmError> {
        self.skip();
        let rest = &self.text[self.pos..];
        let n = rest
            .find(|c: char| c.is_whitespace() || "{};=:".contains(c))
            .unwrap_or(rest.len());
        if n == 0 {
            let got: String = rest.chars().take(20).collect();
            return Err(self.err(format!("expected a name, found `{got}`")));
        }
        self.pos += n;
        Ok(rest[..n].to_string())
    }

    /// A property value up to its `;`, keeping strings intact.
    fn value(&mut self) -> Result<String, PmError> {
        self.skip();
        let start = self.pos;
        let mut in_str = false;
        for (i, c) in self.text[start..].char_indices() {
            match c {
                '"' => in_str = !in_str,
                ';' if !in_str => {
                    self.pos = start + i;
                    return Ok(self.text[start..start + i].trim().to_string());
                }
                _ => {}
            }
        }
        Err(self.err("property value without `;`".into()))
    }

    /// The body of a node after its `{`, up to and including `};`.
    fn body(&mut self, node: &mut Node, depth: u32) -> Result<(), PmError> {
        if depth > 64 {
            return Err(self.err("nodes nested more than 64 deep".into()));
        }
        loop {
            match self.peek() {
                None => return Err(self.err(format!("node `{}` is not closed", node.name))),
                Some('}') => {
                    self.eat('}')?;
                    self.eat(';')?;
                    return Ok(());
                }
                Some(_) => {}
            }
            let line = self.line();
            let mut labels = Vec::new();
            let mut name = self.word()?;
            while self.peek() == Some(':') {
                self.eat(':')?;
                labels.push(name);
                name = self.word()?;
            }
            match self.peek() {
                Some('{') => {
                    self.eat('{')?;
                    let mut child = Node {
                        labels,
                        name,
                        line,
                        ..Node::default()
                    };
                    self.body(&mut child, depth + 1)?;
                    node.children.push(child);
                }
                Some('=') => {
                    self.eat('=')?;
                    let value = self.value()?;
                    self.eat(';')?;
                    node.props.push(Prop { name, line, value });
                }
                Some(';') => {
                    self.eat(';')?;
                    node.props.push(Prop {
                        name,
                        line,
                        value: String::new(),
                    });
                }
                _ => return Err(self.err(format!("expected `{{`, `=` or `;` after `{name}`"))),
            }
        }
    }
}

/// Parse a devicetree source into its root node (`/dts-v1/;` and `/ { … };`; several root
/// blocks merge, as in dtc).
pub fn parse(text: &str, file: &Path) -> Result<Node, PmError> {
    let mut lx = Lexer { text, pos: 0, file };
    let mut root = Node {
        name: "/".into(),
        line: 1,
        ..Node::default()
    };
    while lx.peek().is_some() {
        let w = lx.word()?;
        match w.as_str() {
            "/dts-v1/" | "/plugin/" => lx.eat(';')?,
            "/" => {
                lx.eat('{')?;
                lx.body(&mut root, 0)?;
            }
            "/memreserve/" => {
                lx.value()?;
                lx.eat(';')?;
            }
            other => return Err(lx.err(format!("unexpected `{other}` at the top level"))),
        }
    }
    Ok(root)
}

/// The harness name of a partition node: MCUboot's labels map to the harness's slot names.
fn partition_name(n: &Node) -> String {
    let label = n.strings("label").into_iter().next();
    let by_label = |l: &str| {
        Some(match l {
            "boot_partition" | "mcuboot" => "mcuboot",
            "slot0_partition" | "image-0" => "slot0",
            "slot1_partition" | "image-1" => "slot1",
            "slot2_partition" | "image-2" => "mcuboot_primary_1",
            "slot3_partition" | "image-3" => "mcuboot_secondary_1",
            "scratch_partition" | "image-scratch" => "scratch",
            "storage_partition" | "storage" => "storage",
            _ => return None,
        })
    };
    n.labels
        .iter()
        .find_map(|l| by_label(l))
        .or_else(|| label.as_deref().and_then(by_label))
        .map(str::to_string)
        .or_else(|| {
            n.labels
                .first()
                .map(|l| l.trim_end_matches("_partition").to_string())
        })
        .or(label)
        .unwrap_or_else(|| n.name.clone())
}

/// The layout of a `zephyr.dts` text; `file` names it in errors.
pub fn layout_from_dts_text(text: &str, file: &Path) -> Result<Layout, PmError> {
    let root = parse(text, file)?;
    let mut all = Vec::new();
    root.walk(&mut all);
    let at = |n: &Node| format!("{}:{}", file.display(), n.line);
    let mut flash = Vec::new();
    let mut partitions = Vec::new();
    let mut external_seen = false;
    for n in &all {
        let internal = n.compatible("soc-nv-flash");
        let qspi = n.compatible("nordic,qspi-nor");
        let spi = n.compatible("jedec,spi-nor");
        if !(internal || qspi || spi) {
            continue;
        }
        let Some(parts) = n.children.iter().find(|c| c.compatible("fixed-partitions")) else {
            continue; // a flash with no partitions: nothing the harness can address on it
        };
        let (name, kind, base, size, sector, write) = if internal {
            let reg = n.cells("reg", file)?.unwrap_or_default();
            let (base, size) = match reg.as_slice() {
                [b, s, ..] => (*b, *s),
                _ => {
                    return Err(PmError::Invalid {
                        at: at(n),
                        message: format!("flash node `{}` has no `reg = <base size>`", n.name),
                    })
                }
            };
            let erase = n.cell("erase-block-size", file)?.unwrap_or(0x1000);
            let write = n.cell("write-block-size", file)?.unwrap_or(1);
            ("internal", DeviceKind::Internal, base, size, erase, write)
        } else {
            if external_seen {
                return Err(PmError::Invalid {
                    at: at(n),
                    message: "a second external flash with partitions: the harness models one"
                        .into(),
                });
            }
            external_seen = true;
            let Some(bits) = n.cell("size", file)? else {
                return Err(PmError::Invalid {
                    at: at(n),
                    message: format!("NOR node `{}` has no `size` (in bits)", n.name),
                });
            };
            let write = if qspi { 4 } else { 1 };
            ("external", DeviceKind::External, 0, bits / 8, 0x1000, write)
        };
        let fits = |v: u64| u32::try_from(v).ok();
        let (Some(base), Some(size), Some(sector), Some(write)) =
            (fits(base), fits(size), fits(sector), fits(write))
        else {
            return Err(PmError::Invalid {
                at: at(n),
                message: format!("flash node `{}` does not fit 32 bits", n.name),
            });
        };
        flash.push(FlashDevice {
            name: name.into(),
            kind,
            base,
            size,
            sector_size: sector,
            write_size: write,
            erased: 0xff,
        });
        for p in &parts.children {
            let reg = p.cells("reg", file)?.unwrap_or_default();
            let [off, len, ..] = reg.as_slice() else {
                return Err(PmError::Invalid {
                    at: at(p),
                    message: format!("partition `{}` has no `reg = <offset size>`", p.name),
                });
            };
            let (Some(offset), Some(len)) = (fits(*off), fits(*len)) else {
                return Err(PmError::Invalid {
                    at: at(p),
                    message: format!("partition `{}`: reg does not fit 32 bits", p.name),
                });
            };
            partitions.push((
                p.line,
                Partition {
                    name: partition_name(p),
                    device: name.into(),
                    offset,
                    size: len,
                    // DT_FIXED_PARTITION_ID is a devicetree ordinal this reader does not
                    // compute.
                    id: None,
                },
            ));
        }
    }
    if partitions.is_empty() {
        return Err(PmError::Invalid {
            at: file.display().to_string(),
            message: "no `fixed-partitions` node inside a flash node: the build has no flash \
                      partitions (or uses Partition Manager: read partitions.yml)"
                .into(),
        });
    }
    let has = |n: &str| partitions.iter().any(|(_, p)| p.name == n);
    let mut images = Vec::new();
    for (a, b) in [
        ("slot0", "slot1"),
        ("mcuboot_primary_1", "mcuboot_secondary_1"),
    ] {
        if has(a) && has(b) {
            images.push(ImagePair {
                primary: a.into(),
                secondary: b.into(),
            });
        }
    }
    let layout = Layout {
        name: file
            .parent()
            .and_then(|p| p.parent())
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "zephyr-dts".into()),
        description: format!("devicetree partitions of {}", file.display()),
        flash,
        partitions: partitions.iter().map(|(_, p)| p.clone()).collect(),
        images,
    };
    if let Err(e) = layout.check(file) {
        // Point at the partition's node when the check names one.
        let line = match &e {
            dfu_hil_mcuboot::layout::LayoutError::Invalid { partition, .. } => partitions
                .iter()
                .find(|(_, p)| &p.name == partition)
                .map(|(l, _)| *l),
            _ => None,
        };
        return Err(PmError::Invalid {
            at: match line {
                Some(l) => format!("{}:{l}", file.display()),
                None => file.display().to_string(),
            },
            message: format!("devicetree partitions are not a valid layout: {e}"),
        });
    }
    Ok(layout)
}

/// The layout described by a build's `zephyr.dts`.
pub fn layout_from_dts(dts: &Path) -> Result<Layout, crate::pm::PmError> {
    let text = std::fs::read_to_string(dts).map_err(|source| PmError::Io {
        path: dts.to_owned(),
        source,
    })?;
    layout_from_dts_text(&text, dts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the `build/zephyr/zephyr.dts` of `west build -b nrf52840dk/nrf52840
    /// --sysbuild` (Zephyr 3.7/4.x): the flash controller with its `soc-nv-flash` child and the
    /// board's fixed partitions, the MX25R64 on QSPI with partitions of its own (an overlay
    /// moving slot1 there), cells as gen_defines writes them.
    const NRF52840DK: &str = r#"/dts-v1/;

/ {
	#address-cells = < 0x1 >;
	#size-cells = < 0x1 >;
	model = "Nordic nRF52840 DK NRF52840";
	compatible = "nordic,nrf52840-dk-nrf52840";
	chosen {
		zephyr,flash-controller = &flash_controller;
		zephyr,flash = &flash0;
		zephyr,code-partition = &slot0_partition;
	};
	soc {
		#address-cells = < 0x1 >;
		#size-cells = < 0x1 >;
		compatible = "nordic,nrf52840-qiaa", "nordic,nrf52840", "nordic,nrf52", "simple-bus";
		flash_controller: flash-controller@4001e000 {
			compatible = "nordic,nrf52-flash-controller";
			reg = < 0x4001e000 0x1000 >;
			partial-erase;
			#address-cells = < 0x1 >;
			#size-cells = < 0x1 >;
			flash0: flash@0 {
				compatible = "soc-nv-flash";
				erase-block-size = < 0x1000 >;
				write-block-size = < 0x4 >;
				reg = < 0x0 0x100000 >;
				partitions {
					compatible = "fixed-partitions";
					#address-cells = < 0x1 >;
					#size-cells = < 0x1 >;
					boot_partition: partition@0 {
						label = "mcuboot";
						reg = < 0x0 0xc000 >;
					};
					slot0_partition: partition@c000 {
						label = "image-0";
						reg = < 0xc000 0xe8000 >;
					};
					storage_partition: partition@f8000 {
						label = "storage";
						reg = < 0xf8000 0x8000 >;
					};
				};
			};
		};
		qspi: qspi@40029000 {
			compatible = "nordic,nrf-qspi";
			#address-cells = < 0x1 >;
			#size-cells = < 0x0 >;
			reg = < 0x40029000 0x1000 >, < 0x12000000 0x8000000 >;
			reg-names = "qspi", "qspi_mm";
			status = "okay";
			mx25r64: mx25r6435f@0 {
				compatible = "nordic,qspi-nor";
				reg = < 0x0 >;
				writeoc = "pp4io";
				readoc = "read4io";
				sck-frequency = < 0x7a1200 >;
				jedec-id = [ C2 28 17 ];
				sfdp-bfp = [ E5 20 F1 FF FF FF FF 03 44 EB 08 6B 08 3B 04 BB EE FF FF FF FF FF 00 FF FF FF 00 FF 0C 20 0F 52 10 D8 00 FF 23 72 F5 00 82 ED 04 CC 44 83 68 44 30 B0 30 B0 F7 C4 D5 5C 00 BE 29 FF F0 D0 FF FF ];
				size = < 0x4000000 >;
				has-dpd;
				t-enter-dpd = < 0x2710 >;
				t-exit-dpd = < 0x88b8 >;
				partitions {
					compatible = "fixed-partitions";
					#address-cells = < 0x1 >;
					#size-cells = < 0x1 >;
					slot1_partition: partition@0 {
						label = "image-1";
						reg = < 0x0 0xe8000 >;
					};
				};
			};
		};
	};
};
"#;

    #[test]
    fn nrf52840dk_with_slot1_on_qspi() {
        let l = layout_from_dts_text(NRF52840DK, Path::new("build/zephyr/zephyr.dts")).unwrap();
        let int = l.device("internal").unwrap();
        assert_eq!(
            (int.size, int.sector_size, int.write_size),
            (0x10_0000, 0x1000, 4)
        );
        let ext = l.device("external").unwrap();
        // `size` is in bits: 64 Mbit = 8 MiB.
        assert_eq!(
            (ext.size, ext.kind, ext.write_size),
            (0x80_0000, DeviceKind::External, 4)
        );
        assert_eq!(
            l.partition_names(),
            vec!["mcuboot", "slot0", "storage", "slot1"]
        );
        assert_eq!(l.device_of(l.partition("slot1").unwrap()).name, "external");
        assert_eq!(l.images.len(), 1);
        assert_eq!(l.name, "build");
    }

    #[test]
    fn node_labels_without_label_properties_and_scratch() {
        // Zephyr 4.x boards drop `label = "…"` from partitions: the node labels name them.
        let t = NRF52840DK
            .replace("\t\t\t\t\t\tlabel = \"mcuboot\";\n", "")
            .replace("\t\t\t\t\t\tlabel = \"image-0\";\n", "")
            .replace(
                "storage_partition: partition@f8000 {\n\t\t\t\t\t\tlabel = \"storage\";\n\t\t\t\t\t\treg = < 0xf8000 0x8000 >;",
                "scratch_partition: partition@f8000 {\n\t\t\t\t\t\treg = < 0xf8000 0x8000 >;",
            );
        let l = layout_from_dts_text(&t, Path::new("zephyr.dts")).unwrap();
        assert_eq!(
            l.partition_names(),
            vec!["mcuboot", "slot0", "scratch", "slot1"]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = NRF52840DK.replace("reg = < 0xc000 0xe8000 >;", "reg = < 0xc000 zz >;");
        let e = layout_from_dts_text(&bad, Path::new("zephyr.dts"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("zephyr.dts:38:") && e.contains("zz"), "{e}");
        let unaligned =
            NRF52840DK.replace("reg = < 0xc000 0xe8000 >;", "reg = < 0xc000 0xe8100 >;");
        let e = layout_from_dts_text(&unaligned, Path::new("zephyr.dts"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("zephyr.dts:36:") && e.contains("slot0"),
            "{e}"
        );
        let e = layout_from_dts_text("/dts-v1/;\n/ {\n\tmodel = \"x\";\n", Path::new("z.dts"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("z.dts:") && e.contains("not closed"), "{e}");
        let e = layout_from_dts_text("/dts-v1/;\n/ { };\n", Path::new("z.dts"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("fixed-partitions"), "{e}");
    }
}
