//! Signed artifacts (docs/signing.md): cosign key pairs, cosign-style signatures next to the
//! artifact in the registry, and the one signer `workload push` loads before it sends anything.

pub mod cosign;
pub mod key;

use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

pub use self::key::KeyError;

/// A decrypted signing key. It never prints itself: `Debug` shows only where it came from.
pub struct Signer {
    key: SigningKey,
    /// The key file as the user wrote it, for messages.
    pub display: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("display", &self.display)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Decrypt cosign private key text with `password`.
    pub fn from_encrypted(pem: &str, password: &[u8], display: String) -> Result<Self, KeyError> {
        Ok(Signer {
            key: key::decrypt_private_key(pem, password)?,
            display,
        })
    }

    /// The base64 of the ASN.1 DER ECDSA P-256 / SHA-256 signature of `payload`, as cosign puts
    /// it in its signature annotation. RFC 6979 nonces: the same payload gives the same bytes.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: Signature = self.key.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }
}

/// [`Signer::from_encrypted`], remembering the last key decrypted: `workload watch` loads the
/// key every round, and the scrypt derivation (~0.15 s, 64 MiB) runs again only when the file's
/// text, the password or the name changed.
pub fn decrypt_cached(pem: &str, password: &str, display: &str) -> Result<Arc<Signer>, KeyError> {
    static LAST: Mutex<Option<(String, String, Arc<Signer>)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((cached_pem, cached_password, signer)) = last.as_ref()
        && cached_pem == pem
        && cached_password == password
        && signer.display == display
    {
        return Ok(Arc::clone(signer));
    }
    let signer = Arc::new(Signer::from_encrypted(
        pem,
        password.as_bytes(),
        display.to_string(),
    )?);
    *last = Some((pem.to_string(), password.to_string(), Arc::clone(&signer)));
    Ok(signer)
}

/// Whether `signature` (base64 of ASN.1 DER, as in cosign's annotation) is `key`'s signature
/// of `payload`.
pub fn verifies(key: &VerifyingKey, payload: &[u8], signature: &str) -> bool {
    let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    Signature::from_der(&der).is_ok_and(|signature| key.verify(payload, &signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        let (private, _) = key::generate(b"pw").unwrap();
        Signer::from_encrypted(&private, b"pw", "cosign.key".into()).unwrap()
    }

    #[test]
    fn a_signature_verifies_for_its_payload_and_key_only() {
        let (ours, other) = (signer(), signer());
        let signature = ours.sign(b"payload");
        assert_eq!(signature, ours.sign(b"payload"), "RFC 6979: deterministic");
        assert!(verifies(ours.verifying_key(), b"payload", &signature));
        assert!(!verifies(ours.verifying_key(), b"payload!", &signature));
        assert!(!verifies(other.verifying_key(), b"payload", &signature));
        assert!(!verifies(ours.verifying_key(), b"payload", "not base64"));
    }

    /// The only test of this binary that calls `decrypt_cached`, so nothing else evicts the entry.
    #[test]
    fn the_last_key_is_decrypted_once_and_a_change_decrypts_again() {
        let (private, _) = key::generate(b"pw").unwrap();
        let first = decrypt_cached(&private, "pw", "cosign.key").unwrap();
        let again = decrypt_cached(&private, "pw", "cosign.key").unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the same inputs re-use the key"
        );
        assert_eq!(
            decrypt_cached(&private, "other", "cosign.key").unwrap_err(),
            KeyError::WrongPassword,
            "another password is checked, not served from the cache"
        );
        let renamed = decrypt_cached(&private, "pw", "ci.key").unwrap();
        assert!(!Arc::ptr_eq(&first, &renamed));
        assert_eq!(renamed.display, "ci.key");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let text = format!("{:?}", signer());
        assert_eq!(text, "Signer { display: \"cosign.key\", .. }");
    }
}
