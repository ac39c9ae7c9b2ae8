"""Topic names: Kafka's rule (SPEC §7) and its refusal of names that collide.

A legal name has 1 to 249 characters from [a-zA-Z0-9._-] and is neither "." nor "..". Kafka
also refuses a name that equals an existing one once '.' and '_' are treated alike, since both
map to the same metric names ("a.b" collides with "a_b").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from kraft.controller.errors import InvalidTopicNameError

MAX_TOPIC_NAME_CHARS = 249
_LEGAL_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")


def validate_topic_name(name: str) -> None:
    """Raises InvalidTopicNameError naming the name and the rule it breaks."""
    if not name:
        raise InvalidTopicNameError("topic name is empty; it needs 1 to 249 characters")
    if len(name) > MAX_TOPIC_NAME_CHARS:
        raise InvalidTopicNameError(
            f"topic name {name[:20]!r}... has {len(name)} characters, more than the "
            f"{MAX_TOPIC_NAME_CHARS} allowed"
        )
    if name in (".", ".."):
        raise InvalidTopicNameError(f"topic name {name!r} is not allowed ('.' and '..' are not)")
    if _LEGAL_TOPIC_NAME.fullmatch(name) is None:
        raise InvalidTopicNameError(
            f"topic name {name!r} is illegal: it may contain only ASCII letters, digits, "
            "'.', '_' and '-'"
        )


def collision_key(name: str) -> str:
    """Names with equal keys collide: Kafka treats '.' and '_' alike in metric names."""
    return name.replace(".", "_")


def find_colliding_topic(name: str, existing_names: Iterable[str]) -> str | None:
    """An existing topic, other than `name` itself, that `name` collides with."""
    key = collision_key(name)
    for existing in existing_names:
        if existing != name and collision_key(existing) == key:
            return existing
    return None


def refuse_collision(name: str, colliding: str | None) -> None:
    """Raises InvalidTopicNameError when `colliding` (an existing topic's name) is given."""
    if colliding is not None:
        raise InvalidTopicNameError(
            f"topic name {name!r} collides with existing topic {colliding!r} "
            "('.' and '_' are treated alike)"
        )


def validate_new_topic_name(name: str, existing_names: Iterable[str]) -> None:
    """Kafka's rule plus the collision check; an exact duplicate is the caller's to refuse."""
    validate_topic_name(name)
    refuse_collision(name, find_colliding_topic(name, existing_names))
