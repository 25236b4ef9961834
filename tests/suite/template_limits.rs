//! template.yaml after the SAM transform, read against AWS's published
//! limits and against what the code needs: what `sam deploy` would refuse,
//! or what would fail on a new account, fails here first.
//!
//! - CloudFormation: at most 60 dynamic references, 500 resources, 200
//!   parameters, 200 outputs, 1 MB of template.
//! - SQS event sources: the queue's visibility timeout at least 6× the
//!   function's timeout (AWS's advice, so throttled batches don't come back
//!   early and burn receives).
//! - HTTP API: integrations time out at 30 s, so HTTP functions ≤ 29 s.
//! - DynamoDB-stream event sources: the function's role reads that stream
//!   (on its ARN, not `*`) and sends to its OnFailure queue, or Lambda
//!   cannot create the mapping — which neither emulator path checks.
//! - A new account's Lambda concurrency quota can be 10: no function reserves any.
//! - Secrets: no value in any environment; each function names, and may
//!   read, exactly the secrets its handler needs (registry::secrets_of).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use shared::registry::{Registry, secrets_of};
use shared::secrets::{SECRET_VALUE_VARS, SecretUse};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The translated template, from `infra/sam_translate.py` in the test venv.
pub fn translated() -> &'static Value {
    static TRANSLATED: OnceLock<Value> = OnceLock::new();
    TRANSLATED.get_or_init(|| {
        let python = repo().join(".venv/bin/python");
        assert!(
            python.exists(),
            "the SAM translator lives in .venv: run ./infra/test.sh (it installs it)"
        );
        let output = Command::new(python)
            .arg(repo().join("infra/sam_translate.py"))
            .arg(repo().join("template.yaml"))
            .output()
            .expect("python runs");
        assert!(
            output.status.success(),
            "the SAM transform failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the translator prints JSON")
    })
}

fn resources(template: &Value) -> impl Iterator<Item = (&String, &Value)> {
    template["Resources"]
        .as_object()
        .into_iter()
        .flat_map(|r| r.iter())
}

fn of_type<'a>(
    template: &'a Value,
    kind: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Value)> {
    resources(template).filter(move |(_, r)| r["Type"] == kind)
}

/// The logical id a `{"Ref": X}` or `{"Fn::GetAtt": [X, …]}` points at.
fn target(value: &Value) -> Option<&str> {
    value["Ref"]
        .as_str()
        .or_else(|| value["Fn::GetAtt"][0].as_str())
}

fn timeout_of(template: &Value, function: &str) -> u64 {
    template["Resources"][function]["Properties"]["Timeout"]
        .as_u64()
        .unwrap_or(3)
}

