"""Schemathesis hooks (SCHEMATHESIS_HOOKS) that teach the generator the API's rules JSON Schema
cannot state; docs/openapi.md lists them and the fields' descriptions say them too:

- an LLM proxy does not name itself as a provider, nor one provider twice;
- an MCP proxy's servers have distinct names;
- a REST API's operations are distinct (method and path, up to a trailing `/` and the names
  of `{params}`), and an operation path names each parameter once;
- a guardrail's or PII mask's `pattern` is a regular expression the gateway's engine compiles
  (`format: regex` in the document; that engine has no look-around and no back-references).

A request that breaks one of these is answered 400 naming the field; the API's own tests
cover those answers. Here such a case is left out, so that what schemathesis sends as
schema-valid is valid. Every other rule is in the document."""

import json
import re

import schemathesis

MAX_HANDLE_LEN = 40


def derived_handle(display_name):
    """The handle the platform derives from a display name (`Handle::derive`), or None."""
    out = ""
    for c in display_name.lower():
        if ("a" <= c <= "z") or ("0" <= c <= "9"):
            out += c
        elif out and not out.endswith("-"):
            out += "-"
    out = out[:MAX_HANDLE_LEN].rstrip("-")
    return out or None


def on(case, collection):
    """Whether `case` creates or replaces an artifact of `collection`."""
    path = case.operation.path
    return case.operation.method.upper() in ("POST", "PUT") and path in (
        f"/api/v1/{collection}",
        f"/api/v1/{collection}/{{id}}",
    )


def own_handle(case, body):
    if case.operation.path.endswith("{id}"):
        return case.path_parameters.get("id") if case.path_parameters else None
    if isinstance(body.get("id"), str):
        return body["id"]
    name = body.get("displayName")
    return derived_handle(name) if isinstance(name, str) else None


def provider_ids(body):
    named = []
    one = body.get("provider")
    if isinstance(one, dict):
        named.append(one.get("id"))
    for p in body.get("providers") or []:
        if isinstance(p, dict):
            named.append(p.get("id"))
    return [n for n in named if isinstance(n, str)]


def compiles(pattern):
    """Whether the gateway's engine takes `pattern`, as far as Python's can tell: it compiles
    here, uses no look-around or back-reference, and repeats nothing a thousand times."""
    if not isinstance(pattern, str):
        return True
    if re.search(r"\(\?(=|!|<=|<!|P=)|\\[1-9]|\{\d{4,}", pattern):
        return False
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


def patterns(body):
    """The regular expressions in a body's policies."""
    found = []
    policies = list(body.get("policies") or [])
    for op in body.get("operations") or []:
        if isinstance(op, dict):
            policies += op.get("policies") or []
    for p in policies:
        params = p.get("params") if isinstance(p, dict) else None
        if not isinstance(params, dict):
            continue
        for rule in list(params.get("rules") or []) + list(params.get("custom") or []):
            if isinstance(rule, dict):
                found.append(rule.get("pattern"))
    return found


def normalized(path):
    """An operation path as the API compares them (`normalized_path`)."""
    trimmed = path.rstrip("/") if len(path) > 1 else path
    return "/".join("{}" if seg.startswith("{") else seg for seg in trimmed.split("/"))


def operations_distinct(body):
    seen = set()
    for op in body.get("operations") or []:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            continue
        params = [seg for seg in op["path"].split("/") if seg.startswith("{")]
        if len(params) != len(set(params)):
            return False
        key = (json.dumps(op.get("method")), normalized(op["path"]))
        if key in seen:
            return False
        seen.add(key)
    return True


def keep(case):
    """Whether `case` keeps to the rules above once `fix` has run on it."""
    body = case.body
    if not isinstance(body, dict):
        return True
    if not all(compiles(p) for p in patterns(body)):
        return False
    if on(case, "rest-apis") and not operations_distinct(body):
        return False
    if on(case, "llm-proxies"):
        named = provider_ids(body)
        if len(named) != len(set(named)) or own_handle(case, body) in named:
            return False
    if on(case, "mcp-proxies"):
        names = [u.get("name") for u in body.get("upstreams") or [] if isinstance(u, dict)]
        names = [n for n in names if isinstance(n, str)]
        if len(names) != len(set(names)):
            return False
    return True


@schemathesis.hook
def filter_case(context, case):
    return keep(case)


@schemathesis.hook
def before_add_examples(context, examples):
    """The examples phase takes no case hooks; its cases are kept to the same rules here."""
    examples[:] = [c for c in examples if keep(c)]
