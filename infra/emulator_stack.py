"""Stands template.yaml up in the AWS emulator (ministack), as the deployed-shape test needs it.

Reads one JSON object on stdin:
  {"endpoint": "http://127.0.0.1:PORT", "stack": "name", "bootstrap": "/path/to/koinonia-lambda",
   "parameters": {"AllowedOrigins": "...", ...},
   "secrets": {"TokenSecretArn": {"JWT_SECRET": "..."}, "DataSecretArn": {...}, "CarrierSecretArn": {...}}}
and prints one JSON object on stdout:
  {"apiUrl": ".../_aws/execute-api/<id>/$default", "apiId": "...", "resources": {logical id: physical id},
   "outputs": {...}, "secretArns": {parameter: arn}, "seconds": {"create": …, "routes": …}}

With the argument `report` it instead reads {"endpoint": …, "functions": {logical id: name}}
and prints, from each function's CloudWatch log group, how often it was
invoked and the init times it logged: {logical id: {"invocations": n, "initMs": [..]}}.

With the argument `mappings` it reads one line, {"endpoint": …, "stack": "name",
"log": "/path"}, and then stands in for Lambda's DynamoDB-stream event source
mappings of that stack until its stdin closes (see `StreamMapping`): it prints
`ready` once it polls every one, and logs each invocation to "log".

Steps: the three secrets are created (their ARNs become the stack's parameters),
the bootstrap is zipped into a bucket, template.yaml is translated as `sam
package` + CloudFormation would, and the stack is created from a TemplateURL.
What the emulator does not do as AWS does is patched here, each named (README,
"Deployed shape"):

  1. It ignores the HttpApi's OpenAPI Body: the routes and integrations SAM
     wrote there are created through the apigatewayv2 API, and the CORS
     configuration through UpdateApi (it reads CFN's CorsConfiguration in the
     wrong case).
  2. It authorizes SQS batch calls as their own actions (SendMessageBatch…),
     which AWS authorizes as the single ones: each grant of a single action
     also names its batch action.
  3. It serves plain http, so the bucket policy's DenyInsecureTransport would
     refuse every S3 call of the functions: that one statement is dropped.
  4. It does not apply TimeToLiveSpecification: UpdateTimeToLive is called.
  5. It cannot create alarms on metric math (the API's 5xx rate, the
     carrier failure rate): those alarms are left out; cfn-lint checks them.
  6. It answers GET /health itself on any Host: the API URL printed is the
     path form, /_aws/execute-api/<apiId>/$default/…
  7. It takes at most 51,200 bytes of TemplateBody: the template goes
     through its S3 as a TemplateURL.
  10. Its DynamoDB-stream event source mappings ignore the batching window,
      BisectBatchOnFunctionError and MaximumRetryAttempts, and send to the
      OnFailure destination only for MaximumRecordAgeInSeconds: right after
      the stack is created each is disabled in the emulator, and `mappings`
      (StreamMapping below) does its work as Lambda does it.
Also (8, 9): its Lambdas get AWS_ENDPOINT_URL only from its own environment
(infra/emulator.sh sets it), and it has no EMF extraction or AWS/SQS
metrics, so the alarms are created but never change state there.
"""

import base64
import datetime
import io
import json
import os
import sys
import threading
import time
import uuid
import zipfile

import boto3
from botocore.config import Config

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from sam_translate import translate  # noqa: E402

BATCH_OF = {
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
}


def clients(endpoint):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    config = Config(retries={"max_attempts": 3}, s3={"addressing_style": "path"})
    return lambda name: session.client(name, endpoint_url=endpoint, config=config)


