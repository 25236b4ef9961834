//! Every key of the single table, built in one place.
//!
//! Tenant data lives under `CHURCH#{churchId}`, and the church id always
//! comes from the verified token, never from a request's body or path — so
//! another church's ids simply find nothing.
//!
//! ## Access patterns
//!
//! | pattern | key condition | index | example |
//! |---|---|---|---|
//! | church profile | pk = `CHURCH#c`, sk = `PROFILE` | table | plan, time zone, sealed EIN, sending number |
//! | church counters | pk = `CHURCH#c`, sk = `COUNTERS` | table | ADD `members` 1 in the member's transaction, with the plan limit as its condition; `messages#2026-11`, `conversations_open` |
//! | admin | pk = `CHURCH#c`, sk = `ADMIN#a` | table | |
//! | admins of a church | pk = `CHURCH#c`, sk begins_with `ADMIN#` | table | co-admin list |
//! | login email → admin | pk = `EMAIL#e`, sk = `EMAIL` | table | `EMAIL#ruth@grace.org`; conditional put keeps emails unique |
//! | sessions of an admin | pk = `ADMIN#a`, sk begins_with `SESSION#` | table | revoke all on refresh-token reuse |
//! | password-reset token | pk = `RESET#sha256`, sk = `RESET` | table | TTL one hour; deleted when used |
//! | login failures in a window | pk = `THROTTLE#scope#id`, sk = `WINDOW#t` | table | TTL removes old windows |
//! | requests of a church in a minute | pk = `RATE#c`, sk = `MINUTE#m` | table | TTL two minutes |
//! | onboarding task done | pk = `CHURCH#c`, sk = `ONBOARDING#task` | table | the dashboard's checklist |
//! | branches / groups of a church | pk = `CHURCH#c`, sk begins_with `BRANCH#` / `GROUP#` | table | |
//! | a branch's delivery figures | pk = `CHURCH#c`, sk = `BRANCHSTATS#b` | table | apart from the branch, so a late receipt never revives a deleted one |
//! | message templates of a church | pk = `CHURCH#c`, sk begins_with `TEMPLATE#` | table | its own, at most 200 (counter `templates`); the built-in ones live in code |
//! | sends of one text | pk = `CHURCH#c`, sk = `TEMPLATEUSE#sha256` | table | a template's "used N times": ADD 1 after a send of exactly its text |
//! | join keyword → group | pk = `CHURCH#c`, sk = `KEYWORD#SING` | table | unique per church |
//! | member | pk = `CHURCH#c`, sk = `MEMBER#m` | table | phone sealed |
//! | phone → member (one per church) | pk = `CHURCH#c`, sk = `PHONE#hmac` | table | inbound texts find the member by the HMAC of the E.164 number |
//! | members by name | gsi1pk = `CHURCH#c#NAME`, gsi1sk begins_with `ruth b` | GSI1 | directory pages, first-name search |
//! | members by last name | gsi2pk = `CHURCH#c#LASTNAME`, gsi2sk begins_with `boaz` | GSI2 | last-name search |
//! | members of a branch / group | pk = `CHURCH#c`, sk begins_with `IN#BRANCH#b#` / `IN#GROUP#g#` | table | broadcast audiences, a page at a time |
//! | a group's welcome sent to a member | pk = `CHURCH#c`, sk = `WELCOME#g#m` | table | put once: a welcome is never sent twice |
//! | sending number → church | pk = `NUMBER#+15551234567`, sk = `NUMBER` | table | routes inbound texts; unique across churches |
//! | a number's send schedule | pk = `PACE#+15551234567`, sk = `PACE` | table | the theoretical arrival time of its next send |
//! | uploaded media | pk = `CHURCH#c`, sk = `MEDIA#id` | table | content type, size, blob key `churches/c/media/id` |
//! | broadcast (message) | pk = `CHURCH#c`, sk = `MSG#id` | table | what was sent to whom; history is sk begins_with `MSG#`, newest first |
//! | a message's counts | pk = `CHURCH#c`, sk = `COUNTS#id` | table | per status; written only by the counts aggregator, from the change stream |
//! | a send request already accepted | pk = `CHURCH#c`, sk = `IDEMP#sha256` | table | `Idempotency-Key` → the message it made; TTL one day |
//! | recipients of a message | pk = `MSG#id` and `MSG#id#nn` (its lanes), sk begins_with `RCPT#` | table | their own partitions, never the church's; a lane per ~125 write units a second of the number's speed |
//! | what the aggregator counted | pk = `MSG#id`, sk = `TALLY#block` | table | each recipient's last counted state and version, 256 to an item: makes a redelivered change count once |
//! | carrier id → recipient | gsi1pk = `CARRIER#telnyx-id`, gsi1sk = `RCPT` | GSI1 | receipts find their recipient |
//! | receipt before its send was recorded | pk = `EARLY#telnyx-id`, sk = `RECEIPT` | table | the sender reads a job's in one BatchGetItem; TTL 2 days |
//! | a church's day | pk = `CHURCH#c`, sk = `DAY#2026-11-25` | table | sent / delivered / failed / opted out that UTC day: analytics, never a scan |
//! | days of a church | pk = `CHURCH#c`, sk between `DAY#first` and `DAY#last` | table | analytics' trend |
//! | conversation (one per phone per church) | pk = `CHURCH#c`, sk = `CONV#id` | table | `status`, `unreadCount`, `messageCount` (the thread's total) |
//! | phone → conversation | pk = `CHURCH#c`, sk = `CONVPHONE#hmac` | table | put once with the conversation; a new member's phone links it |
//! | inbox by status, newest activity first | gsi2pk = `CONVS#c#open`, gsi2sk = `lastMessageAt#id` | GSI2 | totals from counters `conversations_<status>` |
//! | a thread, newest first | pk = `CONV#id`, sk begins_with `CMSG#` | table | files (`media`) and reactions live on the message item |
//! | inbound text applied | pk = `INBOUND#telnyx-id`, sk = `INBOUND` | table | TTL 7 days; names the follow-ups a retry re-queues |
//! | consent of a phone | pk = `CHURCH#c`, sk begins_with `CONSENT#hmac#` | table | every STOP/START/HELP with its time |
//! | conversation files | S3 `churches/c/conversations/id/message-n` | bucket | inbound copies and reply-with-media uploads |
//! | recurring message | pk = `CHURCH#c`, sk = `RECUR#r` | table | the list is sk begins_with `RECUR#` |
//! | what is due, by time | gsi1pk = `DUE#shard` (0–3), gsi1sk = `2026-12-06T14:00:00Z#RECUR#c#r` (or `#MSG#c#m`) | GSI1 | the cron's key query `gsi1sk <= now`: only active recurring messages and scheduled sends carry it |
//! | the health probe | pk = `HEALTH`, sk = `HEALTH` | table | `/health` reads it; never written |
//!
//! Hot partitions: a church's partition takes its profile, counters, admins,
//! branches, groups, members and memberships. DynamoDB sustains 1,000 write
//! units/s per partition key; a 10,000-row import writes ~20,000 items in
//! ~230 transactions (10 writes/s per item written twice over the import's
//! seconds), far below it. The counters item is the hottest single item:
//! one write per member added, so an import of 45-row chunks costs one
//! counter write per chunk. The per-minute request counter (`RATE#c`) is its
//! own partition so API traffic never competes with directory writes.
//! A broadcast adds one write to the church's partition beside its message,
//! its counters and its day: the conditional usage ADD of its text (a write
//! unit even when no template has the text and the condition fails).
//! Per-recipient writes of a broadcast go to the message's own partitions
//! (its lanes), never to the church's, and no counter is written beside
//! them: the counts aggregator writes each counter once per stream batch.

