"""Checks of the record routes' input (SPEC §5, §7): Confluent REST v3 produce bodies and the
query and Accept header of Redpanda's consume route.

Pure functions over already-read bytes and strings; each refusal is an ApiError naming the
field, the value and the rule:

- 40001: the body is not JSON, a record is not an object, a field is missing, unknown, of the
  wrong type, or not decodable (base64, Unicode); a query parameter that is not an integer,
  missing, repeated or unknown;
- 40002: a well-typed value refused here already (a type we do not serve, Schema Registry
  fields, a negative partition id or timestamp, too many records or headers, a query value
  out of its bounds);
- 40601: an Accept header naming no record format we serve.

A produce body is one record object, a JSON array of them, or several record objects
concatenated (Confluent's streaming form). One bad record refuses the whole request, so that
bad input changes nothing (SPEC §7); Kafka's refusals of well-formed records come back per
record instead (broker/api/records).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from broker.api.errors import ApiError, ErrorCode
from broker.api.facade import OutgoingRecord
from broker.api.rest_validation import INT32_MAX, check_fields, string_field
from broker.api.validation import json_type_name, parse_json_values

# The request body is at most MAX_REQUEST_BODY_BYTES already; this bounds the work of one
# request (one facade call, one outcome list) even for tiny records.
MAX_RECORDS_PER_PRODUCE_REQUEST = 1000
# Kafka sets no limit; ours keeps one record from carrying thousands of headers.
MAX_HEADERS_PER_RECORD = 64
# Kafka's offsets and timestamps are int64 on the wire.
INT64_MAX = 2**63 - 1
# Confluent's data types that need no Schema Registry; the others (AVRO, PROTOBUF,
# JSONSCHEMA) and the schema fields need one, which a kraft node does not have.
RECORD_DATA_TYPES = ("BINARY", "JSON", "STRING")
SCHEMA_REGISTRY_TYPES = ("AVRO", "PROTOBUF", "JSONSCHEMA")
SCHEMA_FIELDS = ("subject", "subject_name_strategy", "schema_id", "schema_version", "schema")
RECORD_FIELDS = ("partition_id", "headers", "key", "value", "timestamp")

CONSUME_QUERY_PARAMETERS = ("offset", "max_bytes", "timeout")
DEFAULT_CONSUME_MAX_BYTES = 1024 * 1024
# Answers are built in memory and base64 adds a third: a bound on one answer's size.
MAX_CONSUME_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_CONSUME_TIMEOUT_MS = 500  # Kafka's fetch.max.wait.ms default
# A long poll past this holds a connection and a handler for nothing; clients poll again.
MAX_CONSUME_TIMEOUT_MS = 30_000
# Digits enough for any int64; longer text is refused before int() converts it.
_MAX_INTEGER_CHARS = 20
_INTEGER = re.compile(r"-?[0-9]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ProduceForm(enum.Enum):
    """How the records came, which decides how the answer is shaped."""

    SINGLE = "single"  # one object: one answer object, the HTTP status carries an error
    ARRAY = "array"  # a JSON array: a JSON array of answers
    STREAM = "stream"  # concatenated objects: one answer object a line


@dataclass(frozen=True, slots=True)
class ProduceRecord:
    """A record to produce, with the types its key and value were given in (None: absent),
    which the answer reports back with their sizes."""

    record: OutgoingRecord
    key_type: str | None
    value_type: str | None


@dataclass(frozen=True, slots=True)
class ProduceBody:
    form: ProduceForm
    records: tuple[ProduceRecord, ...]


class RecordFormat(enum.Enum):
    """How the consume route shows keys and values, chosen by the Accept header."""

    BINARY = "application/vnd.kafka.binary.v2+json"  # base64
    JSON = "application/vnd.kafka.json.v2+json"  # the bytes parsed as JSON

    @property
    def media_type(self) -> str:
        return self.value


# Accept values that name no embedded format: they get the one that shows any bytes.
_DEFAULT_FORMAT_MEDIA_TYPES = frozenset(
    {"application/vnd.kafka.v2+json", "application/json", "application/*", "*/*"}
)


@dataclass(frozen=True, slots=True)
class ConsumeQuery:
    offset: int
    max_bytes: int
    timeout_ms: int


def _malformed(message: str) -> ApiError:
    return ApiError(ErrorCode.MALFORMED_REQUEST, message)


def _bad(message: str) -> ApiError:
    return ApiError(ErrorCode.BAD_REQUEST, message)


# --- produce ---------------------------------------------------------------------------------


def _integer(value: Any, field: str) -> int:
    # bool is an int in Python, not in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _malformed(f"field {field!r} must be an integer, got {json_type_name(value)}")
    return value


def _partition_id(value: Any, field: str) -> int | None:
    if value is None:
        return None
    partition = _integer(value, field)
    if partition < 0:
        raise _bad(f"{field} {partition} is negative; partition ids start at 0")
    if partition > INT32_MAX:
        raise _bad(f"{field} {partition} is larger than the limit of {INT32_MAX}")
    return partition


def _base64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as error:
        raise _malformed(f"field {field!r} is not valid base64 (RFC 4648): {error}") from None


def _utf8(text: str, field: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _malformed(
            f"field {field!r} is not valid Unicode: it holds the lone surrogate "
            f"{text[error.start]!r} at position {error.start}"
        ) from None


def _headers(value: Any, field: str) -> tuple[tuple[str, bytes | None], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _malformed(f"field {field!r} must be an array, got {json_type_name(value)}")
    if len(value) > MAX_HEADERS_PER_RECORD:
        raise _bad(
            f"field {field!r} has {len(value)} headers, more than the limit of "
            f"{MAX_HEADERS_PER_RECORD}"
        )
    headers: list[tuple[str, bytes | None]] = []
    for index, raw in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(raw, dict):
            raise _malformed(f"field {where!r} must be an object, got {json_type_name(raw)}")
        check_fields(raw, f"{where}.", ("name", "value"), ("name",))
        name = string_field(raw["name"], f"{where}.name")
        _utf8(name, f"{where}.name")
        header_value = raw.get("value")
        if header_value is not None:
            header_value = _base64(string_field(header_value, f"{where}.value"), f"{where}.value")
        headers.append((name, header_value))
    return tuple(headers)


def _data_type(data: Mapping[str, Any], field: str) -> str:
    data_type = string_field(data["type"], f"{field}.type")
    if data_type in SCHEMA_REGISTRY_TYPES:
        raise _bad(
            f"{field}.type {data_type} needs a Schema Registry, which this cluster does not "
            f"have; use one of {', '.join(RECORD_DATA_TYPES)}"
        )
    if data_type not in RECORD_DATA_TYPES:
        raise _bad(f"{field}.type {data_type!r} is not one of {', '.join(RECORD_DATA_TYPES)}")
    return data_type


def _encode_data(data_type: str, data: Any, field: str) -> bytes | None:
    """The bytes of `data` given as `data_type`; JSON null is a null key or value."""
    if data is None:
        return None
    if data_type == "BINARY":
        return _base64(string_field(data, field), field)
    if data_type == "STRING":
        return _utf8(string_field(data, field), field)
    assert data_type == "JSON", data_type
    # Compact, and not ASCII-escaped: the bytes a JSON producer would write.
    return _utf8(json.dumps(data, ensure_ascii=False, separators=(",", ":")), field)


def _key_or_value(value: Any, field: str) -> tuple[str | None, bytes | None]:
    """(type, bytes) of a record's `key` or `value` object; (None, None) when absent."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise _malformed(f"field {field!r} must be an object, got {json_type_name(value)}")
    schema_fields = sorted(set(value) & set(SCHEMA_FIELDS))
    if schema_fields:
        raise _bad(
            f"field '{field}.{schema_fields[0]}' needs a Schema Registry, which this cluster "
            f'does not have; give {field} as {{"type", "data"}}'
        )
    check_fields(value, f"{field}.", ("type", "data"), ("type", "data"))
    data_type = _data_type(value, field)
    return data_type, _encode_data(data_type, value["data"], f"{field}.data")


