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
