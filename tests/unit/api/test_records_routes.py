"""Produce (Confluent REST v3) and consume (Redpanda HTTP proxy) routes over a fake
DataPlaneFacade (SPEC §5, §7): the shapes answered, and a precise refusal, with nothing
produced, for every kind of bad input. The real facade is tested by the process tests."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.api.facade import ConsumedRecord, FetchOutcome, OutgoingRecord, RecordOutcome
from broker.api.records_validation import (
    DEFAULT_CONSUME_MAX_BYTES,
    DEFAULT_CONSUME_TIMEOUT_MS,
    MAX_CONSUME_MAX_BYTES,
    MAX_CONSUME_TIMEOUT_MS,
    MAX_HEADERS_PER_RECORD,
    MAX_RECORDS_PER_PRODUCE_REQUEST,
)
from kraft.protocol.errors import ErrorCode as KafkaError
from tests.unit.api.conftest import MakeClient
from tests.unit.api.fakes import CLUSTER_ID, FakeNode

TIMESTAMP_MS = 1_714_564_800_250  # 2024-05-01T12:00:00.250Z
PRODUCE = f"/v3/clusters/{CLUSTER_ID}/topics/orders/records"
CONSUME = "/topics/orders/partitions/0/records"
BINARY = "application/vnd.kafka.binary.v2+json"
JSON_FORMAT = "application/vnd.kafka.json.v2+json"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class FakeDataPlane:
    """Writes every record to partition 0 of topic 'orders' from offset 40, unless
    `produce_errors` names a Kafka error for the record's index; fetches answer `fetch`."""

    next_offset: int = 40
    produce_errors: dict[int, tuple[int, str | None]] = field(default_factory=dict)
    fetch: FetchOutcome = field(
        default_factory=lambda: FetchOutcome(KafkaError.NONE, None, 12, 0, ())
    )
    produce_exception: BaseException | None = None
    produce_calls: list[tuple[str, list[OutgoingRecord], int, int]] = field(default_factory=list)
    fetch_calls: list[tuple[str, int, int, int, int]] = field(default_factory=list)

    async def produce_records(
        self, topic: str, records: Sequence[OutgoingRecord], acks: int, timeout_ms: int
    ) -> list[RecordOutcome]:
        self.produce_calls.append((topic, list(records), acks, timeout_ms))
        if self.produce_exception is not None:
            raise self.produce_exception
        outcomes = []
        for index, record in enumerate(records):
            if topic != "orders":
                outcomes.append(RecordOutcome(-1, -1, -1, KafkaError.UNKNOWN_TOPIC_OR_PARTITION))
            elif index in self.produce_errors:
                code, message = self.produce_errors[index]
                outcomes.append(RecordOutcome(0, -1, -1, code, message))
            else:
                timestamp_ms = record.timestamp_ms or TIMESTAMP_MS
                partition = record.partition or 0
                outcomes.append(RecordOutcome(partition, self.next_offset, timestamp_ms, 0))
                self.next_offset += 1
        return outcomes

    async def fetch_records(
        self, topic: str, partition: int, offset: int, max_bytes: int, max_wait_ms: int
    ) -> FetchOutcome:
        self.fetch_calls.append((topic, partition, offset, max_bytes, max_wait_ms))
        return self.fetch


@pytest.fixture
def data() -> FakeDataPlane:
    return FakeDataPlane()


@pytest.fixture
async def client(
    make_client: MakeClient, node: FakeNode, data: FakeDataPlane
) -> TestClient[Any, Any]:
    return await make_client(node, data=data)


async def post(client: TestClient[Any, Any], body: str | bytes, path: str = PRODUCE) -> Any:
    return await client.post(path, data=body, headers={"Content-Type": "application/json"})


async def check_error(response: Any, status: int, error_code: int, *phrases: str) -> str:
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["error_code"] == error_code, body
    for phrase in phrases:
        assert phrase in body["message"], body["message"]
    return str(body["message"])


# --- produce: success shapes -------------------------------------------------------------------


