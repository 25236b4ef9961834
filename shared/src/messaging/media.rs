//! What an MMS may carry, as Telnyx and the carriers accept it.

/// Telnyx accepts at most 10 media files per MMS …
pub const MAX_MEDIA_PER_MESSAGE: usize = 10;
/// … and at most 1 MB of media in all.
pub const MAX_MEDIA_BYTES: u64 = 1_048_576;
/// The kinds of media carriers deliver by MMS.
pub const MEDIA_TYPES: [&str; 10] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "video/mp4",
    "video/3gpp",
    "audio/mpeg",
    "audio/mp3",
    "text/vcard",
    "text/x-vcard",
    "application/pdf",
];

/// What the inbox shows a file as (the frontend's `mediaType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Audio,
    Document,
}

impl MediaKind {
    /// The kind of a file by its content type, if it is one a church may
    /// receive or send in a conversation; anything else (SMIL layouts,
    /// executables, archives) is refused.
    pub fn of(content_type: &str) -> Option<Self> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "image/jpeg" | "image/jpg" | "image/png" | "image/gif" | "image/bmp" | "image/webp"
            | "image/heic" | "image/heif" => Some(Self::Image),
            "video/mp4" | "video/3gpp" | "video/3gpp2" | "video/quicktime" | "video/h264" => {
                Some(Self::Video)
            }
            "audio/mpeg" | "audio/mp3" | "audio/mp4" | "audio/aac" | "audio/amr" | "audio/wav"
            | "audio/x-wav" | "audio/ogg" | "audio/3gpp" => Some(Self::Audio),
            "application/pdf" | "text/vcard" | "text/x-vcard" | "text/calendar" => {
                Some(Self::Document)
            }
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
        }
    }

    /// Telnyx resizes images and videos to fit a carrier's MMS limit (with
    /// `mms_transcoding` on the messaging profile); other files must fit as they are.
    pub fn transcodable(self) -> bool {
        matches!(self, Self::Image | Self::Video)
    }
}

/// The largest file a conversation takes in either direction (the
/// frontend's limit for reply-with-media, and the cap on an inbound copy).
pub const MAX_CONVERSATION_FILE_BYTES: u64 = 5 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::MediaKind;

    #[test]
    fn kinds_follow_the_content_type_and_refuse_the_rest() {
        assert_eq!(MediaKind::of("image/JPEG"), Some(MediaKind::Image));
        assert_eq!(
            MediaKind::of("video/mp4; codecs=avc1"),
            Some(MediaKind::Video)
        );
        assert_eq!(MediaKind::of("audio/amr"), Some(MediaKind::Audio));
        assert_eq!(MediaKind::of("application/pdf"), Some(MediaKind::Document));
        for refused in [
            "application/smil",
            "application/x-msdownload",
            "text/html",
            "",
        ] {
            assert_eq!(MediaKind::of(refused), None, "{refused}");
        }
    }
}
