//! Random secrets and their digests. Secrets (client secrets, codes, session cookies) are
//! 256-bit random values shown once and stored only as SHA-256 digests: they are random, so a
//! slow password hash would add cost and no safety. Comparisons are constant-time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 32 random bytes, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A decimal string of `n` random digits (leading zeros allowed).
pub fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + (rng.next_u32() % 10) as u8))
        .collect()
}

/// Hex SHA-256 digest, the stored form of a secret.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Does `secret` hash to `stored_digest`? Constant-time in the digest comparison.
pub fn matches_digest(secret: &str, stored_digest: &str) -> bool {
    digest(secret)
        .as_bytes()
        .ct_eq(stored_digest.as_bytes())
        .into()
}

/// base64url(SHA-256(input)), as PKCE S256 uses.
pub fn s256(input: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes()))
}

/// Constant-time equality of two strings.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let a = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, random_token());
    }

    #[test]
    fn digest_matches_only_its_secret() {
        let d = digest("s3cret");
        assert!(matches_digest("s3cret", &d));
        assert!(!matches_digest("s3creT", &d));
    }

    #[test]
    fn s256_matches_an_independent_implementation() {
        assert_eq!(
            s256("careid-demo-verifier-0123456789abcdefghijklmnopqrstuvwxyz"),
            "EZxLzDDAIsO7xAOurWBSZa4qsw3DAUsVchkRQHjO5jw"
        );
    }
}
