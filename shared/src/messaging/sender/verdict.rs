//! What the carrier's answer means for a claimed text, and when a job
//! with retryable failures comes back: pure functions, tested here.

use std::time::Duration;

use super::MAX_ATTEMPTS;
use crate::messaging::entities::{RECIPIENT_KIND, THREAD_MESSAGE_KIND};
use crate::messaging::model::{Mark, Status};
use crate::ports::carrier::{CarrierError, SentMessage};

/// What the carrier-id index entry of a sent text points at, so a receipt
/// finds its way back: a broadcast recipient or a thread message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Recipient,
    ThreadMessage,
}

impl Sent {
    fn index_kind(self) -> &'static str {
        match self {
            Sent::Recipient => RECIPIENT_KIND,
            Sent::ThreadMessage => THREAD_MESSAGE_KIND,
        }
    }
}

/// Where a claimed text moves, what to record on it, and — for a
/// retryable error — the least wait before the retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub to: Status,
    pub marks: Vec<Mark>,
    pub retry_after: Option<Duration>,
}

impl Verdict {
    /// Failed for good with `code`, without asking the carrier again.
    pub fn failed(code: &str) -> Self {
        Self::settled(Status::Failed, code)
    }

    fn settled(to: Status, code: &str) -> Self {
        Self {
            to,
            marks: vec![Mark::ErrorCode(code.to_owned())],
            retry_after: None,
        }
    }

    /// The carrier's id, once it accepted the text.
    pub fn carrier_id(&self) -> Option<&str> {
        self.marks.iter().find_map(|m| match m {
            Mark::Carrier { id, .. } => Some(id.as_str()),
            _ => None,
        })
    }
}

/// Where the carrier's answer moves a claimed text; `attempt` is the SQS
/// receive count, past [`MAX_ATTEMPTS`] a retryable error fails it.
pub fn verdict(result: Result<SentMessage, CarrierError>, attempt: u32, kind: Sent) -> Verdict {
    match result {
        Ok(sent) => Verdict {
            to: Status::Sent,
            marks: vec![Mark::Carrier {
                id: sent.carrier_id,
                kind: kind.index_kind(),
            }],
            retry_after: None,
        },
        Err(CarrierError::OptedOut) => Verdict::settled(Status::OptedOut, "40300"),
        Err(CarrierError::Permanent { code, .. }) => Verdict::failed(&code),
        Err(CarrierError::Retryable { code, .. }) if attempt >= MAX_ATTEMPTS => {
            Verdict::failed(&code)
        }
        // Back to queued; the job returns after a backoff.
        Err(CarrierError::Retryable { code, retry_after }) => Verdict {
            retry_after: Some(retry_after.unwrap_or_default()),
            ..Verdict::settled(Status::Queued, &code)
        },
    }
}

