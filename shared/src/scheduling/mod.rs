//! Time-driven sending: recurring messages, scheduled one-off sends, the
//! cron job that fires what is due, and the church's quiet hours.

pub mod cron;
pub mod due;
pub mod quiet_hours;
pub mod recurrence;
pub mod recurring;
