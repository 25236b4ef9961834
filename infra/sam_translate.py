"""Prints template.yaml after the SAM transform, as CloudFormation sees it.

Usage: .venv/bin/python infra/sam_translate.py [template.yaml] [s3://bucket/key]

As `sam package` does, every function's local CodeUri becomes the S3 object
given (a placeholder by default). The template-limit tests read the output,
since AWS's limits (dynamic references, resources, size) apply to it, not to
the SAM source; the deployed-shape test creates it in the emulator. No AWS
account is asked for anything.
"""

import json
import os
import sys

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# Managed policies SAM itself attaches (basic execution, X-Ray, SQS polling).
MANAGED = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSXRayDaemonWriteAccess": "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess",
    "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
}


class ManagedPolicies:
    def load(self):
        return MANAGED


def translate(path: str, code: str = "s3://koinonia-artifacts/koinonia-lambda.zip") -> dict:
    # The translator resolves pseudo parameters with a region; no call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and props.get("CodeUri") == ".":
            props["CodeUri"] = code
    return transform(template, {}, ManagedPolicies())


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    try:
        translated = translate(path, *sys.argv[2:3])
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"template.yaml: {cause.message}", file=sys.stderr)
        sys.exit(1)
    json.dump(translated, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
