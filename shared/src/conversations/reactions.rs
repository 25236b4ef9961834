//! The church's reactions on a conversation's messages (❤️ 👍 👎 😂 😮 😢).
//!
//! A reaction lives in the inbox only: SMS has no reactions, and texting a
//! member "Loved …" for every tap would be noise they pay for. Reactions
//! are a list on the message item, changed with optimistic concurrency
//! (`reactionsVersion`), so two admins tapping at once both land.

use serde_json::{Value, json};

use super::ConversationError;
use super::model::ThreadMessage;
use crate::domain::{ChurchId, ConversationId, MessageId};
use crate::keys;
use crate::ports::table::{Table, TableError};

/// The emoji the inbox offers, as the frontend sends them.
pub const EMOJI: [&str; 6] = ["❤️", "👍", "👎", "😂", "😮", "😢"];

/// Who reacted, as the frontend reads it.
const CHURCH: &str = "church";

/// Tries before a busy message's reactions give up (each loses only to a
/// concurrent change, so this is never reached in practice).
const ATTEMPTS: usize = 5;

/// One of [`EMOJI`]; a heart without its variation selector counts too.
pub fn parse_emoji(raw: &str) -> Option<&'static str> {
    let raw = raw.trim();
    let bare = |e: &str| e.trim_end_matches('\u{fe0f}').to_owned();
    EMOJI.iter().copied().find(|e| bare(e) == bare(raw))
}

/// Rewrites the message's reactions with `change`, retrying on a race.
/// `change` answers the value to return, and `None` when nothing changes.
async fn change<T>(
    table: &dyn Table,
    church: ChurchId,
    conversation: ConversationId,
    id: MessageId,
    change: impl Fn(&mut Vec<Value>) -> (T, bool),
) -> Result<T, ConversationError> {
    for _ in 0..ATTEMPTS {
        let message = super::inbox::message(table, church, conversation, id).await?;
        let mut reactions = message.reactions;
        let (answer, changed) = change(&mut reactions);
        if !changed {
            return Ok(answer);
        }
        let (update, unchanged) = ThreadMessage::react(reactions, message.reactions_version);
        match table
            .update(
                &keys::thread_message(conversation, id),
                update,
                Some(unchanged),
            )
            .await
        {
            Ok(_) => return Ok(answer),
            Err(TableError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(TableError::Invalid("the message's reactions kept changing; try again".into()).into())
}

fn is_churchs(reaction: &Value, emoji: &str) -> bool {
    reaction["emoji"] == emoji && reaction["reactedBy"] == CHURCH
}

/// The church reacts with `emoji` (once: reacting again answers the same reaction).
pub async fn add(
    table: &dyn Table,
    church: ChurchId,
    conversation: ConversationId,
    id: MessageId,
    emoji: &'static str,
    now: &str,
) -> Result<Value, ConversationError> {
    change(table, church, conversation, id, |reactions| {
        if let Some(existing) = reactions.iter().find(|r| is_churchs(r, emoji)) {
            return (existing.clone(), false);
        }
        let reaction = json!({
            "id": MessageId::generate(), "emoji": emoji, "reactedBy": CHURCH, "createdAt": now,
        });
        reactions.push(reaction.clone());
        (reaction, true)
    })
    .await
}

/// Takes the church's `emoji` reaction back; whether there was one.
pub async fn remove(
    table: &dyn Table,
    church: ChurchId,
    conversation: ConversationId,
    id: MessageId,
    emoji: &'static str,
) -> Result<bool, ConversationError> {
    change(table, church, conversation, id, |reactions| {
        let before = reactions.len();
        reactions.retain(|r| !is_churchs(r, emoji));
        let removed = reactions.len() != before;
        (removed, removed)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::parse_emoji;

    #[test]
    fn only_the_six_emoji_are_reactions() {
        assert_eq!(parse_emoji("👍"), Some("👍"));
        assert_eq!(parse_emoji(" ❤️ "), Some("❤️"));
        assert_eq!(parse_emoji("❤"), Some("❤️"));
        for refused in ["", "🎉", "like", "👍👍", "❤️❤️"] {
            assert_eq!(parse_emoji(refused), None, "{refused}");
        }
    }
}
