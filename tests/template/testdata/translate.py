"""Translate a SAM template to CloudFormation with samtranslator, offline.

Usage: python3 translate.py TEMPLATE REGION  ->  the CloudFormation JSON on stdout.
Exit status 3 when samtranslator (or boto3, which it needs) is not installed.
CodeUri values are replaced by an S3 URI, as `sam package` would do.
"""
import json
import sys

try:
    import boto3
    from samtranslator.parser import parser
    from samtranslator.translator.translator import Translator
    from samtranslator.yaml_helper import yaml_parse
except ImportError as e:  # the Go test skips on status 3
    print("samtranslator not available: %s" % e, file=sys.stderr)
    sys.exit(3)

path, region = sys.argv[1], sys.argv[2]
with open(path) as f:
    tmpl = yaml_parse(f.read())
for res in tmpl.get("Resources", {}).values():
    if res.get("Type") == "AWS::Serverless::Function":
        res.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key.zip"
# Offline: a session with a region and dummy credentials; no AWS call is made
# (the template names no managed policy that needs a lookup).
session = boto3.session.Session(region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
out = Translator(managed_policy_map={}, sam_parser=parser.Parser(), boto_session=session).translate(
    sam_template=tmpl, parameter_values={})
json.dump(out, sys.stdout)
