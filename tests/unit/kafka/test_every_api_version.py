"""Every API the broker serves, at every version ApiVersions advertises, through the real
parse/respond path: each answer must decode as exactly that version's response and carry no
UNKNOWN_SERVER_ERROR. A handler that builds a field or entity its version lacks (CreateTopics
v4 once built "CreatableTopicConfigs", a v5+ entity) fails here under its API and version.

One request builder per API (some with variants: Metadata of every topic and of named ones,
CreateTopics with and without configs, ...); builders write every field any version has and
`entity()` drops those a version lacks, as the handlers' own `build()` does for responses.
The consumer-group APIs run against a real GroupCoordinator (tests/unit/kafka/groups) with a
member that has joined and synced a group this broker coordinates."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kio.schema.errors import ErrorCode as KafkaError

from broker.kafka.apis import SUPPORTED_VERSIONS, ApiKey
from broker.kafka.codec import ZERO_UUID, build, response_class, schema_module
from broker.kafka.config_entries import AlterOp, ResourceType
from broker.kafka.context import Outcome
from broker.kafka.dispatch import parse, respond
from broker.kafka.groups.coordinator import GroupCoordinator
from broker.log.batch import Record, build_batch
from tests.unit.kafka.groups.test_handlers import (
    group_led_by,
    groups_fixture,
    join,
    loaded,
    sync,
)
from tests.unit.kafka.helpers import Fixture, decode_response, encode_request, topic_id_for
from tests.unit.kafka.test_idempotence_apis import ProducerFixture
from tests.unit.kafka.test_offset_for_leader_epoch import EpochData

MAX_LOOP_TURNS = 10_000  # a request that needs more is stuck, not slow
BATCH = build_batch([Record(b"k", b"v", (), 1_000)])
TOPIC = int(ResourceType.TOPIC)
BROKER = int(ResourceType.BROKER)


@dataclass
class Setup:
    """What a builder may refer to: the group this broker coordinates, its joined and synced
    member and that member's generation (empty for the non-group APIs)."""

    group: str = ""
    member_id: str = ""
    generation: int = -1


Builder = Callable[[int, Setup], dict[str, Any]]


def entity(api: ApiKey, version: int, class_name: str, **fields: Any) -> Any:
    """A request entity of this version; fields the version lacks are dropped, ints become
    the types kio declares (timedeltas, UUIDs). A field no served version has is a typo."""
    misspelt = set(fields) - known_fields(api, class_name)
    assert not misspelt, f"{class_name} has no {sorted(misspelt)} in any served version"
    return build(schema_module(api, version, "request"), class_name, **fields)


@functools.cache
def known_fields(api: ApiKey, class_name: str) -> frozenset[str]:
    """The fields of a request entity in any version this broker serves."""
    low, high = SUPPORTED_VERSIONS[api]
    return frozenset(
        entry.name
        for version in range(low, high + 1)
        if (cls := getattr(schema_module(api, version, "request"), class_name, None))
        for entry in dataclasses.fields(cls)
    )


# -- data ---------------------------------------------------------------------------------------


def produce(acks: int) -> Builder:
    def fields(version: int, _: Setup) -> dict[str, Any]:
        partition = entity(ApiKey.PRODUCE, version, "PartitionProduceData", index=0, records=BATCH)
        topic = entity(
            ApiKey.PRODUCE, version, "TopicProduceData", name="orders", partition_data=(partition,)
        )
        return {"transactional_id": None, "acks": acks, "timeout": 5000, "topic_data": (topic,)}

    return fields


def fetch(version: int, _: Setup) -> dict[str, Any]:
    partition = entity(
        ApiKey.FETCH,
        version,
        "FetchPartition",
        partition=0,
        current_leader_epoch=3,
        fetch_offset=0,
        last_fetched_epoch=-1,
        log_start_offset=-1,
        partition_max_bytes=65536,
    )
    topic = entity(
        ApiKey.FETCH,
        version,
        "FetchTopic",
        topic="orders",
        topic_id=topic_id_for("orders"),
        partitions=(partition,),
    )
    fields: dict[str, Any] = {
        "cluster_id": None,
        "replica_id": -1,
        "max_wait": 500,
        "min_bytes": 1,
        "max_bytes": 1_000_000,
        "isolation_level": 0,
        "session_id": 0,
        "session_epoch": -1,
        "topics": (topic,),
        "forgotten_topics_data": (),
        "rack_id": "",
    }
    if version >= 15:
        fields["replica_state"] = entity(
            ApiKey.FETCH, version, "ReplicaState", replica_id=-1, replica_epoch=-1
        )
    return fields