use crate::domain::{
    AdminId, BranchId, ChurchId, ConversationId, GroupId, MediaId, MemberId, MessageId,
    PhoneNumber, RecurringId, TemplateId,
};
use crate::ports::table::Key;

pub fn church(church: ChurchId) -> String {
    format!("CHURCH#{church}")
}

pub fn church_profile(church_id: ChurchId) -> Key {
    Key::new(church(church_id), "PROFILE")
}

pub fn church_counters(church_id: ChurchId) -> Key {
    Key::new(church(church_id), "COUNTERS")
}

pub const ADMIN_PREFIX: &str = "ADMIN#";

pub fn admin(church_id: ChurchId, admin: AdminId) -> Key {
    Key::new(church(church_id), format!("{ADMIN_PREFIX}{admin}"))
}

/// Login emails are unique across all churches; the key holds the lower-cased address.
pub fn email(address: &str) -> Key {
    let pk = format!("EMAIL#{}", address.to_lowercase());
    Key::new(pk, "EMAIL")
}

pub const SESSION_PREFIX: &str = "SESSION#";

pub fn sessions(admin: AdminId) -> String {
    format!("ADMIN#{admin}")
}

pub fn session(admin: AdminId, session: &str) -> Key {
    Key::new(sessions(admin), format!("{SESSION_PREFIX}{session}"))
}

