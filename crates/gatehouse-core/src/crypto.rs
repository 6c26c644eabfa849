//! Secrets handling: random tokens, token hashes, password hashes and sealing of stored
//! credentials (AES-256-GCM).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of sealed values, so that a sealed and a plain value are never confused.
const SEALED_PREFIX: &str = "sealed:v1:";

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

/// A random token of 256 bits, base64url, with a recognizable prefix (e.g. `ghgw_`) so secret
/// scanners can find leaked ones.
pub fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes(32)))
}

/// Lowercase hex SHA-256, for high-entropy tokens (not passwords).
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// `***` and the last five characters of a key, for listings (`********` for short ones).
pub fn mask(key: &str) -> String {
    let n = key.chars().count();
    if n <= 5 {
        "********".to_owned()
    } else {
        format!("***{}", key.chars().skip(n - 5).collect::<String>())
    }
}

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt =
        SaltString::encode_b64(&random_bytes(16)).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Checks a password against its argon2 hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Seals and opens stored credentials.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    key: [u8; 32],
}

impl Sealer {
    /// A sealer over a 32-byte key.
    pub fn new(key: &[u8]) -> anyhow::Result<Self> {
        let cipher = Aes256Gcm::new_from_slice(key)
            .map_err(|_| anyhow::anyhow!("the encryption key must be 32 bytes"))?;
        let mut copy = [0u8; 32];
        copy.copy_from_slice(key);
        Ok(Self { cipher, key: copy })
    }

    /// A secret derived from the key for one purpose (HKDF-SHA256 with `label` as info),
    /// base64url: stable for as long as the key is, and telling nothing of the key.
    pub fn derive(&self, label: &str) -> String {
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 8160; expansion cannot fail.
        let _ = hkdf::Hkdf::<Sha256>::new(None, &self.key).expand(label.as_bytes(), &mut out);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// HMAC-SHA256 of `data` under a key derived for `purpose`: the same for equal data under
    /// one platform key, and telling nothing of the data to whoever lacks the key.
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> Vec<u8> {
        use hkdf::hmac::{Hmac, Mac};
        let mut key = [0u8; 32];
        let _ = hkdf::Hkdf::<Sha256>::new(None, &self.key).expand(purpose.as_bytes(), &mut key);
        // HMAC takes a key of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key");
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// Encrypts `plain` into a self-describing string.
    pub fn seal(&self, plain: &str) -> String {
        let nonce = random_bytes(12);
        // Encryption with a fresh 96-bit nonce and an in-memory buffer does not fail.
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
            .unwrap_or_default();
        let mut out = nonce;
        out.extend_from_slice(&ct);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    /// Decrypts a value made by `seal`.
    pub fn open(&self, sealed: &str) -> anyhow::Result<String> {
        let raw = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| anyhow::anyhow!("value is not sealed"))?;
        let bytes = STANDARD.decode(raw)?;
        if bytes.len() < 12 {
            anyhow::bail!("sealed value is truncated");
        }
        let (nonce, ct) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| anyhow::anyhow!("sealed value does not open with this key"))?;
        Ok(String::from_utf8(plain)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_secrets_differ_by_label_and_key() {
        let a = Sealer::new(&[1u8; 32]).unwrap();
        let b = Sealer::new(&[2u8; 32]).unwrap();
        assert_eq!(a.derive("x"), a.derive("x"));
        assert_ne!(a.derive("x"), a.derive("y"));
        assert_ne!(a.derive("x"), b.derive("x"));
        assert_eq!(a.derive("x").len(), 43);
    }

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = random_token("ghgw_");
        let b = random_token("ghgw_");
        assert!(a.starts_with("ghgw_"));
        assert_eq!(a.len(), 5 + 43);
        assert_ne!(a, b);
        assert_eq!(sha256_hex("abc").len(), 64);
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("s3cret", "garbage"));
    }

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let s = Sealer::new(&[7u8; 32]).unwrap();
        let sealed = s.seal("Bearer sk-123");
        assert!(!sealed.contains("sk-123"));
        assert_eq!(s.open(&sealed).unwrap(), "Bearer sk-123");
        assert!(Sealer::new(&[8u8; 32]).unwrap().open(&sealed).is_err());
        assert!(s.open("Bearer sk-123").is_err());
    }
}
