"""Produce and consume over HTTP (SPEC §5), wired to a DataPlaneFacade.

- `POST /v3/clusters/{cluster_id}/topics/{topic_name}/records` (and under `/kafka/v3`):
  Confluent REST v3's produce. The body is one record, a JSON array of records, or several
  records concatenated (Confluent's streaming form); the answer is one delivery report, a
  JSON array of them, or one a line. Records are written with acks=all: REST v3 has no acks
  setting, and an acknowledged write should survive what SPEC §7 promises.
- `GET /topics/{topic_name}/partitions/{partition_id}/records?offset=N&max_bytes=B&timeout=MS`:
  Redpanda's HTTP-proxy consume, a JSON array of {topic, key, value, partition, offset}, keys
  and values in base64 or as JSON by the Accept header.

Kafka's error codes from the facade become Confluent's: UNKNOWN_TOPIC_OR_PARTITION 40403,
OFFSET_OUT_OF_RANGE 41601, REQUEST_TIMED_OUT 50002, other retriable ones 50003 (with
Retry-After), refusals of the request 40002, anything else 50001. A single produced record and
a fetch answer them with the code's HTTP status; several records answer 200 with one report
each, as Confluent's streaming mode does.

The routes are registered on every node so that /openapi.json is the same everywhere; on a
node built without a data plane they answer 501 (50101), as the admin routes do.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from broker.api.bodies import read_json_body
from broker.api.errors import RETRY_AFTER_SECONDS, ApiError, ErrorCode, timed_out_error
from broker.api.facade import ConsumedRecord, DataPlaneFacade, FetchOutcome, RecordOutcome
from broker.api.records_validation import (
    ProduceBody,
    ProduceForm,
    ProduceRecord,
    RecordFormat,
    parse_accept,
    parse_consume_query,
    parse_produce_body,
)
from broker.api.rest_v3 import V3_PREFIXES
from broker.api.rest_validation import parse_partition_id
from kraft.controller.topics import validate_topic_name
from kraft.protocol.errors import ErrorCode as KafkaError
from kraft.protocol.errors import error_name

DATA: web.AppKey[DataPlaneFacade | None] = web.AppKey("data")
# The cluster id the produce route's path must name (the node's).
RECORDS_CLUSTER_ID: web.AppKey[str] = web.AppKey("records_cluster_id", str)

ACKS_ALL = -1
# How long the partition leader may wait for the ISR (Kafka's request.timeout.ms default).
PRODUCE_TIMEOUT_MS = 30_000
# Our own wait is longer than the facade's by this much, so that the facade answers a
# timeout itself (per record) and this backstop fires only when it hangs.
FACADE_BACKSTOP_MARGIN_SECONDS = 5.0
# Confluent's per-record error_code of a written record.
DELIVERED = 200

PRODUCE_PATH = "/clusters/{cluster_id}/topics/{topic_name}/records"
CONSUME_PATH = "/topics/{topic_name}/partitions/{partition_id}/records"

# Kafka errors that refuse the request itself, which retrying will not change.
_REFUSALS = frozenset(
    {
        KafkaError.CORRUPT_MESSAGE,
        KafkaError.INVALID_FETCH_SIZE,
        KafkaError.MESSAGE_TOO_LARGE,
        KafkaError.INVALID_TOPIC_EXCEPTION,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_REQUIRED_ACKS,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.INVALID_REQUEST,
        KafkaError.INVALID_RECORD,
    }
)
# What a Kafka error means to an HTTP client, where the facade gave no message.
_EXPLANATIONS = {
    KafkaError.OFFSET_OUT_OF_RANGE: "the offset is outside the partition's log",
    KafkaError.UNKNOWN_TOPIC_OR_PARTITION: "no such topic or partition in this cluster",
    KafkaError.LEADER_NOT_AVAILABLE: "the partition has no leader right now",
    KafkaError.NOT_LEADER_OR_FOLLOWER: "the partition's leader moved",
    KafkaError.REQUEST_TIMED_OUT: "the in-sync replicas did not confirm in time; the record "
    "may still be written",
    KafkaError.MESSAGE_TOO_LARGE: "the record is larger than the topic's max.message.bytes",
    KafkaError.NOT_ENOUGH_REPLICAS: "the in-sync replicas are fewer than min.insync.replicas",
    KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND: "written on the leader, but the in-sync "
    "replicas fell below min.insync.replicas before they confirmed",
    KafkaError.KAFKA_STORAGE_ERROR: "the partition's log directory failed on its leader",
}


# --- Kafka errors as answers -----------------------------------------------------------------


def _api_code(kafka_code: int) -> ErrorCode:
    """Confluent's code of a Kafka error (kafka-rest's KafkaExceptionMapper, with our own
    codes for an offset out of range and for timeouts)."""
    if kafka_code == KafkaError.UNKNOWN_TOPIC_OR_PARTITION:
        return ErrorCode.TOPIC_OR_PARTITION_NOT_FOUND
    if kafka_code == KafkaError.OFFSET_OUT_OF_RANGE:
        return ErrorCode.OFFSET_OUT_OF_RANGE
    if kafka_code == KafkaError.REQUEST_TIMED_OUT:
        return ErrorCode.TIMED_OUT
    if kafka_code in _REFUSALS:
        return ErrorCode.BAD_REQUEST
    known = kafka_code in KafkaError._value2member_map_
    if known and KafkaError(kafka_code).is_retriable:
        return ErrorCode.RETRIABLE
    return ErrorCode.INTERNAL_ERROR


def kafka_error(kafka_code: int, detail: str | None, what: str) -> ApiError:
    """The answer to Kafka error `kafka_code` of `what` ("partition 2 of topic 'orders'"):
    the Kafka name and code, and the facade's detail or our explanation of the code."""
    assert kafka_code != KafkaError.NONE, f"no error to answer for {what}"
    code = _api_code(kafka_code)
    if detail is None:
        known = kafka_code in KafkaError._value2member_map_
        detail = _EXPLANATIONS.get(KafkaError(kafka_code)) if known else None
    reason = f"{error_name(kafka_code)} ({kafka_code})"
    message = f"{what}: {reason}" if detail is None else f"{what}: {reason}: {detail}"
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if code.http_status == 503 else None
    return ApiError(code, message, headers=headers)