def patch_for_emulator(template):
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for statement in policy["PolicyDocument"].get("Statement", []):
                    actions = statement.get("Action")
                    if isinstance(actions, list):
                        statement["Action"] = actions + [BATCH_OF[a] for a in actions if a in BATCH_OF]
        if resource["Type"] == "AWS::S3::BucketPolicy":
            statements = props["PolicyDocument"]["Statement"]
            props["PolicyDocument"]["Statement"] = [
                s for s in statements if s.get("Sid") != "DenyInsecureTransport"
            ]
    def kept(resource):
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::S3::BucketPolicy":
            return bool(props["PolicyDocument"]["Statement"])
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            return "Metrics" not in props
        return True

    left_out = [k for k, v in template["Resources"].items() if not kept(v)]
    template["Resources"] = {k: v for k, v in template["Resources"].items() if kept(v)}
    # The dashboard's alarm widget names every alarm by ARN.
    text = json.dumps(template)
    for resource in left_out:
        text = text.replace("${%s.Arn}" % resource, f"arn:aws:cloudwatch:us-east-1:000000000000:alarm:{resource}")
    return json.loads(text)


def wait(cfn, stack):
    while True:
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            return status
        time.sleep(0.2)


def create_routes(client, template, resources, api_id):
    """Routes and integrations from the OpenAPI Body SAM generated (what API Gateway would import)."""
    body = template["Resources"]["HttpApi"]["Properties"]["Body"]
    lam, agw = client("lambda"), client("apigatewayv2")
    integrations = {}
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            function = uri.split("${")[-1].split(".Arn}")[0]
            if function not in integrations:
                arn = lam.get_function(FunctionName=resources[function])["Configuration"]["FunctionArn"]
                integrations[function] = agw.create_integration(
                    ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationMethod="POST",
                    PayloadFormatVersion="2.0", TimeoutInMillis=30000,
                    IntegrationUri=f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations",
                )["IntegrationId"]
            key = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
            agw.create_route(ApiId=api_id, RouteKey=f"{key} {path}", Target=f"integrations/{integrations[function]}")
    cors = body.get("x-amazon-apigateway-cors")
    if cors:
        agw.update_api(ApiId=api_id, CorsConfiguration={
            "AllowOrigins": cors.get("allowOrigins", []),
            "AllowCredentials": cors.get("allowCredentials", False),
            "AllowHeaders": cors.get("allowHeaders", []),
            "AllowMethods": cors.get("allowMethods", []),
            "ExposeHeaders": cors.get("exposeHeaders", []),
            "MaxAge": cors.get("maxAge", 0),
        })


def report(request):
    logs = clients(request["endpoint"])("logs")
    found = {}
    for logical, name in request["functions"].items():
        invocations, init_ms = 0, []
        kwargs = {"logGroupName": f"/aws/lambda/{name}"}
        while True:
            try:
                page = logs.filter_log_events(**kwargs)
            except logs.exceptions.ResourceNotFoundException:
                break
            for event in page["events"]:
                message = event["message"]
                if message.startswith("START RequestId"):
                    invocations += 1
                elif '"initialised"' in message:
                    init_ms.append(json.loads(message).get("init_ms"))
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        found[logical] = {"invocations": invocations, "initMs": init_ms}
    json.dump(found, sys.stdout)


def stream_mappings(client, stack):
    """The stack's event source mappings whose source is a DynamoDB stream."""
    lam, found = client("lambda"), []
    for resource in client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]:
        if resource["ResourceType"] != "AWS::Lambda::EventSourceMapping":
            continue
        mapping = lam.get_event_source_mapping(UUID=resource["PhysicalResourceId"])
        if mapping["EventSourceArn"].split(":")[2:3] == ["dynamodb"] and "/stream/" in mapping["EventSourceArn"]:
            found.append(mapping)
    return found


def wire(value):
    """A value botocore parsed back into what went over the wire: binary
    attributes as base64, timestamps as epoch seconds (Lambda's event has
    ApproximateCreationDateTime as a number)."""
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime.datetime):
        seconds = value.timestamp()
        return int(seconds) if seconds == int(seconds) else seconds
    return value


def equality_only(pattern):
    """Whether a filter pattern uses only what `matches` applies."""
    if isinstance(pattern, dict):
        return all(equality_only(p) for p in pattern.values())
    return isinstance(pattern, list) and all(not isinstance(v, (dict, list)) for v in pattern)


