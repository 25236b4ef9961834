//! An admin pauses, resumes or cancels a broadcast. Each is one
//! conditional write of the message's state (`Message::pause/resume/
//! cancel`), so two admins racing, or a cancel racing a pause, leave one
//! state and never half of two; the sender reads that state at each job
//! (`sender/recipients.rs`) and the fan-out at each page.
//!
//! ```text
//! queued | sending ─pause→ paused ─resume→ sending
//! queued | sending | paused (| any state to come) ─cancel→ cancelled
//! ```
//! A message whose recipients all settled (`completed`), one never queued
//! (`failed`) and a cancelled one refuse all three.

use super::entities::{Message, MessageState};
use super::history::{self, Counted, summary_state};
use crate::directory::model::{Counter, Counters};
use crate::domain::{ChurchId, MessageId};
use crate::keys;
use crate::ports::table::{Table, TableError, TxOp};
use crate::store::{Transaction, TransactionError};

/// What an admin asks of a broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
}

/// Why a message refuses a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the message has finished: every recipient was sent or settled")]
    Finished,
    #[error("the message was never queued")]
    NeverQueued,
    #[error("the message was cancelled")]
    Cancelled,
    #[error("the message is paused already")]
    AlreadyPaused,
    #[error("the message is not paused")]
    NotPaused,
    #[error("the message is not sending")]
    NotSending,
}

impl Refusal {
    /// The code a client tells refusals apart by.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Finished => "message_finished",
            Refusal::NeverQueued => "message_failed",
            Refusal::Cancelled => "message_cancelled",
            Refusal::AlreadyPaused => "message_paused",
            Refusal::NotPaused => "message_not_paused",
            Refusal::NotSending => "message_not_sending",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no such message")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the message kept changing; try again")]
    Contended,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// Why `control` may not apply to `counted` as read, if it may not.
pub fn refusal(control: Control, counted: &Counted) -> Option<Refusal> {
    let state = counted.message.status;
    match (summary_state(counted), state) {
        ("completed", _) => Some(Refusal::Finished),
        (_, MessageState::Failed) => Some(Refusal::NeverQueued),
        (_, MessageState::Cancelled) => Some(Refusal::Cancelled),
        (_, MessageState::Missed) => Some(Refusal::Finished),
        _ => match control {
            Control::Pause if state == MessageState::Paused => Some(Refusal::AlreadyPaused),
            Control::Pause if !MessageState::PAUSABLE.contains(&state) => Some(Refusal::NotSending),
            Control::Resume if state != MessageState::Paused => Some(Refusal::NotPaused),
            _ => None,
        },
    }
}

/// Reads and writes before a control racing other changes gives up.
const ATTEMPTS: usize = 3;

/// Applies `control` to the church's message `id`; the message as it is
/// after. A message completed by the counts is refused on the read; the
/// write itself holds only if the state is still one the control may
/// leave, so a state changed in between (another admin, the fan-out's
/// start) is read again and judged anew.
pub async fn apply(
    table: &dyn Table,
    church: ChurchId,
    id: MessageId,
    control: Control,
) -> Result<Counted, ControlError> {
    for _ in 0..ATTEMPTS {
        let counted = read(table, church, id).await?;
        if let Some(refused) = refusal(control, &counted) {
            return Err(refused.into());
        }
        if control == Control::Cancel && counted.message.status == MessageState::Scheduled {
            match cancel_scheduled(table, &counted.message).await {
                Ok(()) => return read(table, church, id).await,
                Err(TransactionError::Cancelled(_)) => continue,
                Err(TransactionError::Table(e)) => return Err(e.into()),
            }
        }
        let (update, allowed) = match control {
            Control::Pause => Message::pause(),
            Control::Resume => Message::resume(),
            Control::Cancel => Message::cancel(),
        };
        match table
            .update(&keys::message(church, id), update, Some(allowed))
            .await
        {
            Ok(_) => return read(table, church, id).await,
            Err(TableError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ControlError::Contended)
}

/// A scheduled send cancelled before its time: the allowance it reserved
/// in the month it was to go out is given back in the same transaction.
async fn cancel_scheduled(
    table: &dyn Table,
    message: &Message,
) -> Result<(), TransactionError<usize>> {
    let (update, cond) = Message::cancel_scheduled();
    let month = message
        .scheduled()
        .map(|at| at.format("%Y-%m").to_string())
        .unwrap_or_default();
    let refund = Counters::default()
        .add(Counter::MessagesIn(&month), -message.total_recipients)
        .op(message.church_id);
    let key = keys::message(message.church_id, message.id);
    Transaction::new()
        .with(
            0,
            TxOp::Update {
                key,
                update,
                cond: Some(cond),
            },
        )
        .with(1, refund)
        .commit(table)
        .await
}

async fn read(table: &dyn Table, church: ChurchId, id: MessageId) -> Result<Counted, ControlError> {
    history::message(table, church, id)
        .await?
        .ok_or(ControlError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::entities::{MessageCounts, StatusCounts};

    fn counted(status: MessageState, counts: StatusCounts) -> Counted {
        let recipients = 10;
        Counted {
            message: Message::sample(status, recipients, "2026-12-01T12:00:00+00:00"),
            counts: MessageCounts { recipients, counts },
        }
    }

    fn halfway() -> StatusCounts {
        StatusCounts {
            sent_count: 5,
            queued_count: 5,
            ..StatusCounts::default()
        }
    }

    #[test]
    fn a_sending_message_pauses_and_cancels_but_does_not_resume() {
        let m = counted(MessageState::Sending, halfway());
        assert_eq!(refusal(Control::Pause, &m), None);
        assert_eq!(refusal(Control::Cancel, &m), None);
        assert_eq!(refusal(Control::Resume, &m), Some(Refusal::NotPaused));
    }

    #[test]
    fn a_paused_message_resumes_and_cancels_but_does_not_pause_again() {
        let m = counted(MessageState::Paused, halfway());
        assert_eq!(refusal(Control::Resume, &m), None);
        assert_eq!(refusal(Control::Cancel, &m), None);
        assert_eq!(refusal(Control::Pause, &m), Some(Refusal::AlreadyPaused));
    }

    #[test]
    fn finished_failed_and_cancelled_messages_refuse_everything() {
        let done = StatusCounts {
            delivered_count: 10,
            ..StatusCounts::default()
        };
        for control in [Control::Pause, Control::Resume, Control::Cancel] {
            let completed = counted(MessageState::Sending, done);
            assert_eq!(refusal(control, &completed), Some(Refusal::Finished));
            let failed = counted(MessageState::Failed, StatusCounts::default());
            assert_eq!(refusal(control, &failed), Some(Refusal::NeverQueued));
            let cancelled = counted(MessageState::Cancelled, halfway());
            assert_eq!(refusal(control, &cancelled), Some(Refusal::Cancelled));
        }
    }

    #[test]
    fn each_refusal_has_its_own_code() {
        let all = [
            Refusal::Finished,
            Refusal::NeverQueued,
            Refusal::Cancelled,
            Refusal::AlreadyPaused,
            Refusal::NotPaused,
            Refusal::NotSending,
        ];
        let codes: std::collections::BTreeSet<_> = all.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), all.len());
    }
}
