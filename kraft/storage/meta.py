"""Kafka-style storage formatting (SPEC §1): `kraft storage random-uuid` and
`kraft storage format` write meta.properties into each data directory once; every start
checks it, so a node never runs on unformatted storage, on another cluster's storage or
under another node's id.

meta.properties is a Java properties file as Kafka writes it (version=1, cluster.id, node.id,
directory.id) plus our `kraft.initial.voter` flag: whether this node was formatted as one
of the initial voters of the metadata quorum.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kraft.storage.durable_files import write_file_atomically
from kraft.storage.errors import StorageError

__all__ = [
    "MetaProperties",
    "StorageError",
    "check_storage",
    "format_storage",
    "random_cluster_id",
    "validate_cluster_id",
]

META_PROPERTIES_FILE_NAME = "meta.properties"
META_PROPERTIES_VERSION = 1
CLUSTER_ID_LENGTH_CHARACTERS = 22
UUID_SIZE_BYTES = 16
FORMAT_COMMAND_HINT = "kraft storage format --config FILE --cluster-id ID"
_URL_SAFE_BASE64 = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class MetaProperties:
    """What the formatted directories of one node agree on, and each one's directory.id."""

    cluster_id: str
    node_id: int
    directories: tuple[Path, ...]  # in the order they were checked (the configured order)
    directory_ids: tuple[str, ...]  # directory_ids[i] is the directory.id of directories[i]
    initial_voter: bool


def random_cluster_id() -> str:
    """22 characters of URL-safe base64 of a random UUID, without padding, as Kafka's
    Uuid.randomUuid().toString(); like Kafka, never one starting with '-' (it would read as
    a command-line flag)."""
    while True:
        text = _encode_uuid(uuid.uuid4())
        if not text.startswith("-"):
            return text


def _encode_uuid(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).rstrip(b"=").decode("ascii")


def validate_cluster_id(cluster_id: str) -> None:
    """Raises StorageError unless `cluster_id` is a 22-character URL-safe base64 UUID."""
    rule = f"expected {CLUSTER_ID_LENGTH_CHARACTERS} characters of URL-safe base64, as "
    rule += "`kraft storage random-uuid` prints"
    if len(cluster_id) != CLUSTER_ID_LENGTH_CHARACTERS or not _URL_SAFE_BASE64.match(cluster_id):
        raise StorageError(f"cluster id {cluster_id!r} is not valid: {rule}")
    try:
        decoded = base64.urlsafe_b64decode(cluster_id + "==")
    except (binascii.Error, ValueError) as error:
        raise StorageError(f"cluster id {cluster_id!r} is not valid: {rule}") from error
    if len(decoded) != UUID_SIZE_BYTES or _encode_uuid(uuid.UUID(bytes=decoded)) != cluster_id:
        raise StorageError(f"cluster id {cluster_id!r} is not valid: {rule}")


def format_storage(
    dirs: list[Path],
    cluster_id: str,
    node_id: int,
    *,
    initial_voters: bool = True,
    ignore_formatted: bool = False,
) -> None:
    """Writes meta.properties into each directory (created if missing). Checks everything
    first, so a refused format changes nothing. An already formatted directory is an error,
    unless ignore_formatted is set and it belongs to the same cluster and node."""
    validate_cluster_id(cluster_id)
    if node_id < 0:
        raise StorageError(f"node id {node_id} is not valid: it must be 0 or more")
    if not dirs:
        raise StorageError("no log directory to format")
    to_format: list[Path] = []
    for directory in dirs:
        existing = _read_meta_properties(directory)
        if existing is None:
            to_format.append(directory)
            continue
        _check_reformat(directory, existing, cluster_id, node_id, ignore_formatted)
    for directory in to_format:
        directory.mkdir(parents=True, exist_ok=True)
        write_file_atomically(
            directory / META_PROPERTIES_FILE_NAME,
            _render_properties(cluster_id, node_id, random_cluster_id(), initial_voters),
        )


