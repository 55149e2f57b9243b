//! SMP over BLE through btleplug (BlueZ over D-Bus on Linux): a thin [`GattLink`] adapter.
//! Fragmentation and reassembly are `dfu_hil_smp::BleTransport`'s job; this file only finds
//! the device, connects, subscribes and moves bytes.
//!
//! btleplug is async; the harness is not. The adapter owns a small multi-threaded tokio
//! runtime: BlueZ's D-Bus connection is served by tasks that must keep running between our
//! calls (a current-thread runtime would only poll them inside `block_on`), and a task
//! forwards notifications into a std channel that [`GattLink::next_notification`] waits on.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use btleplug::api::{
    Central, CharPropFlags, Characteristic, Manager as _, Peripheral as _, ScanFilter, WriteType,
};
use btleplug::platform::{Manager, Peripheral};
use dfu_hil_smp::ble::{BleTransport, GattLink, SMP_CHARACTERISTIC_UUID, SMP_SERVICE_UUID};
use dfu_hil_smp::SmpError;
use futures::StreamExt;
use uuid::Uuid;

/// A connected SMP characteristic.
pub struct BtleplugGatt {
    rt: tokio::runtime::Runtime,
    peripheral: Peripheral,
    characteristic: Characteristic,
    notes: mpsc::Receiver<Vec<u8>>,
    mtu: usize,
    name: String,
}

fn ble_err(what: &str, e: impl std::fmt::Display) -> SmpError {
    SmpError::Transport(format!("BLE {what}: {e}"))
}

impl BtleplugGatt {
    /// Scan for up to `scan_timeout` for a device whose advertised name or address
    /// (`AA:BB:CC:DD:EE:FF`, any case) equals `target`, connect, find the SMP characteristic
    /// and subscribe to its notifications.
    pub fn connect(target: &str, scan_timeout: Duration) -> Result<Self, SmpError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| ble_err("runtime", e))?;
        let service = Uuid::parse_str(SMP_SERVICE_UUID).expect("constant UUID");
        let char_uuid = Uuid::parse_str(SMP_CHARACTERISTIC_UUID).expect("constant UUID");
        let (peripheral, name) = rt.block_on(async {
            let manager = Manager::new()
                .await
                .map_err(|e| ble_err("manager (is bluetoothd running?)", e))?;
            let adapter = manager
                .adapters()
                .await
                .map_err(|e| ble_err("adapters", e))?
                .into_iter()
                .next()
                .ok_or_else(|| SmpError::Transport("no Bluetooth adapter".into()))?;
            // No service filter: not every firmware advertises the SMP service UUID.
            adapter
                .start_scan(ScanFilter::default())
                .await
                .map_err(|e| ble_err("scan", e))?;
            let deadline = Instant::now() + scan_timeout;
            let found = 'scan: loop {
                for p in adapter.peripherals().await.unwrap_or_default() {
                    let Ok(Some(props)) = p.properties().await else {
                        continue;
                    };
                    let addr = props.address.to_string();
                    let name = props.local_name.unwrap_or_default();
                    if name == target || addr.eq_ignore_ascii_case(target) {
                        let label = if name.is_empty() { addr } else { name };
                        break 'scan Some((p, label));
                    }
                }
                if Instant::now() >= deadline {
                    break None;
                }
                // Blocks only this thread; the runtime's worker keeps serving D-Bus.
                std::thread::sleep(Duration::from_millis(250));
            };
            let _ = adapter.stop_scan().await;
            found.ok_or_else(|| {
                SmpError::Transport(format!(
                    "no BLE device named or addressed `{target}` seen within {:.0?}",
                    scan_timeout
                ))
            })
        })?;
        let (characteristic, notes, mtu) = rt.block_on(async {
            peripheral
                .connect()
                .await
                .map_err(|e| ble_err("connect", e))?;
            peripheral
                .discover_services()
                .await
                .map_err(|e| ble_err("service discovery", e))?;
            let c = peripheral
                .characteristics()
                .into_iter()
                .find(|c| c.uuid == char_uuid && c.service_uuid == service)
                .ok_or_else(|| {
                    SmpError::Transport(format!(
                        "`{name}` has no SMP characteristic {SMP_CHARACTERISTIC_UUID} \
                         (mcumgr BLE transport not enabled?)"
                    ))
                })?;
            if !c.properties.contains(CharPropFlags::WRITE_WITHOUT_RESPONSE) {
                return Err(SmpError::Transport(
                    "SMP characteristic lacks write-without-response".into(),
                ));
            }
            peripheral
                .subscribe(&c)
                .await
                .map_err(|e| ble_err("subscribe (pairing/authentication required?)", e))?;
            let mut stream = peripheral
                .notifications()
                .await
                .map_err(|e| ble_err("notifications", e))?;
            let (tx, rx) = mpsc::channel();
            tokio::spawn(async move {
                while let Some(n) = stream.next().await {
                    if n.uuid == char_uuid && tx.send(n.value).is_err() {
                        break;
                    }
                }
            });
            Ok::<_, SmpError>((c, rx, peripheral.mtu() as usize))
        })?;
        Ok(BtleplugGatt {
            rt,
            peripheral,
            characteristic,
            notes,
            mtu,
            name,
        })
    }

    /// Advertised name (or address when it has none).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl GattLink for BtleplugGatt {
    fn write_without_response(&mut self, data: &[u8]) -> Result<(), SmpError> {
        self.rt
            .block_on(
                self.peripheral
                    .write(&self.characteristic, data, WriteType::WithoutResponse),
            )
            .map_err(|e| ble_err("write", e))
    }

    fn next_notification(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, SmpError> {
        match self.notes.recv_timeout(timeout) {
            Ok(v) => Ok(Some(v)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(SmpError::Transport(format!(
                "BLE notifications from `{}` stopped (disconnected?)",
                self.name
            ))),
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }
}

impl Drop for BtleplugGatt {
    fn drop(&mut self) {
        let _ = self.rt.block_on(self.peripheral.disconnect());
    }
}

/// Connect to `target` (name or address) and wrap it in SMP's BLE framing.
pub fn open(target: &str, scan_timeout: Duration) -> Result<BleTransport<BtleplugGatt>, SmpError> {
    Ok(BleTransport::new(BtleplugGatt::connect(
        target,
        scan_timeout,
    )?))
}
