//! Signing and verification keys in the PEM forms imgtool reads and writes.
//!
//! imgtool writes private keys as unencrypted PKCS#8 ("PRIVATE KEY") and public keys as SPKI
//! ("PUBLIC KEY", `imgtool getpub --encoding pem`); older tooling and `openssl ecparam` give
//! SEC1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY", so those are accepted too. Every key type
//! `imgtool keygen` makes for signing is supported both ways (sign and verify): ECDSA P-256 and
//! P-384, Ed25519, RSA-2048 and RSA-3072 (PSS).

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::Verifier as _;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::pkcs8::der::pem::LineEnding;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::signature::SignatureEncoding;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use crate::image::{tlv, HashAlg};

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_RSA: &str = "1.2.840.113549.1.1.1";

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Wraps a parse error with the file it came from, so the user knows which key is bad.
    #[error("key file {}: {source}", path.display())]
    InFile {
        path: PathBuf,
        source: Box<KeyError>,
    },
    #[error("not a PEM document: {0}")]
    Pem(String),
    #[error("unsupported PEM label {label:?} (expected PRIVATE KEY, EC PRIVATE KEY, RSA PRIVATE KEY, PUBLIC KEY or RSA PUBLIC KEY)")]
    UnsupportedLabel { label: String },
    #[error(
        "unsupported key algorithm (OID {oid}); supported: ECDSA P-256/P-384, Ed25519, RSA-2048/3072"
    )]
    UnsupportedAlgorithm { oid: String },
    #[error("invalid {what} key: {reason}")]
    Invalid { what: &'static str, reason: String },
}

fn invalid(what: &'static str) -> impl FnOnce(String) -> KeyError {
    move |reason| KeyError::Invalid { what, reason }
}

fn decode_pem(pem: &str) -> Result<(String, Vec<u8>), KeyError> {
    let (label, der) = p256::pkcs8::der::pem::decode_vec(pem.trim().as_bytes())
        .map_err(|e| KeyError::Pem(e.to_string()))?;
    Ok((label.to_string(), der))
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn in_file(path: &Path) -> impl FnOnce(KeyError) -> KeyError + '_ {
    move |e| KeyError::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// A private key the harness can sign images with.
#[derive(Clone)]
pub enum SigningKey {
    EcdsaP256(p256::ecdsa::SigningKey),
    EcdsaP384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(rsa::RsaPrivateKey),
}

/// A public key images are verified against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    EcdsaP256(p256::ecdsa::VerifyingKey),
    EcdsaP384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rsa(rsa::RsaPublicKey),
}

impl fmt::Debug for SigningKey {
    /// Never prints key material; the key hash is enough to tell keys apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            SigningKey::EcdsaP256(_) => "EcdsaP256",
            SigningKey::EcdsaP384(_) => "EcdsaP384",
            SigningKey::Ed25519(_) => "Ed25519",
            SigningKey::Rsa(_) => "Rsa",
        };
        write!(
            f,
            "SigningKey::{kind}(key_hash={})",
            hex::encode(self.public().key_hash())
        )
    }
}

