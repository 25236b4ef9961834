//! Which code runs for each function of template.yaml.
//!
//! The Lambda binaries and the local stack both look functions up here by
//! their logical id, so a function is wired once for both. A test checks
//! that every function of the template has an entry and a binary.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use crate::app::App;
use crate::handlers::{
    analytics, auth, branches, co_admins, consumers, conversations, cron, dashboard, groups,
    health, members, messages, profile, recurring, templates, webhooks,
};
use crate::http::HttpHandler;
use crate::secrets::SecretUse;

pub type EventError = lambda_runtime::Error;
pub type SqsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SqsBatchResponse, EventError>> + Send + 'a>>;
/// An SQS consumer: returns the messages that failed, which come back after
/// their visibility timeout (`ReportBatchItemFailures`).
pub type SqsHandler = for<'a> fn(&'a App, SqsEvent) -> SqsFuture<'a>;
pub type ScheduleFuture<'a> = Pin<Box<dyn Future<Output = Result<(), EventError>> + Send + 'a>>;
/// A cron job fired by EventBridge Scheduler.
pub type ScheduleHandler =
    for<'a> fn(&'a App, EventBridgeEvent<serde_json::Value>) -> ScheduleFuture<'a>;

pub type StreamFuture<'a> = Pin<Box<dyn Future<Output = Result<(), EventError>> + Send + 'a>>;
/// A reader of the table's change stream: an error gives the batch back to
/// the stream, which delivers it again (bisected, up to its retries).
pub type StreamHandler = for<'a> fn(&'a App, StreamEvent) -> StreamFuture<'a>;

/// Turns `async fn(&App, SqsEvent) -> Result<SqsBatchResponse, E>` (any
/// error) into an [`SqsHandler`].
macro_rules! sqs_handler {
    ($f:path) => {{
        fn boxed<'a>(app: &'a App, event: SqsEvent) -> SqsFuture<'a> {
            Box::pin(async move { $f(app, event).await.map_err(EventError::from) })
        }
        boxed as SqsHandler
    }};
}

#[derive(Clone, Copy)]
pub enum Entry {
    Http(HttpHandler),
    Sqs(SqsHandler),
    Schedule(ScheduleHandler),
    Stream(StreamHandler),
}

#[derive(Clone, Default)]
pub struct Registry {
    entries: HashMap<String, Entry>,
}

