"""`/openapi.json` documents exactly the routes build_app serves (SPEC §5)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry

from broker.api.http import PUBLIC_PATHS, build_app
from broker.api.openapi import openapi_document
from tests.unit.api.fakes import FakeNode

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def registered_operations() -> set[tuple[str, str]]:
    app = build_app(FakeNode(), CollectorRegistry())
    operations = set()
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD to every GET route
            continue
        assert route.resource is not None
        operations.add((route.method.lower(), route.resource.canonical))
    return operations


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_registered_route_is_documented_and_nothing_else() -> None:
    assert registered_operations() == documented_operations(openapi_document())


def test_public_routes_are_documented_as_needing_no_token() -> None:
    document = openapi_document()

    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            public = operation.get("security") == []
            assert public == (path in PUBLIC_PATHS), (method, path)


def test_every_schema_reference_resolves() -> None:
    document = openapi_document()
    references: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "$ref" in value:
                references.append(value["$ref"])
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(document)

    assert references
    for reference in references:
        assert reference.startswith("#/components/schemas/"), reference
        assert reference.rsplit("/", 1)[1] in document["components"]["schemas"]


async def test_openapi_json_serves_the_document(client: TestClient[Any, Any]) -> None:
    response = await client.get("/openapi.json")

    assert response.status == 200
    body = await response.json()
    assert body["openapi"].startswith("3.0.")
    assert documented_operations(body) == registered_operations()


def test_operation_ids_are_unique() -> None:
    document = openapi_document()
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]

    assert len(ids) == len(set(ids))


def test_path_parameters_are_declared_for_every_templated_segment() -> None:
    document = openapi_document()

    for path, item in document["paths"].items():
        templated = {segment[1:-1] for segment in path.split("/") if segment.startswith("{")}
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        assert templated == declared, path