impl SigningKey {
    /// PKCS#8 "PRIVATE KEY" as imgtool writes; also SEC1 "EC PRIVATE KEY" and PKCS#1
    /// "RSA PRIVATE KEY".
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = decode_pem(pem)?;
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "EC PRIVATE KEY" => {
                if let Ok(sk) = p256::SecretKey::from_sec1_der(&der) {
                    return Ok(SigningKey::EcdsaP256(sk.into()));
                }
                p384::SecretKey::from_sec1_der(&der)
                    .map(|sk| SigningKey::EcdsaP384(sk.into()))
                    .map_err(|e| {
                        invalid("SEC1 EC (only P-256 and P-384 are supported)")(e.to_string())
                    })
            }
            "RSA PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs1_der(&der)
                .map(SigningKey::Rsa)
                .map_err(|e| invalid("PKCS#1 RSA")(e.to_string())),
            _ => Err(KeyError::UnsupportedLabel { label }),
        }
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = p256::pkcs8::PrivateKeyInfo::try_from(der)
            .map_err(|e| invalid("PKCS#8")(e.to_string()))?;
        match info.algorithm.oid.to_string().as_str() {
            OID_EC_PUBLIC_KEY => p256::ecdsa::SigningKey::from_pkcs8_der(der)
                .map(SigningKey::EcdsaP256)
                .or_else(|_| {
                    p384::ecdsa::SigningKey::from_pkcs8_der(der).map(SigningKey::EcdsaP384)
                })
                .map_err(|e| {
                    invalid("ECDSA (only the P-256 and P-384 curves are supported)")(e.to_string())
                }),
            OID_ED25519 => ed25519_dalek::SigningKey::from_pkcs8_der(der)
                .map(SigningKey::Ed25519)
                .map_err(|e| invalid("Ed25519")(e.to_string())),
            OID_RSA => rsa::RsaPrivateKey::from_pkcs8_der(der)
                .map(SigningKey::Rsa)
                .map_err(|e| invalid("RSA")(e.to_string())),
            oid => Err(KeyError::UnsupportedAlgorithm {
                oid: oid.to_string(),
            }),
        }
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem(&read(path)?).map_err(in_file(path))
    }

    pub fn public(&self) -> PublicKey {
        match self {
            SigningKey::EcdsaP256(k) => PublicKey::EcdsaP256(*k.verifying_key()),
            SigningKey::EcdsaP384(k) => PublicKey::EcdsaP384(*k.verifying_key()),
            SigningKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            SigningKey::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
        }
    }

    /// Deterministic P-256 key for test fixtures: the scalar is SHA-256(counter || seed) for the
    /// first counter that gives a valid scalar, so the same seed always gives the same key.
    pub fn generate_p256_from_seed(seed: &[u8]) -> SigningKey {
        (0u32..)
            .find_map(|counter| {
                let mut h = Sha256::new();
                h.update(counter.to_be_bytes());
                h.update(seed);
                p256::ecdsa::SigningKey::from_bytes(&h.finalize()).ok()
            })
            .map(SigningKey::EcdsaP256)
            .expect("a valid scalar is found within a few tries")
    }

    /// Deterministic P-384 key, like [`SigningKey::generate_p256_from_seed`] (SHA-384 of
    /// counter || seed as the scalar).
    pub fn generate_p384_from_seed(seed: &[u8]) -> SigningKey {
        (0u32..)
            .find_map(|counter| {
                let mut h = sha2::Sha384::new();
                h.update(counter.to_be_bytes());
                h.update(seed);
                p384::ecdsa::SigningKey::from_bytes(&h.finalize()).ok()
            })
            .map(SigningKey::EcdsaP384)
            .expect("a valid scalar is found within a few tries")
    }

    /// Deterministic Ed25519 key: the 32-byte secret is SHA-256 of the seed.
    pub fn generate_ed25519_from_seed(seed: &[u8]) -> SigningKey {
        let mut h = Sha256::new();
        h.update(b"ed25519");
        h.update(seed);
        SigningKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&h.finalize().into()))
    }

    /// PKCS#8 PEM, the form imgtool's `keygen` writes and reads.
    pub fn to_pem(&self) -> String {
        let pem = match self {
            SigningKey::EcdsaP256(k) => k.to_pkcs8_pem(LineEnding::LF),
            SigningKey::EcdsaP384(k) => k.to_pkcs8_pem(LineEnding::LF),
            // PKCS#8 v1 (seed only), as OpenSSL and imgtool write it: the v2 form with the
            // public key appended, ed25519-dalek's default, is refused by imgtool's loader.
            SigningKey::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_pem(LineEnding::LF),
            SigningKey::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF),
        };
        pem.expect("encoding an in-memory key cannot fail")
            .to_string()
    }

    /// The TLV type imgtool uses for this key's signature.
    pub fn signature_tlv(&self) -> u16 {
        self.public().signature_tlv_kinds()[0]
    }

    /// Sign an image digest the way imgtool does for this key type:
    /// * ECDSA P-256 / P-384: ECDSA/SHA-256 (SHA-384) over the hashed region, which is the same
    ///   as signing the digest as a prehash. DER-encoded, deterministic (RFC 6979).
    /// * Ed25519: pure Ed25519 over the digest (imgtool's "sign the digest"), or over the image
    ///   itself for SIG_PURE images (then `digest` is the hashed region).
    /// * RSA: PSS/SHA-256 with a 32-byte salt and MGF1-SHA-256 over the digest as prehash. The
    ///   salt is derived from the key and digest so the output is reproducible; any salt is valid.
    pub fn sign_digest(&self, digest: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k
                    .sign_prehash(digest)
                    .expect("a 32-byte digest is a valid prehash");
                sig.to_der().as_bytes().to_vec()
            }
            SigningKey::EcdsaP384(k) => {
                let sig: p384::ecdsa::Signature = k
                    .sign_prehash(digest)
                    .expect("a 48-byte digest is a valid prehash");
                sig.to_der().as_bytes().to_vec()
            }
            SigningKey::Ed25519(k) => {
                use ed25519_dalek::Signer as _;
                k.sign(digest).to_bytes().to_vec()
            }
            SigningKey::Rsa(k) => {
                let mut rng = DigestRng::new(&k.n().to_bytes_be(), digest);
                let signer = rsa::pss::SigningKey::<Sha256>::new(k.clone());
                // The PSS signer would hash its input again; the digest goes in as a prehash so
                // the result equals imgtool's PSS/SHA-256 "sign the payload".
                rsa_sign_prehash(&signer, &mut rng, digest)
            }
        }
    }
}

