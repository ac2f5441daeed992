#!/usr/bin/env python3
"""Validates openapi.yaml itself, then real answers of the daemon against it.

usage: validate.py OPENAPI_YAML ANSWERS_JSON
ANSWERS_JSON: [{"method", "path", "status", "content_type", "body"}, ...]
Prints one line per answer and "N passed, N failed"; exits 1 on any failure.
"""
import json
import re
import sys

import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec


def resolve(node, root):
    if isinstance(node, dict):
        if "$ref" in node:
            target = root
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return resolve(target, root)
        return {key: resolve(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, root) for item in node]
    return node


def operation(spec, method, path):
    """The operation for method and path; for a method the path does not take, a synthetic one
    whose only answer is 405 with the Error body."""
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            if method.lower() in item:
                return item[method.lower()]
            error = spec["components"]["responses"]["Error"]
            return {"responses": {"405": error}}
    return None


def main():
    with open(sys.argv[1]) as handle:
        raw = yaml.safe_load(handle)
    validate_spec(raw)
    spec = resolve(raw, raw)
    with open(sys.argv[2]) as handle:
        answers = json.load(handle)
    passed = failed = 0
    for answer in answers:
        label = f'{answer["method"]} {answer["path"]} -> {answer["status"]}'
        problems = []
        op = operation(spec, answer["method"], answer["path"].split("?")[0])
        if op is None:
            problems.append("no operation in openapi.yaml")
        else:
            response = op["responses"].get(str(answer["status"]))
            if response is None:
                problems.append("status not documented")
            else:
                media = answer["content_type"].split(";")[0].strip()
                content = response.get("content", {})
                if media not in content:
                    problems.append(f"content type {media} not documented")
                else:
                    schema = content[media]["schema"]
                    body = json.loads(answer["body"]) if media == "application/json" else answer["body"]
                    for error in Draft202012Validator(schema).iter_errors(body):
                        problems.append(f"{list(error.path)}: {error.message}")
        if problems:
            failed += 1
            print(f"FAIL {label}: " + "; ".join(problems))
        else:
            passed += 1
            print(f"ok   {label}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
