//! Phone numbers, parsed once into E.164 with libphonenumber's rules.

use std::fmt;

use phonenumber::{Mode, country};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A valid phone number in E.164 form (`+15551234567`).
///
/// Accepts the forms people type — `(555) 123-4567`, `555.123.4567`,
/// `1-555-123-4567`, `+44 20 7946 0958` — with the US as the default region.
/// Never log it: logs carry member ids, not numbers.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number is not a number")]
    Unparseable,
    #[error("phone number is not a valid, dialable number")]
    Invalid,
}

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, PhoneNumberError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PhoneNumberError::Empty);
        }
        if raw.len() > 32 {
            return Err(PhoneNumberError::Unparseable);
        }
        let parsed = phonenumber::parse(Some(country::Id::US), raw)
            .map_err(|_| PhoneNumberError::Unparseable)?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneNumberError::Invalid);
        }
        Ok(Self(parsed.format().mode(Mode::E164).to_string()))
    }

    /// The E.164 text, e.g. `+15551234567`.
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// The last four digits, for the few places a person must recognise a number.
    pub fn masked(&self) -> String {
        let tail = &self.0[self.0.len().saturating_sub(4)..];
        format!("***{tail}")
    }
}

/// Debug never shows the digits, so a stray `{:?}` cannot leak a number into logs.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_us_forms_normalise_to_e164() {
        for raw in [
            "(202) 555-0143",
            "202-555-0143",
            "202.555.0143",
            "2025550143",
            "1-202-555-0143",
            "+1 202 555 0143",
            " +12025550143 ",
        ] {
            assert_eq!(
                PhoneNumber::parse(raw).map(|p| p.as_e164().to_owned()),
                Ok("+12025550143".to_owned()),
                "{raw}"
            );
        }
    }

    #[test]
    fn international_numbers_keep_their_country() {
        let uk = PhoneNumber::parse("+44 20 7946 0958").unwrap();
        assert_eq!(uk.as_e164(), "+442079460958");
    }

    #[test]
    fn rubbish_gets_a_clear_error() {
        assert_eq!(PhoneNumber::parse(""), Err(PhoneNumberError::Empty));
        assert_eq!(
            PhoneNumber::parse("call me"),
            Err(PhoneNumberError::Unparseable)
        );
        assert!(PhoneNumber::parse("123").is_err());
        // Parses as a number, but no US area code starts with 1.
        assert_eq!(
            PhoneNumber::parse("(123) 456-7890"),
            Err(PhoneNumberError::Invalid)
        );
        assert!(PhoneNumber::parse(&"9".repeat(40)).is_err());
    }

    #[test]
    fn debug_output_hides_the_digits() {
        let p = PhoneNumber::parse("202-555-0143").unwrap();
        assert_eq!(format!("{p:?}"), "PhoneNumber(***0143)");
    }
}
