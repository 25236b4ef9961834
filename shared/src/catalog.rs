//! What template.yaml declares — functions, their HTTP routes, queue
//! triggers, stream triggers and schedules, and the queues — read from the
//! template itself.
//!
//! template.yaml is the one place routes, queue wiring and schedules are
//! written down: SAM deploys from it, the local stack serves from it, and
//! tests check the Lambda binaries, `events/` and `infra/openapi.yaml` against it.

use std::sync::OnceLock;
use std::time::Duration;

use serde_yaml::Value;

use crate::adapters::embedded::QueueSpec;

/// The template, compiled in so the local stack needs no files beside it.
pub const TEMPLATE: &str = include_str!("../../template.yaml");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    /// API Gateway syntax: `/api/members/{memberId}`, `/{proxy+}`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTrigger {
    /// Logical id of the queue in the template.
    pub queue: String,
    pub batch_size: u32,
    pub reports_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`: invocations at once (Lambda's minimum is 2).
    pub maximum_concurrency: u32,
}

/// A `Type: DynamoDB` event: the table's change stream feeding the
/// function in batches, as Lambda's event source mapping does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTrigger {
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds`: how long a batch may wait to fill.
    pub batching_window: Duration,
    /// `BisectBatchOnFunctionError`: a failed batch is halved and retried.
    pub bisect_on_error: bool,
    /// Retries of a failed batch before it goes to `on_failure_queue`;
    /// `u32::MAX` when the template leaves it unbounded (`-1` or absent:
    /// Lambda retries until the records expire).
    pub maximum_retry_attempts: u32,
    /// The `type` values FilterCriteria lets through (empty: every record).
    pub item_types: Vec<String>,
    /// DestinationConfig.OnFailure's queue logical id, if any.
    pub on_failure_queue: Option<String>,
}

/// Lambda's `BatchSize` for a DynamoDB stream when the template sets none.
const STREAM_BATCH_SIZE: i64 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDecl {
    /// Logical id in the template, e.g. `HealthFunction`.
    pub id: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// `Environment.Variables.KOINONIA_FUNCTION`: which registry entry the binary runs.
    pub entry: Option<String>,
    pub routes: Vec<Route>,
    pub queue_triggers: Vec<QueueTrigger>,
    /// The table's change stream, for a function fed by it.
    pub stream_triggers: Vec<StreamTrigger>,
    /// `rate(…)` or `cron(…)` expressions.
    pub schedules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDecl {
    pub id: String,
    pub visibility_timeout: Duration,
    /// Dead-letter queue's logical id and the receives before a message goes there.
    pub redrive: Option<(String, u32)>,
}

impl QueueDecl {
    pub fn spec(&self) -> QueueSpec {
        let spec = QueueSpec::new(&self.id).visibility(self.visibility_timeout);
        match &self.redrive {
            Some((dlq, receives)) => spec.dead_letter_after(*receives, dlq),
            None => spec,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    pub functions: Vec<FunctionDecl>,
    pub queues: Vec<QueueDecl>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template.yaml: {0}")]
pub struct CatalogError(String);

fn err(message: impl Into<String>) -> CatalogError {
    CatalogError(message.into())
}

/// The logical id a `!Ref X`, `!GetAtt X.Arn`, `{Ref: X}` or `{Fn::GetAtt: [X, Arn]}` points at.
fn referenced_id(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => {
            let inner = tagged.value.as_str()?;
            Some(inner.split('.').next()?.to_owned())
        }
        Value::Mapping(map) => {
            if let Some(r) = map.get("Ref").and_then(Value::as_str) {
                return Some(r.to_owned());
            }
            match map.get("Fn::GetAtt")? {
                Value::Sequence(parts) => parts.first()?.as_str().map(str::to_owned),
                Value::String(s) => s.split('.').next().map(str::to_owned),
                _ => None,
            }
        }
        _ => None,
    }
}

impl Catalog {
    /// The catalog of the compiled-in template.yaml.
    pub fn builtin() -> Result<&'static Catalog, CatalogError> {
        static CATALOG: OnceLock<Result<Catalog, CatalogError>> = OnceLock::new();
        CATALOG
            .get_or_init(|| Catalog::parse(TEMPLATE))
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn parse(template: &str) -> Result<Self, CatalogError> {
        let doc: Value = serde_yaml::from_str(template).map_err(|e| err(e.to_string()))?;
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| err("no Resources"))?;
        let mut functions = Vec::new();
        let mut queues = Vec::new();
        for (id, resource) in resources {
            let id = id
                .as_str()
                .ok_or_else(|| err("a resource id is not a string"))?
                .to_owned();
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::Serverless::Function") => {
                    functions.push(parse_function(&id, resource, resources)?)
                }
                Some("AWS::SQS::Queue") => queues.push(parse_queue(&id, resource)?),
                _ => {}
            }
        }
        for function in &functions {
            for trigger in &function.stream_triggers {
                if let Some(queue) = &trigger.on_failure_queue
                    && !queues.iter().any(|q| &q.id == queue)
                {
                    return Err(err(format!(
                        "{}: its stream's OnFailure destination {queue} is not a queue of the template",
                        function.id
                    )));
                }
            }
        }
        Ok(Self { functions, queues })
    }

    pub fn function(&self, id: &str) -> Option<&FunctionDecl> {
        self.functions.iter().find(|f| f.id == id)
    }

    pub fn queue(&self, id: &str) -> Option<&QueueDecl> {
        self.queues.iter().find(|q| q.id == id)
    }

    /// Every HTTP route with the function that serves it.
    pub fn routes(&self) -> impl Iterator<Item = (&FunctionDecl, &Route)> {
        self.functions
            .iter()
            .flat_map(|f| f.routes.iter().map(move |r| (f, r)))
    }
}

