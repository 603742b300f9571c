//! cosign's key files (docs/signing.md "Keys"), read and written with RustCrypto.
//!
//! The private key is cosign's own format (sigstore/cosign `pkg/cosign/keys.go`, which wraps
//! secure-systems-lab/go-securesystemslib `encrypted`): a PEM block of type
//! `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign: `ENCRYPTED COSIGN PRIVATE KEY`) whose body is
//! the JSON `{"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt"}, "cipher":
//! {"name": "nacl/secretbox", "nonce"}, "ciphertext"}`; the byte fields are standard base64, the
//! secretbox key is scrypt(password, salt) and the plaintext is the PKCS#8 DER of the key. The
//! public key is an ordinary PKIX `PUBLIC KEY` PEM block, which is what Flux reads from the
//! verification Secret.

use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

/// The PEM type cosign writes today, and the one older releases wrote; both are read.
pub const PRIVATE_KEY_PEM_TYPE: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
const LEGACY_PRIVATE_KEY_PEM_TYPE: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// The scrypt parameter sets go-securesystemslib accepts (legacy, standard, OWASP); it refuses
/// any other, so a key written with other parameters would not load in cosign.
const SCRYPT_PARAMS: [(u32, u32, u32); 3] = [(32_768, 8, 1), (65_536, 8, 1), (131_072, 8, 1)];
/// The set cosign writes new keys with (`encrypted.Standard`).
const SCRYPT_N: u32 = 65_536;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const SALT_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const BOX_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("not a PEM file")]
    NotPem,
    #[error("a PEM block of type {found:?}, not {expected}")]
    WrongPemType { found: String, expected: String },
    #[error("its encrypted body is malformed ({0})")]
    Malformed(String),
    #[error(
        "its key derivation ({0}) is not one cosign writes (scrypt with N 32768, 65536 or 131072, r 8, p 1)"
    )]
    UnsupportedKdf(String),
    #[error("the password does not decrypt it")]
    WrongPassword,
    #[error("it holds a key that is not ECDSA P-256 ({0})")]
    NotP256(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct EncryptedKey {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u32,
    r: u32,
    p: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

/// Go's `encoding/json` writes `[]byte` as standard base64 with padding.
mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// Decrypt a cosign private key file's text with `password`.
pub fn decrypt_private_key(pem_text: &str, password: &[u8]) -> Result<SigningKey, KeyError> {
    let (label, body) = pem_rfc7468_decode(pem_text)?;
    if label != PRIVATE_KEY_PEM_TYPE && label != LEGACY_PRIVATE_KEY_PEM_TYPE {
        return Err(KeyError::WrongPemType {
            found: label,
            expected: PRIVATE_KEY_PEM_TYPE.to_string(),
        });
    }
    let encrypted: EncryptedKey =
        serde_json::from_slice(&body).map_err(|error| KeyError::Malformed(error.to_string()))?;
    if encrypted.kdf.name != "scrypt" || encrypted.cipher.name != "nacl/secretbox" {
        return Err(KeyError::UnsupportedKdf(format!(
            "{} with {}",
            encrypted.kdf.name, encrypted.cipher.name
        )));
    }
    let params = encrypted.kdf.params;
    if !SCRYPT_PARAMS.contains(&(params.n, params.r, params.p)) {
        return Err(KeyError::UnsupportedKdf(format!(
            "scrypt N {} r {} p {}",
            params.n, params.r, params.p
        )));
    }
    if encrypted.cipher.nonce.len() != NONCE_BYTES {
        return Err(KeyError::Malformed(format!(
            "a nonce of {} bytes, not {NONCE_BYTES}",
            encrypted.cipher.nonce.len()
        )));
    }
    let box_key = derive_box_key(password, &encrypted.kdf.salt, params)?;
    let plaintext = XSalsa20Poly1305::new(&box_key.into())
        .decrypt(
            Nonce::from_slice(&encrypted.cipher.nonce),
            encrypted.ciphertext.as_slice(),
        )
        .map_err(|_| KeyError::WrongPassword)?;
    let plaintext = zeroizing(plaintext);
    SigningKey::from_pkcs8_der(&plaintext).map_err(|error| KeyError::NotP256(error.to_string()))
}

/// A new key pair: the encrypted private key file's text and the public key file's text.
pub fn generate(password: &[u8]) -> Result<(String, String), KeyError> {
    let key = SigningKey::random(&mut OsRng);
    let private = encrypt_private_key(&key, password)?;
    Ok((private, public_key_pem(key.verifying_key())))
}

/// `key` in cosign's encrypted format, with fresh salt and nonce.
pub fn encrypt_private_key(key: &SigningKey, password: &[u8]) -> Result<String, KeyError> {
    let mut salt = vec![0u8; SALT_BYTES];
    OsRng.fill_bytes(&mut salt);
    let mut nonce = vec![0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut nonce);
    let params = ScryptParams {
        n: SCRYPT_N,
        r: SCRYPT_R,
        p: SCRYPT_P,
    };
    let box_key = derive_box_key(password, &salt, params)?;
    let der = key
        .to_pkcs8_der()
        .map_err(|error| KeyError::Malformed(error.to_string()))?;
    let ciphertext = XSalsa20Poly1305::new(&box_key.into())
        .encrypt(Nonce::from_slice(&nonce), der.as_bytes())
        .map_err(|_| KeyError::Malformed("encryption failed".to_string()))?;
    let body = EncryptedKey {
        kdf: Kdf {
            name: "scrypt".to_string(),
            params,
            salt,
        },
        cipher: Cipher {
            name: "nacl/secretbox".to_string(),
            nonce,
        },
        ciphertext,
    };
    let json = serde_json::to_vec(&body).map_err(|error| KeyError::Malformed(error.to_string()))?;
    Ok(pem_encode(PRIVATE_KEY_PEM_TYPE, &json))
}

/// The PKIX `PUBLIC KEY` PEM text of `key`, as `cosign generate-key-pair` writes `cosign.pub`.
pub fn public_key_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF)
        .unwrap_or_else(|_| unreachable!("a P-256 public key always encodes"))
}