impl Registry {
    /// Every function this codebase implements.
    pub fn builtin() -> Self {
        use crate::http_handler as h;
        let http: [(&str, HttpHandler); 68] = [
            ("HealthFunction", h!(health::route)),
            ("CsrfTokenFunction", h!(auth::csrf_token)),
            ("AuthRegisterFunction", h!(auth::register)),
            ("AuthLoginFunction", h!(auth::login)),
            ("AuthRefreshFunction", h!(auth::refresh)),
            ("AuthLogoutFunction", h!(auth::logout)),
            ("AuthMeFunction", h!(auth::me)),
            ("AuthCompleteWelcomeFunction", h!(auth::complete_welcome)),
            ("AuthPasswordResetFunction", h!(auth::password_reset)),
            (
                "AuthPasswordResetConfirmFunction",
                h!(auth::password_reset_confirm),
            ),
            ("MembersListFunction", h!(members::list)),
            ("MembersCreateFunction", h!(members::create)),
            ("MembersUpdateFunction", h!(members::update)),
            ("MembersDeleteFunction", h!(members::delete)),
            ("MembersImportFunction", h!(members::import)),
            ("BranchesListFunction", h!(branches::list)),
            ("BranchesCreateFunction", h!(branches::create)),
            ("BranchesUpdateFunction", h!(branches::update)),
            ("BranchesDeleteFunction", h!(branches::delete)),
            ("GroupsListFunction", h!(groups::list)),
            ("GroupsCreateFunction", h!(groups::create)),
            ("GroupsUpdateFunction", h!(groups::update)),
            ("GroupsDeleteFunction", h!(groups::delete)),
            ("GroupMembersListFunction", h!(groups::members)),
            ("GroupMembersAddFunction", h!(groups::add_member)),
            ("GroupMembersRemoveFunction", h!(groups::remove_member)),
            ("ProfileGetFunction", h!(profile::get)),
            ("ProfilePutFunction", h!(profile::put)),
            ("PhoneNumberLinkFunction", h!(profile::link_number)),
            ("CoAdminsListFunction", h!(co_admins::list)),
            ("CoAdminsCreateFunction", h!(co_admins::create)),
            ("CoAdminsDeleteFunction", h!(co_admins::delete)),
            ("NumbersCurrentFunction", h!(dashboard::current_number)),
            ("BillingTrialFunction", h!(dashboard::trial)),
            ("BillingPlanFunction", h!(dashboard::plan)),
            (
                "OnboardingProgressFunction",
                h!(dashboard::onboarding_progress),
            ),
            (
                "OnboardingCompleteFunction",
                h!(dashboard::onboarding_complete),
            ),
            ("LaterWaveFunction", h!(dashboard::later_wave)),
            ("ConversationsListFunction", h!(conversations::list)),
            ("ConversationThreadFunction", h!(conversations::thread)),
            ("ConversationReplyFunction", h!(conversations::reply)),
            (
                "ConversationReplyMediaFunction",
                h!(conversations::reply_with_media),
            ),
            ("ConversationReactFunction", h!(conversations::react)),
            ("ConversationUnreactFunction", h!(conversations::unreact)),
            ("ConversationReadFunction", h!(conversations::read)),
            ("ConversationStatusFunction", h!(conversations::status)),
            ("MessagesPreviewFunction", h!(messages::preview)),
            ("MediaUploadFunction", h!(messages::upload_url)),
            ("MessagesSendFunction", h!(messages::send)),
            ("MessagesHistoryFunction", h!(messages::history)),
            ("MessagesGetFunction", h!(messages::get)),
            ("MessagesPauseFunction", h!(messages::pause)),
            ("MessagesResumeFunction", h!(messages::resume)),
            ("MessagesCancelFunction", h!(messages::cancel)),
            ("MessagesRecipientsFunction", h!(messages::recipients)),
            ("TemplatesListFunction", h!(templates::list)),
            ("TemplatesCreateFunction", h!(templates::create)),
            ("TemplatesUpdateFunction", h!(templates::update)),
            ("TemplatesDeleteFunction", h!(templates::delete)),
            ("TelnyxWebhookFunction", h!(webhooks::telnyx)),
            ("AnalyticsMessagesFunction", h!(analytics::messages)),
            ("AnalyticsBranchesFunction", h!(analytics::branches)),
            ("AnalyticsSummaryFunction", h!(analytics::summary)),
            ("RecurringListFunction", h!(recurring::list)),
            ("RecurringCreateFunction", h!(recurring::create)),
            ("RecurringUpdateFunction", h!(recurring::update)),
            ("RecurringToggleFunction", h!(recurring::toggle)),
            ("RecurringDeleteFunction", h!(recurring::delete)),
        ];
        let sqs: [(&str, SqsHandler); 3] = [
            ("FanoutConsumerFunction", sqs_handler!(consumers::fanout)),
            ("SendConsumerFunction", sqs_handler!(consumers::send)),
            ("MediaCopyFunction", sqs_handler!(consumers::media)),
        ];
        let registry = http
            .into_iter()
            .fold(Self::default(), |registry, (id, handler)| {
                registry.with(id, Entry::Http(handler))
            });
        fn counts<'a>(app: &'a App, event: StreamEvent) -> StreamFuture<'a> {
            Box::pin(async move {
                consumers::counts(app, event)
                    .await
                    .map_err(EventError::from)
            })
        }
        fn due<'a>(app: &'a App, event: EventBridgeEvent<serde_json::Value>) -> ScheduleFuture<'a> {
            Box::pin(async move {
                cron::due(app, event)
                    .await
                    .map(|_| ())
                    .map_err(EventError::from)
            })
        }
        sqs.into_iter()
            .fold(registry, |registry, (id, handler)| {
                registry.with(id, Entry::Sqs(handler))
            })
            .with(
                "CountsAggregatorFunction",
                Entry::Stream(counts as StreamHandler),
            )
            .with("DueSendsFunction", Entry::Schedule(due as ScheduleHandler))
    }

    /// Adds or replaces an entry (tests add their own consumers).
    pub fn with(mut self, function_id: &str, entry: Entry) -> Self {
        self.entries.insert(function_id.to_owned(), entry);
        self
    }

    pub fn get(&self, function_id: &str) -> Option<Entry> {
        self.entries.get(function_id).copied()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// Functions that need no token secret: they authenticate no admin.
const WITHOUT_TOKENS: [&str; 5] = [
    "HealthFunction",
    "CsrfTokenFunction",
    "LaterWaveFunction",
    "TelnyxWebhookFunction",
    "MediaCopyFunction",
];

/// Functions that seal, open or look up phones and EINs.
const WITH_DATA_KEYS: [&str; 29] = [
    "BranchesCreateFunction",
    "BranchesDeleteFunction",
    "BranchesListFunction",
    "BranchesUpdateFunction",
    "ConversationReadFunction",
    "ConversationReplyFunction",
    "ConversationReplyMediaFunction",
    "ConversationStatusFunction",
    "ConversationThreadFunction",
    "ConversationsListFunction",
    "GroupMembersAddFunction",
    "GroupMembersListFunction",
    "GroupMembersRemoveFunction",
    "GroupsCreateFunction",
    "GroupsDeleteFunction",
    "GroupsListFunction",
    "GroupsUpdateFunction",
    "MembersCreateFunction",
    "MembersDeleteFunction",
    "MembersImportFunction",
    "MembersListFunction",
    "MembersUpdateFunction",
    "MessagesRecipientsFunction",
    "MessagesSendFunction",
    "PhoneNumberLinkFunction",
    "ProfileGetFunction",
    "ProfilePutFunction",
    "SendConsumerFunction",
    "TelnyxWebhookFunction",
];

/// Functions that talk to Telnyx: the sender calls its API, the webhook
/// checks its signatures, linking asks it whose a number is.
const WITH_CARRIER: [&str; 3] = [
    "PhoneNumberLinkFunction",
    "SendConsumerFunction",
    "TelnyxWebhookFunction",
];

/// The secrets a function reads at init; its init fails without them, and
/// template.yaml grants it exactly these (a test holds the two together).
pub fn secrets_of(function_id: &str, entry: Entry) -> Vec<SecretUse> {
    let mut secrets = Vec::new();
    if matches!(entry, Entry::Http(_)) && !WITHOUT_TOKENS.contains(&function_id) {
        secrets.push(SecretUse::Tokens);
    }
    if WITH_DATA_KEYS.contains(&function_id) {
        secrets.push(SecretUse::Data);
    }
    if WITH_CARRIER.contains(&function_id) {
        secrets.push(SecretUse::Carrier);
    }
    secrets
}
