//! Pure MCUboot formats: image header and TLVs, signing and verification, image trailers,
//! the swap-type decision and flash layouts. No I/O beyond reading files the caller names.

pub mod image;
pub mod keys;
pub mod sign;
pub mod trailer;
pub mod swap;
pub mod layout;
pub mod inspect;
pub mod derive;
pub mod pm;