fn parse_function(
    id: &str,
    resource: &Value,
    resources: &serde_yaml::Mapping,
) -> Result<FunctionDecl, CatalogError> {
    let binary = resource
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str)
        .ok_or_else(|| err(format!("{id} has no Metadata.BuildProperties.Binary")))?
        .to_owned();
    let entry = resource
        .get("Properties")
        .and_then(|p| p.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(|v| v.get(crate::lambda::FUNCTION_VAR))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut decl = FunctionDecl {
        id: id.to_owned(),
        binary,
        entry,
        routes: Vec::new(),
        queue_triggers: Vec::new(),
        stream_triggers: Vec::new(),
        schedules: Vec::new(),
    };
    let events = resource
        .get("Properties")
        .and_then(|p| p.get("Events"))
        .and_then(Value::as_mapping);
    for (name, event) in events.into_iter().flatten() {
        let props = event.get("Properties").cloned().unwrap_or(Value::Null);
        let text = |key: &str| props.get(key).and_then(Value::as_str).map(str::to_owned);
        match event.get("Type").and_then(Value::as_str) {
            Some("HttpApi") => decl.routes.push(Route {
                method: text("Method")
                    .ok_or_else(|| err(format!("{id}.{name:?} has no Method")))?
                    .to_uppercase(),
                path: text("Path").ok_or_else(|| err(format!("{id}.{name:?} has no Path")))?,
            }),
            Some("SQS") => decl.queue_triggers.push(QueueTrigger {
                queue: props
                    .get("Queue")
                    .and_then(referenced_id)
                    .ok_or_else(|| err(format!("{id}.{name:?} names no queue")))?,
                batch_size: props.get("BatchSize").and_then(Value::as_u64).unwrap_or(10) as u32,
                maximum_concurrency: props
                    .get("ScalingConfig")
                    .and_then(|c| c.get("MaximumConcurrency"))
                    .and_then(Value::as_u64)
                    .unwrap_or(2) as u32,
                reports_batch_item_failures: props
                    .get("FunctionResponseTypes")
                    .and_then(Value::as_sequence)
                    .is_some_and(|types| {
                        types
                            .iter()
                            .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
                    }),
            }),
            Some("DynamoDB") => decl.stream_triggers.push(parse_stream_trigger(
                &format!("{id}.{name:?}"),
                &props,
                resources,
            )?),
            Some("Schedule" | "ScheduleV2") => decl.schedules.push(
                text("Schedule")
                    .or_else(|| text("ScheduleExpression"))
                    .ok_or_else(|| err(format!("{id}.{name:?} has no schedule expression")))?,
            ),
            other => {
                return Err(err(format!(
                    "{id}.{name:?}: event type {other:?} is not one the local stack runs"
                )));
            }
        }
    }
    Ok(decl)
}