# --- request helpers ---------------------------------------------------------------------------


def _data(request: web.Request) -> DataPlaneFacade:
    data = request.app[DATA]
    if data is None:
        raise ApiError(
            ErrorCode.NOT_IMPLEMENTED,
            f"this node was built without the data plane, so {request.method} "
            f"{request.path} cannot be served",
        )
    return data


def _check_cluster(request: web.Request) -> str:
    """The path's cluster id, once it is this cluster's (else 40401)."""
    cluster_id = request.match_info["cluster_id"]
    own = request.app[RECORDS_CLUSTER_ID]
    if cluster_id != own:
        raise ApiError(
            ErrorCode.CLUSTER_NOT_FOUND,
            f"cluster {cluster_id!r} not found; this node belongs to cluster {own!r}",
        )
    return cluster_id


def _topic_name(request: web.Request) -> str:
    """The path's topic name, once it is a legal one (else the controller's 40002)."""
    name = request.match_info["topic_name"]
    validate_topic_name(name)
    return name


def _iso_timestamp(timestamp_ms: int) -> str | None:
    """Confluent's form of a timestamp ("2024-05-01T12:00:00.250Z"); None for Kafka's
    NO_TIMESTAMP (-1) or one past what a date-time can show."""
    if timestamp_ms < 0:
        return None
    try:
        moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- produce -----------------------------------------------------------------------------------


def _data_report(data_type: str | None, data: bytes | None) -> dict[str, Any] | None:
    if data_type is None:
        return None
    return {"type": data_type, "size": 0 if data is None else len(data)}


def _refusal(outcome: RecordOutcome, topic: str) -> ApiError:
    where = f"partition {outcome.partition} of " if outcome.partition >= 0 else ""
    return kafka_error(
        outcome.error_code, outcome.error_message, f"{where}topic {topic!r} refused the record"
    )


def delivery_report(
    cluster_id: str, topic: str, produced: ProduceRecord, outcome: RecordOutcome
) -> dict[str, Any]:
    """Confluent's ProduceResponse for a written record, its error shape for a refused one."""
    if outcome.error_code != KafkaError.NONE:
        error = _refusal(outcome, topic)
        return {"error_code": error.error_code, "message": error.message}
    record = produced.record
    return {
        "error_code": DELIVERED,
        "cluster_id": cluster_id,
        "topic_name": topic,
        "partition_id": outcome.partition,
        "offset": outcome.offset,
        "timestamp": _iso_timestamp(outcome.timestamp_ms),
        "key": _data_report(produced.key_type, record.key),
        "value": _data_report(produced.value_type, record.value),
    }


async def _produce(data: DataPlaneFacade, topic: str, body: ProduceBody) -> list[RecordOutcome]:
    records = [produced.record for produced in body.records]
    try:
        async with asyncio.timeout(PRODUCE_TIMEOUT_MS / 1000 + FACADE_BACKSTOP_MARGIN_SECONDS):
            outcomes = await data.produce_records(topic, records, ACKS_ALL, PRODUCE_TIMEOUT_MS)
    except TimeoutError:
        raise timed_out_error(
            f"timed out waiting for the records to topic {topic!r} to be written (at most "
            f"{PRODUCE_TIMEOUT_MS} ms); they may still be written"
        ) from None
    assert len(outcomes) == len(records), f"{len(outcomes)} outcomes of {len(records)} records"
    return outcomes


