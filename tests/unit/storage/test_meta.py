"""Kafka-style storage formatting (SPEC §1, kraft.storage.meta)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kraft.storage.errors import StorageError
from kraft.storage.meta import (
    META_PROPERTIES_FILE_NAME,
    check_storage,
    format_storage,
    random_cluster_id,
    validate_cluster_id,
)


def test_random_cluster_id_is_22_characters_of_url_safe_base64() -> None:
    for _ in range(200):
        cluster_id = random_cluster_id()
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
        validate_cluster_id(cluster_id)


@pytest.mark.parametrize("cluster_id", ["", "short", "x" * 23, "MkU3OEVBNTcwNTJENDM2Qk!", "a" * 22])
def test_invalid_cluster_id_is_refused(tmp_path: Path, cluster_id: str) -> None:
    with pytest.raises(StorageError, match="cluster id"):
        format_storage([tmp_path / "data"], cluster_id, 1)
    assert not (tmp_path / "data").exists()


def test_format_then_check_returns_the_properties(tmp_path: Path) -> None:
    directories = [tmp_path / "metadata", tmp_path / "data"]
    cluster_id = random_cluster_id()
    format_storage(directories, cluster_id, 2, initial_voters=False)
    meta = check_storage(directories, 2)
    assert (meta.cluster_id, meta.node_id, meta.initial_voter) == (cluster_id, 2, False)
    assert meta.directories == tuple(directories)
    assert len(set(meta.directory_ids)) == 2
    for directory, directory_id in zip(directories, meta.directory_ids, strict=True):
        text = (directory / META_PROPERTIES_FILE_NAME).read_text()
        assert f"directory.id={directory_id}" in text.splitlines()
    text = (directories[0] / META_PROPERTIES_FILE_NAME).read_text()
    for line in (f"cluster.id={cluster_id}", "node.id=2", "version=1", "kraft.initial.voter=false"):
        assert line in text.splitlines()


def test_second_format_is_refused_naming_the_directory(tmp_path: Path) -> None:
    cluster_id = random_cluster_id()
    format_storage([tmp_path], cluster_id, 1)
    with pytest.raises(StorageError, match=f"{tmp_path} is already formatted"):
        format_storage([tmp_path], cluster_id, 1)


def test_ignore_formatted_skips_same_cluster_and_formats_new_directories(tmp_path: Path) -> None:
    cluster_id = random_cluster_id()
    format_storage([tmp_path / "a"], cluster_id, 1)
    before = (tmp_path / "a" / META_PROPERTIES_FILE_NAME).read_text()
    format_storage([tmp_path / "a", tmp_path / "b"], cluster_id, 1, ignore_formatted=True)
    assert (tmp_path / "a" / META_PROPERTIES_FILE_NAME).read_text() == before
    assert check_storage([tmp_path / "a", tmp_path / "b"], 1).cluster_id == cluster_id


def test_ignore_formatted_still_refuses_another_cluster(tmp_path: Path) -> None:
    format_storage([tmp_path / "a"], random_cluster_id(), 1)
    other_cluster_id = random_cluster_id()
    with pytest.raises(StorageError, match="formatted for cluster"):
        format_storage([tmp_path / "b", tmp_path / "a"], other_cluster_id, 1, ignore_formatted=True)
    assert not (tmp_path / "b").exists(), "a refused format changes nothing"


def test_unformatted_directory_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="is not formatted: run `kraft storage format"):
        check_storage([tmp_path], 1)


def test_wrong_node_id_is_refused_naming_both_values(tmp_path: Path) -> None:
    format_storage([tmp_path], random_cluster_id(), 1)
    with pytest.raises(StorageError, match="node.id 1 .* does not match node.id 3"):
        check_storage([tmp_path], 3)


def test_directories_of_different_clusters_are_refused(tmp_path: Path) -> None:
    format_storage([tmp_path / "a"], random_cluster_id(), 1)
    format_storage([tmp_path / "b"], random_cluster_id(), 1)
    with pytest.raises(StorageError, match="disagree on the cluster id"):
        check_storage([tmp_path / "a", tmp_path / "b"], 1)
