"""The Confluent REST v3 subset (SPEC §5): shapes of every route under both prefixes, status
codes, and the answers to bad input — each a precise error in Confluent's shape that changes
nothing (SPEC §7). The facade is a FakeAdmin over a real MetadataImage."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broker.api.bodies import MAX_REQUEST_BODY_BYTES
from broker.api.facade import NoLeaderError
from kraft.controller.errors import NotControllerError
from tests.unit.api.conftest import MakeClient
from tests.unit.api.fakes import CLUSTER_ID, FakeAdmin, FakeNode
from tests.unit.api.test_kv_routes import error_of

PREFIXES = ["/v3", "/kafka/v3"]
KNOWN = (
    "known configs: cleanup.policy, delete.retention.ms, max.compaction.lag.ms, "
    "max.message.bytes, message.timestamp.type, min.cleanable.dirty.ratio, "
    "min.compaction.lag.ms, min.insync.replicas, retention.bytes, retention.ms, segment.bytes, "
    "segment.ms, unclean.leader.election.enable"
)
CLUSTER = f"/clusters/{CLUSTER_ID}"


@pytest.fixture
def admin() -> FakeAdmin:
    return FakeAdmin()


@pytest.fixture
async def api(make_client: MakeClient, admin: FakeAdmin) -> TestClient[Any, Any]:
    return await make_client(FakeNode(), admin=admin)


def origin(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("")).rstrip("/")


def image_state(admin: FakeAdmin) -> tuple[object, ...]:
    image = admin.metadata_image()
    topics = {t.name: dict(t.partitions) for t in image.topics_by_id.values()}
    configs = {name: dict(image.configs("topic", name)) for name in image.topic_names()}
    return dict(image.brokers), topics, configs


# --- clusters and brokers -------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_clusters_lists_this_cluster_with_links_through_the_same_prefix(
    api: TestClient[Any, Any], prefix: str
) -> None:
    response = await api.get(f"{prefix}/clusters")

    assert response.status == 200
    body = await response.json()
    base = origin(api) + prefix
    assert body["kind"] == "KafkaClusterList"
    assert body["metadata"] == {"self": f"{base}/clusters", "next": None}
    [cluster] = body["data"]
    url = f"{base}{CLUSTER}"
    assert cluster == {
        "kind": "KafkaCluster",
        "metadata": {"self": url, "resource_name": f"crn:///kafka={CLUSTER_ID}"},
        "cluster_id": CLUSTER_ID,
        "controller": {"related": f"{url}/brokers/1"},
        "acls": {"related": f"{url}/acls"},
        "brokers": {"related": f"{url}/brokers"},
        "broker_configs": {"related": f"{url}/broker-configs"},
        "consumer_groups": {"related": f"{url}/consumer-groups"},
        "topics": {"related": f"{url}/topics"},
        "partition_reassignments": {"related": f"{url}/topics/-/partitions/-/reassignment"},
    }
    single = await api.get(f"{prefix}{CLUSTER}")
    assert await single.json() == cluster


async def test_cluster_without_a_known_controller_has_a_null_controller_link(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    admin.controller = None

    body = await (await api.get(f"/v3{CLUSTER}")).json()

    assert body["controller"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/clusters/other",
        "/clusters/other/brokers",
        "/clusters/other/brokers/1",
        "/clusters/other/topics",
        "/clusters/other/topics/orders",
        "/clusters/other/topics/orders/partitions/0/replicas",
        "/clusters/other/topics/orders/configs",
    ],
)
async def test_an_unknown_cluster_id_answers_404_with_40401(
    api: TestClient[Any, Any], path: str
) -> None:
    response = await api.get("/v3" + path)

    assert await error_of(response) == (
        404,
        40401,
        f"cluster 'other' not found; this node belongs to cluster {CLUSTER_ID!r}",
    )


async def test_writes_to_an_unknown_cluster_id_answer_40401_and_change_nothing(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    before = image_state(admin)

    created = await api.post("/v3/clusters/other/topics", json={"topic_name": "new"})
    deleted = await api.delete("/v3/clusters/other/topics/orders")

    assert (await error_of(created))[:2] == (404, 40401)
    assert (await error_of(deleted))[:2] == (404, 40401)
    assert admin.calls == []
    assert image_state(admin) == before


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_brokers_list_each_registered_broker_with_its_client_listener(
    api: TestClient[Any, Any], prefix: str
) -> None:
    body = await (await api.get(f"{prefix}{CLUSTER}/brokers")).json()

    url = f"{origin(api)}{prefix}{CLUSTER}/brokers"
    assert body["kind"] == "KafkaBrokerList"
    assert body["metadata"]["self"] == url
    assert [b["broker_id"] for b in body["data"]] == [1, 2, 3]
    first = body["data"][0]
    assert first == {
        "kind": "KafkaBroker",
        "metadata": {
            "self": f"{url}/1",
            "resource_name": f"crn:///kafka={CLUSTER_ID}/broker=1",
        },
        "cluster_id": CLUSTER_ID,
        "broker_id": 1,
        "host": "127.0.0.1",
        "port": 9092,
        "rack": "r1",
        "is_fenced": False,
        "is_in_controlled_shutdown": False,
        "configs": {"related": f"{url}/1/configs"},
        "partition_replicas": {"related": f"{url}/1/partition-replicas"},
    }
    assert body["data"][2]["is_fenced"] is True
    assert body["data"][2]["port"] == 9292


async def test_get_broker_answers_one_broker(api: TestClient[Any, Any]) -> None:
    body = await (await api.get(f"/kafka/v3{CLUSTER}/brokers/2")).json()

    assert (body["kind"], body["broker_id"], body["port"], body["rack"]) == (
        "KafkaBroker",
        2,
        9192,
        "r2",
    )


@pytest.mark.parametrize(
    ("broker", "message"),
    [
        ("9", "broker 9 not found in this cluster"),
        ("x", "broker 'x' not found: a broker id is an integer from 0 to 2147483647"),
        ("-1", "broker '-1' not found: a broker id is an integer from 0 to 2147483647"),
    ],
)
async def test_unknown_broker_answers_404_with_40402(
    api: TestClient[Any, Any], broker: str, message: str
) -> None:
    response = await api.get(f"/v3{CLUSTER}/brokers/{broker}")

    assert await error_of(response) == (404, 40402, message)


# --- topics: reads ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_topics_list_every_topic_sorted_by_name(
    api: TestClient[Any, Any], prefix: str
) -> None:
    body = await (await api.get(f"{prefix}{CLUSTER}/topics")).json()

    assert body["kind"] == "KafkaTopicList"
    assert body["metadata"]["next"] is None
    assert [t["topic_name"] for t in body["data"]] == ["audit.log", "orders"]


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_get_topic_answers_confluents_topic_shape(
    api: TestClient[Any, Any], prefix: str
) -> None:
    response = await api.get(f"{prefix}{CLUSTER}/topics/orders")

    assert response.status == 200
    url = f"{origin(api)}{prefix}{CLUSTER}/topics/orders"
    assert await response.json() == {
        "kind": "KafkaTopic",
        "metadata": {
            "self": url,
            "resource_name": f"crn:///kafka={CLUSTER_ID}/topic=orders",
        },
        "cluster_id": CLUSTER_ID,
        "topic_name": "orders",
        "topic_id": "orders-id",
        "is_internal": False,
        "replication_factor": 3,
        "partitions_count": 3,
        "partitions": {"related": f"{url}/partitions"},
        "configs": {"related": f"{url}/configs"},
        "partition_reassignments": {"related": f"{url}/partitions/-/reassignment"},
        "authorized_operations": [],
    }


async def test_the_offsets_topic_is_internal_as_kafka_marks_it(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    admin.builder.topic("__consumer_offsets", [(1, 2, 3)])

    internal = await (await api.get(f"/v3{CLUSTER}/topics/__consumer_offsets")).json()
    listed = await (await api.get(f"/v3{CLUSTER}/topics")).json()

    assert internal["is_internal"] is True
    assert {t["topic_name"]: t["is_internal"] for t in listed["data"]} == {
        "__consumer_offsets": True,
        "audit.log": False,
        "orders": False,
    }


async def test_self_links_follow_the_host_header(api: TestClient[Any, Any]) -> None:
    response = await api.get(f"/v3{CLUSTER}/topics/orders", headers={"Host": "kafka.example:8082"})

    body = await response.json()
    assert body["metadata"]["self"] == f"http://kafka.example:8082/v3{CLUSTER}/topics/orders"


async def test_unknown_topic_answers_404_with_40403(api: TestClient[Any, Any]) -> None:
    for path in ("", "/partitions", "/partitions/0", "/partitions/0/replicas", "/configs"):
        response = await api.get(f"/v3{CLUSTER}/topics/nope{path}")

        assert await error_of(response) == (404, 40403, "topic 'nope' not found in this cluster")


# --- partitions and replicas ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_partitions_list_each_partition_with_a_link_to_its_leader(
    api: TestClient[Any, Any], prefix: str
) -> None:
    body = await (await api.get(f"{prefix}{CLUSTER}/topics/orders/partitions")).json()

    url = f"{origin(api)}{prefix}{CLUSTER}/topics/orders/partitions"
    assert body["kind"] == "KafkaPartitionList"
    assert [p["partition_id"] for p in body["data"]] == [0, 1, 2]
    assert body["data"][1] == {
        "kind": "KafkaPartition",
        "metadata": {
            "self": f"{url}/1",
            "resource_name": f"crn:///kafka={CLUSTER_ID}/topic=orders/partition=1",
        },
        "cluster_id": CLUSTER_ID,
        "topic_name": "orders",
        "partition_id": 1,
        "leader": {"related": f"{url}/1/replicas/2"},
        "replicas": {"related": f"{url}/1/replicas"},
        "reassignment": {"related": f"{url}/1/reassignment"},
    }


async def test_a_leaderless_partition_has_a_null_leader(api: TestClient[Any, Any]) -> None:
    body = await (await api.get(f"/v3{CLUSTER}/topics/audit.log/partitions/0")).json()

    assert body["kind"] == "KafkaPartition"
    assert body["leader"] is None


@pytest.mark.parametrize(
    ("partition", "message"),
    [
        ("3", "partition 3 of topic 'orders' not found; the topic has partitions 0 to 2"),
        (
            "x",
            "partition 'x' of topic 'orders' not found: a partition id is an integer from 0 "
            "to 2147483647",
        ),
        (
            "-1",
            "partition '-1' of topic 'orders' not found: a partition id is an integer from 0 "
            "to 2147483647",
        ),
    ],
)
async def test_unknown_partition_answers_404_with_40403(
    api: TestClient[Any, Any], partition: str, message: str
) -> None:
    for suffix in ("", "/replicas"):
        response = await api.get(f"/v3{CLUSTER}/topics/orders/partitions/{partition}{suffix}")

        assert await error_of(response) == (404, 40403, message)


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_replicas_say_which_is_leader_and_which_are_in_sync(
    api: TestClient[Any, Any], prefix: str
) -> None:
    body = await (await api.get(f"{prefix}{CLUSTER}/topics/orders/partitions/2/replicas")).json()

    assert body["kind"] == "KafkaReplicaList"
    rows = [(r["broker_id"], r["is_leader"], r["is_in_sync"]) for r in body["data"]]
    assert rows == [(3, True, True), (1, False, True), (2, False, False)]
    base = f"{origin(api)}{prefix}{CLUSTER}"
    assert body["data"][1] == {
        "kind": "KafkaReplica",
        "metadata": {
            "self": f"{base}/topics/orders/partitions/2/replicas/1",
            "resource_name": f"crn:///kafka={CLUSTER_ID}/topic=orders/partition=2/replica=1",
        },
        "cluster_id": CLUSTER_ID,
        "topic_name": "orders",
        "partition_id": 2,
        "broker_id": 1,
        "is_leader": False,
        "is_in_sync": True,
        "broker": {"related": f"{base}/brokers/1"},
    }


async def test_the_leader_link_of_a_partition_leads_to_its_replica(
    api: TestClient[Any, Any],
) -> None:
    partition = await (await api.get(f"/v3{CLUSTER}/topics/orders/partitions/0")).json()
    path = partition["leader"]["related"].removeprefix(origin(api))

    replica = await (await api.get(path)).json()

    assert (replica["kind"], replica["broker_id"], replica["is_leader"]) == (
        "KafkaReplica",
        1,
        True,
    )


async def test_replica_on_a_broker_outside_the_replicas_answers_40403(
    api: TestClient[Any, Any],
) -> None:
    response = await api.get(f"/v3{CLUSTER}/topics/audit.log/partitions/0/replicas/1")

    assert await error_of(response) == (
        404,
        40403,
        "broker 1 holds no replica of partition 0 of topic 'audit.log'; its replicas are 3",
    )


# --- topics: create ---------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_create_topic_answers_201_with_the_topic_once_applied(
    api: TestClient[Any, Any], admin: FakeAdmin, prefix: str
) -> None:
    response = await api.post(
        f"{prefix}{CLUSTER}/topics",
        json={
            "topic_name": "events",
            "partitions_count": 4,
            "replication_factor": 2,
            "configs": [{"name": "retention.ms", "value": "1000"}],
        },
    )

    assert response.status == 201
    body = await response.json()
    assert body["kind"] == "KafkaTopic"
    assert body["metadata"]["self"] == f"{origin(api)}{prefix}{CLUSTER}/topics/events"
    assert (body["topic_name"], body["partitions_count"], body["replication_factor"]) == (
        "events",
        4,
        2,
    )
    assert body["topic_id"] == "events-id"
    assert admin.calls == [("create_topic", "events", 4, 2, {"retention.ms": "1000"})]
    assert admin.metadata_image().configs("topic", "events") == {"retention.ms": "1000"}


async def test_create_topic_without_counts_leaves_them_to_the_cluster_defaults(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    response = await api.post(
        f"/v3{CLUSTER}/topics",
        json={"topic_name": "events", "partitions_count": None, "configs": None},
    )

    assert response.status == 201
    assert admin.calls == [("create_topic", "events", None, None, {})]


async def test_create_topic_validate_only_answers_200_and_creates_nothing(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    before = image_state(admin)

    response = await api.post(
        f"/v3{CLUSTER}/topics",
        json={"topic_name": "events", "partitions_count": 2, "validate_only": True},
    )

    assert response.status == 200
    body = await response.json()
    assert (body["topic_name"], body["partitions_count"], body["topic_id"]) == ("events", 2, None)
    assert len(admin.calls) == 1
    assert image_state(admin) == before


BAD_CREATE_BODIES = [
    # malformed or mistyped: 40001 naming the field
    (b"{", 40001, "request body is not valid JSON: Expecting property name enclosed in double "
     "quotes: line 1 column 2 (char 1)"),
    (b"[]", 40001, "request body must be a JSON object, got array"),
    (b"[" * 100_000, 40001, "request body is JSON nested too deeply to be read"),
    (b'{"topic_name": "t", "partitions_count": ' + b"9" * 5000 + b"}", 40001,
     "request body holds a number of more than 4300 digits"),
    (b"\xff", 40001, "request body is not valid UTF-8: byte 0xff at position 0"),
    (b"{}", 40001, "field 'topic_name' is missing"),
    (b'{"topic_name": 5}', 40001, "field 'topic_name' must be a string, got number"),
    (b'{"topic_name": "t", "partitions_count": "3"}', 40001,
     "field 'partitions_count' must be an integer, got string"),
    (b'{"topic_name": "t", "partitions_count": 1.5}', 40001,
     "field 'partitions_count' must be an integer, got number"),
    (b'{"topic_name": "t", "replication_factor": true}', 40001,
     "field 'replication_factor' must be an integer, got boolean"),
    (b'{"topic_name": "t", "validate_only": "yes"}', 40001,
     "field 'validate_only' must be a boolean, got string"),
    (b'{"topic_name": "t", "configs": {"a": "b"}}', 40001,
     "field 'configs' must be an array, got object"),
    (b'{"topic_name": "t", "configs": ["a"]}', 40001,
     "field 'configs[0]' must be an object, got string"),
    (b'{"topic_name": "t", "configs": [{"name": "retention.ms", "value": 5}]}', 40001,
     "field 'configs[0].value' must be a string, got number"),
    (b'{"topic_name": "t", "configs": [{"name": "retention.ms"}]}', 40001,
     "field 'configs[0].value' is missing"),
    (b'{"topic_name": "t", "configs": [{"name": "a", "value": "1", "x": 1}]}', 40001,
     "unknown field 'configs[0].x'; the fields are 'name', 'value'"),
    (b'{"topic_name": "t", "partition_count": 3}', 40001,
     "unknown field 'partition_count'; the fields are 'topic_name', 'partitions_count', "
     "'replication_factor', 'configs', 'validate_only'"),
    # well typed, refused: 40002 naming the value
    (b'{"topic_name": "t", "partitions_count": 0}', 40002,
     "partitions_count 0 is not positive; it must be 1 or more"),
    (b'{"topic_name": "t", "partitions_count": -3}', 40002,
     "partitions_count -3 is not positive; it must be 1 or more"),
    (b'{"topic_name": "t", "replication_factor": 0}', 40002,
     "replication_factor 0 is not positive; it must be 1 or more"),
    (b'{"topic_name": "t", "partitions_count": 2147483648}', 40002,
     "partitions_count 2147483648 is larger than the limit of 2147483647"),
    (b'{"topic_name": "t", "configs": [{"name": "retention.ms", "value": "1"}, '
     b'{"name": "retention.ms", "value": "2"}]}', 40002,
     "config 'retention.ms' is given twice in 'configs'"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "code", "message"), BAD_CREATE_BODIES)
async def test_bad_create_topic_body_answers_400_naming_the_problem_and_changes_nothing(
    api: TestClient[Any, Any], admin: FakeAdmin, body: bytes, code: int, message: str
) -> None:
    before = image_state(admin)

    response = await api.post(
        f"/v3{CLUSTER}/topics", data=body, headers={"Content-Type": "application/json"}
    )

    assert await error_of(response) == (400, code, message)
    assert admin.calls == []
    assert image_state(admin) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"topic_name": "orders"}, "topic 'orders' already exists"),
        ({"topic_name": "bad name"}, "topic name 'bad name' is illegal: it may contain only "
         "ASCII letters, digits, '.', '_' and '-'"),
        ({"topic_name": ".."}, "topic name '..' is not allowed ('.' and '..' are not)"),
        ({"topic_name": "t", "replication_factor": 3},
         "replication factor 3 is larger than the 2 live brokers"),
        ({"topic_name": "t", "configs": [{"name": "retention.ms", "value": "soon"}]},
         "invalid value 'soon' for config 'retention.ms': must be an integer from -1 to "
         "9223372036854775807"),
        ({"topic_name": "t", "configs": [{"name": "retention.mss", "value": "1"}]},
         "unknown topic config 'retention.mss'; " + KNOWN),
    ],
)  # fmt: skip
async def test_controller_refusals_pass_through_with_40002_and_change_nothing(
    api: TestClient[Any, Any], admin: FakeAdmin, body: dict[str, Any], message: str
) -> None:
    before = image_state(admin)

    response = await api.post(f"/v3{CLUSTER}/topics", json=body)

    assert await error_of(response) == (400, 40002, message)
    assert image_state(admin) == before


async def test_create_with_another_content_type_answers_415(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    response = await api.post(
        f"/v3{CLUSTER}/topics", data=b'{"topic_name": "t"}', headers={"Content-Type": "text/plain"}
    )

    assert await error_of(response) == (
        415,
        40005,
        "Content-Type 'text/plain' is not accepted; send the body as application/json",
    )
    assert admin.calls == []


async def test_oversized_create_body_answers_413_and_changes_nothing(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    body = json.dumps({"topic_name": "t", "pad": "x" * MAX_REQUEST_BODY_BYTES}).encode()

    response = await api.post(
        f"/v3{CLUSTER}/topics", data=body, headers={"Content-Type": "application/json"}
    )

    assert await error_of(response) == (
        413,
        40004,
        f"request body of {len(body)} bytes is larger than the limit of "
        f"{MAX_REQUEST_BODY_BYTES} bytes",
    )
    assert admin.calls == []


async def test_chunked_oversized_body_answers_413(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    async def chunks() -> Any:
        for _ in range(3):
            yield b" " * (MAX_REQUEST_BODY_BYTES // 2)

    response = await api.post(
        f"/v3{CLUSTER}/topics", data=chunks(), headers={"Content-Type": "application/json"}
    )

    assert (await error_of(response))[:2] == (413, 40004)
    assert admin.calls == []


# --- topics: delete and grow ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_delete_topic_answers_204_and_the_topic_is_gone(
    api: TestClient[Any, Any], admin: FakeAdmin, prefix: str
) -> None:
    response = await api.delete(f"{prefix}{CLUSTER}/topics/orders")

    assert response.status == 204
    assert await response.read() == b""
    assert admin.metadata_image().topic("orders") is None
    gone = await api.get(f"{prefix}{CLUSTER}/topics/orders")
    assert (await error_of(gone))[:2] == (404, 40403)


async def test_delete_of_unknown_topic_answers_40403(api: TestClient[Any, Any]) -> None:
    response = await api.delete(f"/v3{CLUSTER}/topics/nope")

    assert await error_of(response) == (404, 40403, "topic 'nope' not found")


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_patch_partitions_count_grows_the_topic(
    api: TestClient[Any, Any], admin: FakeAdmin, prefix: str
) -> None:
    response = await api.patch(f"{prefix}{CLUSTER}/topics/orders", json={"partitions_count": 5})

    assert response.status == 200
    body = await response.json()
    assert (body["kind"], body["partitions_count"]) == ("KafkaTopic", 5)
    assert admin.calls == [("create_partitions", "orders", 5)]


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({}, 40001, "field 'partitions_count' is missing"),
        ({"partitions_count": "5"}, 40001,
         "field 'partitions_count' must be an integer, got string"),
        ({"partitions_count": 5, "x": 1}, 40001,
         "unknown field 'x'; the fields are 'partitions_count'"),
        ({"partitions_count": 0}, 40002,
         "partitions_count 0 is not positive; it must be 1 or more"),
        ({"partitions_count": -1}, 40002,
         "partitions_count -1 is not positive; it must be 1 or more"),
        ({"partitions_count": 2}, 40002, "topic 'orders' has 3 partitions; 2 would not grow it"),
    ],
)  # fmt: skip
async def test_bad_patch_answers_400_and_changes_nothing(
    api: TestClient[Any, Any], admin: FakeAdmin, body: dict[str, Any], code: int, message: str
) -> None:
    before = image_state(admin)

    response = await api.patch(f"/v3{CLUSTER}/topics/orders", json=body)

    assert await error_of(response) == (400, code, message)
    assert image_state(admin) == before


async def test_patch_of_unknown_topic_answers_40403(api: TestClient[Any, Any]) -> None:
    response = await api.patch(f"/v3{CLUSTER}/topics/nope", json={"partitions_count": 5})

    assert await error_of(response) == (404, 40403, "topic 'nope' not found")


# --- topic configs ----------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_topic_configs_list_set_and_default_configs(
    api: TestClient[Any, Any], prefix: str
) -> None:
    body = await (await api.get(f"{prefix}{CLUSTER}/topics/orders/configs")).json()

    assert body["kind"] == "KafkaTopicConfigList"
    by_name = {c["name"]: c for c in body["data"]}
    assert list(by_name) == sorted(by_name)
    url = f"{origin(api)}{prefix}{CLUSTER}/topics/orders/configs/retention.ms"
    assert by_name["retention.ms"] == {
        "kind": "KafkaTopicConfig",
        "metadata": {
            "self": url,
            "resource_name": f"crn:///kafka={CLUSTER_ID}/topic=orders/config=retention.ms",
        },
        "cluster_id": CLUSTER_ID,
        "topic_name": "orders",
        "name": "retention.ms",
        "value": "60000",
        "is_default": False,
        "is_read_only": False,
        "is_sensitive": False,
        "source": "DYNAMIC_TOPIC_CONFIG",
        "synonyms": [{"name": "retention.ms", "value": "60000", "source": "DYNAMIC_TOPIC_CONFIG"}],
    }
    default = by_name["cleanup.policy"]
    assert (default["value"], default["is_default"], default["source"]) == (
        None,
        True,
        "DEFAULT_CONFIG",
    )


async def test_a_cluster_wide_broker_default_is_the_value_of_an_unset_topic_config(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    admin.builder.config("broker", "", "log.retention.bytes", "1000")

    body = await (await api.get(f"/v3{CLUSTER}/topics/orders/configs/retention.bytes")).json()

    assert (body["value"], body["is_default"], body["source"]) == (
        "1000",
        True,
        "DYNAMIC_DEFAULT_BROKER_CONFIG",
    )


async def test_get_unknown_config_answers_404_with_40404(api: TestClient[Any, Any]) -> None:
    response = await api.get(f"/v3{CLUSTER}/topics/orders/configs/nope")

    status, code, message = await error_of(response)
    assert (status, code) == (404, 40404)
    assert message.startswith("config 'nope' not found for topic 'orders'; the topic configs are ")


async def test_reads_see_writes_committed_through_another_node(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    admin.elsewhere.append(lambda b: b.config("topic", "orders", "retention.ms", "5000"))
    admin.elsewhere.append(lambda b: b.topic("made-elsewhere", [(1, 2, 3)]))

    config = await (await api.get(f"/v3{CLUSTER}/topics/orders/configs/retention.ms")).json()
    topic = await api.get(f"/v3{CLUSTER}/topics/made-elsewhere")

    assert config["value"] == "5000"
    assert topic.status == 200


async def test_reads_without_a_controller_answer_from_this_nodes_image(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    admin.controller = None
    admin.elsewhere.append(lambda b: b.config("topic", "orders", "retention.ms", "5000"))

    config = await (await api.get(f"/v3{CLUSTER}/topics/orders/configs/retention.ms")).json()

    assert config["value"] == "60000"


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_put_config_sets_it_and_answers_204(
    api: TestClient[Any, Any], admin: FakeAdmin, prefix: str
) -> None:
    response = await api.put(
        f"{prefix}{CLUSTER}/topics/orders/configs/cleanup.policy", json={"value": "compact"}
    )

    assert response.status == 204
    assert admin.metadata_image().configs("topic", "orders")["cleanup.policy"] == "compact"
    body = await (await api.get(f"{prefix}{CLUSTER}/topics/orders/configs/cleanup.policy")).json()
    assert (body["value"], body["source"]) == ("compact", "DYNAMIC_TOPIC_CONFIG")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({}, 40001, "field 'value' is missing"),
        ({"value": 5}, 40001, "field 'value' must be a string, got number"),
        ({"value": None}, 40001, "field 'value' must be a string, got null"),
        ({"value": "1", "name": "x"}, 40001, "unknown field 'name'; the fields are 'value'"),
    ],
)
async def test_bad_put_config_body_answers_40001_and_changes_nothing(
    api: TestClient[Any, Any], admin: FakeAdmin, body: dict[str, Any], code: int, message: str
) -> None:
    before = image_state(admin)

    response = await api.put(f"/v3{CLUSTER}/topics/orders/configs/retention.ms", json=body)

    assert await error_of(response) == (400, code, message)
    assert admin.calls == []
    assert image_state(admin) == before


async def test_put_unknown_config_passes_the_controllers_40002_through(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    before = image_state(admin)

    response = await api.put(f"/v3{CLUSTER}/topics/orders/configs/nope", json={"value": "1"})

    assert await error_of(response) == (400, 40002, "unknown topic config 'nope'; " + KNOWN)
    assert image_state(admin) == before


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_delete_config_resets_it_to_the_default(
    api: TestClient[Any, Any], admin: FakeAdmin, prefix: str
) -> None:
    response = await api.delete(f"{prefix}{CLUSTER}/topics/orders/configs/retention.ms")

    assert response.status == 204
    assert admin.calls == [("alter_topic_configs", "orders", {}, ["retention.ms"])]
    assert "retention.ms" not in admin.metadata_image().configs("topic", "orders")


async def test_config_writes_to_an_unknown_topic_answer_40403(api: TestClient[Any, Any]) -> None:
    put = await api.put(f"/v3{CLUSTER}/topics/nope/configs/retention.ms", json={"value": "1"})
    delete = await api.delete(f"/v3{CLUSTER}/topics/nope/configs/retention.ms")
    alter = await api.post(
        f"/v3{CLUSTER}/topics/nope/configs:alter",
        json={"data": [{"name": "retention.ms", "value": "1"}]},
    )

    for response in (put, delete, alter):
        assert await error_of(response) == (404, 40403, "topic 'nope' not found")


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_configs_alter_sets_and_deletes_in_one_request(
    api: TestClient[Any, Any], admin: FakeAdmin, prefix: str
) -> None:
    response = await api.post(
        f"{prefix}{CLUSTER}/topics/orders/configs:alter",
        json={
            "data": [
                {"name": "cleanup.policy", "value": "compact"},
                {"name": "segment.bytes", "value": "1048576", "operation": "SET"},
                {"name": "retention.ms", "operation": "DELETE"},
            ]
        },
    )

    assert response.status == 204
    assert admin.metadata_image().configs("topic", "orders") == {
        "cleanup.policy": "compact",
        "segment.bytes": "1048576",
    }
    assert admin.calls == [
        (
            "alter_topic_configs",
            "orders",
            {"cleanup.policy": "compact", "segment.bytes": "1048576"},
            ["retention.ms"],
        )
    ]


async def test_configs_alter_validate_only_changes_nothing(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    before = image_state(admin)

    response = await api.post(
        f"/v3{CLUSTER}/topics/orders/configs:alter",
        json={"data": [{"name": "cleanup.policy", "value": "compact"}], "validate_only": True},
    )

    assert response.status == 204
    assert image_state(admin) == before


BAD_ALTER_BODIES = [
    ({}, 40001, "field 'data' is missing"),
    ({"data": {}}, 40001, "field 'data' must be an array, got object"),
    ({"data": [{"value": "1"}]}, 40001, "field 'data[0].name' is missing"),
    ({"data": [{"name": "retention.ms"}]}, 40001,
     "field 'data[0].value' is missing; operation SET needs a value"),
    ({"data": [{"name": "retention.ms", "value": 1}]}, 40001,
     "field 'data[0].value' must be a string, got number"),
    ({"data": [{"name": "a", "value": "1"}], "validate_only": 1}, 40001,
     "field 'validate_only' must be a boolean, got number"),
    ({"data": [], "x": 1}, 40001, "unknown field 'x'; the fields are 'data', 'validate_only'"),
    ({"data": []}, 40002, "field 'data' is empty; give at least one config"),
    ({"data": [{"name": "retention.ms", "value": "1", "operation": "APPEND"}]}, 40002,
     "operation 'APPEND' of config 'retention.ms' is not one of SET, DELETE"),
    ({"data": [{"name": "retention.ms", "value": "1", "operation": "DELETE"}]}, 40002,
     "config 'retention.ms' has operation DELETE and a value; a deleted config takes none"),
    ({"data": [{"name": "retention.ms", "value": "1"},
               {"name": "retention.ms", "operation": "DELETE"}]}, 40002,
     "config 'retention.ms' is given twice in 'data'"),
    ({"data": [{"name": "nope", "value": "1"}]}, 40002, "unknown topic config 'nope'; " + KNOWN),
]  # fmt: skip


@pytest.mark.parametrize(("body", "code", "message"), BAD_ALTER_BODIES)
async def test_bad_configs_alter_answers_400_and_changes_nothing(
    api: TestClient[Any, Any], admin: FakeAdmin, body: dict[str, Any], code: int, message: str
) -> None:
    before = image_state(admin)

    response = await api.post(f"/v3{CLUSTER}/topics/orders/configs:alter", json=body)

    assert await error_of(response) == (400, code, message)
    assert image_state(admin) == before


# --- failures of the quorum -------------------------------------------------------------------


async def test_writes_without_a_controller_answer_503_with_retry_after(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    admin.error = NoLeaderError()

    response = await api.post(f"/v3{CLUSTER}/topics", json={"topic_name": "t"})

    assert response.headers["Retry-After"] == "1"
    status, code, message = await error_of(response)
    assert (status, code) == (503, 50003)
    assert "retry after 1 s" in message


async def test_a_controller_that_moved_answers_503_with_retry_after(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    admin.error = NotControllerError("node 1 is no longer the active controller")

    response = await api.delete(f"/v3{CLUSTER}/topics/orders")

    assert response.headers["Retry-After"] == "1"
    assert await error_of(response) == (
        503,
        50003,
        "node 1 is no longer the active controller",
    )


async def test_a_write_that_times_out_answers_504_with_50002(
    make_client: MakeClient, admin: FakeAdmin
) -> None:
    class SlowAdmin(FakeAdmin):
        async def delete_topic(self, name: str) -> None:
            await asyncio.sleep(10)

    client = await make_client(FakeNode(), admin=SlowAdmin(), quorum_timeout_seconds=0.05)

    response = await client.delete(f"/v3{CLUSTER}/topics/orders")

    assert await error_of(response) == (
        504,
        50002,
        f"timed out waiting for DELETE /v3{CLUSTER}/topics/orders to commit (at most 0.05 s); "
        "the write may still take effect",
    )


async def test_admin_routes_answer_501_on_a_node_without_the_admin_api(
    make_client: MakeClient,
) -> None:
    client = await make_client(FakeNode())

    response = await client.get("/v3/clusters")

    assert await error_of(response) == (
        501,
        50101,
        "this node was built without the admin API, so GET /v3/clusters cannot be served",
    )


# --- the admin token --------------------------------------------------------------------------

TOKEN = "s3cret"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v3/clusters"),
        ("GET", f"/kafka/v3{CLUSTER}/topics"),
        ("POST", f"/v3{CLUSTER}/topics"),
        ("DELETE", f"/v3{CLUSTER}/topics/orders"),
        ("PATCH", f"/v3{CLUSTER}/topics/orders"),
        ("PUT", f"/v3{CLUSTER}/topics/orders/configs/retention.ms"),
        ("POST", f"/v3{CLUSTER}/topics/orders/configs:alter"),
        ("GET", "/v1/cluster/health_overview"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong"])
async def test_admin_routes_need_the_token_and_change_nothing_without_it(
    make_client: MakeClient, method: str, path: str, header: str | None
) -> None:
    admin = FakeAdmin()
    before = image_state(admin)
    client = await make_client(FakeNode(), admin=admin, admin_token=TOKEN)
    headers = {} if header is None else {"Authorization": header}

    response = await client.request(method, path, json={"topic_name": "t"}, headers=headers)

    status, code, _ = await error_of(response)
    assert (status, code) == (401, 40101)
    assert admin.calls == []
    assert image_state(admin) == before


async def test_admin_routes_serve_with_the_right_token(make_client: MakeClient) -> None:
    admin = FakeAdmin()
    client = await make_client(FakeNode(), admin=admin, admin_token=TOKEN)

    response = await client.post(
        f"/v3{CLUSTER}/topics",
        json={"topic_name": "t"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert response.status == 201
    assert admin.metadata_image().topic("t") is not None


async def test_the_facades_own_commit_timeout_answers_504_too(
    api: TestClient[Any, Any], admin: FakeAdmin
) -> None:
    admin.error = TimeoutError()

    response = await api.patch(f"/v3{CLUSTER}/topics/orders", json={"partitions_count": 5})

    status, code, message = await error_of(response)
    assert (status, code) == (504, 50002)
    assert message.endswith("the write may still take effect")