/// Read a `PUBLIC KEY` PEM file's text (cosign.pub).
pub fn parse_public_key(pem_text: &str) -> Result<VerifyingKey, KeyError> {
    let (label, _) = pem_rfc7468_decode(pem_text)?;
    if label != "PUBLIC KEY" {
        return Err(KeyError::WrongPemType {
            found: label,
            expected: "PUBLIC KEY".to_string(),
        });
    }
    VerifyingKey::from_public_key_pem(pem_text.trim())
        .map_err(|error| KeyError::NotP256(error.to_string()))
}

fn derive_box_key(
    password: &[u8],
    salt: &[u8],
    params: ScryptParams,
) -> Result<[u8; BOX_KEY_BYTES], KeyError> {
    let log_n = params.n.trailing_zeros() as u8;
    let scrypt_params = scrypt::Params::new(log_n, params.r, params.p, BOX_KEY_BYTES)
        .map_err(|error| KeyError::UnsupportedKdf(error.to_string()))?;
    let mut key = [0u8; BOX_KEY_BYTES];
    scrypt::scrypt(password, salt, &scrypt_params, &mut key)
        .map_err(|error| KeyError::UnsupportedKdf(error.to_string()))?;
    Ok(key)
}

fn zeroizing(bytes: Vec<u8>) -> p256::elliptic_curve::zeroize::Zeroizing<Vec<u8>> {
    p256::elliptic_curve::zeroize::Zeroizing::new(bytes)
}

/// The label and body of the PEM block that is `text` (surrounding whitespace ignored).
fn pem_rfc7468_decode(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let (label, bytes) =
        pem_rfc7468::decode_vec(text.trim().as_bytes()).map_err(|_| KeyError::NotPem)?;
    Ok((label.to_string(), bytes))
}

/// A PEM block with 64-character lines, as Go's `pem.Encode` writes it.
fn pem_encode(label: &str, bytes: &[u8]) -> String {
    pem_rfc7468::encode_string(label, LineEnding::LF, bytes)
        .unwrap_or_else(|_| unreachable!("a fixed ASCII label always encodes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn a_generated_key_decrypts_with_its_password_only() {
        let (private, public) = generate(b"s3cret").unwrap();
        assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let key = decrypt_private_key(&private, b"s3cret").unwrap();
        assert_eq!(
            parse_public_key(&public).unwrap(),
            *key.verifying_key(),
            "the public file holds the private key's public half"
        );
        assert_eq!(
            decrypt_private_key(&private, b"wrong"),
            Err(KeyError::WrongPassword)
        );
    }

    #[test]
    fn a_key_cosign_generated_decrypts_to_its_public_half() {
        let private = include_str!("../../tests/fixtures/signing/cosign-generated.key");
        let public = include_str!("../../tests/fixtures/signing/cosign-generated.pub");
        let key = decrypt_private_key(private, b"test").unwrap();
        assert_eq!(*key.verifying_key(), parse_public_key(public).unwrap());
        assert_eq!(public_key_pem(key.verifying_key()), public);
        assert_eq!(
            decrypt_private_key(private, b"tset"),
            Err(KeyError::WrongPassword)
        );
    }

    #[test]
    fn the_body_is_go_securesystemslib_json() {
        let (private, _) = generate(b"").unwrap();
        let (label, body) = pem_rfc7468_decode(&private).unwrap();
        assert_eq!(label, PRIVATE_KEY_PEM_TYPE);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["kdf"]["name"], "scrypt");
        assert_eq!(
            json["kdf"]["params"],
            serde_json::json!({"N": 65536, "r": 8, "p": 1})
        );
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        let decode = |field: &serde_json::Value| {
            base64::engine::general_purpose::STANDARD
                .decode(field.as_str().unwrap())
                .unwrap()
                .len()
        };
        assert_eq!(decode(&json["kdf"]["salt"]), 32);
        assert_eq!(decode(&json["cipher"]["nonce"]), 24);
        // PKCS#8 DER of a P-256 key (138 bytes) plus the 16-byte Poly1305 tag.
        assert_eq!(decode(&json["ciphertext"]), 138 + 16);
    }

    #[test]
    fn other_files_are_refused_with_what_they_are() {
        let (_, public) = generate(b"").unwrap();
        assert_eq!(
            decrypt_private_key(&public, b""),
            Err(KeyError::WrongPemType {
                found: "PUBLIC KEY".into(),
                expected: PRIVATE_KEY_PEM_TYPE.into()
            })
        );
        assert_eq!(decrypt_private_key("just text", b""), Err(KeyError::NotPem));
        let odd = pem_encode(PRIVATE_KEY_PEM_TYPE, br#"{"kdf":{"name":"scrypt","params":{"N":1024,"r":8,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#);
        assert!(matches!(
            decrypt_private_key(&odd, b""),
            Err(KeyError::UnsupportedKdf(_))
        ));
    }
}
