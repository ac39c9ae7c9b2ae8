"""Checks of HTTP input, each failing with an ApiError that names the value and the rule.

Pure functions over already-read values; the handlers read the request and call them.
"""

from __future__ import annotations

import json
import re
import string
import sys
from typing import Any

from broker.api.errors import ApiError, ErrorCode

MAX_KV_KEY_CHARS = 255
MAX_KV_VALUE_BYTES = 64 * 1024  # of the value encoded as UTF-8
_KV_KEY_CHARACTERS = frozenset(string.ascii_letters + string.digits + "._-")
# Values echoed in messages are cut to this many characters, so an error stays readable.
_MAX_ECHOED_CHARS = 64

_JSON_TYPE_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}


def _echo(text: str) -> str:
    if len(text) <= _MAX_ECHOED_CHARS:
        return repr(text)
    return f"{text[:_MAX_ECHOED_CHARS]!r}... ({len(text)} characters)"


def json_type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def validate_kv_key(key: str) -> None:
    """A key is 1 to 255 characters of [a-zA-Z0-9._-]."""
    if not key:
        raise ApiError(ErrorCode.INVALID_VALUE, "key is empty; a key has 1 to 255 characters")
    if len(key) > MAX_KV_KEY_CHARS:
        raise ApiError(
            ErrorCode.INVALID_VALUE,
            f"key {_echo(key)} has {len(key)} characters, more than the limit of "
            f"{MAX_KV_KEY_CHARS}",
        )
    for position, character in enumerate(key):
        if character not in _KV_KEY_CHARACTERS:
            raise ApiError(
                ErrorCode.INVALID_VALUE,
                f"key {_echo(key)} contains {character!r} at position {position}; a key may "
                "only contain letters a-z and A-Z, digits 0-9, '.', '_' and '-'",
            )


def validate_kv_value(value: str) -> None:
    """A value is a string of at most 64 KiB once encoded as UTF-8."""
    try:
        size_bytes = len(value.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise ApiError(
            ErrorCode.INVALID_VALUE,
            f"field 'value' is not valid Unicode: it holds the lone surrogate "
            f"{value[error.start]!r} at position {error.start}",
        ) from None
    if size_bytes > MAX_KV_VALUE_BYTES:
        raise ApiError(
            ErrorCode.INVALID_VALUE,
            f"field 'value' is {size_bytes} bytes in UTF-8, more than the limit of "
            f"{MAX_KV_VALUE_BYTES} bytes",
        )


def _decode_utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            ErrorCode.MALFORMED_REQUEST,
            f"request body is not valid UTF-8: byte {body[error.start]:#04x} at position "
            f"{error.start}",
        ) from None


def _json_refusal(error: ValueError | RecursionError) -> ApiError:
    """The answer to a refusal of the json module while reading a request body."""
    if isinstance(error, json.JSONDecodeError):
        return ApiError(ErrorCode.MALFORMED_REQUEST, f"request body is not valid JSON: {error}")
    if isinstance(error, RecursionError):
        return ApiError(
            ErrorCode.MALFORMED_REQUEST, "request body is JSON nested too deeply to be read"
        )
    # The only other refusal of json.loads: an integer too long to convert.
    return ApiError(
        ErrorCode.MALFORMED_REQUEST,
        f"request body holds a number of more than {sys.get_int_max_str_digits()} digits",
    )


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; malformed JSON or another JSON type is a 40001."""
    text = _decode_utf8(body)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise _json_refusal(error) from None
    if not isinstance(document, dict):
        raise ApiError(
            ErrorCode.MALFORMED_REQUEST,
            f"request body must be a JSON object, got {json_type_name(document)}",
        )
    return document


def _refuse_constant(name: str) -> Any:
    raise ApiError(
        ErrorCode.MALFORMED_REQUEST,
        f"request body is not valid JSON: {name} is not a JSON number",
    )


# JSON's insignificant whitespace (RFC 8259 §2), skipped between concatenated values.
_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _skip_whitespace(text: str, position: int) -> int:
    match = _JSON_WHITESPACE.match(text, position)
    assert match is not None, "the pattern matches the empty string"
    return match.end()


def parse_json_values(body: bytes, max_values: int) -> list[Any]:
    """The JSON values of a body of one or more concatenated values (Confluent's streaming
    form: `{...}{...}` or one value a line), at most `max_values` of them. Refuses NaN and
    Infinity, which are not JSON, so that a value can be written back as JSON."""
    assert max_values >= 1, f"max_values {max_values}"
    text = _decode_utf8(body)
    decoder = json.JSONDecoder(parse_constant=_refuse_constant)
    values: list[Any] = []
    position = _skip_whitespace(text, 0)
    while position < len(text):
        if len(values) == max_values:
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                f"request body holds more than {max_values} JSON values, the limit of one request",
            )
        try:
            value, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError) as error:
            raise _json_refusal(error) from None
        values.append(value)
        position = _skip_whitespace(text, position)
    if not values:
        raise ApiError(ErrorCode.MALFORMED_REQUEST, "request body is empty; it must be JSON")
    return values


def parse_kv_put_body(body: bytes) -> str:
    """The value of a `PUT /v1/kv/{key}` body, which must be exactly {"value": <string>}."""
    document = parse_json_object(body)
    unknown = sorted(set(document) - {"value"})
    if unknown:
        raise ApiError(
            ErrorCode.MALFORMED_REQUEST,
            f'unknown field {unknown[0]!r}; the body is {{"value": <string>}}',
        )
    if "value" not in document:
        raise ApiError(
            ErrorCode.MALFORMED_REQUEST,
            "field 'value' is missing; the body is {\"value\": <string>}",
        )
    value = document["value"]
    if not isinstance(value, str):
        raise ApiError(
            ErrorCode.MALFORMED_REQUEST,
            f"field 'value' must be a string, got {json_type_name(value)}",
        )
    validate_kv_value(value)
    return value