def list_offsets(version: int, _: Setup) -> dict[str, Any]:
    partition = entity(
        ApiKey.LIST_OFFSETS,
        version,
        "ListOffsetsPartition",
        partition_index=0,
        current_leader_epoch=3,
        timestamp=-1,  # latest
    )
    topic = entity(
        ApiKey.LIST_OFFSETS, version, "ListOffsetsTopic", name="orders", partitions=(partition,)
    )
    return {"replica_id": -1, "isolation_level": 0, "topics": (topic,)}


def offset_for_leader_epoch(version: int, _: Setup) -> dict[str, Any]:
    partition = entity(
        ApiKey.OFFSET_FOR_LEADER_EPOCH,
        version,
        "OffsetForLeaderPartition",
        partition=0,
        current_leader_epoch=3,
        leader_epoch=3,
    )
    topic = entity(
        ApiKey.OFFSET_FOR_LEADER_EPOCH,
        version,
        "OffsetForLeaderTopic",
        topic="orders",
        partitions=(partition,),
    )
    return {"replica_id": -1, "topics": (topic,)}


def init_producer_id(version: int, _: Setup) -> dict[str, Any]:
    return {
        "transactional_id": None,
        "transaction_timeout": 60_000,
        "producer_id": -1,
        "producer_epoch": -1,
    }


# -- cluster ------------------------------------------------------------------------------------


def metadata(names: tuple[str, ...] | None) -> Builder:
    """names None asks for every topic (v0 says it with an empty list)."""

    def fields(version: int, _: Setup) -> dict[str, Any]:
        if names is None:
            topics: tuple[Any, ...] | None = () if version == 0 else None
        else:
            topics = tuple(
                entity(ApiKey.METADATA, version, "MetadataRequestTopic", name=n, topic_id=None)
                for n in names
            )
        return {
            "topics": topics,
            "allow_auto_topic_creation": False,
            "include_cluster_authorized_operations": False,
            "include_topic_authorized_operations": False,
        }

    return fields


def api_versions(version: int, _: Setup) -> dict[str, Any]:
    return {"client_software_name": "kraft-tests", "client_software_version": "1.0"}


def describe_cluster(version: int, _: Setup) -> dict[str, Any]:
    return {"include_cluster_authorized_operations": False, "endpoint_type": 1}


# -- admin --------------------------------------------------------------------------------------


def create_topics(configs: dict[str, str]) -> Builder:
    def fields(version: int, _: Setup) -> dict[str, Any]:
        entries = tuple(
            entity(ApiKey.CREATE_TOPICS, version, "CreatableTopicConfig", name=k, value=v)
            for k, v in configs.items()
        )
        topic = entity(
            ApiKey.CREATE_TOPICS,
            version,
            "CreatableTopic",
            name="events",
            num_partitions=2,
            replication_factor=2,
            assignments=(),
            configs=entries,
        )
        return {"topics": (topic,), "timeout": 30_000, "validate_only": False}

    return fields


def delete_topics(by_id: bool) -> Builder:
    """By id only from v6 (see VARIANTS_FROM); v6 by name sends the zero id."""

    def fields(version: int, _: Setup) -> dict[str, Any]:
        if version < 6:
            return {"topic_names": ("orders",), "timeout": 30_000}
        state = entity(
            ApiKey.DELETE_TOPICS,
            version,
            "DeleteTopicState",
            name=None if by_id else "orders",
            topic_id=topic_id_for("orders") if by_id else ZERO_UUID,
        )
        return {"topics": (state,), "timeout": 30_000}

    return fields


def create_partitions(version: int, _: Setup) -> dict[str, Any]:
    topic = entity(
        ApiKey.CREATE_PARTITIONS,
        version,
        "CreatePartitionsTopic",
        name="orders",
        count=4,
        assignments=None,
    )
    return {"topics": (topic,), "timeout": 30_000, "validate_only": False}


def describe_configs(resource_type: int, name: str) -> Builder:
    def fields(version: int, _: Setup) -> dict[str, Any]:
        resource = entity(
            ApiKey.DESCRIBE_CONFIGS,
            version,
            "DescribeConfigsResource",
            resource_type=resource_type,
            resource_name=name,
            configuration_keys=None,
        )
        return {"resources": (resource,), "include_synonyms": True, "include_documentation": True}

    return fields


