"""The Kafka APIs this broker serves and their version ranges, as ApiVersions advertises them.

Ranges start at the oldest version kio (and Kafka 4) still define and end where each
handler's behaviour is complete; kafka-python and librdkafka pick the highest version both
sides support. Any API key or version outside this table is refused as Kafka refuses it: the
connection is closed (only ApiVersions answers an unsupported version, with v0).
"""

from __future__ import annotations

import enum


class ApiKey(enum.IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    INIT_PRODUCER_ID = 22
    OFFSET_FOR_LEADER_EPOCH = 23
    DESCRIBE_CONFIGS = 32
    ALTER_CONFIGS = 33
    CREATE_PARTITIONS = 37
    DELETE_GROUPS = 42
    INCREMENTAL_ALTER_CONFIGS = 44
    OFFSET_DELETE = 47
    DESCRIBE_CLUSTER = 60

    @property
    def schema_name(self) -> str:
        """kio's package name for this API (kio.schema.<name>)."""
        return self.name.lower()

    @property
    def message_name(self) -> str:
        """Kafka's name: ListOffsets, CreateTopics, ..."""
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def request_class_name(self) -> str:
        return f"{self.message_name}Request"

    @property
    def response_class_name(self) -> str:
        return f"{self.message_name}Response"


# (min, max) version served, both inclusive.
SUPPORTED_VERSIONS: dict[ApiKey, tuple[int, int]] = {
    ApiKey.PRODUCE: (3, 11),  # 3: record batches v2 only; 12+: transactions v2, topic ids
    ApiKey.FETCH: (4, 16),  # 13+: topic ids; 15+: replica state (consumers send -1)
    ApiKey.LIST_OFFSETS: (1, 8),  # 7: MAX_TIMESTAMP (-3); 8: EARLIEST_LOCAL (-4); 9: tiered
    ApiKey.METADATA: (0, 12),  # 13: top-level error code only
    ApiKey.OFFSET_COMMIT: (2, 9),  # classic groups: v9's member epoch is the generation
    ApiKey.OFFSET_FETCH: (1, 9),  # 8+: several groups; 10: topic ids
    ApiKey.FIND_COORDINATOR: (0, 4),  # 4+: several keys; 6: share groups
    ApiKey.JOIN_GROUP: (0, 9),  # 4+: MEMBER_ID_REQUIRED first (KIP-394)
    ApiKey.HEARTBEAT: (0, 4),
    ApiKey.LEAVE_GROUP: (0, 5),  # 3+: several members
    ApiKey.SYNC_GROUP: (0, 5),
    ApiKey.DESCRIBE_GROUPS: (0, 6),  # 6: GROUP_ID_NOT_FOUND for an unknown group
    ApiKey.LIST_GROUPS: (0, 5),  # 4+: states filter; 5: types filter
    ApiKey.DELETE_GROUPS: (0, 2),
    ApiKey.API_VERSIONS: (0, 4),
    ApiKey.CREATE_TOPICS: (2, 7),
    ApiKey.DELETE_TOPICS: (1, 6),
    ApiKey.DESCRIBE_CONFIGS: (1, 4),  # v0 is gone from Kafka 4 (and kio)
    ApiKey.ALTER_CONFIGS: (0, 2),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: (2, 4),  # consumers only (KIP-320); 0-1 gone in Kafka 4
    ApiKey.INIT_PRODUCER_ID: (0, 5),  # idempotent only; 6: two-phase commit (KIP-939)
    ApiKey.CREATE_PARTITIONS: (0, 3),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: (0, 1),
    ApiKey.OFFSET_DELETE: (0, 0),  # KIP-496: kafka-consumer-groups --delete-offsets
    ApiKey.DESCRIBE_CLUSTER: (0, 1),  # 2: fenced brokers on request
}


def is_supported(api_key: int, version: int) -> bool:
    try:
        low, high = SUPPORTED_VERSIONS[ApiKey(api_key)]
    except ValueError:
        return False
    return low <= version <= high