def matches(record, patterns):
    """Lambda's FilterCriteria on a DynamoDB record, for patterns of nested
    objects whose leaves list the values allowed (what the catalog accepts):
    every key of a pattern must match, and any one pattern lets it through."""
    def match(value, pattern):
        if isinstance(pattern, dict):
            return isinstance(value, dict) and all(match(value.get(k), p) for k, p in pattern.items())
        return value in pattern
    return not patterns or any(match(record, p) for p in patterns)


# Lambda's invocation payload limit (synchronous): a batch stops before it.
PAYLOAD_LIMIT = 6 * 1024 * 1024


class StreamMapping:
    """A stand-in for Lambda's event source mapping from a DynamoDB stream,
    for one mapping of the stack (README, "Deployed shape"). It reads the
    stream through the emulator's DynamoDB Streams API (DescribeStream,
    GetShardIterator, GetRecords, four polls a second per shard, as Lambda
    does) and invokes the function through the emulator's Lambda Invoke API
    with Lambda's DynamoDB event ({"Records": [...]} with each record's
    eventSourceARN), one batch per shard at a time, in order:

    - FilterCriteria is applied to each record first; a record filtered out
      is consumed, never sent;
    - a batch is sent when it holds BatchSize records, would pass 6 MB, or
      MaximumBatchingWindowInSeconds after its first record was read;
    - a function error is retried (backing off from 0.5 s to 10 s); with
      BisectBatchOnFunctionError the failed batch is halved first, each half
      inheriting the failures so far. A batch that failed more than
      MaximumRetryAttempts times (-1: no limit) is given up, as is a record
      older than MaximumRecordAgeInSeconds: Lambda's OnFailure record
      (condition RetryAttemptsExhausted / MaxRecordAgeExceeded, the batch's
      DDBStreamBatchInfo) goes to DestinationConfig.OnFailure (an SQS queue),
      and the shard moves on;
    - a throttle or a failed Invoke call is retried without counting.

    It calls with the account's credentials, not the function role's: the
    emulator checks stream reads against resource "*", so the role's grant on
    the stream's ARN (AWS's documented form) would be refused there.
    ParallelizationFactor other than 1 and tumbling windows are refused."""

    def __init__(self, client, mapping, log):
        self.lam, self.streams, self.sqs = client("lambda"), client("dynamodbstreams"), client("sqs")
        self.mapping, self.log = mapping, log
        self.stream = mapping["EventSourceArn"]
        self.function = mapping["FunctionArn"]
        if mapping.get("ParallelizationFactor", 1) != 1 or mapping.get("TumblingWindowInSeconds"):
            sys.exit(f"{self.function}: the stand-in runs one batch per shard, without tumbling windows")
        self.batch_size = mapping.get("BatchSize") or 100
        self.window = mapping.get("MaximumBatchingWindowInSeconds") or 0
        self.bisect = bool(mapping.get("BisectBatchOnFunctionError"))
        retries = mapping.get("MaximumRetryAttempts", -1)
        self.max_retries = None if retries is None or retries < 0 else retries
        age = mapping.get("MaximumRecordAgeInSeconds", -1)
        self.max_age = None if age is None or age < 0 else age
        self.on_failure = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        self.patterns = [json.loads(f["Pattern"]) for f in (mapping.get("FilterCriteria") or {}).get("Filters", [])]
        if not all(equality_only(p) for p in self.patterns):
            sys.exit(f"{self.function}: the stand-in applies only equality filters: {self.patterns}")
        self.starting = mapping.get("StartingPosition", "LATEST")
        self.shards = {}  # shard id -> {"iterator": str | None, "parent": id, "pending": [...], "since": t}

    def note(self, message):
        self.log.write(f"{datetime.datetime.now(datetime.timezone.utc).isoformat()} {message}\n")
        self.log.flush()

    def discover(self):
        """Takes an iterator on every shard not read yet whose parent is read to its end."""
        description = self.streams.describe_stream(StreamArn=self.stream)["StreamDescription"]
        for shard in description["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id in self.shards:
                continue
            parent = shard.get("ParentShardId")
            if parent in self.shards and self.shards[parent]["iterator"] is not None:
                continue
            kind = "TRIM_HORIZON" if self.starting == "TRIM_HORIZON" or parent in self.shards else "LATEST"
            iterator = self.streams.get_shard_iterator(
                StreamArn=self.stream, ShardId=shard_id, ShardIteratorType=kind
            )["ShardIterator"]
            self.shards[shard_id] = {"iterator": iterator, "pending": [], "since": None, "bytes": 0}

    def poll(self):
        """One pass over the shards: read, filter, and send each batch that is ready."""
        for shard_id, shard in self.shards.items():
            if shard["iterator"] is not None:
                page = self.streams.get_records(ShardIterator=shard["iterator"], Limit=1000)
                shard["iterator"] = page.get("NextShardIterator")
                for record in page["Records"]:
                    record = dict(wire(record), eventSourceARN=self.stream)
                    if matches(record, self.patterns):
                        if shard["since"] is None:
                            shard["since"] = time.monotonic()
                        shard["pending"].append(record)
            while shard["pending"]:
                batch, size = [], 0
                for record in shard["pending"][: self.batch_size]:
                    length = len(json.dumps(record))
                    if batch and size + length > PAYLOAD_LIMIT - 1024:
                        break
                    batch.append(record)
                    size += length
                full = len(batch) < len(shard["pending"]) or len(batch) == self.batch_size
                waited = time.monotonic() - shard["since"] >= self.window
                if not (full or waited or shard["iterator"] is None):
                    break
                del shard["pending"][: len(batch)]
                self.deliver(shard_id, batch)
                shard["since"] = time.monotonic() if shard["pending"] else None

    def deliver(self, shard_id, batch):
        """Invokes until the batch is done: succeeded, or given up."""
        work = [(batch, 0)]
        while work:
            records, failures = work.pop(0)
            if self.max_age is not None:
                now = time.time()
                aged = [now - r["dynamodb"].get("ApproximateCreationDateTime", now) > self.max_age for r in records]
                if any(aged):
                    self.give_up(shard_id, [r for r, a in zip(records, aged) if a], "MaxRecordAgeExceeded", failures)
                    records = [r for r, a in zip(records, aged) if not a]
                    if not records:
                        continue
            error = self.invoke(records)
            if error is None:
                continue
            failures += 1
            self.note(f"{self.function}: {len(records)} records failed ({failures}): {error}")
            if self.max_retries is not None and failures > self.max_retries:
                self.give_up(shard_id, records, "RetryAttemptsExhausted", failures)
                continue
            time.sleep(min(0.5 * 2 ** (failures - 1), 10))
            if self.bisect and len(records) > 1:
                half = (len(records) + 1) // 2
                work[:0] = [(records[:half], failures), (records[half:], failures)]
            else:
                work.insert(0, (records, failures))

    def invoke(self, records):
        """None when the function succeeded, else its error."""
        payload = json.dumps({"Records": records}).encode()
        delay = 0.5
        while True:
            try:
                answer = self.lam.invoke(FunctionName=self.function, InvocationType="RequestResponse", Payload=payload)
            except Exception as e:  # throttled, or the call failed: retried, not counted
                self.note(f"{self.function}: Invoke failed, retrying: {e}")
                time.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            body = answer["Payload"].read().decode(errors="replace")
            if answer.get("FunctionError"):
                return f"{answer['FunctionError']}: {body[:500]}"
            first, last = records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"]
            self.note(f"{self.function}: {len(records)} records ({first}..{last}) ok")
            return None

    def give_up(self, shard_id, records, condition, failures):
        """Lambda's OnFailure record for a batch it discards (the records stay on the stream)."""
        def at(record):
            seconds = record["dynamodb"].get("ApproximateCreationDateTime", time.time())
            return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        envelope = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function,
                "condition": condition,
                "approximateInvokeCount": failures,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": at(records[0]),
                "approximateArrivalOfLastRecord": at(records[-1]),
                "batchSize": len(records),
                "streamArn": self.stream,
            },
        }
        self.note(f"{self.function}: gave up {len(records)} records ({condition}) to {self.on_failure}")
        if self.on_failure:
            _, _, _, region, account, name = self.on_failure.split(":", 5)
            url = self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(envelope))