def alter_configs(version: int, _: Setup) -> dict[str, Any]:
    config = entity(
        ApiKey.ALTER_CONFIGS, version, "AlterableConfig", name="retention.ms", value="5000"
    )
    resource = entity(
        ApiKey.ALTER_CONFIGS,
        version,
        "AlterConfigsResource",
        resource_type=TOPIC,
        resource_name="orders",
        configs=(config,),
    )
    return {"resources": (resource,), "validate_only": False}


def incremental_alter_configs(version: int, _: Setup) -> dict[str, Any]:
    config = entity(
        ApiKey.INCREMENTAL_ALTER_CONFIGS,
        version,
        "AlterableConfig",
        name="retention.ms",
        config_operation=int(AlterOp.SET),
        value="5000",
    )
    resource = entity(
        ApiKey.INCREMENTAL_ALTER_CONFIGS,
        version,
        "AlterConfigsResource",
        resource_type=TOPIC,
        resource_name="orders",
        configs=(config,),
    )
    return {"resources": (resource,), "validate_only": False}


# -- consumer groups ----------------------------------------------------------------------------


def find_coordinator(version: int, setup: Setup) -> dict[str, Any]:
    return {"key": setup.group, "key_type": 0, "coordinator_keys": (setup.group,)}


def join_group(version: int, setup: Setup) -> dict[str, Any]:
    """The member rejoins (a known member id: no MEMBER_ID_REQUIRED round at v4+)."""
    protocol = entity(
        ApiKey.JOIN_GROUP, version, "JoinGroupRequestProtocol", name="range", metadata=b"sub"
    )
    return {
        "group_id": setup.group,
        "session_timeout": 10_000,
        "rebalance_timeout": 30_000,
        "member_id": setup.member_id,
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocols": (protocol,),
        "reason": None,
    }


def sync_group(version: int, setup: Setup) -> dict[str, Any]:
    assignment = entity(
        ApiKey.SYNC_GROUP,
        version,
        "SyncGroupRequestAssignment",
        member_id=setup.member_id,
        assignment=b"orders:0,1,2",
    )
    return {
        "group_id": setup.group,
        "generation_id": setup.generation,
        "member_id": setup.member_id,
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocol_name": "range",
        "assignments": (assignment,),
    }


def heartbeat(version: int, setup: Setup) -> dict[str, Any]:
    return {
        "group_id": setup.group,
        "generation_id": setup.generation,
        "member_id": setup.member_id,
        "group_instance_id": None,
    }


def leave_group(version: int, setup: Setup) -> dict[str, Any]:
    fields: dict[str, Any] = {"group_id": setup.group, "member_id": setup.member_id}
    if version >= 3:  # several members
        member = entity(
            ApiKey.LEAVE_GROUP,
            version,
            "MemberIdentity",
            member_id=setup.member_id,
            group_instance_id=None,
            reason="done",
        )
        fields["members"] = (member,)
    return fields


def offset_commit(version: int, setup: Setup) -> dict[str, Any]:
    partition = entity(
        ApiKey.OFFSET_COMMIT,
        version,
        "OffsetCommitRequestPartition",
        partition_index=0,
        committed_offset=17,
        committed_leader_epoch=3,
        committed_metadata="",
    )
    topic = entity(
        ApiKey.OFFSET_COMMIT,
        version,
        "OffsetCommitRequestTopic",
        name="orders",
        partitions=(partition,),
    )
    return {
        "group_id": setup.group,
        "generation_id_or_member_epoch": setup.generation,
        "member_id": setup.member_id,
        "group_instance_id": None,
        "retention_time": -1,
        "topics": (topic,),
    }


def offset_fetch(version: int, setup: Setup) -> dict[str, Any]:
    if version < 8:
        topic = entity(
            ApiKey.OFFSET_FETCH,
            version,
            "OffsetFetchRequestTopic",
            name="orders",
            partition_indexes=(0,),
        )
        return {"group_id": setup.group, "topics": (topic,), "require_stable": False}
    topics = entity(
        ApiKey.OFFSET_FETCH,
        version,
        "OffsetFetchRequestTopics",
        name="orders",
        partition_indexes=(0,),
    )
    group = entity(
        ApiKey.OFFSET_FETCH,
        version,
        "OffsetFetchRequestGroup",
        group_id=setup.group,
        member_id=None,
        member_epoch=-1,
        topics=(topics,),
    )
    return {"groups": (group,), "require_stable": False}


def describe_groups(version: int, setup: Setup) -> dict[str, Any]:
    return {"groups": (setup.group,), "include_authorized_operations": False}


def list_groups(version: int, setup: Setup) -> dict[str, Any]:
    return {"states_filter": (), "types_filter": ()}