def _timestamp_ms(value: Any, field: str) -> int | None:
    """Confluent's ISO 8601 date-time with a zone ("2024-05-01T12:00:00.250Z"), or (our
    addition) an integer of milliseconds since the Unix epoch."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _malformed(
                f"field {field!r} is {value!r}, not an ISO 8601 date-time such as "
                "'2024-05-01T12:00:00.250Z'"
            ) from None
        if moment.tzinfo is None:
            raise _malformed(
                f"field {field!r} is {value!r}, which names no time zone; add 'Z' or an offset"
            )
        timestamp_ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    else:
        timestamp_ms = _integer(value, field)
    if timestamp_ms < 0:
        raise _bad(f"{field} {value!r} is before 1970-01-01T00:00:00Z; Kafka's are not")
    if timestamp_ms > INT64_MAX:
        raise _bad(f"{field} {value!r} is larger than the limit of {INT64_MAX} ms")
    return timestamp_ms


def parse_produce_record(document: Any, where: str) -> ProduceRecord:
    """One ProduceRequest of Confluent's REST v3: {"partition_id"?, "headers"?: [{"name",
    "value"?}], "key"?: {"type", "data"}, "value"?: {"type", "data"}, "timestamp"?}.
    `where` prefixes field names in messages ("" or "[3].")."""
    if not isinstance(document, dict):
        what = "request body" if not where else f"record {where[:-1]}"
        raise _malformed(f"{what} must be a JSON object, got {json_type_name(document)}")
    check_fields(document, where, RECORD_FIELDS, ())
    key_type, key = _key_or_value(document.get("key"), f"{where}key")
    value_type, value = _key_or_value(document.get("value"), f"{where}value")
    record = OutgoingRecord(
        value=value,
        key=key,
        headers=_headers(document.get("headers"), f"{where}headers"),
        partition=_partition_id(document.get("partition_id"), f"{where}partition_id"),
        timestamp_ms=_timestamp_ms(document.get("timestamp"), f"{where}timestamp"),
    )
    return ProduceRecord(record, key_type, value_type)


def _records_of(documents: Iterable[Any], where: str) -> tuple[ProduceRecord, ...]:
    return tuple(
        parse_produce_record(document, f"{where}[{index}].")
        for index, document in enumerate(documents)
    )


def parse_produce_body(body: bytes) -> ProduceBody:
    """A produce body: one record, an array of records, or concatenated records."""
    values = parse_json_values(body, MAX_RECORDS_PER_PRODUCE_REQUEST)
    if len(values) > 1:
        return ProduceBody(ProduceForm.STREAM, _records_of(values, ""))
    (document,) = values
    if not isinstance(document, list):
        return ProduceBody(ProduceForm.SINGLE, (parse_produce_record(document, ""),))
    if not document:
        raise _bad("request body is an empty array; give at least one record")
    if len(document) > MAX_RECORDS_PER_PRODUCE_REQUEST:
        raise _bad(
            f"request body holds {len(document)} records, more than the limit of "
            f"{MAX_RECORDS_PER_PRODUCE_REQUEST}"
        )
    return ProduceBody(ProduceForm.ARRAY, _records_of(document, ""))


# --- consume ---------------------------------------------------------------------------------


def _query_integer(name: str, text: str, minimum: int, maximum: int, rule: str) -> int:
    if len(text) > _MAX_INTEGER_CHARS or _INTEGER.fullmatch(text) is None:
        shown = text if len(text) <= _MAX_INTEGER_CHARS else text[:_MAX_INTEGER_CHARS] + "..."
        raise _malformed(f"query parameter {name!r} must be an integer, got {shown!r}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise _bad(f"{name} {value} is out of bounds: {rule}")
    return value


def parse_consume_query(parameters: Iterable[tuple[str, str]]) -> ConsumeQuery:
    """`?offset=N&max_bytes=B&timeout=MS`: offset is required; max_bytes and timeout default
    to DEFAULT_CONSUME_MAX_BYTES and DEFAULT_CONSUME_TIMEOUT_MS."""
    given: dict[str, str] = {}
    for name, text in parameters:
        if name not in CONSUME_QUERY_PARAMETERS:
            names = ", ".join(repr(known) for known in CONSUME_QUERY_PARAMETERS)
            raise _malformed(f"unknown query parameter {name!r}; the parameters are {names}")
        if name in given:
            raise _malformed(f"query parameter {name!r} is given more than once")
        given[name] = text
    if "offset" not in given:
        raise _malformed("query parameter 'offset' is missing; give the first offset to read")
    offset = _query_integer(
        "offset", given["offset"], 0, INT64_MAX, f"offsets are 0 to {INT64_MAX}"
    )
    max_bytes = DEFAULT_CONSUME_MAX_BYTES
    if "max_bytes" in given:
        max_bytes = _query_integer(
            "max_bytes",
            given["max_bytes"],
            1,
            MAX_CONSUME_MAX_BYTES,
            f"max_bytes is 1 to {MAX_CONSUME_MAX_BYTES}",
        )
    timeout_ms = DEFAULT_CONSUME_TIMEOUT_MS
    if "timeout" in given:
        timeout_ms = _query_integer(
            "timeout",
            given["timeout"],
            0,
            MAX_CONSUME_TIMEOUT_MS,
            f"timeout is 0 to {MAX_CONSUME_TIMEOUT_MS} ms",
        )
    return ConsumeQuery(offset, max_bytes, timeout_ms)


def parse_accept(accept: str | None) -> RecordFormat:
    """The record format of an Accept header: the first media type in it that we serve;
    BINARY when it names none in particular (absent, `*/*`, `application/json`)."""
    if accept is None or not accept.strip():
        return RecordFormat.BINARY
    for part in accept.split(","):
        media_type = part.split(";", 1)[0].strip().lower()
        for record_format in RecordFormat:
            if media_type == record_format.media_type:
                return record_format
        if media_type in _DEFAULT_FORMAT_MEDIA_TYPES:
            return RecordFormat.BINARY
    served = ", ".join(record_format.media_type for record_format in RecordFormat)
    raise ApiError(
        ErrorCode.NOT_ACCEPTABLE,
        f"Accept {accept!r} names no record format this route serves; accept one of {served}",
    )
