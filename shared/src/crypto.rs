//! Data at rest: phone numbers and EINs sealed with AES-256-GCM (a random
//! 96-bit nonce per value, the church and field as associated data, so a
//! value copied to another church's item or another field does not open),
//! phone numbers found again by a keyed hash
//! (HMAC-SHA256) that reveals nothing without the key, and list cursors
//! signed so a client cannot forge a position in another partition.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::{ChurchId, PhoneNumber};

const NONCE_BYTES: usize = 12;

/// Marks a value sealed with its church and field bound in; values sealed
/// before (no mark) open without, as they were sealed.
const BOUND: &str = "v2.";

/// What a sealed value is: bound into its ciphertext with its church.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    MemberPhone,
    ConversationPhone,
    Ein,
}

impl Field {
    fn label(self) -> &'static str {
        match self {
            Field::MemberPhone => "member.phone",
            Field::ConversationPhone => "conversation.phone",
            Field::Ein => "church.ein",
        }
    }
}

/// The associated data of a church's field.
fn aad(church: ChurchId, field: Field) -> String {
    format!("koinonia/{}/{church}", field.label())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("DATA_KEY must be 32 bytes")]
    BadKey,
    #[error("sealed value is corrupt or was sealed under another key")]
    Corrupt,
}

pub struct Vault {
    cipher: Aes256Gcm,
    hash_key: Vec<u8>,
}

impl Vault {
    pub fn new(data_key: &[u8], hash_key: &[u8]) -> Result<Self, VaultError> {
        let cipher = Aes256Gcm::new_from_slice(data_key).map_err(|_| VaultError::BadKey)?;
        Ok(Self {
            cipher,
            hash_key: hash_key.to_vec(),
        })
    }

    /// `v2.` + `base64(nonce ‖ ciphertext ‖ tag)`, with `church` and
    /// `field` as associated data.
    pub fn seal(&self, church: ChurchId, field: Field, plaintext: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = aad(church, field);
        // Encryption with a valid key and nonce cannot fail for inputs this small.
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        format!("{BOUND}{}", STANDARD.encode(sealed))
    }

    /// Opens a value sealed as `church`'s `field` (or one sealed before
    /// values were bound, which opens as it was sealed).
    pub fn open(&self, church: ChurchId, field: Field, sealed: &str) -> Result<String, VaultError> {
        let (encoded, aad) = match sealed.strip_prefix(BOUND) {
            Some(encoded) => (encoded, aad(church, field)),
            None => (sealed, String::new()),
        };
        let bytes = STANDARD.decode(encoded).map_err(|_| VaultError::Corrupt)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(VaultError::Corrupt);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Corrupt)?;
        String::from_utf8(plaintext).map_err(|_| VaultError::Corrupt)
    }

    /// The lookup key of a phone number: hex HMAC-SHA256 of its E.164 form.
    pub fn phone_hash(&self, phone: &PhoneNumber) -> String {
        hex::encode(self.mac(b"phone:", phone.as_e164().as_bytes()))
    }

    fn mac(&self, label: &[u8], value: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key)
            .expect("HMAC takes any key length");
        mac.update(label);
        mac.update(value);
        mac.finalize().into_bytes().to_vec()
    }

    /// A cursor the client may hold: the table's cursor plus a signature.
    pub fn sign_cursor(&self, cursor: &str) -> String {
        let signature = URL_SAFE_NO_PAD.encode(&self.mac(b"cursor:", cursor.as_bytes())[..16]);
        format!("{}.{signature}", URL_SAFE_NO_PAD.encode(cursor))
    }

    /// The table's cursor, if `signed` came from `sign_cursor`.
    pub fn verify_cursor(&self, signed: &str) -> Option<String> {
        let (body, signature) = signed.split_once('.')?;
        let cursor = String::from_utf8(URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        let expected = URL_SAFE_NO_PAD.encode(&self.mac(b"cursor:", cursor.as_bytes())[..16]);
        let same = expected.len() == signature.len()
            && expected
                .bytes()
                .zip(signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then_some(cursor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::new(&[7u8; 32], b"a phone hash key of 32 bytes....").unwrap()
    }

    #[test]
    fn sealing_round_trips_and_never_repeats() {
        let v = vault();
        let church = ChurchId::generate();
        let a = v.seal(church, Field::MemberPhone, "+12025550143");
        let b = v.seal(church, Field::MemberPhone, "+12025550143");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("2025550143"));
        assert_eq!(
            v.open(church, Field::MemberPhone, &a).unwrap(),
            "+12025550143"
        );
        let other = Vault::new(&[8u8; 32], b"x").unwrap();
        assert_eq!(
            other.open(church, Field::MemberPhone, &a),
            Err(VaultError::Corrupt)
        );
        assert_eq!(
            v.open(church, Field::MemberPhone, "AAAA"),
            Err(VaultError::Corrupt)
        );
        assert!(Vault::new(&[1u8; 16], b"x").is_err());
    }

    #[test]
    fn a_sealed_value_opens_only_as_its_churchs_field() {
        let v = vault();
        let (church, stranger) = (ChurchId::generate(), ChurchId::generate());
        let ein = v.seal(church, Field::Ein, "123456789");
        assert_eq!(v.open(stranger, Field::Ein, &ein), Err(VaultError::Corrupt));
        assert_eq!(
            v.open(church, Field::MemberPhone, &ein),
            Err(VaultError::Corrupt)
        );
        // The mark cannot be stripped to open it as an old, unbound value.
        assert_eq!(
            v.open(church, Field::Ein, ein.trim_start_matches(BOUND)),
            Err(VaultError::Corrupt)
        );
        assert_eq!(v.open(church, Field::Ein, &ein).unwrap(), "123456789");
    }

    #[test]
    fn values_sealed_before_binding_still_open() {
        let v = vault();
        // As `seal` wrote them before: no associated data, no mark.
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut old = nonce.to_vec();
        old.extend(v.cipher.encrypt(&nonce, b"+12025550143".as_ref()).unwrap());
        let old = STANDARD.encode(old);
        assert_eq!(
            v.open(ChurchId::generate(), Field::MemberPhone, &old)
                .unwrap(),
            "+12025550143"
        );
    }

    #[test]
    fn phone_hashes_are_stable_and_keyed() {
        let phone = PhoneNumber::parse("202-555-0143").unwrap();
        assert_eq!(
            vault().phone_hash(&phone),
            vault().phone_hash(&PhoneNumber::parse("+1 (202) 555-0143").unwrap())
        );
        let other = Vault::new(&[7u8; 32], b"another key").unwrap();
        assert_ne!(vault().phone_hash(&phone), other.phone_hash(&phone));
    }

    #[test]
    fn cursors_are_signed() {
        let v = vault();
        let signed = v.sign_cursor("eyJwayI6IkNIVVJDSCMxIn0");
        assert_eq!(
            v.verify_cursor(&signed).as_deref(),
            Some("eyJwayI6IkNIVVJDSCMxIn0")
        );
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("other"),
            signed.split_once('.').unwrap().1
        );
        assert_eq!(v.verify_cursor(&forged), None);
        assert_eq!(v.verify_cursor("garbage"), None);
    }
}
