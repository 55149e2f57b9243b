//! Pure MCUboot formats: image header and TLVs, signing and verification, image trailers,
//! the swap-type decision and flash layouts. No I/O beyond reading files the caller names.

pub mod derive;
pub mod fit;
pub mod image;
pub mod inspect;
pub mod keys;
pub mod layout;
pub mod sign;
pub mod swap;
pub mod trailer;