/// When a job with retryable failures comes back: exponential in the
/// attempt (1, 2, 4 … 60 s) with full jitter, never before the carrier's reset.
pub fn backoff(attempt: u32, at_least: Option<Duration>) -> Duration {
    use rand::Rng;
    let cap = 1u64 << attempt.clamp(1, 6);
    let jittered = Duration::from_millis(rand::rng().random_range(500..=cap.min(60) * 1000));
    jittered.max(at_least.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, StatusCode};
    use serde_json::json;

    use super::*;
    use crate::telnyx::client::outcome;

    /// What the sender makes of a Telnyx answer, on the `attempt`-th receive.
    fn telnyx_says(status: u16, code: &str, headers: HeaderMap, attempt: u32) -> Verdict {
        let body = json!({ "errors": [{ "code": code, "title": "from Telnyx" }] }).to_string();
        let status = StatusCode::from_u16(status).unwrap();
        verdict(
            outcome(status, &headers, body.as_bytes()),
            attempt,
            Sent::Recipient,
        )
    }

    fn error_code(v: &Verdict) -> Option<&str> {
        v.marks.iter().find_map(|m| match m {
            Mark::ErrorCode(code) => Some(code.as_str()),
            _ => None,
        })
    }

    #[test]
    fn an_accepted_text_is_sent_and_indexed_for_its_receipts() {
        let sent = SentMessage {
            carrier_id: "b0c7e8cb-6227-4c74-9f32-c7f80c30934b".into(),
            parts: 1,
        };
        let v = verdict(Ok(sent.clone()), 1, Sent::ThreadMessage);
        assert_eq!(v.to, Status::Sent);
        assert_eq!(v.retry_after, None);
        assert_eq!(v.carrier_id(), Some(sent.carrier_id.as_str()));
        let indexed_as = |v: &Verdict| {
            v.marks.iter().find_map(|m| match m {
                Mark::Carrier { id, kind } => Some((id.clone(), *kind)),
                _ => None,
            })
        };
        assert_eq!(indexed_as(&v), Some((sent.carrier_id.clone(), "CMSG")));
        let v = verdict(Ok(sent.clone()), 1, Sent::Recipient);
        assert_eq!(indexed_as(&v), Some((sent.carrier_id, "RCPT")));
    }

    #[test]
    fn a_429_goes_back_to_queued_and_waits_for_the_carriers_reset() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("7"));
        let v = telnyx_says(429, "10011", headers, 1);
        assert_eq!(v.to, Status::Queued);
        assert_eq!(error_code(&v), Some("10011"));
        assert_eq!(v.retry_after, Some(Duration::from_secs(7)));
        for attempt in 1..=MAX_ATTEMPTS {
            assert!(backoff(attempt, v.retry_after) >= Duration::from_secs(7));
        }
    }

    #[test]
    fn a_429_without_a_reset_is_still_retried() {
        let v = telnyx_says(429, "10011", HeaderMap::new(), 2);
        assert_eq!(v.to, Status::Queued);
        assert_eq!(v.retry_after, Some(Duration::ZERO));
    }

    #[test]
    fn carrier_faults_and_temporary_refusals_are_retried() {
        for (status, code) in [
            (500, "10007"),
            (503, "10007"),
            (400, "40002"),
            (400, "40006"),
            (400, "40011"),
        ] {
            let v = telnyx_says(status, code, HeaderMap::new(), 1);
            assert_eq!(v.to, Status::Queued, "{status} {code}");
            assert_eq!(error_code(&v), Some(code));
            assert!(v.retry_after.is_some(), "{status} {code}");
        }
    }

    #[test]
    fn a_40300_is_an_opt_out_never_retried() {
        let v = telnyx_says(409, "40300", HeaderMap::new(), 1);
        assert_eq!(v.to, Status::OptedOut);
        assert_eq!(error_code(&v), Some("40300"));
        assert_eq!(v.retry_after, None);
    }

    #[test]
    fn permanent_refusals_fail_the_recipient_at_once() {
        for code in [
            "10016", "40305", "40310", "40001", "40003", "40004", "40005", "40008", "40012",
            "40013", "40014",
        ] {
            let v = telnyx_says(400, code, HeaderMap::new(), 1);
            assert_eq!(v.to, Status::Failed, "{code}");
            assert_eq!(error_code(&v), Some(code));
            assert_eq!(v.retry_after, None, "{code}");
        }
    }

    #[test]
    fn a_retryable_error_on_the_last_attempt_fails_the_recipient() {
        let v = telnyx_says(500, "10007", HeaderMap::new(), MAX_ATTEMPTS);
        assert_eq!(v.to, Status::Failed);
        assert_eq!(error_code(&v), Some("10007"));
        assert_eq!(v.retry_after, None);
        let timeout = CarrierError::Retryable {
            code: "timeout".into(),
            retry_after: None,
        };
        assert_eq!(
            verdict(Err(timeout.clone()), MAX_ATTEMPTS - 1, Sent::Recipient).to,
            Status::Queued
        );
        assert_eq!(
            verdict(Err(timeout), MAX_ATTEMPTS, Sent::Recipient).to,
            Status::Failed
        );
    }

    #[test]
    fn backoff_grows_with_the_attempt_and_stops_at_a_minute() {
        for _ in 0..200 {
            let first = backoff(1, None);
            assert!((Duration::from_millis(500)..=Duration::from_secs(2)).contains(&first));
            let third = backoff(3, None);
            assert!((Duration::from_millis(500)..=Duration::from_secs(8)).contains(&third));
            let late = backoff(30, None);
            assert!((Duration::from_millis(500)..=Duration::from_secs(60)).contains(&late));
        }
    }

    #[test]
    fn backoff_is_jittered() {
        let waits: std::collections::HashSet<_> = (0..50).map(|_| backoff(6, None)).collect();
        assert!(waits.len() > 1, "every retry would come back at once");
    }

    #[test]
    fn backoff_never_comes_back_before_the_carriers_reset() {
        let reset = Some(Duration::from_secs(90));
        for attempt in [1, 3, 6, 10] {
            assert_eq!(backoff(attempt, reset), Duration::from_secs(90));
        }
    }
}
