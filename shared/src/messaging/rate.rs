//! The one delivery rate: a message's (history, detail), a day's, a
//! branch's and the church's (analytics) are all this function of the same
//! two counts, so the frontend's pages agree with each other.

/// Of the texts that reached an outcome, the share delivered: delivered ÷
/// (delivered + failed), in percent with one decimal; 0 while none has.
///
/// Why this denominator: it is the one both kinds of figures count alike.
/// A message's counters hold the recipients *in* each state now; the day
/// and branch figures count moves *into* a state. Only the final outcomes,
/// delivered and failed, mean the same in both. Opted-out members were
/// never sent anything; texts still queued, sending or sent (awaiting their
/// receipt) have no outcome yet; an uncertain one (redelivered after a
/// crash, never resent) has none we know. None of those counts for or
/// against the rate.
pub fn delivery_rate(delivered: i64, failed: i64) -> f64 {
    let reached = delivered + failed;
    if reached <= 0 {
        0.0
    } else {
        (delivered as f64 * 1000.0 / reached as f64).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::delivery_rate;

    #[test]
    fn nothing_reached_an_outcome_is_zero() {
        assert_eq!(delivery_rate(0, 0), 0.0);
    }

    #[test]
    fn it_is_delivered_over_delivered_and_failed_to_one_decimal() {
        assert_eq!(delivery_rate(19, 0), 100.0);
        assert_eq!(delivery_rate(0, 4), 0.0);
        assert_eq!(delivery_rate(2, 1), 66.7);
        assert_eq!(delivery_rate(1, 2), 33.3);
        assert_eq!(delivery_rate(999, 1), 99.9);
    }

    #[test]
    fn a_message_and_its_day_agree() {
        // 12 recipients: 11 delivered, 1 opted out (never sent): 100%, not 11/12.
        assert_eq!(delivery_rate(11, 0), 100.0);
    }
}
