//! What template.yaml declares — functions, their HTTP routes, queue
//! triggers and schedules, and the queues — read from the template itself.
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
                Some("AWS::Serverless::Function") => functions.push(parse_function(&id, resource)?),
                Some("AWS::SQS::Queue") => queues.push(parse_queue(&id, resource)?),
                _ => {}
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

fn parse_function(id: &str, resource: &Value) -> Result<FunctionDecl, CatalogError> {
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
