//! Password hashing with Argon2id at OWASP's recommended parameters
//! (19 MiB, 2 passes, 1 lane), in PHC string form so parameters can change
//! later without invalidating stored hashes.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

fn hasher() -> Argon2<'static> {
    // OWASP: m = 19456 KiB, t = 2, p = 1. These constants are valid, so the
    // fallback to the library default is never taken.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(password: &str) -> Result<String, HashError> {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| HashError(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the stored PHC hash (false for a malformed hash).
pub fn verify(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends the time a real verification takes, so a login for an unknown
/// email answers as slowly as one with a wrong password.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("dummy-Password-1").unwrap_or_default());
    let _ = verify(dummy, password);
}

/// The registration rule: at least 8 characters, an uppercase letter and a digit.
pub fn strong_enough(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < 8 {
        return Err("password must be at least 8 characters");
    }
    if password.len() > 256 {
        return Err("password must be at most 256 bytes");
    }
    if !password.chars().any(|c| c.is_uppercase()) {
        return Err("password must contain an uppercase letter");
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Err("password must contain a digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_reject() {
        let stored = hash("Shepherd123").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&stored, "Shepherd123"));
        assert!(!verify(&stored, "shepherd123"));
        assert!(!verify("not a hash", "Shepherd123"));
        assert_ne!(hash("Shepherd123").unwrap(), stored, "salted");
    }

    #[test]
    fn the_registration_rule() {
        assert!(strong_enough("Shepherd1").is_ok());
        assert!(strong_enough("Short1A").is_err());
        assert!(strong_enough("nouppercase1").is_err());
        assert!(strong_enough("NoDigitsHere").is_err());
    }
}