async def test_single_record_is_produced_with_acks_all_and_answers_a_delivery_report(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    """Confluent REST v3 ProduceRequest / ProduceResponse."""
    record = {
        "headers": [{"name": "trace", "value": b64(b"abc")}, {"name": "empty", "value": None}],
        "key": {"type": "BINARY", "data": b64(b"k1")},
        "value": {"type": "JSON", "data": {"item": "é", "count": 2}},
        "timestamp": "2024-05-01T12:00:00.250Z",
    }

    response = await post(client, json.dumps(record))

    assert response.status == 200, await response.text()
    assert await response.json() == {
        "error_code": 200,
        "cluster_id": CLUSTER_ID,
        "topic_name": "orders",
        "partition_id": 0,
        "offset": 40,
        "timestamp": "2024-05-01T12:00:00.250Z",
        "key": {"type": "BINARY", "size": 2},
        "value": {"type": "JSON", "size": len('{"item":"é","count":2}'.encode())},
    }
    ((topic, records, acks, timeout_ms),) = data.produce_calls
    assert (topic, acks, timeout_ms) == ("orders", -1, 30_000)
    assert records == [
        OutgoingRecord(
            value='{"item":"é","count":2}'.encode(),
            key=b"k1",
            headers=(("trace", b"abc"), ("empty", None)),
            partition=None,
            timestamp_ms=TIMESTAMP_MS,
        )
    ]


async def test_string_value_partition_and_integer_timestamp_are_passed_through(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    body = {"partition_id": 2, "value": {"type": "STRING", "data": "héllo"}, "timestamp": 5}

    response = await post(client, json.dumps(body))

    report = await response.json()
    assert (report["partition_id"], report["key"]) == (2, None)
    assert report["value"] == {"type": "STRING", "size": 6}
    assert report["timestamp"] == "1970-01-01T00:00:00.005Z"
    record = data.produce_calls[0][1][0]
    assert (record.value, record.key, record.partition, record.timestamp_ms) == (
        "héllo".encode(),
        None,
        2,
        5,
    )


async def test_null_data_produces_a_null_value_and_reports_size_zero(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    response = await post(
        client,
        '{"key": {"type": "STRING", "data": "k"}, "value": {"type": "BINARY", "data": null}}',
    )

    assert (await response.json())["value"] == {"type": "BINARY", "size": 0}
    assert data.produce_calls[0][1][0].value is None


async def test_streamed_records_answer_one_report_a_line_in_order(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    """Confluent's streaming mode: concatenated JSON in, one delivery report each out."""
    record = '{"value": {"type": "STRING", "data": "TEXT"}}'
    # Back to back, then a record a line: both are concatenated JSON.
    body = record.replace("TEXT", "a") + record.replace("TEXT", "b") + "\n"
    body += record.replace("TEXT", "c") + "\n"

    response = await post(client, body)

    assert response.status == 200
    lines = (await response.text()).splitlines()
    assert [json.loads(line)["offset"] for line in lines] == [40, 41, 42]
    assert len(data.produce_calls) == 1  # one facade call: one batch per partition


async def test_array_of_records_answers_an_array_of_reports(client: TestClient[Any, Any]) -> None:
    body = [{"value": {"type": "STRING", "data": "a"}}, {"value": {"type": "STRING", "data": "b"}}]

    response = await post(client, json.dumps(body))

    assert response.status == 200
    assert [report["offset"] for report in await response.json()] == [40, 41]


async def test_kafka_v3_prefix_serves_produce_too(client: TestClient[Any, Any]) -> None:
    response = await post(
        client,
        '{"value": {"type": "STRING", "data": "a"}}',
        f"/kafka/v3/clusters/{CLUSTER_ID}/topics/orders/records",
    )

    assert response.status == 200
    assert (await response.json())["error_code"] == 200


# --- produce: Kafka errors ------------------------------------------------------------------------


async def test_single_record_of_an_unknown_topic_answers_404_40403(
    client: TestClient[Any, Any],
) -> None:
    response = await post(
        client,
        '{"value": {"type": "STRING", "data": "a"}}',
        f"/v3/clusters/{CLUSTER_ID}/topics/nope/records",
    )

    await check_error(response, 404, 40403, "topic 'nope'", "UNKNOWN_TOPIC_OR_PARTITION (3)")


@pytest.mark.parametrize(
    ("kafka_code", "status", "error_code", "phrase"),
    [
        (KafkaError.NOT_ENOUGH_REPLICAS, 503, 50003, "NOT_ENOUGH_REPLICAS (19)"),
        (KafkaError.NOT_LEADER_OR_FOLLOWER, 503, 50003, "leader moved"),
        (KafkaError.REQUEST_TIMED_OUT, 504, 50002, "may still be written"),
        (KafkaError.MESSAGE_TOO_LARGE, 400, 40002, "max.message.bytes"),
        (KafkaError.UNKNOWN_SERVER_ERROR, 500, 50001, "UNKNOWN_SERVER_ERROR (-1)"),
        (9999, 500, 50001, "UNKNOWN_ERROR_9999"),
    ],
)
async def test_single_record_refused_by_kafka_answers_the_mapped_status(
    client: TestClient[Any, Any],
    data: FakeDataPlane,
    kafka_code: int,
    status: int,
    error_code: int,
    phrase: str,
) -> None:
    data.produce_errors[0] = (kafka_code, None)

    response = await post(client, '{"value": {"type": "STRING", "data": "a"}}')

    await check_error(response, status, error_code, "partition 0 of topic 'orders'", phrase)
    assert ("Retry-After" in response.headers) == (status == 503)


async def test_facade_detail_is_kept_in_the_message(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    data.produce_errors[0] = (KafkaError.NOT_ENOUGH_REPLICAS, "ISR [1] below min.insync.replicas 2")

    response = await post(client, '{"value": {"type": "STRING", "data": "a"}}')

    await check_error(response, 503, 50003, "ISR [1] below min.insync.replicas 2")


async def test_streamed_records_report_kafka_errors_per_record_with_status_200(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    data.produce_errors[1] = (KafkaError.NOT_ENOUGH_REPLICAS, None)
    body = '{"value": {"type": "STRING", "data": "a"}} {"value": {"type": "STRING", "data": "b"}}'

    response = await post(client, body)

    assert response.status == 200
    first, second = (json.loads(line) for line in (await response.text()).splitlines())
    assert first["error_code"] == 200
    assert set(second) == {"error_code", "message"}
    assert second["error_code"] == 50003
    assert "NOT_ENOUGH_REPLICAS" in second["message"]


async def test_facade_that_hangs_past_the_backstop_answers_504(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    data.produce_exception = TimeoutError()

    response = await post(client, '{"value": {"type": "STRING", "data": "a"}}')

    await check_error(response, 504, 50002, "topic 'orders'", "may still be written")


# --- produce: bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error_code", "phrase"),
    [
        (b"", 40001, "request body is empty"),
        (b"{", 40001, "not valid JSON"),
        (b"\xff", 40001, "not valid UTF-8"),
        (b'{"value": NaN}', 40001, "NaN is not a JSON number"),
        (b"[]", 40002, "empty array"),
        (b"7", 40001, "request body must be a JSON object, got number"),
        (b"[7]", 40001, "record [0] must be a JSON object, got number"),
        (b'{"a": 1}{"b": 2}', 40001, "unknown field '[0].a'"),
        (
            b'{"value": {"type": "STRING", "data": "a"}} 7',
            40001,
            "record [1] must be a JSON object",
        ),
        (b'{"values": {}}', 40001, "unknown field 'values'"),
        (b'{"value": "a"}', 40001, "field 'value' must be an object, got string"),
        (b'{"value": {"data": "a"}}', 40001, "field 'value.type' is missing"),
        (b'{"value": {"type": "STRING"}}', 40001, "field 'value.data' is missing"),
        (b'{"value": {"type": 1, "data": "a"}}', 40001, "'value.type' must be a string"),
        (
            b'{"value": {"type": "XML", "data": "a"}}',
            40002,
            "value.type 'XML' is not one of BINARY, JSON, STRING",
        ),
        (b'{"value": {"type": "AVRO", "data": {}}}', 40002, "needs a Schema Registry"),
        (
            b'{"value": {"schema_id": 1, "data": {}}}',
            40002,
            "'value.schema_id' needs a Schema Registry",
        ),
        (
            b'{"key": {"type": "BINARY", "data": "not base64!"}}',
            40001,
            "'key.data' is not valid base64",
        ),
        (b'{"key": {"type": "BINARY", "data": "abc"}}', 40001, "'key.data' is not valid base64"),
        (
            b'{"key": {"type": "BINARY", "data": "\\u00e9"}}',
            40001,
            "'key.data' is not valid base64",
        ),
        (b'{"key": {"type": "BINARY", "data": 12}}', 40001, "'key.data' must be a string"),
        (b'{"value": {"type": "STRING", "data": 12}}', 40001, "'value.data' must be a string"),
        (b'{"value": {"type": "STRING", "data": "\\ud800"}}', 40001, "lone surrogate"),
        (b'{"value": {"type": "JSON", "data": ["\\ud800"]}}', 40001, "lone surrogate"),
        (b'{"partition_id": "1"}', 40001, "'partition_id' must be an integer, got string"),
        (b'{"partition_id": true}', 40001, "'partition_id' must be an integer, got boolean"),
        (b'{"partition_id": -1}', 40002, "partition_id -1 is negative"),
        (b'{"partition_id": 2147483648}', 40002, "larger than the limit of 2147483647"),
        (b'{"headers": {}}', 40001, "'headers' must be an array"),
        (b'{"headers": [1]}', 40001, "'headers[0]' must be an object"),
        (b'{"headers": [{"value": null}]}', 40001, "'headers[0].name' is missing"),
        (
            b'{"headers": [{"name": "a", "value": "%%"}]}',
            40001,
            "'headers[0].value' is not valid base64",
        ),
        (b'{"headers": [{"name": "a", "size": 1}]}', 40001, "unknown field 'headers[0].size'"),
        (b'{"timestamp": "yesterday"}', 40001, "not an ISO 8601 date-time"),
        (b'{"timestamp": "2024-05-01T12:00:00"}', 40001, "names no time zone"),
        (b'{"timestamp": "1969-12-31T23:59:59Z"}', 40002, "before 1970"),
        (b'{"timestamp": -5}', 40002, "before 1970"),
        (b'{"timestamp": 1.5}', 40001, "'timestamp' must be an integer, got number"),
    ],
)
async def test_bad_produce_body_is_refused_and_nothing_is_produced(
    client: TestClient[Any, Any], data: FakeDataPlane, body: bytes, error_code: int, phrase: str
) -> None:
    response = await post(client, body)

    await check_error(response, 400, error_code, phrase)
    assert data.produce_calls == []


async def test_one_bad_record_of_a_stream_refuses_the_whole_request(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    """SPEC §7: bad input changes nothing."""
    body = '{"value": {"type": "STRING", "data": "a"}}{"value": {"type": "BINARY", "data": "@"}}'

    response = await post(client, body)

    await check_error(response, 400, 40001, "'[1].value.data' is not valid base64")
    assert data.produce_calls == []


async def test_more_records_than_the_limit_are_refused(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    one = '{"value": {"type": "STRING", "data": "a"}}'
    limit = MAX_RECORDS_PER_PRODUCE_REQUEST

    streamed = await post(client, one * (limit + 1))
    array = await post(client, "[" + ",".join([one] * (limit + 1)) + "]")

    await check_error(streamed, 400, 40002, f"more than {limit} JSON values")
    await check_error(array, 400, 40002, f"{limit + 1} records, more than the limit of {limit}")
    assert data.produce_calls == []


async def test_more_headers_than_the_limit_are_refused(client: TestClient[Any, Any]) -> None:
    headers = [{"name": f"h{i}", "value": None} for i in range(MAX_HEADERS_PER_RECORD + 1)]

    response = await post(client, json.dumps({"headers": headers}))

    await check_error(response, 400, 40002, f"more than the limit of {MAX_HEADERS_PER_RECORD}")


async def test_produce_to_another_cluster_id_answers_404_40401(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    response = await post(client, "{}", "/v3/clusters/other/topics/orders/records")

    await check_error(response, 404, 40401, "cluster 'other' not found", CLUSTER_ID)
    assert data.produce_calls == []


async def test_produce_to_an_illegal_topic_name_answers_40002(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    response = await post(client, "{}", f"/v3/clusters/{CLUSTER_ID}/topics/bad%20name/records")

    await check_error(response, 400, 40002, "'bad name' is illegal")
    assert data.produce_calls == []


async def test_produce_body_that_is_not_json_content_answers_415(
    client: TestClient[Any, Any],
) -> None:
    response = await client.post(PRODUCE, data="{}", headers={"Content-Type": "text/plain"})

    await check_error(response, 415, 40005, "application/json")


async def test_produce_body_over_the_size_limit_answers_413(client: TestClient[Any, Any]) -> None:
    response = await post(client, b" " * (1024 * 1024 + 1))

    await check_error(response, 413, 40004, "larger than the limit")


# --- consume -------------------------------------------------------------------------------------


def fetched(*records: ConsumedRecord) -> FetchOutcome:
    return FetchOutcome(KafkaError.NONE, None, 12, 0, records)


async def test_consume_answers_records_in_base64_by_default(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    """Redpanda's HTTP proxy: a JSON array of {topic, key, value, partition, offset}."""
    data.fetch = fetched(
        ConsumedRecord(5, TIMESTAMP_MS, b"k", b"\x00\xff"),
        ConsumedRecord(6, TIMESTAMP_MS, None, None),
    )

    response = await client.get(CONSUME + "?offset=5&max_bytes=1000&timeout=20")

    assert response.status == 200
    assert response.content_type == BINARY
    assert await response.json(content_type=None) == [
        {
            "topic": "orders",
            "key": b64(b"k"),
            "value": b64(b"\x00\xff"),
            "partition": 0,
            "offset": 5,
            "timestamp": TIMESTAMP_MS,
        },
        {
            "topic": "orders",
            "key": None,
            "value": None,
            "partition": 0,
            "offset": 6,
            "timestamp": TIMESTAMP_MS,
        },
    ]
    assert data.fetch_calls == [("orders", 0, 5, 1000, 20)]


async def test_consume_in_the_json_format_parses_keys_and_values(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    data.fetch = fetched(ConsumedRecord(5, TIMESTAMP_MS, b'"k"', b'{"a": [1, 2]}'))

    response = await client.get(CONSUME + "?offset=5", headers={"Accept": JSON_FORMAT})

    assert response.content_type == JSON_FORMAT
    (record,) = await response.json(content_type=None)
    assert (record["key"], record["value"]) == ("k", {"a": [1, 2]})


async def test_consume_defaults_max_bytes_and_timeout(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    response = await client.get(CONSUME + "?offset=0", headers={"Accept": "*/*"})

    assert response.status == 200
    assert await response.json(content_type=None) == []
    assert data.fetch_calls == [
        ("orders", 0, 0, DEFAULT_CONSUME_MAX_BYTES, DEFAULT_CONSUME_TIMEOUT_MS)
    ]


async def test_consume_of_a_value_that_is_not_json_in_the_json_format_answers_406(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    data.fetch = fetched(ConsumedRecord(7, TIMESTAMP_MS, None, b"\xffnot json"))

    response = await client.get(CONSUME + "?offset=7", headers={"Accept": JSON_FORMAT})

    await check_error(response, 406, 40601, "value of the record at offset 7", BINARY)


async def test_consume_with_an_unserved_accept_answers_406(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    response = await client.get(
        CONSUME + "?offset=0", headers={"Accept": "application/vnd.kafka.avro.v2+json"}
    )

    await check_error(response, 406, 40601, "names no record format")
    assert data.fetch_calls == []


@pytest.mark.parametrize(
    ("query", "error_code", "phrase"),
    [
        ("", 40001, "'offset' is missing"),
        ("?offset=abc", 40001, "'offset' must be an integer, got 'abc'"),
        ("?offset=1.5", 40001, "must be an integer"),
        ("?offset=" + "9" * 30, 40001, "must be an integer"),
        ("?offset=-1", 40002, "offset -1 is out of bounds"),
        ("?offset=9223372036854775808", 40002, "offsets are 0 to 9223372036854775807"),
        ("?offset=1&offset=2", 40001, "'offset' is given more than once"),
        ("?offset=1&limit=2", 40001, "unknown query parameter 'limit'"),
        ("?offset=1&max_bytes=0", 40002, f"max_bytes is 1 to {MAX_CONSUME_MAX_BYTES}"),
        (f"?offset=1&max_bytes={MAX_CONSUME_MAX_BYTES + 1}", 40002, "max_bytes"),
        ("?offset=1&timeout=-1", 40002, f"timeout is 0 to {MAX_CONSUME_TIMEOUT_MS} ms"),
        (f"?offset=1&timeout={MAX_CONSUME_TIMEOUT_MS + 1}", 40002, "out of bounds"),
    ],
)
async def test_bad_consume_query_is_refused_before_fetching(
    client: TestClient[Any, Any], data: FakeDataPlane, query: str, error_code: int, phrase: str
) -> None:
    response = await client.get(CONSUME + query)

    await check_error(response, 400, error_code, phrase)
    assert data.fetch_calls == []


@pytest.mark.parametrize("partition", ["-1", "x", "2147483648"])
async def test_consume_of_a_partition_id_that_cannot_exist_answers_40403(
    client: TestClient[Any, Any], data: FakeDataPlane, partition: str
) -> None:
    response = await client.get(f"/topics/orders/partitions/{partition}/records?offset=0")

    await check_error(response, 404, 40403, f"partition {partition!r} of topic 'orders'")
    assert data.fetch_calls == []


async def test_consume_of_an_illegal_topic_name_answers_40002(client: TestClient[Any, Any]) -> None:
    response = await client.get("/topics/a..b%2A/partitions/0/records?offset=0")

    await check_error(response, 400, 40002, "is illegal")


async def test_consume_out_of_range_names_the_log_bounds(
    client: TestClient[Any, Any], data: FakeDataPlane
) -> None:
    data.fetch = FetchOutcome(KafkaError.OFFSET_OUT_OF_RANGE, None, 12, 3, ())

    response = await client.get(CONSUME + "?offset=99")

    await check_error(
        response, 416, 41601, "OFFSET_OUT_OF_RANGE (1)", "offset 99", "offsets 3 to 12"
    )


@pytest.mark.parametrize(
    ("kafka_code", "status", "error_code"),
    [
        (KafkaError.UNKNOWN_TOPIC_OR_PARTITION, 404, 40403),
        (KafkaError.NOT_LEADER_OR_FOLLOWER, 503, 50003),
        (KafkaError.REQUEST_TIMED_OUT, 504, 50002),
        (KafkaError.INVALID_FETCH_SIZE, 400, 40002),
        (KafkaError.UNKNOWN_SERVER_ERROR, 500, 50001),
    ],
)
async def test_consume_maps_kafka_errors_to_statuses(
    client: TestClient[Any, Any], data: FakeDataPlane, kafka_code: int, status: int, error_code: int
) -> None:
    data.fetch = FetchOutcome(kafka_code, "detail from the facade", 0, 0, ())

    response = await client.get(CONSUME + "?offset=0")

    await check_error(
        response, status, error_code, "partition 0 of topic 'orders'", "detail from the facade"
    )


# --- without a data plane, and auth ------------------------------------------------------------


async def test_record_routes_answer_501_on_a_node_without_a_data_plane(
    make_client: MakeClient, node: FakeNode
) -> None:
    client = await make_client(node)

    produce = await post(client, '{"value": {"type": "STRING", "data": "a"}}')
    consume = await client.get(CONSUME + "?offset=0")

    await check_error(produce, 501, 50101, "without the data plane")
    await check_error(consume, 501, 50101, "without the data plane")


async def test_record_routes_require_the_admin_token_when_set(
    make_client: MakeClient, node: FakeNode, data: FakeDataPlane
) -> None:
    client = await make_client(node, data=data, admin_token="secret")

    refused = await client.get(CONSUME + "?offset=0")
    allowed = await client.get(CONSUME + "?offset=0", headers={"Authorization": "Bearer secret"})
    produce = await post(client, "{}")

    await check_error(refused, 401, 40101)
    assert allowed.status == 200
    await check_error(produce, 401, 40101)
    assert data.produce_calls == []
