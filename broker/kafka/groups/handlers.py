"""FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
DescribeGroups and ListGroups: Kafka's shapes around the GroupCoordinator.

Each handler turns a request of any served version into coordinator calls and builds the
answer with `context.build`, which drops the fields an older version lacks. A group this
broker does not coordinate answers NOT_COORDINATOR (the client asks FindCoordinator again);
one whose offsets partition is still being read answers COORDINATOR_LOAD_IN_PROGRESS.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from broker.kafka.codec import milliseconds
from broker.kafka.context import AUTHORIZED_OPERATIONS_OMITTED, RequestContext
from broker.kafka.errors import KafkaError
from broker.kafka.groups.coordinator import (
    CoordinatorAddress,
    CoordinatorError,
    GroupCoordinator,
)
from broker.kafka.groups.model import (
    CommittedOffset,
    GroupState,
    JoinAnswer,
    JoinRequest,
    SyncAnswer,
)
from broker.kafka.services import BrokerServices

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1
OFFSET_METADATA_MAX_BYTES = 4096  # Kafka's offset.metadata.max.bytes
MAX_KEYS_PER_REQUEST = 1000  # FindCoordinator v4+, DescribeGroups, OffsetFetch v8+ groups
MAX_PARTITIONS_PER_COMMIT = 10_000
GROUP_TYPE_CLASSIC = "classic"
NO_OFFSET = -1
NO_LEADER_EPOCH = -1
# The offsets topic stores names as int16-length strings (records.py)
MAX_GROUP_ID_BYTES = 2**15 - 1


def _coordinator(services: BrokerServices) -> GroupCoordinator:
    coordinator = services.groups
    if coordinator is None:
        raise CoordinatorError(
            KafkaError.coordinator_not_available, "this node runs no group coordinator"
        )
    return coordinator


def _check_group_id(group_id: str | None) -> None:
    if not group_id:
        raise CoordinatorError(KafkaError.invalid_group_id, "the group id is empty")
    if len(group_id.encode()) > MAX_GROUP_ID_BYTES:
        raise CoordinatorError(
            KafkaError.invalid_group_id,
            f"the group id has {len(group_id.encode())} bytes; at most {MAX_GROUP_ID_BYTES}",
        )


# -- FindCoordinator ---------------------------------------------------------------------------


async def handle_find_coordinator(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    key_type = int(getattr(request, "key_type", KEY_TYPE_GROUP))
    if context.version >= 4:
        keys = list(request.coordinator_keys)
        if len(keys) > MAX_KEYS_PER_REQUEST:
            refusal = CoordinatorAddress(
                KafkaError.invalid_request,
                f"{len(keys)} keys in one request; the limit is {MAX_KEYS_PER_REQUEST}",
            )
            answers = [refusal for _ in keys]
        else:
            answers = [await _find(services, key_type, key) for key in keys]
        coordinators = tuple(
            context.build(
                "Coordinator",
                key=key,
                node_id=answer.node_id,
                host=answer.host,
                port=answer.port,
                error_code=answer.error,
                error_message=answer.message,
            )
            for key, answer in zip(keys, answers, strict=True)
        )
        return context.build("FindCoordinatorResponse", throttle_time=0, coordinators=coordinators)
    answer = await _find(services, key_type, request.key)
    return context.build(
        "FindCoordinatorResponse",
        throttle_time=0,
        error_code=answer.error,
        error_message=answer.message,
        node_id=answer.node_id,
        host=answer.host,
        port=answer.port,
    )


async def _find(services: BrokerServices, key_type: int, key: str) -> CoordinatorAddress:
    if key_type != KEY_TYPE_GROUP:
        served = "transaction coordinators are" if key_type == KEY_TYPE_TRANSACTION else "it is"
        return CoordinatorAddress(
            KafkaError.invalid_request,
            f"key type {key_type} is not served here ({served} not); groups (0) are",
        )
    try:
        _check_group_id(key)
        return await _coordinator(services).find_coordinator(key)
    except CoordinatorError as error:
        return CoordinatorAddress(error.error, error.message)


# -- JoinGroup ---------------------------------------------------------------------------------


async def handle_join_group(services: BrokerServices, context: RequestContext, request: Any) -> Any:
    session_timeout_ms = milliseconds(request.session_timeout)
    rebalance_timeout_ms = milliseconds(
        getattr(request, "rebalance_timeout", request.session_timeout)
    )
    if rebalance_timeout_ms < 0:
        rebalance_timeout_ms = session_timeout_ms  # v0: the session timeout bounds a rebalance
    try:
        _check_group_id(request.group_id)
        _check_join_strings(request)
        coordinator = _coordinator(services)
        client_id = context.client_id or ""
        join = JoinRequest(
            member_id=request.member_id,
            group_instance_id=getattr(request, "group_instance_id", None),
            client_id=client_id,
            client_host=context.client_host,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            protocol_type=request.protocol_type,
            protocols=tuple((p.name, bytes(p.metadata)) for p in request.protocols),
            require_known_member_id=context.version >= 4,
            new_member_id=coordinator.fresh_member_id(client_id),
        )
        answer = await coordinator.join(request.group_id, join)
    except CoordinatorError as error:
        answer = JoinAnswer(request.member_id, error.error)
    nullable_protocol = context.version >= 7
    return context.build(
        "JoinGroupResponse",
        throttle_time=0,
        error_code=answer.error,
        generation_id=answer.generation_id,
        protocol_type=answer.protocol_type,
        protocol_name=answer.protocol_name
        if answer.protocol_name is not None or nullable_protocol
        else "",
        leader=answer.leader,
        skip_assignment=answer.skip_assignment,
        member_id=answer.member_id,
        members=tuple(
            context.build(
                "JoinGroupResponseMember",
                member_id=member_id,
                group_instance_id=instance_id,
                metadata=metadata,
            )
            for member_id, instance_id, metadata in answer.members
        ),
    )


def _check_join_strings(request: Any) -> None:
    """What a member stores in the offsets topic must fit its int16-length strings (a
    flexible request's compact strings may be longer)."""
    values = [request.protocol_type, getattr(request, "group_instance_id", None)]
    values += [protocol.name for protocol in request.protocols]
    for value in values:
        if value is not None and len(value.encode()) > MAX_GROUP_ID_BYTES:
            raise CoordinatorError(
                KafkaError.invalid_request,
                f"a protocol or instance name of {len(value.encode())} bytes; at most "
                f"{MAX_GROUP_ID_BYTES}",
            )


# -- SyncGroup ---------------------------------------------------------------------------------


async def handle_sync_group(services: BrokerServices, context: RequestContext, request: Any) -> Any:
    try:
        _check_group_id(request.group_id)
        assignments = {a.member_id: bytes(a.assignment) for a in request.assignments}
        answer = await _coordinator(services).sync(
            request.group_id,
            request.member_id,
            int(request.generation_id),
            getattr(request, "protocol_type", None),
            getattr(request, "protocol_name", None),
            assignments,
            getattr(request, "group_instance_id", None),
        )
    except CoordinatorError as error:
        answer = SyncAnswer(request.member_id, error.error)
    return context.build(
        "SyncGroupResponse",
        throttle_time=0,
        error_code=answer.error,
        protocol_type=answer.protocol_type,
        protocol_name=answer.protocol_name,
        assignment=answer.assignment,
    )


# -- Heartbeat, LeaveGroup ---------------------------------------------------------------------


async def handle_heartbeat(services: BrokerServices, context: RequestContext, request: Any) -> Any:
    try:
        _check_group_id(request.group_id)
        error = _coordinator(services).heartbeat(
            request.group_id,
            request.member_id,
            int(request.generation_id),
            getattr(request, "group_instance_id", None),
        )
    except CoordinatorError as refusal:
        error = refusal.error
    return context.build("HeartbeatResponse", throttle_time=0, error_code=error)


async def handle_leave_group(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    if context.version >= 3:
        identities = [(m.member_id, m.group_instance_id) for m in request.members]
    else:
        identities = [(request.member_id, None)]
    top_error = KafkaError.none
    try:
        _check_group_id(request.group_id)
        errors = _coordinator(services).leave(request.group_id, identities)
    except CoordinatorError as refusal:
        top_error = refusal.error
        errors = [refusal.error for _ in identities]
    if context.version < 3:
        return context.build("LeaveGroupResponse", throttle_time=0, error_code=errors[0])
    members = tuple(
        context.build(
            "MemberResponse", member_id=member_id, group_instance_id=instance_id, error_code=error
        )
        for (member_id, instance_id), error in zip(identities, errors, strict=True)
    )
    return context.build(
        "LeaveGroupResponse", throttle_time=0, error_code=top_error, members=members
    )


# -- OffsetCommit ------------------------------------------------------------------------------


async def handle_offset_commit(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    image = services.image()
    wall_ms = _wall_clock_ms()
    entries = [(topic.name, p) for topic in request.topics for p in topic.partitions]
    errors: dict[tuple[str, int], KafkaError] = {}
    offsets: dict[tuple[str, int], CommittedOffset] = {}
    for name, partition in entries:
        key = (name, int(partition.partition_index))
        topic = image.topic(name)
        metadata = partition.committed_metadata or ""
        if topic is None or key[1] not in topic.partitions:
            errors[key] = KafkaError.unknown_topic_or_partition
        elif len(metadata.encode()) > OFFSET_METADATA_MAX_BYTES:
            errors[key] = KafkaError.offset_metadata_too_large
        else:
            offsets[key] = CommittedOffset(
                int(partition.committed_offset),
                int(getattr(partition, "committed_leader_epoch", NO_LEADER_EPOCH)),
                metadata,
                wall_ms,
            )
    try:
        _check_group_and_partitions(request.group_id, len(entries))
        outcome = await _coordinator(services).commit(
            request.group_id,
            request.member_id,
            int(request.generation_id_or_member_epoch),
            offsets,
            getattr(request, "group_instance_id", None),
        )
    except CoordinatorError as refusal:
        outcome = refusal.error
        errors = {}
    for name, partition in entries:
        errors.setdefault((name, int(partition.partition_index)), outcome)
    topics = _partition_errors(context, "OffsetCommit", request.topics, errors)
    return context.build("OffsetCommitResponse", throttle_time=0, topics=topics)


def _partition_errors(
    context: RequestContext,
    api: str,
    request_topics: Iterable[Any],
    errors: dict[tuple[str, int], KafkaError],
) -> tuple[Any, ...]:
    """`<api>ResponseTopic`s answering each requested partition with its error (NONE when
    it has none)."""
    return tuple(
        context.build(
            f"{api}ResponseTopic",
            name=topic.name,
            partitions=tuple(
                context.build(
                    f"{api}ResponsePartition",
                    partition_index=p.partition_index,
                    error_code=errors.get((topic.name, int(p.partition_index)), KafkaError.none),
                )
                for p in topic.partitions
            ),
        )
        for topic in request_topics
    )


def _check_group_and_partitions(group_id: str | None, partitions: int) -> None:
    _check_group_id(group_id)
    if partitions > MAX_PARTITIONS_PER_COMMIT:
        raise CoordinatorError(
            KafkaError.invalid_request,
            f"{partitions} partitions in one request; the limit is {MAX_PARTITIONS_PER_COMMIT}",
        )


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


# -- OffsetFetch -------------------------------------------------------------------------------


async def handle_offset_fetch(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    if context.version >= 8:
        if len(request.groups) > MAX_KEYS_PER_REQUEST:
            return context.build(
                "OffsetFetchResponse",
                throttle_time=0,
                groups=tuple(
                    _fetched_group(context, g.group_id, [], KafkaError.invalid_request)
                    for g in request.groups
                ),
            )
        groups = []
        for group in request.groups:
            wanted = _wanted(group.topics)
            found, error = _fetch_offsets(services, group.group_id, wanted)
            groups.append(_fetched_group(context, group.group_id, _topics(context, found), error))
        return context.build("OffsetFetchResponse", throttle_time=0, groups=tuple(groups))
    wanted = _wanted(request.topics)
    found, error = _fetch_offsets(services, request.group_id, wanted)
    if error is not KafkaError.none and context.version < 2:
        # v1 has no top-level error: every requested partition carries it
        found = {key: (None, error) for key in (wanted or [])}
    return context.build(
        "OffsetFetchResponse",
        throttle_time=0,
        topics=_topics(context, found, top_level=True),
        error_code=error,
    )


def _wanted(topics: Any) -> list[tuple[str, int]] | None:
    if topics is None:
        return None
    return [(t.name, int(p)) for t in topics for p in t.partition_indexes]


Found = dict[tuple[str, int], tuple[CommittedOffset | None, KafkaError]]


def _fetch_offsets(
    services: BrokerServices, group_id: str, wanted: list[tuple[str, int]] | None
) -> tuple[Found, KafkaError]:
    try:
        _check_group_id(group_id)
        committed = _coordinator(services).committed_offsets(group_id, wanted)
    except CoordinatorError as refusal:
        return {}, refusal.error
    keys: Iterable[tuple[str, int]] = sorted(committed) if wanted is None else wanted
    return {key: (committed.get(key), KafkaError.none) for key in keys}, KafkaError.none


def _topics(context: RequestContext, found: Found, top_level: bool = False) -> tuple[Any, ...]:
    suffix = "" if top_level else "s"
    by_topic: dict[str, list[Any]] = {}
    for (topic, partition), (committed, error) in found.items():
        by_topic.setdefault(topic, []).append(
            context.build(
                f"OffsetFetchResponsePartition{suffix}",
                partition_index=partition,
                committed_offset=NO_OFFSET if committed is None else committed.offset,
                committed_leader_epoch=NO_LEADER_EPOCH
                if committed is None
                else committed.leader_epoch,
                metadata="" if committed is None else committed.metadata,
                error_code=error,
            )
        )
    return tuple(
        context.build(f"OffsetFetchResponseTopic{suffix}", name=name, partitions=tuple(partitions))
        for name, partitions in by_topic.items()
    )


def _fetched_group(
    context: RequestContext, group_id: str, topics: tuple[Any, ...] | list[Any], error: KafkaError
) -> Any:
    return context.build(
        "OffsetFetchResponseGroup", group_id=group_id, topics=tuple(topics), error_code=error
    )


# -- DeleteGroups ------------------------------------------------------------------------------


async def handle_delete_groups(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    names = list(request.groups_names)
    results = []
    for group_id in names:
        try:
            _check_group_id(group_id)
            if len(names) > MAX_KEYS_PER_REQUEST:
                raise CoordinatorError(KafkaError.invalid_request, "too many groups")
            error = await _coordinator(services).delete_group(group_id)
        except CoordinatorError as refusal:
            error = refusal.error
        results.append(context.build("DeletableGroupResult", group_id=group_id, error_code=error))
    return context.build("DeleteGroupsResponse", throttle_time=0, results=tuple(results))


# -- OffsetDelete ------------------------------------------------------------------------------


async def handle_offset_delete(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    """KIP-496 (kafka-consumer-groups --delete-offsets): a group error for the whole request
    (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, NOT_COORDINATOR, ...) or one per partition (as
    Kafka, UNKNOWN_TOPIC_OR_PARTITION for a partition the cluster does not have)."""
    image = services.image()
    requested = [
        (topic.name, int(p.partition_index)) for topic in request.topics for p in topic.partitions
    ]
    unknown = {
        (name, partition): KafkaError.unknown_topic_or_partition
        for name, partition in requested
        if (topic := image.topic(name)) is None or partition not in topic.partitions
    }
    errors: dict[tuple[str, int], KafkaError] = {}
    try:
        _check_group_and_partitions(request.group_id, len(requested))
        group_error, errors = await _coordinator(services).delete_offsets(
            request.group_id, [p for p in requested if p not in unknown]
        )
        errors = {**errors, **unknown}
    except CoordinatorError as refusal:
        group_error = refusal.error
    answered = request.topics if group_error is KafkaError.none else ()
    topics = _partition_errors(context, "OffsetDelete", answered, errors)
    return context.build(
        "OffsetDeleteResponse", error_code=group_error, throttle_time=0, topics=topics
    )


# -- DescribeGroups, ListGroups ----------------------------------------------------------------


async def handle_describe_groups(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    groups = tuple(_describe(services, context, group_id) for group_id in request.groups)
    return context.build("DescribeGroupsResponse", throttle_time=0, groups=groups)


def _describe(services: BrokerServices, context: RequestContext, group_id: str) -> Any:
    def answer(error: KafkaError, message: str | None, state: str, **values: Any) -> Any:
        return context.build(
            "DescribedGroup",
            error_code=error,
            error_message=message,
            group_id=group_id,
            group_state=state,
            protocol_type=values.get("protocol_type", ""),
            protocol_data=values.get("protocol_data", ""),
            members=values.get("members", ()),
            authorized_operations=AUTHORIZED_OPERATIONS_OMITTED,
        )

    try:
        _check_group_id(group_id)
        group = _coordinator(services).describe(group_id)
    except CoordinatorError as refusal:
        return answer(refusal.error, refusal.message, "")
    if group is None or group.state is GroupState.DEAD:
        if context.version >= 6:  # KIP-1043: an unknown group is an error from v6
            return answer(
                KafkaError.group_id_not_found, f"group {group_id!r} does not exist", "Dead"
            )
        return answer(KafkaError.none, None, "Dead")
    stable = group.state is GroupState.STABLE and group.protocol_name is not None
    members = tuple(
        context.build(
            "DescribedGroupMember",
            member_id=m.member_id,
            group_instance_id=m.group_instance_id,
            client_id=m.client_id,
            client_host=m.client_host,
            member_metadata=m.metadata(group.protocol_name)
            if stable and group.protocol_name
            else b"",
            member_assignment=m.assignment if stable else b"",
        )
        for m in group.members.values()
    )
    return answer(
        KafkaError.none,
        None,
        group.state.value,
        protocol_type=group.protocol_type or "",
        protocol_data=(group.protocol_name or "") if stable else "",
        members=members,
    )


async def handle_list_groups(
    services: BrokerServices, context: RequestContext, request: Any
) -> Any:
    states = {s.lower() for s in getattr(request, "states_filter", ())}
    types = {t.lower() for t in getattr(request, "types_filter", ())}
    try:
        coordinator = _coordinator(services)
    except CoordinatorError as refusal:
        return context.build(
            "ListGroupsResponse", throttle_time=0, error_code=refusal.error, groups=()
        )
    groups = tuple(
        context.build(
            "ListedGroup",
            group_id=overview.group_id,
            protocol_type=overview.protocol_type,
            group_state=overview.state,
            group_type=GROUP_TYPE_CLASSIC,
        )
        for overview in sorted(coordinator.list_groups(), key=lambda o: o.group_id)
        if (not states or overview.state.lower() in states)
        and (not types or GROUP_TYPE_CLASSIC in types)
    )
    error = KafkaError.coordinator_load_in_progress if coordinator.loading else KafkaError.none
    return context.build("ListGroupsResponse", throttle_time=0, error_code=error, groups=groups)