fn rsa_sign_prehash(
    signer: &rsa::pss::SigningKey<Sha256>,
    rng: &mut DigestRng,
    digest: &[u8],
) -> Vec<u8> {
    use rsa::signature::hazmat::RandomizedPrehashSigner;
    let sig: rsa::pss::Signature = signer
        .sign_prehash_with_rng(rng, digest)
        .expect("RSA-PSS signing of a 32-byte digest");
    sig.to_vec()
}

/// A tiny SHA-256 counter-mode byte stream used only as the RSA-PSS salt source, so signing is
/// reproducible without pulling in an OS RNG.
struct DigestRng {
    seed: [u8; 32],
    counter: u64,
    buf: Vec<u8>,
}

impl DigestRng {
    fn new(a: &[u8], b: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"dfu-hil pss salt");
        h.update(a);
        h.update(b);
        DigestRng {
            seed: h.finalize().into(),
            counter: 0,
            buf: Vec::new(),
        }
    }
}

impl rsa::rand_core::RngCore for DigestRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            if self.buf.is_empty() {
                let mut h = Sha256::new();
                h.update(self.seed);
                h.update(self.counter.to_le_bytes());
                self.counter += 1;
                self.buf = h.finalize().to_vec();
            }
            *d = self.buf.pop().expect("refilled above");
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for DigestRng {}