def _single_answer(report: dict[str, Any], outcome: RecordOutcome, topic: str) -> web.Response:
    if outcome.error_code == KafkaError.NONE:
        return web.json_response(report)
    # One record: the HTTP status says what became of it, as Confluent's non-streaming mode.
    raise _refusal(outcome, topic)


async def produce_records(request: web.Request) -> web.Response:
    data = _data(request)
    cluster_id = _check_cluster(request)
    topic = _topic_name(request)
    body = parse_produce_body(await read_json_body(request))
    outcomes = await _produce(data, topic, body)
    reports = [
        delivery_report(cluster_id, topic, produced, outcome)
        for produced, outcome in zip(body.records, outcomes, strict=True)
    ]
    if body.form is ProduceForm.SINGLE:
        return _single_answer(reports[0], outcomes[0], topic)
    if body.form is ProduceForm.ARRAY:
        return web.json_response(reports)
    # Streaming: one report a line, in the order of the records, as Confluent answers.
    text = "".join(json.dumps(report) + "\n" for report in reports)
    return web.Response(text=text, content_type="application/json")


# --- consume -----------------------------------------------------------------------------------


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _shown(
    data: bytes | None, record_format: RecordFormat, what: str, offset: int, where: str
) -> Any:
    """A key or value as the format shows it: base64, or parsed as JSON."""
    if data is None:
        return None
    if record_format is RecordFormat.BINARY:
        return base64.b64encode(data).decode("ascii")
    try:
        # UTF-8 only (json.loads would guess UTF-16 and 32 from bytes); NaN is not JSON.
        return json.loads(data.decode("utf-8"), parse_constant=_not_json)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise ApiError(
            ErrorCode.NOT_ACCEPTABLE,
            f"the {what} of the record at offset {offset} of {where} is not JSON, so it "
            f"cannot be shown as {record_format.media_type}; ask for "
            f"{RecordFormat.BINARY.media_type} to read it as base64",
        ) from None


def consumed_record(
    topic: str, partition: int, record: ConsumedRecord, record_format: RecordFormat
) -> dict[str, Any]:
    """Redpanda's record shape; `timestamp` (ms since the Unix epoch) is our addition."""
    where = f"partition {partition} of topic {topic!r}"
    return {
        "topic": topic,
        "key": _shown(record.key, record_format, "key", record.offset, where),
        "value": _shown(record.value, record_format, "value", record.offset, where),
        "partition": partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
    }


def _fetch_error(outcome: FetchOutcome, offset: int, where: str) -> ApiError:
    if outcome.error_code == KafkaError.OFFSET_OUT_OF_RANGE:
        detail = (
            f"offset {offset} is outside the log, which holds offsets "
            f"{outcome.log_start_offset} to {outcome.high_watermark} (the high watermark, "
            "where the next record will be)"
        )
        if outcome.error_message is not None:
            detail = f"{detail}; {outcome.error_message}"
        return kafka_error(outcome.error_code, detail, where)
    return kafka_error(outcome.error_code, outcome.error_message, where)


async def consume_records(request: web.Request) -> web.Response:
    data = _data(request)
    topic = _topic_name(request)
    partition = parse_partition_id(request.match_info["partition_id"], topic)
    query = parse_consume_query(request.query.items())
    record_format = parse_accept(request.headers.get("Accept"))
    where = f"partition {partition} of topic {topic!r}"
    wait_seconds = query.timeout_ms / 1000 + FACADE_BACKSTOP_MARGIN_SECONDS
    try:
        async with asyncio.timeout(wait_seconds):
            outcome = await data.fetch_records(
                topic, partition, query.offset, query.max_bytes, query.timeout_ms
            )
    except TimeoutError:
        raise timed_out_error(f"timed out reading {where} at offset {query.offset}") from None
    if outcome.error_code != KafkaError.NONE:
        raise _fetch_error(outcome, query.offset, where)
    records = [
        consumed_record(topic, partition, record, record_format) for record in outcome.records
    ]
    return web.json_response(records, content_type=record_format.media_type)


# --- routes ------------------------------------------------------------------------------------


def record_routes() -> list[tuple[str, str, Handler]]:
    """The produce route under each v3 prefix, and the consume route."""
    routes: list[tuple[str, str, Handler]] = [
        ("POST", prefix + PRODUCE_PATH, produce_records) for prefix in V3_PREFIXES
    ]
    routes.append(("GET", CONSUME_PATH, consume_records))
    return routes
