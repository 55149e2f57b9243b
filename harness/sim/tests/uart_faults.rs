//! UART fault switches of the simulated board (docs/protocol-facts.md, "Logs on the SMP UART";
//! docs/device-model.md, "Serial receive lines"): Zephyr log lines between or inside SMP frames,
//! and a smaller receive line buffer.

mod common;

use common::*;
use dfu_hil_sim::{SimBoard, UartFaults};
use dfu_hil_smp::serial::{encode_client, LineDecoder, SerialEvent};
use dfu_hil_smp::{group, map, os_cmd, Op, Packet, Value, Version};

fn echo_packet(text: &str, seq: u8) -> Vec<u8> {
    Packet::request(
        Version::V2,
        Op::Write,
        group::OS,
        os_cmd::ECHO,
        seq,
        map([("d", Value::Text(text.into()))]),
    )
    .encode()
}

/// Send `n` echoes over the UART; returns everything the device transmitted.
fn echoes(b: &mut SimBoard, n: u8, text: &str) -> Vec<u8> {
    // Give the app's SMP transport the moment it needs to register after a boot.
    b.idle(std::time::Duration::from_millis(50));
    b.uart_read();
    let mut wire = Vec::new();
    for i in 0..n {
        b.uart_write(&encode_client(&echo_packet(text, i)));
        wire.extend(b.uart_read());
    }
    wire
}

fn decode(wire: &[u8]) -> (usize, usize, String) {
    let ev = LineDecoder::new().push(wire);
    let packets = ev
        .iter()
        .filter(|e| matches!(e, SerialEvent::Packet(_)))
        .count();
    let corrupt = ev
        .iter()
        .filter(|e| matches!(e, SerialEvent::Corrupt(_)))
        .count();
    let noise: Vec<u8> = ev
        .iter()
        .filter_map(|e| match e {
            SerialEvent::Noise(n) => Some(n.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    (
        packets,
        corrupt,
        String::from_utf8_lossy(&noise).into_owned(),
    )
}

#[test]
fn faults_are_off_by_default_and_serde_kebab() {
    let mut b = factory_board("1.0.0");
    assert!(b.uart_faults().is_none());
    let (p, c, noise) = decode(&echoes(&mut b, 20, "x"));
    assert_eq!((p, c), (20, 0));
    assert!(noise.is_empty(), "{noise}");

    let f: UartFaults = serde_json::from_str(
        r#"{"log-noise": 0.5, "log-in-frame": 0.1, "seed": 9, "rx-line-max": 64}"#,
    )
    .unwrap();
    assert_eq!(f.rx_line_max, Some(64));
    assert_eq!(f.log_in_frame, 0.1);
    let back = serde_json::to_string(&f).unwrap();
    assert!(back.contains("\"rx-line-max\":64"), "{back}");
    assert!(serde_json::from_str::<UartFaults>(r#"{"noise": 1}"#).is_err());
    assert_eq!(
        serde_json::from_str::<UartFaults>("{}").unwrap(),
        UartFaults::default()
    );
}

#[test]
fn log_noise_lands_between_frames_deterministically() {
    let faults = UartFaults {
        log_noise: 0.5,
        seed: 42,
        ..UartFaults::default()
    };
    let mut a = factory_board("1.0.0");
    a.set_uart_faults(faults.clone());
    let wa = echoes(&mut a, 40, "between");
    let mut b = factory_board("1.0.0");
    b.set_uart_faults(faults);
    assert_eq!(echoes(&mut b, 40, "between"), wa, "same seed, same bytes");

    let (p, c, noise) = decode(&wa);
    assert_eq!((p, c), (40, 0), "a tolerant client loses nothing");
    let lines = noise.lines().count();
    assert!((5..35).contains(&lines), "about half the frames: {lines}");
    // Zephyr's UART log backend format: [hh:mm:ss.mmm,uuu] <lvl> module: text
    let first = noise.lines().next().unwrap();
    assert!(first.starts_with("[00:00:"), "{first}");
    assert!(first.contains("] <"), "{first}");
    // The device log records them too.
    assert!(a.log().iter().any(|l| l.contains("] <")));
}

#[test]
fn log_inside_a_frame_corrupts_it() {
    let mut b = factory_board("1.0.0");
    b.set_uart_faults(UartFaults {
        log_in_frame: 1.0,
        ..UartFaults::default()
    });
    let (p, c, _) = decode(&echoes(&mut b, 10, "inside"));
    assert_eq!(p, 0, "every response broken");
    assert!(c >= 10, "the host decoder reports each one: {c}");

    // Switched off again: clean.
    b.set_uart_faults(UartFaults::default());
    let (p, c, _) = decode(&echoes(&mut b, 5, "inside"));
    assert_eq!((p, c), (5, 0));
}

#[test]
fn rx_line_max_drops_long_lines() {
    let mut b = factory_board("1.0.0");
    b.set_uart_faults(UartFaults {
        rx_line_max: Some(64),
        ..UartFaults::default()
    });
    // A short request fits one 64-byte line and is answered.
    let (p, _, _) = decode(&echoes(&mut b, 1, "hi"));
    assert_eq!(p, 1);
    // A long one is sent in 127-byte lines: dropped whole, silently (the host times out).
    let (p, _, _) = decode(&echoes(&mut b, 1, &"x".repeat(200)));
    assert_eq!(p, 0);
    assert!(b.uart_rx_drops().long_lines >= 1);
    // The setting survives a reboot (it is the device's build configuration).
    b.reset();
    let (p, _, _) = decode(&echoes(&mut b, 1, &"x".repeat(200)));
    assert_eq!(p, 0);
    // Zephyr's default of 128 takes its lines, but not three of them: a 200-byte echo needs 3
    // lines and the default UART has 2 line buffers, so it is dropped too.
    b.set_uart_faults(UartFaults::default());
    let (p, _, _) = decode(&echoes(&mut b, 1, &"x".repeat(200)));
    assert_eq!(p, 0);
    assert!(b.uart_rx_drops().no_buffer >= 1);
    // Two lines' worth is answered.
    let (p, _, _) = decode(&echoes(&mut b, 1, &"x".repeat(150)));
    assert_eq!(p, 1);
}