impl PublicKey {
    /// SPKI "PUBLIC KEY" (or PKCS#1 "RSA PUBLIC KEY"); a private key PEM is accepted too and its
    /// public half taken, so the same file can be handed to signing and verifying code.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = decode_pem(pem)?;
        match label.as_str() {
            "PUBLIC KEY" => Self::from_spki_der(&der),
            "RSA PUBLIC KEY" => rsa::RsaPublicKey::from_pkcs1_der(&der)
                .map(PublicKey::Rsa)
                .map_err(|e| invalid("PKCS#1 RSA public")(e.to_string())),
            "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
                Ok(SigningKey::from_pem(pem)?.public())
            }
            _ => Err(KeyError::UnsupportedLabel { label }),
        }
    }

    fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki = p256::pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| invalid("SPKI public")(e.to_string()))?;
        match spki.algorithm.oid.to_string().as_str() {
            OID_EC_PUBLIC_KEY => p256::ecdsa::VerifyingKey::from_public_key_der(der)
                .map(PublicKey::EcdsaP256)
                .or_else(|_| {
                    p384::ecdsa::VerifyingKey::from_public_key_der(der).map(PublicKey::EcdsaP384)
                })
                .map_err(|e| {
                    invalid("ECDSA public (only the P-256 and P-384 curves are supported)")(
                        e.to_string(),
                    )
                }),
            OID_ED25519 => ed25519_dalek::VerifyingKey::from_public_key_der(der)
                .map(PublicKey::Ed25519)
                .map_err(|e| invalid("Ed25519 public")(e.to_string())),
            OID_RSA => rsa::RsaPublicKey::from_public_key_der(der)
                .map(PublicKey::Rsa)
                .map_err(|e| invalid("RSA public")(e.to_string())),
            oid => Err(KeyError::UnsupportedAlgorithm {
                oid: oid.to_string(),
            }),
        }
    }

    pub fn load(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem(&read(path)?).map_err(in_file(path))
    }

    /// The bytes imgtool hashes for KEYHASH and embeds for PUBKEY: SPKI DER for ECDSA and
    /// Ed25519, PKCS#1 `RSAPublicKey` DER for RSA (MCUboot's RSA parser expects that form).
    pub fn key_bytes(&self) -> Vec<u8> {
        const MSG: &str = "encoding an in-memory public key cannot fail";
        match self {
            PublicKey::EcdsaP256(k) => k.to_public_key_der().expect(MSG).into_vec(),
            PublicKey::EcdsaP384(k) => k.to_public_key_der().expect(MSG).into_vec(),
            PublicKey::Ed25519(k) => k.to_public_key_der().expect(MSG).into_vec(),
            PublicKey::Rsa(k) => k.to_pkcs1_der().expect(MSG).into_vec(),
        }
    }

    /// What imgtool puts in the KEYHASH TLV of an image signed with this key and its default
    /// hash: SHA-256 (SHA-384 for P-384) of [`PublicKey::key_bytes`].
    pub fn key_hash(&self) -> Vec<u8> {
        self.key_hash_with(self.default_hash())
    }

    /// KEYHASH for an image with hash algorithm `alg`: imgtool and MCUboot hash the key with
    /// the image's hash algorithm (48 bytes for a SHA-384 image).
    pub fn key_hash_with(&self, alg: HashAlg) -> Vec<u8> {
        alg.digest(&self.key_bytes())
    }

    /// The image hash imgtool picks for this key (`--sha auto`).
    pub fn default_hash(&self) -> HashAlg {
        self.allowed_hashes()[0]
    }

    /// Image hashes imgtool allows when signing with this key (`--sha`): P-384 only SHA-384,
    /// P-256 and RSA only SHA-256, Ed25519 SHA-256 or SHA-512.
    pub fn allowed_hashes(&self) -> &'static [HashAlg] {
        match self {
            PublicKey::EcdsaP384(_) => &[HashAlg::Sha384],
            PublicKey::Ed25519(_) => &[HashAlg::Sha256, HashAlg::Sha512],
            PublicKey::EcdsaP256(_) | PublicKey::Rsa(_) => &[HashAlg::Sha256],
        }
    }

    /// Human name of the key type, e.g. "ECDSA P-384", "RSA-3072".
    pub fn type_name(&self) -> String {
        match self {
            PublicKey::EcdsaP256(_) => "ECDSA P-256".into(),
            PublicKey::EcdsaP384(_) => "ECDSA P-384".into(),
            PublicKey::Ed25519(_) => "Ed25519".into(),
            PublicKey::Rsa(k) => format!("RSA-{}", k.size() * 8),
        }
    }

    /// SPKI PEM, like `imgtool getpub --encoding pem`.
    pub fn to_pem(&self) -> String {
        let pem = match self {
            PublicKey::EcdsaP256(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::EcdsaP384(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::Ed25519(k) => k.to_public_key_pem(LineEnding::LF),
            PublicKey::Rsa(k) => k.to_public_key_pem(LineEnding::LF),
        };
        pem.expect("encoding an in-memory public key cannot fail")
    }

    /// Signature TLV types this key can have made (first = the one imgtool writes).
    pub fn signature_tlv_kinds(&self) -> &'static [u16] {
        match self {
            PublicKey::EcdsaP256(_) | PublicKey::EcdsaP384(_) => &[tlv::ECDSA_SIG],
            PublicKey::Ed25519(_) => &[tlv::ED25519],
            PublicKey::Rsa(k) if k.size() == 384 => &[tlv::RSA3072_PSS],
            PublicKey::Rsa(_) => &[tlv::RSA2048_PSS],
        }
    }

    /// Check a signature TLV value against an image digest (see [`SigningKey::sign_digest`]
    /// for what each key type signs). Malformed signatures are simply invalid.
    pub fn verify_digest(&self, digest: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::EcdsaP256(k) => p256::ecdsa::Signature::from_der(sig)
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
            PublicKey::EcdsaP384(k) => p384::ecdsa::Signature::from_der(sig)
                .is_ok_and(|s| k.verify_prehash(digest, &s).is_ok()),
            PublicKey::Ed25519(k) => ed25519_dalek::Signature::from_slice(sig)
                .is_ok_and(|s| k.verify(digest, &s).is_ok()),
            PublicKey::Rsa(k) => rsa::pss::Signature::try_from(sig).is_ok_and(|s| {
                rsa::pss::VerifyingKey::<Sha256>::new(k.clone())
                    .verify_prehash(digest, &s)
                    .is_ok()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_keys_are_deterministic_and_round_trip() {
        let a = SigningKey::generate_p256_from_seed(b"fixture");
        let b = SigningKey::generate_p256_from_seed(b"fixture");
        let c = SigningKey::generate_p256_from_seed(b"other");
        assert_eq!(a.public(), b.public());
        assert_ne!(a.public(), c.public());
        let again = SigningKey::from_pem(&a.to_pem()).unwrap();
        assert_eq!(again.public(), a.public());
        let p = PublicKey::from_pem(&a.public().to_pem()).unwrap();
        assert_eq!(p, a.public());
        assert_eq!(PublicKey::from_pem(&a.to_pem()).unwrap(), a.public());
        assert!(a
            .public()
            .to_pem()
            .starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn sign_and_verify_digest() {
        let k = SigningKey::generate_p256_from_seed(b"x");
        let d = Sha256::digest(b"image");
        let sig = k.sign_digest(&d);
        assert_eq!(sig, k.sign_digest(&d), "RFC 6979 makes it deterministic");
        assert!(k.public().verify_digest(&d, &sig));
        assert!(!k.public().verify_digest(&Sha256::digest(b"other"), &sig));
        assert!(!k.public().verify_digest(&d, b"garbage"));
    }

    #[test]
    fn p384_and_ed25519_keys() {
        let k = SigningKey::generate_p384_from_seed(b"x");
        assert!(matches!(k, SigningKey::EcdsaP384(_)));
        assert_eq!(
            k.public(),
            SigningKey::generate_p384_from_seed(b"x").public()
        );
        let again = SigningKey::from_pem(&k.to_pem()).unwrap();
        assert_eq!(again.public(), k.public());
        assert_eq!(
            PublicKey::from_pem(&k.public().to_pem()).unwrap(),
            k.public()
        );
        let p = k.public();
        assert_eq!(p.default_hash(), HashAlg::Sha384);
        assert_eq!(p.key_hash().len(), 48);
        assert_eq!(p.key_hash_with(HashAlg::Sha256).len(), 32);
        assert_eq!(p.type_name(), "ECDSA P-384");
        let d = sha2::Sha384::digest(b"image");
        let sig = k.sign_digest(&d);
        assert!(p.verify_digest(&d, &sig));
        assert!(!p.verify_digest(&sha2::Sha384::digest(b"other"), &sig));
        assert!(!SigningKey::generate_p256_from_seed(b"x")
            .public()
            .verify_digest(&d, &sig));

        let e = SigningKey::generate_ed25519_from_seed(b"e");
        let pem = e.to_pem();
        // PKCS#8 v1 (48-byte DER), the form imgtool can load.
        let (_, der) = decode_pem(&pem).unwrap();
        assert_eq!(der.len(), 48);
        assert_eq!(SigningKey::from_pem(&pem).unwrap().public(), e.public());
        assert_eq!(
            e.public().allowed_hashes(),
            &[HashAlg::Sha256, HashAlg::Sha512]
        );
    }

    #[test]
    fn bad_input_errors() {
        assert!(matches!(
            SigningKey::from_pem("hello"),
            Err(KeyError::Pem(_))
        ));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            PublicKey::from_pem(cert),
            Err(KeyError::UnsupportedLabel { .. })
        ));
        let missing = Path::new("/nonexistent/k.pem");
        let e = SigningKey::load(missing).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/k.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.pem");
        std::fs::write(&p, "not pem").unwrap();
        let e = PublicKey::load(&p).unwrap_err();
        assert!(e.to_string().contains("bad.pem"), "{e}");
    }
}