/// A `Type: DynamoDB` event's properties. Its stream must be a table's
/// (`!GetAtt Table.StreamArn`) with both images, and its FilterCriteria
/// what the local stack can apply: the item's `type`, in the new image or
/// the old one, alike.
fn parse_stream_trigger(
    at: &str,
    props: &Value,
    resources: &serde_yaml::Mapping,
) -> Result<StreamTrigger, CatalogError> {
    let table = match props.get("Stream") {
        Some(stream) if stream_attribute(stream) == Some("StreamArn") => referenced_id(stream),
        _ => None,
    }
    .ok_or_else(|| err(format!("{at}: Stream is not a table's !GetAtt ….StreamArn")))?;
    let table_resource = resources
        .get(table.as_str())
        .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::DynamoDB::Table"))
        .ok_or_else(|| err(format!("{at}: its stream's {table} is not a table")))?;
    let view = table_resource
        .get("Properties")
        .and_then(|p| p.get("StreamSpecification"))
        .and_then(|s| s.get("StreamViewType"))
        .and_then(Value::as_str);
    if view != Some("NEW_AND_OLD_IMAGES") {
        return Err(err(format!(
            "{at}: {table}'s stream must carry NEW_AND_OLD_IMAGES (it has {view:?})"
        )));
    }
    let number = |key: &str| -> Result<Option<i64>, CatalogError> {
        match props.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| err(format!("{at}: {key} is not a number"))),
        }
    };
    let batch_size = number("BatchSize")?.unwrap_or(STREAM_BATCH_SIZE);
    let batch_size = u32::try_from(batch_size)
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| err(format!("{at}: BatchSize {batch_size} is not 1 to 10,000")))?;
    let window = number("MaximumBatchingWindowInSeconds")?.unwrap_or(0);
    let window = u64::try_from(window)
        .ok()
        .filter(|s| *s <= 300)
        .ok_or_else(|| {
            err(format!(
                "{at}: MaximumBatchingWindowInSeconds {window} is not 0 to 300"
            ))
        })?;
    let maximum_retry_attempts = match number("MaximumRetryAttempts")? {
        None | Some(-1) => u32::MAX,
        Some(n @ 0..=10_000) => n as u32,
        Some(n) => {
            return Err(err(format!(
                "{at}: MaximumRetryAttempts {n} is not -1 or 0 to 10,000"
            )));
        }
    };
    let bisect_on_error = match props.get("BisectBatchOnFunctionError") {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| err(format!("{at}: BisectBatchOnFunctionError is not a boolean")))?,
    };
    let on_failure_queue = match props.get("DestinationConfig") {
        None => None,
        Some(config) => Some(
            config
                .get("OnFailure")
                .and_then(|f| f.get("Destination"))
                .and_then(referenced_id)
                .ok_or_else(|| {
                    err(format!(
                        "{at}: DestinationConfig.OnFailure names no queue of the template"
                    ))
                })?,
        ),
    };
    Ok(StreamTrigger {
        batch_size,
        batching_window: Duration::from_secs(window),
        bisect_on_error,
        maximum_retry_attempts,
        item_types: filtered_item_types(at, props.get("FilterCriteria"))?,
        on_failure_queue,
    })
}

