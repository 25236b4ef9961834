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
Also: its Lambdas get AWS_ENDPOINT_URL only from its own environment
(infra/emulator.sh sets it), and it has no EMF extraction or AWS/SQS
metrics, so the alarms are created but never change state there.
"""

import io
import json
import sys
import time
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


def main():
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