def _check_reformat(
    directory: Path,
    existing: dict[str, str],
    cluster_id: str,
    node_id: int,
    ignore_formatted: bool,
) -> None:
    existing_cluster_id = existing.get("cluster.id")
    existing_node_id = existing.get("node.id")
    if not ignore_formatted:
        raise StorageError(
            f"log directory {directory} is already formatted (cluster.id "
            f"{existing_cluster_id}, node.id {existing_node_id}); use --ignore-formatted "
            "to skip formatted directories"
        )
    if existing_cluster_id != cluster_id:
        raise StorageError(
            f"log directory {directory} is formatted for cluster {existing_cluster_id}, "
            f"not {cluster_id}"
        )
    if existing_node_id != str(node_id):
        raise StorageError(
            f"log directory {directory} is formatted for node.id {existing_node_id}, not {node_id}"
        )


def check_storage(dirs: list[Path], node_id: int) -> MetaProperties:
    """Startup check: every directory formatted, for one cluster, for this node."""
    if not dirs:
        raise StorageError("no log directory configured")
    first_directory: Path | None = None
    cluster_id = ""
    initial_voter = False
    directory_ids: list[str] = []
    for directory in dirs:
        properties = _read_meta_properties(directory)
        if properties is None:
            raise StorageError(
                f"log directory {directory} is not formatted: run `{FORMAT_COMMAND_HINT}`"
            )
        checked = _checked_properties(directory, properties, node_id)
        if first_directory is None:
            first_directory, cluster_id, initial_voter = directory, checked[0], checked[2]
        elif checked[0] != cluster_id:
            raise StorageError(
                f"log directories disagree on the cluster id: {first_directory} has "
                f"{cluster_id}, {directory} has {checked[0]}"
            )
        if checked[1] in directory_ids:
            raise StorageError(f"log directory {directory} repeats directory.id {checked[1]}")
        directory_ids.append(checked[1])
        # Formatted together, the directories agree; if not, the safe reading is "not an
        # initial voter" (it then joins as an observer rather than vote with lost state).
        initial_voter = initial_voter and checked[2]
    return MetaProperties(cluster_id, node_id, tuple(dirs), tuple(directory_ids), initial_voter)


def _checked_properties(
    directory: Path, properties: dict[str, str], node_id: int
) -> tuple[str, str, bool]:
    """(cluster.id, directory.id, kraft.initial.voter) of one directory, all checked."""
    path = directory / META_PROPERTIES_FILE_NAME
    version = properties.get("version")
    if version != str(META_PROPERTIES_VERSION):
        raise StorageError(f"{path} has version {version}, expected {META_PROPERTIES_VERSION}")
    cluster_id = properties.get("cluster.id", "")
    try:
        validate_cluster_id(cluster_id)
    except StorageError as error:
        raise StorageError(f"{path}: {error}") from error
    stored_node_id = properties.get("node.id")
    if stored_node_id != str(node_id):
        raise StorageError(
            f"node.id {stored_node_id} in {path} does not match node.id {node_id} of the "
            "configuration"
        )
    directory_id = properties.get("directory.id")
    if not directory_id:
        raise StorageError(f"{path} has no directory.id")
    initial_voter = properties.get("kraft.initial.voter", "false")
    if initial_voter not in ("true", "false"):
        raise StorageError(f"{path} has kraft.initial.voter={initial_voter}, expected true|false")
    return cluster_id, directory_id, initial_voter == "true"


def _render_properties(
    cluster_id: str, node_id: int, directory_id: str, initial_voter: bool
) -> bytes:
    timestamp = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime())
    lines = [
        "#",
        f"#{timestamp}",
        f"cluster.id={cluster_id}",
        f"directory.id={directory_id}",
        f"node.id={node_id}",
        f"version={META_PROPERTIES_VERSION}",
        f"kraft.initial.voter={'true' if initial_voter else 'false'}",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _read_meta_properties(directory: Path) -> dict[str, str] | None:
    """The key=value pairs of meta.properties, or None when the file is absent."""
    path = directory / META_PROPERTIES_FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise StorageError(f"cannot read {path}: {error}") from error
    properties: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            continue
        key, separator, value = stripped.partition("=")
        if not separator:
            raise StorageError(f"{path} has a line without '=': {stripped!r}")
        properties[key.strip()] = value.strip()
    return properties