/// The attribute a `!GetAtt X.Attr` or `{Fn::GetAtt: [X, Attr]}` reads.
fn stream_attribute(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => {
            tagged.value.as_str()?.split_once('.').map(|(_, a)| a)
        }
        Value::Mapping(map) => match map.get("Fn::GetAtt")? {
            Value::Sequence(parts) => parts.get(1)?.as_str(),
            Value::String(s) => s.split_once('.').map(|(_, a)| a),
            _ => None,
        },
        _ => None,
    }
}

/// The item types FilterCriteria lets through. Each pattern must be
/// `{"dynamodb": {"NewImage" or "OldImage": {"type": {"S": [...]}}}}`, and
/// the two images must name the same types, so "new or old image" is what
/// the template says and what the local stack applies.
fn filtered_item_types(at: &str, criteria: Option<&Value>) -> Result<Vec<String>, CatalogError> {
    let Some(criteria) = criteria else {
        return Ok(Vec::new());
    };
    let filters = criteria
        .get("Filters")
        .and_then(Value::as_sequence)
        .ok_or_else(|| err(format!("{at}: FilterCriteria has no Filters")))?;
    let unsupported = |pattern: &str| {
        err(format!(
            r#"{at}: filter {pattern} is not one the local stack applies (only {{"dynamodb": {{"NewImage" or "OldImage": {{"type": {{"S": [...]}}}}}}}})"#
        ))
    };
    let (mut new_image, mut old_image) = (Vec::<String>::new(), Vec::<String>::new());
    for filter in filters {
        let text = filter
            .get("Pattern")
            .and_then(Value::as_str)
            .ok_or_else(|| err(format!("{at}: a filter has no Pattern string")))?;
        let pattern: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| err(format!("{at}: filter {text} is not JSON: {e}")))?;
        let images = pattern
            .as_object()
            .filter(|p| p.len() == 1)
            .and_then(|p| p.get("dynamodb"))
            .and_then(serde_json::Value::as_object)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| unsupported(text))?;
        // Two images in one pattern must both match (AND), not either.
        if images.len() > 1 {
            return Err(unsupported(text));
        }
        for (image, condition) in images {
            let types = condition
                .as_object()
                .filter(|c| c.len() == 1)
                .and_then(|c| c.get("type"))
                .and_then(serde_json::Value::as_object)
                .filter(|t| t.len() == 1)
                .and_then(|t| t.get("S"))
                .and_then(serde_json::Value::as_array)
                .filter(|values| !values.is_empty())
                .ok_or_else(|| unsupported(text))?;
            let into = match image.as_str() {
                "NewImage" => &mut new_image,
                "OldImage" => &mut old_image,
                _ => return Err(unsupported(text)),
            };
            for value in types {
                let value = value.as_str().ok_or_else(|| unsupported(text))?;
                if !into.iter().any(|t| t == value) {
                    into.push(value.to_owned());
                }
            }
        }
    }
    let (mut sorted_new, mut sorted_old) = (new_image.clone(), old_image);
    sorted_new.sort();
    sorted_old.sort();
    if sorted_new != sorted_old {
        return Err(err(format!(
            "{at}: FilterCriteria lets types {sorted_new:?} through in the new image but {sorted_old:?} in the old one; the local stack applies one list to both"
        )));
    }
    Ok(new_image)
}