def stand_in_for_mappings(request):
    """Runs every DynamoDB-stream mapping of the stack (StreamMapping) until stdin closes."""
    client = clients(request["endpoint"])
    log = open(request["log"], "a", encoding="utf-8") if request.get("log") else sys.stderr
    mappings = [StreamMapping(client, m, log) for m in stream_mappings(client, request["stack"])]
    if not mappings:
        sys.exit(f"stack {request['stack']} has no event source mapping from a DynamoDB stream")
    for mapping in mappings:
        mapping.discover()
    # The test's end (or its crash) closes our stdin: stop with it.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    print("ready", flush=True)
    last_discovery = time.monotonic()
    while True:
        for mapping in mappings:
            try:
                if time.monotonic() - last_discovery > 5:
                    mapping.discover()
                mapping.poll()
            except Exception as e:  # the emulator briefly unreachable: Lambda keeps polling too
                mapping.note(f"{mapping.function}: polling failed: {e}")
        if time.monotonic() - last_discovery > 5:
            last_discovery = time.monotonic()
        time.sleep(0.25)


def main():
    if sys.argv[1:] == ["mappings"]:
        return stand_in_for_mappings(json.loads(sys.stdin.readline()))
    request = json.load(sys.stdin)
    if sys.argv[1:] == ["report"]:
        return report(request)
    endpoint, stack = request["endpoint"], request["stack"]
    client = clients(endpoint)
    s3, cfn, sm = client("s3"), client("cloudformation"), client("secretsmanager")

    secret_arns = {}
    for parameter, value in request["secrets"].items():
        secret_arns[parameter] = sm.create_secret(
            Name=f"{stack}/{parameter}", SecretString=json.dumps(value)
        )["ARN"]

    bucket = f"{stack}-artifacts".lower()
    s3.create_bucket(Bucket=bucket)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        with open(request["bootstrap"], "rb") as f:
            z.writestr(info, f.read())
    s3.put_object(Bucket=bucket, Key="koinonia-lambda.zip", Body=archive.getvalue())
    s3.head_object(Bucket=bucket, Key="koinonia-lambda.zip")  # a missing object would deploy mock functions

    template = translate(request.get("template", "template.yaml"), f"s3://{bucket}/koinonia-lambda.zip")
    template = patch_for_emulator(template)
    s3.put_object(Bucket=bucket, Key="template.json", Body=json.dumps(template).encode())

    parameters = dict(request.get("parameters", {}), **secret_arns)
    started = time.monotonic()
    cfn.create_stack(
        StackName=stack,
        TemplateURL=f"{endpoint}/{bucket}/template.json",
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    status = wait(cfn, stack)
    created = time.monotonic() - started
    if status != "CREATE_COMPLETE":
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        failed = [f'{e["LogicalResourceId"]}: {e.get("ResourceStatusReason")}' for e in events if "FAILED" in e["ResourceStatus"]]
        sys.exit(f"stack {stack} ended {status}:\n" + "\n".join(failed))

    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
    }
    started = time.monotonic()
    api_id = resources["HttpApi"]
    create_routes(client, template, resources, api_id)
    client("dynamodb").update_time_to_live(
        TableName=resources["Table"], TimeToLiveSpecification={"AttributeName": "ttl", "Enabled": True}
    )
    # The stand-in (`mappings`) does these mappings' work: the emulator's own
    # poller would invoke the function too. No item is written before this.
    for mapping in stream_mappings(client, stack):
        client("lambda").update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    }
    json.dump({
        "apiId": api_id,
        "apiUrl": f"{endpoint}/_aws/execute-api/{api_id}/$default",
        "resources": resources,
        "outputs": outputs,
        "secretArns": secret_arns,
        "seconds": {"create": round(created, 2), "routes": round(time.monotonic() - started, 2)},
    }, sys.stdout)


if __name__ == "__main__":
    main()