/// Every limit the template breaks, in words (empty: none).
pub fn violations(template: &Value) -> Vec<String> {
    let mut broken = Vec::new();
    let text = serde_json::to_string(template).unwrap_or_default();
    let count = |key: &str| template[key].as_object().map_or(0, |m| m.len());

    let references = text.matches("{{resolve:").count();
    if references > 60 {
        broken.push(format!(
            "{references} dynamic references (CloudFormation allows 60)"
        ));
    }
    for (what, limit) in [("Resources", 500), ("Parameters", 200), ("Outputs", 200)] {
        if count(what) > limit {
            broken.push(format!("{} {what} (at most {limit})", count(what)));
        }
    }
    if text.len() > 1_048_576 {
        broken.push(format!("{} bytes of template (at most 1 MB)", text.len()));
    }

    for (id, mapping) in of_type(template, "AWS::Lambda::EventSourceMapping") {
        let props = &mapping["Properties"];
        let (Some(queue), Some(function)) = (
            target(&props["EventSourceArn"]),
            target(&props["FunctionName"]),
        ) else {
            continue;
        };
        let queue = &template["Resources"][queue];
        if queue["Type"] != "AWS::SQS::Queue" {
            continue;
        }
        let visibility = queue["Properties"]["VisibilityTimeout"]
            .as_u64()
            .unwrap_or(30);
        let timeout = timeout_of(template, function);
        if visibility < 6 * timeout {
            broken.push(format!(
                "{id}: the queue hides a message {visibility} s, under 6× {function}'s {timeout} s"
            ));
        }
    }

    for (id, mapping) in of_type(template, "AWS::Lambda::EventSourceMapping") {
        let props = &mapping["Properties"];
        let source = &props["EventSourceArn"];
        if source["Fn::GetAtt"][1] != "StreamArn" {
            continue;
        }
        let Some(function) = target(&props["FunctionName"]) else {
            continue;
        };
        let role =
            target(&template["Resources"][function]["Properties"]["Role"]).unwrap_or_default();
        let grants = grants_of(template, role);
        let granted = |action: &str, resource: &Value| {
            grants.iter().any(|(actions, resources)| {
                actions.iter().any(|a| a == action) && resources.contains(resource)
            })
        };
        for action in [
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
        ] {
            if !granted(action, source) {
                broken.push(format!(
                    "{id}: {function}'s role may not {action} on its stream"
                ));
            }
        }
        let on_failure = &props["DestinationConfig"]["OnFailure"]["Destination"];
        if !on_failure.is_null() && !granted("sqs:SendMessage", on_failure) {
            broken.push(format!(
                "{id}: {function}'s role may not sqs:SendMessage to its OnFailure queue"
            ));
        }
        let managed = &template["Resources"][role]["Properties"]["ManagedPolicyArns"];
        if managed
            .to_string()
            .contains("AWSLambdaDynamoDBExecutionRole")
        {
            broken.push(format!(
                "{id}: {function}'s role has AWSLambdaDynamoDBExecutionRole, which reads every stream"
            ));
        }
    }

    for (_, permission) in of_type(template, "AWS::Lambda::Permission") {
        let props = &permission["Properties"];
        if props["Principal"] != "apigateway.amazonaws.com" {
            continue;
        }
        let Some(function) = target(&props["FunctionName"]) else {
            continue;
        };
        let timeout = timeout_of(template, function);
        if timeout > 29 {
            broken.push(format!(
                "{function} serves HTTP with a {timeout} s timeout (the HTTP API gives up at 30 s)"
            ));
        }
    }

    for (id, function) in of_type(template, "AWS::Lambda::Function") {
        let props = &function["Properties"];
        if !props["ReservedConcurrentExecutions"].is_null() {
            broken.push(format!(
                "{id} reserves concurrency, which a new account's quota cannot give"
            ));
        }
        let variables = props["Environment"]["Variables"].as_object();
        for (name, value) in variables.into_iter().flatten() {
            if SECRET_VALUE_VARS.contains(&name.as_str()) {
                broken.push(format!(
                    "{id} has the secret value {name} in its environment"
                ));
            }
            if value.to_string().contains("{{resolve:") {
                broken.push(format!(
                    "{id}'s {name} resolves a secret into the environment"
                ));
            }
        }
    }
    broken
}

#[test]
fn the_translated_template_is_within_every_limit() {
    let broken = violations(translated());
    assert!(
        broken.is_empty(),
        "template.yaml breaks:\n{}",
        broken.join("\n")
    );
}

#[test]
fn a_61st_dynamic_reference_is_caught() {
    let mut template = translated().clone();
    let resources = template["Resources"].as_object_mut().unwrap();
    let (_, function) = resources
        .iter_mut()
        .find(|(_, r)| r["Type"] == "AWS::Lambda::Function")
        .unwrap();
    let tags: Vec<Value> = (0..61)
        .map(|i| serde_json::json!({"Key": format!("t{i}"), "Value": format!("{{{{resolve:ssm:/koinonia/{i}}}}}")}))
        .collect();
    function["Properties"]["Tags"] = Value::Array(tags);
    let broken = violations(&template);
    assert!(
        broken.iter().any(|b| b.contains("61 dynamic references")),
        "{broken:?}"
    );
}

