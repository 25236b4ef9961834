//! Business metrics for the dashboard and the carrier alarm, as
//! CloudWatch's embedded metric format (EMF): JSON lines on stdout that
//! CloudWatch Logs turns into metrics in the `Koinonia` namespace — no
//! PutMetricData call on the hot path.
//!
//! An invocation tallies what it saw ([`Tally`]) and writes it once at its
//! end ([`Tally::emf`]): counts as sums, timings as value lists (at most 100
//! a document, EMF's limit). Failures count once in all and once per
//! carrier error code (the `CarrierCode` dimension). Names and units are
//! the ones template.yaml's alarms and dashboard read.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "Koinonia";
/// EMF takes at most 100 values of one metric in one document.
const MAX_VALUES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Count {
    /// The carrier accepted a text.
    SmsSent,
    /// The carrier refused a text when it was sent.
    SmsSendFailed,
    /// A delivery receipt.
    SmsDelivered,
    /// A failed-delivery receipt.
    SmsFailed,
    /// A verified webhook event from Telnyx.
    WebhookEvents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timing {
    /// One `POST /v2/messages`.
    CarrierLatency,
    /// How long a text waited for its number's rate.
    PacingWait,
    /// From the job's enqueue to the sender starting it.
    QueueLag,
}

impl Count {
    fn name(self) -> &'static str {
        match self {
            Count::SmsSent => "SmsSent",
            Count::SmsSendFailed => "SmsSendFailed",
            Count::SmsDelivered => "SmsDelivered",
            Count::SmsFailed => "SmsFailed",
            Count::WebhookEvents => "WebhookEvents",
        }
    }
}

impl Timing {
    fn name(self) -> &'static str {
        match self {
            Timing::CarrierLatency => "CarrierLatency",
            Timing::PacingWait => "PacingWait",
            Timing::QueueLag => "QueueLag",
        }
    }
}

#[derive(Default)]
struct Seen {
    counts: BTreeMap<Count, u64>,
    by_code: BTreeMap<(Count, String), u64>,
    timings: BTreeMap<Timing, Vec<f64>>,
}

/// What one invocation observed; shared by its concurrent tasks.
#[derive(Default)]
pub struct Tally {
    seen: Mutex<Seen>,
}

impl Tally {
    fn with(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.seen.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn count(&self, what: Count) {
        self.with(|s| *s.counts.entry(what).or_default() += 1);
    }

    /// A failure, in all and under its carrier error code.
    pub fn failed(&self, what: Count, code: &str) {
        self.with(|s| {
            *s.counts.entry(what).or_default() += 1;
            *s.by_code.entry((what, code.to_owned())).or_default() += 1;
        });
    }

    pub fn time(&self, what: Timing, took: Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        self.with(|s| s.timings.entry(what).or_default().push(ms));
    }

    /// The EMF documents for what was tallied, stamped `now_ms`; none when
    /// nothing was.
    pub fn emf(&self, now_ms: i64) -> Vec<Value> {
        let seen = std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()));
        let mut documents = Vec::new();
        let document = |dimensions: &[&str], fields: Vec<(&'static str, &'static str, Value)>| {
            let metrics: Vec<Value> = fields
                .iter()
                .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit }))
                .collect();
            let mut doc = Map::new();
            doc.insert(
                "_aws".into(),
                json!({
                    "Timestamp": now_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [dimensions],
                        "Metrics": metrics,
                    }],
                }),
            );
            for (name, _, value) in fields {
                doc.insert(name.into(), value);
            }
            Value::Object(doc)
        };
        let mut first: Vec<(&'static str, &'static str, Value)> = seen
            .counts
            .iter()
            .map(|(c, n)| (c.name(), "Count", json!(n)))
            .collect();
        let mut chunks: Vec<Vec<(&'static str, &'static str, Value)>> = Vec::new();
        for (timing, values) in &seen.timings {
            for (i, chunk) in values.chunks(MAX_VALUES).enumerate() {
                let field = (timing.name(), "Milliseconds", json!(chunk));
                match i {
                    0 => first.push(field),
                    _ => chunks.push(vec![field]),
                }
            }
        }
        if !first.is_empty() {
            documents.push(document(&[], first));
        }
        documents.extend(chunks.into_iter().map(|fields| document(&[], fields)));
        for ((count, code), n) in seen.by_code {
            let mut doc = document(&["CarrierCode"], vec![(count.name(), "Count", json!(n))]);
            doc["CarrierCode"] = json!(code);
            documents.push(doc);
        }
        documents
    }

    /// Writes the documents to stdout, where Lambda's log capture hands them
    /// to CloudWatch; the local stack has no CloudWatch and writes nothing.
    pub fn flush(&self, on_lambda: bool) {
        if !on_lambda {
            return;
        }
        use std::io::Write;
        let documents = self.emf(chrono::Utc::now().timestamp_millis());
        let mut out = std::io::stdout().lock();
        for document in documents {
            let _ = writeln!(out, "{document}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_timings_and_codes_become_emf_documents() {
        let tally = Tally::default();
        tally.count(Count::SmsSent);
        tally.count(Count::SmsSent);
        tally.failed(Count::SmsSendFailed, "40001");
        for ms in 0..150 {
            tally.time(Timing::CarrierLatency, Duration::from_millis(ms));
        }
        let docs = tally.emf(1_700_000_000_000);
        assert_eq!(docs.len(), 3, "{docs:#?}");
        let main = &docs[0];
        let directive = &main["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(main["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!(directive["Namespace"], "Koinonia");
        assert_eq!(directive["Dimensions"], json!([[]]));
        assert_eq!(main["SmsSent"], 2);
        assert_eq!(main["SmsSendFailed"], 1);
        assert_eq!(main["CarrierLatency"].as_array().unwrap().len(), 100);
        // Every metric named in the directive has its value in the document.
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(
                !main[metric["Name"].as_str().unwrap()].is_null(),
                "{metric}"
            );
        }
        assert_eq!(docs[1]["CarrierLatency"].as_array().unwrap().len(), 50);
        let by_code = &docs[2];
        assert_eq!(by_code["CarrierCode"], "40001");
        assert_eq!(by_code["SmsSendFailed"], 1);
        assert_eq!(
            by_code["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["CarrierCode"]])
        );
        assert!(tally.emf(0).is_empty(), "a flush empties the tally");
    }
}
