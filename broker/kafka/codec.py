"""Message bodies as kio dataclasses (kio on PyPI, generated from Kafka's own JSON schemas).

kio has one module per API version, with the same class names in each: `build()` makes an
instance of a class of one version from plain Python values, dropping the fields that
version does not have and converting ints to the types kio uses (timedeltas, error codes,
UUIDs, datetimes). Handlers thus write one shape for every version they serve.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import functools
import importlib
import io
import uuid
from types import ModuleType
from typing import Any

from kio.schema.errors import ErrorCode as KafkaErrorCode
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import DecodeError

from broker.kafka.apis import ApiKey

_EPOCH = datetime.datetime.fromtimestamp(0, datetime.UTC)
_MILLISECOND = datetime.timedelta(milliseconds=1)


class BodyDecodeError(Exception):
    """A request body that does not parse as its API version's schema."""


@functools.cache
def schema_module(api_key: ApiKey, version: int, kind: str) -> ModuleType:
    """kio's module of one API version: kind is "request" or "response"."""
    assert kind in ("request", "response"), kind
    return importlib.import_module(f"kio.schema.{api_key.schema_name}.v{version}.{kind}")


def request_class(api_key: ApiKey, version: int) -> type[Any]:
    return getattr(schema_module(api_key, version, "request"), api_key.request_class_name)


def response_class(api_key: ApiKey, version: int) -> type[Any]:
    return getattr(schema_module(api_key, version, "response"), api_key.response_class_name)


@functools.cache
def is_flexible(api_key: ApiKey, version: int) -> bool:
    """Whether this version uses compact encodings and tagged fields (KIP-482)."""
    return bool(request_class(api_key, version).__flexible__)


def decode_request(api_key: ApiKey, version: int, body: memoryview) -> Any:
    """The request body as kio's dataclass; BodyDecodeError for anything that does not parse,
    including bytes left over after the body."""
    reader = entity_reader(request_class(api_key, version))
    try:
        request, size_bytes = reader(body, 0)
    except (DecodeError, ValueError, OverflowError, MemoryError) as error:
        raise BodyDecodeError(
            f"{api_key.name} v{version} body does not parse: {error or type(error).__name__}"
        ) from error
    if size_bytes != len(body):
        raise BodyDecodeError(
            f"{api_key.name} v{version} body has {len(body) - size_bytes} bytes after its end"
        )
    return request


def encode_response(response: Any) -> bytes:
    buffer = io.BytesIO()
    entity_writer(type(response))(buffer, response)
    return buffer.getvalue()


# -- building messages of any version -----------------------------------------------------


def build(module: ModuleType, class_name: str, **values: Any) -> Any:
    """An instance of `class_name` from `module` with the given values; values for fields
    this version lacks are dropped, and ints become the types kio declares."""
    cls = getattr(module, class_name)
    known = _fields(cls)
    arguments = {}
    for name, value in values.items():
        kafka_type = known.get(name, _ABSENT)
        if kafka_type is _ABSENT:
            continue
        arguments[name] = _convert(kafka_type, value)
    return cls(**arguments)


def has_field(module: ModuleType, class_name: str, field_name: str) -> bool:
    return field_name in _fields(getattr(module, class_name))


_ABSENT = object()


@functools.cache
def _fields(cls: type[Any]) -> dict[str, object]:
    return {field.name: field.metadata.get("kafka_type") for field in dataclasses.fields(cls)}


def _convert(kafka_type: object, value: Any) -> Any:
    if value is None:
        return None
    if kafka_type == "error_code":
        return KafkaErrorCode(int(value))
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return datetime.timedelta(milliseconds=int(value))
    if kafka_type == "uuid":
        return topic_uuid(value) if isinstance(value, str) else value
    if kafka_type == "datetime_i64":
        return None if value < 0 else _EPOCH + datetime.timedelta(milliseconds=int(value))
    return value


# -- conversions -----------------------------------------------------------------------------


def milliseconds(value: datetime.timedelta) -> int:
    return int(value / _MILLISECOND)


def topic_uuid(topic_id: str) -> uuid.UUID:
    """Our topic ids are Kafka's text form: 16 bytes of URL-safe base64 without padding."""
    raw = base64.urlsafe_b64decode(topic_id + "=" * (-len(topic_id) % 4))
    assert len(raw) == 16, f"topic id {topic_id!r} is not 16 bytes of base64"
    return uuid.UUID(bytes=raw)


def topic_id_text(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


ZERO_UUID = uuid.UUID(int=0)