/// A fixed window of login failures for one email (hashed) or one client IP.
pub fn throttle(scope: &str, id: &str, window_start: i64) -> Key {
    Key::new(
        format!("THROTTLE#{scope}#{id}"),
        format!("WINDOW#{window_start}"),
    )
}

pub const BRANCH_PREFIX: &str = "BRANCH#";

pub fn branch(church_id: ChurchId, branch: BranchId) -> Key {
    Key::new(church(church_id), format!("{BRANCH_PREFIX}{branch}"))
}

pub const MEMBER_PREFIX: &str = "MEMBER#";

pub fn member(church_id: ChurchId, member: MemberId) -> Key {
    Key::new(church(church_id), format!("{MEMBER_PREFIX}{member}"))
}

/// One member per phone per church: the claim is keyed by the phone's HMAC.
pub fn phone_claim(church_id: ChurchId, phone_hash: &str) -> Key {
    Key::new(church(church_id), format!("PHONE#{phone_hash}"))
}

/// GSI1 partition of a church's members, sorted by "first last".
pub fn members_by_first_name(church_id: ChurchId) -> String {
    format!("CHURCH#{church_id}#NAME")
}

/// GSI2 partition of a church's members, sorted by "last first".
pub fn members_by_last_name(church_id: ChurchId) -> String {
    format!("CHURCH#{church_id}#LASTNAME")
}