def delete_groups(version: int, setup: Setup) -> dict[str, Any]:
    return {"groups_names": (setup.group,)}  # NON_EMPTY_GROUP: its member is still in it


def offset_delete(version: int, setup: Setup) -> dict[str, Any]:
    partition = entity(
        ApiKey.OFFSET_DELETE, version, "OffsetDeleteRequestPartition", partition_index=0
    )
    topic = entity(
        ApiKey.OFFSET_DELETE,
        version,
        "OffsetDeleteRequestTopic",
        name="orders",
        partitions=(partition,),
    )
    return {"group_id": setup.group, "topics": (topic,)}


# -- the table ----------------------------------------------------------------------------------

# Each API's requests, by variant name.
BUILDERS: dict[ApiKey, dict[str, Builder]] = {
    ApiKey.PRODUCE: {"acks-1": produce(1), "acks-0": produce(0)},
    ApiKey.FETCH: {"orders-0": fetch},
    ApiKey.LIST_OFFSETS: {"latest": list_offsets},
    ApiKey.METADATA: {
        "all-topics": metadata(None),
        "named": metadata(("orders", "audit.log", "missing")),
    },
    ApiKey.API_VERSIONS: {"": api_versions},
    ApiKey.DESCRIBE_CLUSTER: {"": describe_cluster},
    ApiKey.INIT_PRODUCER_ID: {"idempotent": init_producer_id},
    ApiKey.OFFSET_FOR_LEADER_EPOCH: {"orders-0": offset_for_leader_epoch},
    ApiKey.CREATE_TOPICS: {
        "no-configs": create_topics({}),
        "with-configs": create_topics({"retention.ms": "5000", "cleanup.policy": "compact"}),
    },
    ApiKey.DELETE_TOPICS: {"by-name": delete_topics(False), "by-id": delete_topics(True)},
    ApiKey.CREATE_PARTITIONS: {"": create_partitions},
    ApiKey.DESCRIBE_CONFIGS: {
        "topic": describe_configs(TOPIC, "orders"),
        "broker": describe_configs(BROKER, "1"),
    },
    ApiKey.ALTER_CONFIGS: {"topic": alter_configs},
    ApiKey.INCREMENTAL_ALTER_CONFIGS: {"topic": incremental_alter_configs},
    ApiKey.FIND_COORDINATOR: {"": find_coordinator},
    ApiKey.JOIN_GROUP: {"rejoin": join_group},
    ApiKey.SYNC_GROUP: {"": sync_group},
    ApiKey.HEARTBEAT: {"": heartbeat},
    ApiKey.LEAVE_GROUP: {"": leave_group},
    ApiKey.OFFSET_COMMIT: {"": offset_commit},
    ApiKey.OFFSET_FETCH: {"": offset_fetch},
    ApiKey.DESCRIBE_GROUPS: {"": describe_groups},
    ApiKey.LIST_GROUPS: {"": list_groups},
    ApiKey.DELETE_GROUPS: {"": delete_groups},
    ApiKey.OFFSET_DELETE: {"": offset_delete},
}

# Variants that exist only from some version on.
VARIANTS_FROM: dict[tuple[ApiKey, str], int] = {(ApiKey.DELETE_TOPICS, "by-id"): 6}

# The error codes other than NONE a variant's answer may carry; any other code fails it.
EXPECTED_ERRORS: dict[tuple[ApiKey, str], frozenset[KafkaError]] = {
    # audit.log has no leader; "missing" does not exist (auto-creation is off)
    (ApiKey.METADATA, "all-topics"): frozenset({KafkaError.leader_not_available}),
    (ApiKey.METADATA, "named"): frozenset(
        {KafkaError.leader_not_available, KafkaError.unknown_topic_or_partition}
    ),
    # the group still has its member, subscribed to orders
    (ApiKey.DELETE_GROUPS, ""): frozenset({KafkaError.non_empty_group}),
    (ApiKey.OFFSET_DELETE, ""): frozenset({KafkaError.group_subscribed_to_topic}),
}

# APIs served but not swept here, with the reason (none today).
SKIPPED: dict[ApiKey, str] = {}

GROUP_APIS = frozenset(
    {
        ApiKey.FIND_COORDINATOR,
        ApiKey.JOIN_GROUP,
        ApiKey.SYNC_GROUP,
        ApiKey.HEARTBEAT,
        ApiKey.LEAVE_GROUP,
        ApiKey.OFFSET_COMMIT,
        ApiKey.OFFSET_FETCH,
        ApiKey.DESCRIBE_GROUPS,
        ApiKey.LIST_GROUPS,
        ApiKey.DELETE_GROUPS,
        ApiKey.OFFSET_DELETE,
    }
)

