"""service/openapi.json: the API as described, the API as served, and the README's API
table all name the same endpoints; its schemas are valid and match the request schema."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bastion.service.http import endpoints
from tests.conftest import ROOT
from tests.service.http_support import (  # noqa: F401
    OPENAPI,
    REQUEST_BODIES,
    FakeView,
    call,
    default_logging,
    openapi,
    serving,
    validate_schema,
)

_ROW = re.compile(r"^\|\s*`(?P<method>GET|POST|PUT|DELETE|PATCH) (?P<path>/\S*)`")


def _documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in openapi()["paths"].items()
        for method in operations
    }


def _readme_api_table() -> set[tuple[str, str]]:
    """The endpoints of the API table in README "Running the service"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Running the service", 1)[1].split("\n## ", 1)[0]
    found = set()
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            found.add((match["method"], match["path"]))
    return found


def test_openapi_when_read_then_version_3_1_and_every_endpoint_served() -> None:
    """The document is OpenAPI 3.1 and describes exactly the endpoints the server has."""
    document = openapi()
    assert document["openapi"].startswith("3.1.")
    assert _documented() == {(e.method, e.path) for e in endpoints()}


def test_openapi_when_compared_with_readme_then_same_endpoints() -> None:
    """Every path and method in the document is in the README's API table, and back."""
    assert _readme_api_table() == _documented()


def test_openapi_when_roles_listed_then_those_the_server_enforces() -> None:
    """Each operation's x-bastion-role is the least role the server asks for."""
    for endpoint in endpoints():
        operation = openapi()["paths"][endpoint.path][endpoint.method.lower()]
        expected = endpoint.role.label if endpoint.role is not None else "open"
        assert operation["x-bastion-role"] == expected, endpoint.path


def test_openapi_when_served_then_the_file_in_the_repository() -> None:
    """GET /api/v1/openapi.json serves the committed document as it is."""
    with serving(FakeView()) as http:
        reply = call(http.url + "/api/v1/openapi.json")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.body == OPENAPI.read_bytes()


@pytest.mark.parametrize("name", sorted(openapi()["components"]["schemas"]))
def test_openapi_when_schemas_checked_then_valid_json_schema(name: str) -> None:
    """Every component schema is valid JSON Schema 2020-12 and its $refs resolve."""
    schema = openapi()["components"]["schemas"][name]
    jsonschema.Draft202012Validator.check_schema(schema)
    for ref in re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(schema)):
        assert ref in openapi()["components"]["schemas"]


def test_openapi_when_order_request_compared_then_the_published_request_schema() -> None:
    """OrderRequest is schemas/request.schema.json, its $defs under components."""
    published = json.loads((ROOT / "schemas" / "request.schema.json").read_text())
    expected = _rewritten(
        {k: v for k, v in published.items() if k not in ("$schema", "$id", "$defs")}
    )
    schemas = openapi()["components"]["schemas"]
    assert schemas["OrderRequest"] == expected
    for name, definition in published["$defs"].items():
        assert schemas[f"OrderRequest{name}"] == _rewritten(definition)


def _rewritten(node: Any) -> Any:
    node = copy.deepcopy(node)
    text = json.dumps(node).replace('"#/$defs/', '"#/components/schemas/OrderRequest')
    return json.loads(text)


@pytest.mark.parametrize(
    "request_file", sorted((ROOT / "examples" / "check").glob("*/*request.json")), ids=str
)
def test_openapi_when_example_requests_validated_then_order_requests(request_file: Path) -> None:
    """The shipped example requests (orders and order lists) are valid request bodies of
    POST /api/v1/check."""
    validate_schema("CheckRequest", json.loads(request_file.read_text()))


def test_openapi_when_bad_body_validated_then_refused() -> None:
    """The schemas do refuse: a request without its action is not an OrderRequest."""
    with pytest.raises(jsonschema.ValidationError):
        validate_schema("OrderRequest", {"symbol": "QQQ"})
    with pytest.raises(jsonschema.ValidationError):
        validate_schema("ResetRequest", {"breaker": "x", "subject": "a:b", "reason": "r", "z": 1})


@pytest.mark.parametrize("path", sorted(REQUEST_BODIES))
def test_openapi_when_test_bodies_validated_then_each_its_endpoints_request(path: str) -> None:
    """The request bodies the HTTP tests send are valid for the endpoint they go to, and
    the document names that schema as the endpoint's request body."""
    schema, body = REQUEST_BODIES[path]
    validate_schema(schema, body)
    content = openapi()["paths"][path]["post"]["requestBody"]["content"]
    assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{schema}"}
