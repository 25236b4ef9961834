//! The text of an SMS, with the carrier's segment arithmetic.
//!
//! GSM-7 carries 160 characters in one part and 153 per part once split (the
//! user-data header takes the rest); the extension characters `^{}[]~|\€` and
//! form feed cost two. A single character outside GSM-7 turns the whole
//! message into UCS-2: 70 in one part, 67 per part, counted in UTF-16 code
//! units — an emoji outside the BMP is two.

use serde::Serialize;

/// Longest message we accept, in characters (the frontend's limit too).
pub const MAX_CHARACTERS: usize = 1_600;
/// Telnyx refuses more parts than this.
pub const MAX_SEGMENTS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// How a text will travel: encoding, parts, and the length that decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentInfo {
    pub encoding: Encoding,
    pub segments: usize,
    /// Characters as a person counts them (Unicode scalar values).
    pub characters: usize,
    /// Units the carrier counts: GSM-7 septets or UTF-16 code units.
    pub units: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageTextError {
    #[error("message content is empty")]
    Empty,
    #[error("message content is {characters} characters; the limit is {MAX_CHARACTERS}")]
    TooLong { characters: usize },
    #[error("message content needs {segments} SMS segments; the limit is {MAX_SEGMENTS}")]
    TooManySegments { segments: usize },
}

/// The text of one outbound SMS: non-blank, at most 1,600 characters and 10 segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText {
    text: String,
    info: SegmentInfo,
}

impl MessageText {
    pub fn parse(raw: &str) -> Result<Self, MessageTextError> {
        if raw.trim().is_empty() {
            return Err(MessageTextError::Empty);
        }
        let characters = raw.chars().count();
        if characters > MAX_CHARACTERS {
            return Err(MessageTextError::TooLong { characters });
        }
        let info = segment_info(raw);
        if info.segments > MAX_SEGMENTS {
            return Err(MessageTextError::TooManySegments {
                segments: info.segments,
            });
        }
        Ok(Self {
            text: raw.to_owned(),
            info,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn segment_info(&self) -> SegmentInfo {
        self.info
    }
}

/// Encoding and part count of any text (no limits applied).
pub fn segment_info(text: &str) -> SegmentInfo {
    let characters = text.chars().count();
    let septets: Option<usize> = text.chars().map(gsm7_septets).sum();
    let (encoding, units, single, multi) = match septets {
        Some(septets) => (Encoding::Gsm7, septets, 160, 153),
        None => (Encoding::Ucs2, text.encode_utf16().count(), 70, 67),
    };
    let segments = match units {
        0 => 0,
        n if n <= single => 1,
        n => n.div_ceil(multi),
    };
    SegmentInfo {
        encoding,
        segments,
        characters,
        units,
    }
}

/// Septets one character costs in the GSM 03.38 default alphabet, or `None`
/// when it is not in the alphabet (or its extension table) at all.
fn gsm7_septets(c: char) -> Option<usize> {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                         ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    const EXTENDED: &str = "^{}\\[~]|€\u{000C}";
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(text: &str) -> (Encoding, usize, usize) {
        let i = segment_info(text);
        (i.encoding, i.segments, i.units)
    }

    #[test]
    fn gsm7_boundaries_are_160_then_153() {
        assert_eq!(info(&"a".repeat(160)), (Encoding::Gsm7, 1, 160));
        assert_eq!(info(&"a".repeat(161)), (Encoding::Gsm7, 2, 161));
        assert_eq!(info(&"a".repeat(306)), (Encoding::Gsm7, 2, 306));
        assert_eq!(info(&"a".repeat(307)), (Encoding::Gsm7, 3, 307));
    }

    #[test]
    fn extension_characters_cost_two_septets() {
        assert_eq!(info(&"€".repeat(80)), (Encoding::Gsm7, 1, 160));
        assert_eq!(
            info(&format!("{}{{", "a".repeat(159))),
            (Encoding::Gsm7, 2, 161)
        );
        for c in ['^', '{', '}', '[', ']', '~', '|', '\\', '€'] {
            assert_eq!(info(&c.to_string()).2, 2, "{c}");
        }
    }

    #[test]
    fn one_non_gsm_character_makes_it_ucs2_70_then_67() {
        assert_eq!(info(&"é".repeat(70)), (Encoding::Gsm7, 1, 70));
        assert_eq!(
            info(&format!("{}ő", "a".repeat(69))),
            (Encoding::Ucs2, 1, 70)
        );
        assert_eq!(
            info(&format!("{}ő", "a".repeat(70))),
            (Encoding::Ucs2, 2, 71)
        );
        assert_eq!(info(&"ő".repeat(134)), (Encoding::Ucs2, 2, 134));
        assert_eq!(info(&"ő".repeat(135)), (Encoding::Ucs2, 3, 135));
    }

    #[test]
    fn emoji_count_as_two_utf16_units() {
        let i = segment_info(&"🙏".repeat(35));
        assert_eq!(
            (i.encoding, i.segments, i.units, i.characters),
            (Encoding::Ucs2, 1, 70, 35)
        );
        assert_eq!(segment_info(&"🙏".repeat(36)).segments, 2);
    }

    #[test]
    fn limits_are_enforced_with_reasons() {
        assert_eq!(MessageText::parse("  \n"), Err(MessageTextError::Empty));
        assert_eq!(
            MessageText::parse(&"a".repeat(1601)),
            Err(MessageTextError::TooLong { characters: 1601 })
        );
        // 1,600 GSM characters fit in 11 parts of 153 — one too many.
        assert_eq!(
            MessageText::parse(&"a".repeat(1600)),
            Err(MessageTextError::TooManySegments { segments: 11 })
        );
        assert_eq!(
            MessageText::parse(&"a".repeat(1530))
                .unwrap()
                .segment_info()
                .segments,
            10
        );
        assert_eq!(
            MessageText::parse("Service at 10am").unwrap().as_str(),
            "Service at 10am"
        );
    }
}