# (api, version) -> the reason a case is a known broker bug (strict xfail).
KNOWN_BUGS: dict[tuple[ApiKey, int], str] = {}


def cases() -> Iterator[Any]:
    for api, (low, high) in SUPPORTED_VERSIONS.items():
        for variant, builder in BUILDERS.get(api, {}).items():
            for version in range(max(low, VARIANTS_FROM.get((api, variant), low)), high + 1):
                marks = []
                if (api, version) in KNOWN_BUGS:
                    marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[api, version]))
                name = f"{api.name}-v{version}" + (f"-{variant}" if variant else "")
                yield pytest.param(api, version, builder, variant, id=name, marks=marks)


# -- running a case -----------------------------------------------------------------------------


async def prepared(api: ApiKey) -> tuple[Fixture, GroupCoordinator | None, Setup]:
    """A plain fixture; for the group APIs, one whose coordinator (broker 1) has loaded a
    group with one member that joined and synced (generation 1)."""
    if api is ApiKey.OFFSET_FOR_LEADER_EPOCH:
        return Fixture(data=EpochData()), None, Setup()  # FakeData has no epoch lookups
    if api is ApiKey.INIT_PRODUCER_ID:
        return ProducerFixture(), None, Setup()  # with a producer id allocator
    if api not in GROUP_APIS:
        return Fixture(), None, Setup()
    fixture, coordinator, _ = groups_fixture()
    group = group_led_by(1)
    await loaded(fixture, coordinator, group)
    joined = await join(fixture, coordinator, group)
    assert joined.error_code is KafkaError.none
    synced = await sync(fixture, group, joined.member_id, joined.generation_id)
    assert synced.error_code is KafkaError.none
    return fixture, coordinator, Setup(group, joined.member_id, joined.generation_id)


async def send(
    fixture: Fixture, coordinator: GroupCoordinator | None, payload: bytes
) -> list[Any] | Outcome:
    """respond() as the server calls it; a group coordinator is ticked meanwhile, so that a
    JoinGroup waiting for its rebalance completes."""
    task = asyncio.ensure_future(respond(fixture.services, parse(payload)))
    for _ in range(MAX_LOOP_TURNS):
        if task.done():
            return task.result()
        await asyncio.sleep(0)
        if coordinator is not None:
            coordinator.tick()
    task.cancel()
    raise AssertionError(f"no answer after {MAX_LOOP_TURNS} turns of the event loop")


def error_codes(value: Any, path: str = "") -> Iterator[tuple[str, KafkaError]]:
    """Every error code in a response, with where it is."""
    if isinstance(value, tuple):
        for index, item in enumerate(value):
            yield from error_codes(item, f"{path}[{index}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for entry in dataclasses.fields(value):
            child = getattr(value, entry.name)
            where = f"{path}.{entry.name}" if path else entry.name
            if isinstance(child, KafkaError):
                yield where, child
            else:
                yield from error_codes(child, where)


@pytest.mark.parametrize(("api", "version", "builder", "variant"), list(cases()))
async def test_the_broker_answers_every_api_at_every_version(
    api: ApiKey, version: int, builder: Builder, variant: str
) -> None:
    fixture, coordinator, setup = await prepared(api)
    body = entity(api, version, api.request_class_name, **builder(version, setup))
    answer = await send(fixture, coordinator, encode_request(api, version, body))

    if api is ApiKey.PRODUCE and variant == "acks-0":
        assert answer is Outcome.NO_RESPONSE
        return
    assert isinstance(answer, list), f"no answer: {answer}"
    # decodes as exactly this version's response: every byte of it, nothing more
    response = decode_response(api, version, b"".join(answer))
    assert isinstance(response, response_class(api, version))
    codes = list(error_codes(response))
    server_errors = [where for where, code in codes if code is KafkaError.unknown_server_error]
    assert not server_errors, f"UNKNOWN_SERVER_ERROR at {server_errors}"
    expected = EXPECTED_ERRORS.get((api, variant), frozenset()) | {KafkaError.none}
    unexpected = [(where, code.name) for where, code in codes if code not in expected]
    assert not unexpected, f"unexpected error codes: {unexpected}"


def test_every_served_api_is_swept_or_skipped_with_a_reason() -> None:
    assert not set(BUILDERS) & set(SKIPPED)
    assert set(BUILDERS) | set(SKIPPED) == set(SUPPORTED_VERSIONS)
    assert set(BUILDERS) >= GROUP_APIS
    assert all(builders for builders in BUILDERS.values())
