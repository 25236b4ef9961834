//! Domain types that exist only in valid form: parse at the edge, trust inside.

pub mod ids;
pub mod message_text;
pub mod phone;

pub use ids::{
    AdminId, BranchId, ChurchId, ConversationId, GroupId, MediaId, MemberId, MessageId,
    RecurringId, TemplateId,
};
pub use message_text::{Encoding, MessageText, MessageTextError, SegmentInfo};
pub use phone::{PhoneNumber, PhoneNumberError};
