"""Every configuration key is documented and the deployment example is a valid config
(SPEC §2: defaults are documented)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraft.config import KEYS, KeySpec, load_config

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = REPO_ROOT / "deploy" / "server.properties.example"
DOCS = REPO_ROOT / "docs" / "configuration.md"


@pytest.mark.parametrize("spec", KEYS, ids=[spec.name for spec in KEYS])
def test_every_key_is_in_the_docs_and_the_example(spec: KeySpec) -> None:
    name = spec.name
    assert f"`{name}`" in DOCS.read_text(encoding="utf-8")
    assert f"{name}=" in EXAMPLE.read_text(encoding="utf-8")


def test_deployment_example_is_a_valid_node_config() -> None:
    config = load_config(EXAMPLE, environ={})
    assert config.node_id == 1
    assert len(config.voters) == 3
    assert config.advertised_listener("RPC") == ("kraft1.example.internal", 9093)


def test_documented_defaults_match_the_code() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for spec in KEYS:
        if spec.default is not None:
            assert f"| `{spec.name}` | `{spec.default}` |" in docs, spec.name