/// Lower-cased, single-spaced: the form names are indexed and searched in.
pub fn name_key(first: &str, second: &str) -> String {
    format!("{first} {second}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// A member's place in a branch or group: `IN#BRANCH#b#m`, `IN#GROUP#g#m`.
pub fn membership(church_id: ChurchId, container: &str, member: MemberId) -> Key {
    Key::new(church(church_id), format!("IN#{container}#{member}"))
}

pub fn memberships_prefix(container: &str) -> String {
    format!("IN#{container}#")
}

pub fn branch_container(branch: BranchId) -> String {
    format!("BRANCH#{branch}")
}

pub fn group_container(group: GroupId) -> String {
    format!("GROUP#{group}")
}

pub const GROUP_PREFIX: &str = "GROUP#";

pub fn group(church_id: ChurchId, group: GroupId) -> Key {
    Key::new(church(church_id), format!("{GROUP_PREFIX}{group}"))
}

pub const TEMPLATE_PREFIX: &str = "TEMPLATE#";

/// One of a church's own message templates.
pub fn template(church_id: ChurchId, template: TemplateId) -> Key {
    Key::new(church(church_id), format!("{TEMPLATE_PREFIX}{template}"))
}

/// How many of a church's sends carried one text, by the SHA-256 of the
/// text (what a template's usage count reads).
pub fn template_usage(church_id: ChurchId, content_hash: &str) -> Key {
    Key::new(church(church_id), format!("TEMPLATEUSE#{content_hash}"))
}

/// A church's join keyword, claimed once per church (upper-cased).
pub fn keyword_claim(church_id: ChurchId, keyword: &str) -> Key {
    Key::new(church(church_id), format!("KEYWORD#{keyword}"))
}

/// The claim that routes texts to `number` to its church.
pub fn number_claim(number: &PhoneNumber) -> Key {
    Key::new(format!("NUMBER#{}", number.as_e164()), "NUMBER")
}

/// The schedule of sends from one number (its pacing).
pub fn pace(number: &PhoneNumber) -> Key {
    Key::new(format!("PACE#{}", number.as_e164()), "PACE")
}

/// A password-reset token, by the SHA-256 of the token mailed.
pub fn password_reset(token_hash: &str) -> Key {
    Key::new(format!("RESET#{token_hash}"), "RESET")
}

/// The requests of a church in one minute (Unix minutes).
pub fn request_window(church: ChurchId, minute: i64) -> Key {
    Key::new(format!("RATE#{church}"), format!("MINUTE#{minute}"))
}

/// An onboarding task an admin has done.
pub fn onboarding_task(church_id: ChurchId, task: &str) -> Key {
    Key::new(church(church_id), format!("ONBOARDING#{task}"))
}

/// A group's welcome to a member: put once, so it is sent once.
pub fn welcome_sent(church_id: ChurchId, group: GroupId, member: MemberId) -> Key {
    Key::new(church(church_id), format!("WELCOME#{group}#{member}"))
}

/// A file uploaded for an MMS.
pub fn media(church_id: ChurchId, media: MediaId) -> Key {
    Key::new(church(church_id), format!("MEDIA#{media}"))
}

pub const MESSAGE_PREFIX: &str = "MSG#";

/// A broadcast (or reply) with its per-status counters.
pub fn message(church_id: ChurchId, message: MessageId) -> Key {
    Key::new(church(church_id), format!("{MESSAGE_PREFIX}{message}"))
}

pub const RECURRING_PREFIX: &str = "RECUR#";

pub fn recurring(church_id: ChurchId, recurring: RecurringId) -> Key {
    Key::new(church(church_id), format!("{RECURRING_PREFIX}{recurring}"))
}

/// A send request already accepted, by the SHA-256 of its idempotency key.
pub fn idempotency(church_id: ChurchId, key_hash: &str) -> Key {
    Key::new(church(church_id), format!("IDEMP#{key_hash}"))
}

/// One of the partitions holding a message's recipients. A message has
/// `lanes` of them (`Message::lanes`), so a fast number's writes spread
/// over several partition keys: DynamoDB takes at most ~1,000 write units
/// a second on one. Lane 0 is the message's own partition (and the only
/// one of a message sent before lanes).
pub fn recipients(message: MessageId, lane: u32) -> String {
    match lane {
        0 => format!("{MESSAGE_PREFIX}{message}"),
        n => format!("{MESSAGE_PREFIX}{message}#{n:02}"),
    }
}

pub const RECIPIENT_PREFIX: &str = "RCPT#";

/// A member's lane among `lanes`.
pub fn lane_of(member: MemberId, lanes: u32) -> u32 {
    member.bucket(lanes)
}

pub fn recipient(message: MessageId, lane: u32, member: MemberId) -> Key {
    Key::new(
        recipients(message, lane),
        format!("{RECIPIENT_PREFIX}{member}"),
    )
}

/// What the counts aggregator has counted of 256 of a message's recipients
/// (`messaging::tally`), in the message's own partition.
pub fn tally(message: MessageId, block: u64) -> Key {
    Key::new(recipients(message, 0), format!("TALLY#{block:08}"))
}

/// A message's counts per status, written by the counts aggregator only.
pub fn message_counts(church_id: ChurchId, message: MessageId) -> Key {
    Key::new(church(church_id), format!("COUNTS#{message}"))
}

/// GSI1 partition that finds a recipient from the carrier's message id.
pub fn carrier_message(carrier_id: &str) -> String {
    format!("CARRIER#{carrier_id}")
}

/// A receipt that arrived before its send was recorded.
pub fn early_receipt(carrier_id: &str) -> Key {
    Key::new(format!("EARLY#{carrier_id}"), "RECEIPT")
}

pub const DAY_PREFIX: &str = "DAY#";

/// The church's figures for one UTC day (`2026-11-25`).
pub fn day(church_id: ChurchId, day: &str) -> Key {
    Key::new(church(church_id), format!("{DAY_PREFIX}{day}"))
}

/// A branch's delivery figures.
pub fn branch_stats(church_id: ChurchId, branch: BranchId) -> Key {
    Key::new(church(church_id), format!("BRANCHSTATS#{branch}"))
}

pub fn conversation(church_id: ChurchId, id: ConversationId) -> Key {
    Key::new(church(church_id), format!("CONV#{id}"))
}

/// Which conversation a phone (by its HMAC) has with a church.
pub fn phone_conversation(church_id: ChurchId, phone_hash: &str) -> Key {
    Key::new(church(church_id), format!("CONVPHONE#{phone_hash}"))
}

/// The partition holding one conversation's messages.
pub fn thread(conversation: ConversationId) -> String {
    format!("CONV#{conversation}")
}

pub const THREAD_MESSAGE_PREFIX: &str = "CMSG#";

pub fn thread_message(conversation: ConversationId, message: MessageId) -> Key {
    Key::new(
        thread(conversation),
        format!("{THREAD_MESSAGE_PREFIX}{message}"),
    )
}

/// An inbound text already applied, by Telnyx's id.
pub fn inbound(carrier_id: &str) -> Key {
    Key::new(format!("INBOUND#{carrier_id}"), "INBOUND")
}

/// One keyword a phone texted: the proof of its consent.
pub fn consent(church_id: ChurchId, phone_hash: &str, at: &str, id: MessageId) -> Key {
    Key::new(church(church_id), format!("CONSENT#{phone_hash}#{at}#{id}"))
}

/// GSI2 partition listing a church's conversations in one status.
pub fn conversations_by_status(church_id: ChurchId, status: &str) -> String {
    format!("CONVS#{church_id}#{status}")
}

/// GSI2 sort key of a conversation: its last activity, then its id.
pub fn conversation_activity(at: &str, id: ConversationId) -> String {
    format!("{at}#{id}")
}

/// The item `/health` reads to prove the table answers.
pub fn health_probe() -> Key {
    Key::new("HEALTH", "HEALTH")
}