#[test]
fn each_limit_is_caught_when_broken() {
    let mut template = translated().clone();
    let resources = template["Resources"].as_object_mut().unwrap();
    for queue in ["SendQueue", "FanoutQueue"] {
        resources[queue]["Properties"]["VisibilityTimeout"] = 60.into();
    }
    resources["MembersImportFunction"]["Properties"]["Timeout"] = 120.into();
    resources["SendConsumerFunction"]["Properties"]["ReservedConcurrentExecutions"] = 20.into();
    resources["AuthMeFunction"]["Properties"]["Environment"]["Variables"]["JWT_SECRET"] =
        "0123456789abcdef0123456789abcdef".into();
    // The aggregator's role: stream reads on every stream, no failure queue.
    let policy = &mut resources["CountsAggregatorFunctionRole"]["Properties"]["Policies"][0];
    for statement in policy["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap()
    {
        if statement["Action"].to_string().contains("GetRecords") {
            statement["Resource"] = "*".into();
        }
        if statement["Action"].to_string().contains("sqs:SendMessage") {
            statement["Effect"] = "Deny".into();
        }
    }
    let broken = violations(&template).join("\n");
    for expected in [
        "SendConsumerFunction's",
        "FanoutConsumerFunction's",
        "MembersImportFunction serves HTTP with a 120 s timeout",
        "SendConsumerFunction reserves concurrency",
        "AuthMeFunction has the secret value JWT_SECRET",
        "CountsAggregatorFunction's role may not dynamodb:GetRecords on its stream",
        "CountsAggregatorFunction's role may not sqs:SendMessage to its OnFailure queue",
    ] {
        assert!(broken.contains(expected), "{expected:?} not in:\n{broken}");
    }
}

/// Each Allow statement of `role`'s inline policies: its actions and resources.
fn grants_of(template: &Value, role: &str) -> Vec<(Vec<String>, Vec<Value>)> {
    let policies = template["Resources"][role]["Properties"]["Policies"].as_array();
    let mut grants = Vec::new();
    for policy in policies.into_iter().flatten() {
        let statements = &policy["PolicyDocument"]["Statement"];
        for statement in statements.as_array().into_iter().flatten() {
            if statement["Effect"] != "Allow" {
                continue;
            }
            let listed = |v: &Value| match v {
                Value::Array(items) => items.clone(),
                Value::Null => vec![],
                other => vec![other.clone()],
            };
            let actions = listed(&statement["Action"])
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            grants.push((actions, listed(&statement["Resource"])));
        }
    }
    grants
}

/// The secret ARNs (by variable) a function's environment names, and the
/// secret ARNs (by parameter) its role may read.
fn secrets_named_and_granted(
    template: &Value,
    function: &str,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let props = &template["Resources"][function]["Properties"];
    let named: BTreeSet<String> = props["Environment"]["Variables"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.ends_with("_SECRET_ARN"))
        .map(|(name, _)| name.clone())
        .collect();
    let role = target(&props["Role"]).unwrap_or_default();
    let mut granted = BTreeSet::new();
    let policies = template["Resources"][role]["Properties"]["Policies"].as_array();
    for policy in policies.into_iter().flatten() {
        let statements = &policy["PolicyDocument"]["Statement"];
        for statement in statements.as_array().into_iter().flatten() {
            let actions = match &statement["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
                _ => vec![],
            };
            if !actions.iter().any(|a| a.starts_with("secretsmanager:")) {
                continue;
            }
            assert_eq!(
                actions,
                ["secretsmanager:GetSecretValue"],
                "{function} may only read its secrets"
            );
            let resources = match &statement["Resource"] {
                Value::Array(r) => r.clone(),
                other => vec![other.clone()],
            };
            for resource in resources {
                granted.insert(
                    target(&resource)
                        .unwrap_or_else(|| {
                            panic!("{function} reads a secret by a literal ARN: {resource}")
                        })
                        .to_owned(),
                );
            }
        }
    }
    (named, granted)
}

/// One function of the translated template and its secrets.
struct FunctionSecrets {
    /// The function's logical id.
    id: String,
    /// The `*_SECRET_ARN` variables its registry entry needs.
    needed: BTreeSet<String>,
    /// The `*_SECRET_ARN` variables its environment names.
    named: BTreeSet<String>,
    /// The secret parameters its role may read.
    granted: BTreeSet<String>,
}

/// Every function of the translated template that runs a registry entry.
fn secrets_of_each_function() -> Vec<FunctionSecrets> {
    let registry = Registry::builtin();
    let template = translated();
    let mut functions = Vec::new();
    for (id, function) in of_type(template, "AWS::Lambda::Function") {
        let Some(name) =
            function["Properties"]["Environment"]["Variables"]["KOINONIA_FUNCTION"].as_str()
        else {
            continue;
        };
        let entry = registry
            .get(name)
            .unwrap_or_else(|| panic!("{id} runs {name}, which the registry lacks"));
        let needed: BTreeSet<String> = secrets_of(name, entry)
            .into_iter()
            .map(|s: SecretUse| s.arn_var().to_owned())
            .collect();
        let (named, granted) = secrets_named_and_granted(template, id);
        functions.push(FunctionSecrets {
            id: id.clone(),
            needed,
            named,
            granted,
        });
    }
    assert!(
        functions.len() > 50,
        "found only {} functions",
        functions.len()
    );
    functions
}

#[test]
fn each_functions_environment_names_exactly_the_secrets_it_needs() {
    for FunctionSecrets {
        id, needed, named, ..
    } in secrets_of_each_function()
    {
        assert_eq!(named, needed, "{id}: the secrets its environment names");
    }
}

#[test]
fn each_functions_role_may_read_exactly_the_secrets_it_needs() {
    let parameter_of: BTreeMap<&str, &str> = [
        ("TOKEN_SECRET_ARN", "TokenSecretArn"),
        ("DATA_SECRET_ARN", "DataSecretArn"),
        ("CARRIER_SECRET_ARN", "CarrierSecretArn"),
    ]
    .into();
    for FunctionSecrets {
        id,
        needed,
        granted,
        ..
    } in secrets_of_each_function()
    {
        let expected: BTreeSet<String> = needed
            .iter()
            .map(|v| parameter_of[v.as_str()].to_owned())
            .collect();
        assert_eq!(granted, expected, "{id}: the secrets its role may read");
    }
}
