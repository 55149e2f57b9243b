//! How the simulated binaries carry their description: an 8-byte magic naming the kind, a
//! little-endian length, then JSON. The simulator finds it where the reset vector points, so a
//! binary linked at the wrong address is found to be garbage the way a real CPU would find it.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// `magic`, length, JSON of `value`.
pub(crate) fn encode<T: Serialize>(magic: &[u8; 8], value: &T) -> Vec<u8> {
    // The descriptors are plain structs of strings, numbers and lists: serialising them to JSON
    // cannot fail (serde_json only fails on non-string map keys or a failing Serialize impl).
    let json = serde_json::to_vec(value).expect("descriptor serialises");
    let mut out = Vec::with_capacity(12 + json.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

/// The descriptor at the start of `code` when it carries `magic`; `None` for anything else
/// (erased flash, another kind, a truncated or unreadable descriptor).
pub(crate) fn decode<T: DeserializeOwned>(code: &[u8], magic: &[u8; 8]) -> Option<T> {
    if code.len() < 12 || &code[..8] != magic {
        return None;
    }
    let len = u32::from_le_bytes(code[8..12].try_into().ok()?) as usize;
    let json = code.get(12..12usize.checked_add(len)?)?;
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_other_magic_or_truncation() {
        let bytes = encode(b"TESTMAG\x01", &vec![1u32, 2, 3]);
        assert_eq!(
            decode::<Vec<u32>>(&bytes, b"TESTMAG\x01"),
            Some(vec![1, 2, 3])
        );
        assert_eq!(decode::<Vec<u32>>(&bytes, b"OTHERMG\x01"), None);
        assert_eq!(
            decode::<Vec<u32>>(&bytes[..bytes.len() - 1], b"TESTMAG\x01"),
            None
        );
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode::<Vec<u32>>(&huge, b"TESTMAG\x01"), None);
    }
}