fn parse_queue(id: &str, resource: &Value) -> Result<QueueDecl, CatalogError> {
    let props = resource.get("Properties");
    let visibility = props
        .and_then(|p| p.get("VisibilityTimeout"))
        .and_then(Value::as_u64)
        .unwrap_or(30);
    let redrive = match props.and_then(|p| p.get("RedrivePolicy")) {
        None => None,
        Some(policy) => {
            let target = policy
                .get("deadLetterTargetArn")
                .and_then(referenced_id)
                .ok_or_else(|| err(format!("{id}: RedrivePolicy names no dead-letter queue")))?;
            let receives = policy
                .get("maxReceiveCount")
                .and_then(Value::as_u64)
                .ok_or_else(|| err(format!("{id}: RedrivePolicy has no maxReceiveCount")))?;
            Some((target, receives as u32))
        }
    };
    Ok(QueueDecl {
        id: id.to_owned(),
        visibility_timeout: Duration::from_secs(visibility),
        redrive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A template of one table with a stream, one queue and one function fed
    /// by the stream with the event properties `props` (YAML, indented for
    /// the `Properties:` mapping).
    fn with_stream_event(props: &str) -> String {
        format!(
            r#"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      StreamSpecification:
        StreamViewType: NEW_AND_OLD_IMAGES
  FailuresQueue:
    Type: AWS::SQS::Queue
  Aggregator:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: koinonia-lambda
    Properties:
      Environment:
        Variables:
          KOINONIA_FUNCTION: Aggregator
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Table.StreamArn
            StartingPosition: TRIM_HORIZON
{props}
"#
        )
    }

    fn trigger(props: &str) -> Result<StreamTrigger, CatalogError> {
        let catalog = Catalog::parse(&with_stream_event(props))?;
        let function = catalog.function("Aggregator").unwrap();
        assert_eq!(function.stream_triggers.len(), 1);
        Ok(function.stream_triggers[0].clone())
    }

    fn rejected(props: &str, because: &str) {
        let error = trigger(props).expect_err(props).to_string();
        assert!(error.contains(because), "{because:?} not in {error:?}");
    }

    #[test]
    fn the_counts_aggregator_is_fed_by_the_tables_stream() {
        let catalog = Catalog::builtin().unwrap();
        let aggregator = catalog.function("CountsAggregatorFunction").unwrap();
        assert_eq!(
            aggregator.entry.as_deref(),
            Some("CountsAggregatorFunction")
        );
        assert!(aggregator.routes.is_empty(), "not an HTTP function");
        assert!(aggregator.queue_triggers.is_empty(), "not an SQS consumer");
        assert!(aggregator.schedules.is_empty());
        assert_eq!(
            aggregator.stream_triggers,
            [StreamTrigger {
                batch_size: 1000,
                batching_window: Duration::from_secs(1),
                bisect_on_error: true,
                // Until the records' age: the template says -1.
                maximum_retry_attempts: u32::MAX,
                item_types: vec!["recipient".into()],
                on_failure_queue: Some("CountsFailuresQueue".into()),
            }]
        );
        assert!(catalog.queue("CountsFailuresQueue").is_some());
    }

    #[test]
    fn only_the_aggregator_reads_the_stream_and_no_route_is_lost() {
        let catalog = Catalog::builtin().unwrap();
        let readers: Vec<&str> = catalog
            .functions
            .iter()
            .filter(|f| !f.stream_triggers.is_empty())
            .map(|f| f.id.as_str())
            .collect();
        assert_eq!(readers, ["CountsAggregatorFunction"]);
        assert!(catalog.routes().count() > 50);
        assert!(
            catalog
                .functions
                .iter()
                .all(|f| f.id == "CountsAggregatorFunction"
                    || !f.routes.is_empty()
                    || !f.queue_triggers.is_empty()
                    || !f.schedules.is_empty())
        );
    }

    #[test]
    fn a_stream_event_without_options_has_lambdas_defaults() {
        assert_eq!(
            trigger("").unwrap(),
            StreamTrigger {
                batch_size: 100,
                batching_window: Duration::ZERO,
                bisect_on_error: false,
                maximum_retry_attempts: u32::MAX,
                item_types: vec![],
                on_failure_queue: None,
            }
        );
        let unbounded = trigger("            MaximumRetryAttempts: -1").unwrap();
        assert_eq!(unbounded.maximum_retry_attempts, u32::MAX);
    }

    #[test]
    fn a_stream_events_options_are_read() {
        let read = trigger(
            r#"            BatchSize: 500
            MaximumBatchingWindowInSeconds: 5
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 0
            DestinationConfig:
              OnFailure:
                Destination: !GetAtt FailuresQueue.Arn
            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"type": {"S": ["recipient", "message"]}}}}'
                - Pattern: '{"dynamodb": {"OldImage": {"type": {"S": ["message", "recipient"]}}}}'"#,
        )
        .unwrap();
        assert_eq!(
            read,
            StreamTrigger {
                batch_size: 500,
                batching_window: Duration::from_secs(5),
                bisect_on_error: true,
                maximum_retry_attempts: 0,
                item_types: vec!["recipient".into(), "message".into()],
                on_failure_queue: Some("FailuresQueue".into()),
            }
        );
    }

    #[test]
    fn a_filter_the_local_stack_cannot_apply_is_refused() {
        // The new image only: removals would be filtered out on AWS alone.
        rejected(
            r#"            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"type": {"S": ["recipient"]}}}}'"#,
            "the local stack applies one list to both",
        );
        // Another attribute than the item's type.
        rejected(
            r#"            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"status": {"S": ["sent"]}}}}'
                - Pattern: '{"dynamodb": {"OldImage": {"status": {"S": ["sent"]}}}}'"#,
            "is not one the local stack applies",
        );
        // Both images in one pattern are AND, not OR.
        rejected(
            r#"            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"type": {"S": ["recipient"]}}, "OldImage": {"type": {"S": ["recipient"]}}}}'"#,
            "is not one the local stack applies",
        );
        // The event name, a content filter, unparsable JSON.
        rejected(
            r#"            FilterCriteria:
              Filters:
                - Pattern: '{"eventName": ["INSERT"]}'"#,
            "is not one the local stack applies",
        );
        rejected(
            r#"            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": {"NewImage": {"type": {"S": [{"prefix": "rec"}]}}}}'
                - Pattern: '{"dynamodb": {"OldImage": {"type": {"S": [{"prefix": "rec"}]}}}}'"#,
            "is not one the local stack applies",
        );
        rejected(
            r#"            FilterCriteria:
              Filters:
                - Pattern: '{"dynamodb": '"#,
            "is not JSON",
        );
    }

    #[test]
    fn a_stream_that_is_not_the_tables_with_both_images_is_refused() {
        let template = with_stream_event("").replace(
            "Stream: !GetAtt Table.StreamArn",
            "Stream: !GetAtt Table.Arn",
        );
        let error = Catalog::parse(&template).unwrap_err().to_string();
        assert!(error.contains("is not a table's"), "{error}");

        let template = with_stream_event("").replace(
            "Stream: !GetAtt Table.StreamArn",
            "Stream: !GetAtt FailuresQueue.StreamArn",
        );
        let error = Catalog::parse(&template).unwrap_err().to_string();
        assert!(error.contains("FailuresQueue is not a table"), "{error}");

        let template = with_stream_event("").replace("NEW_AND_OLD_IMAGES", "KEYS_ONLY");
        let error = Catalog::parse(&template).unwrap_err().to_string();
        assert!(error.contains("must carry NEW_AND_OLD_IMAGES"), "{error}");
    }

    #[test]
    fn an_on_failure_destination_must_be_a_queue_of_the_template() {
        rejected(
            r#"            DestinationConfig:
              OnFailure:
                Destination: !GetAtt NoSuchQueue.Arn"#,
            "NoSuchQueue is not a queue of the template",
        );
        rejected(
            r#"            DestinationConfig:
              OnFailure:
                Destination: arn:aws:sqs:us-east-1:123456789012:elsewhere"#,
            "names no queue of the template",
        );
    }

    #[test]
    fn out_of_range_stream_options_are_refused() {
        rejected("            BatchSize: 0", "BatchSize 0 is not 1 to 10,000");
        rejected(
            "            MaximumBatchingWindowInSeconds: 301",
            "is not 0 to 300",
        );
        rejected(
            "            MaximumRetryAttempts: 10001",
            "is not -1 or 0 to 10,000",
        );
        rejected(
            "            BisectBatchOnFunctionError: yes please",
            "is not a boolean",
        );
    }
}
