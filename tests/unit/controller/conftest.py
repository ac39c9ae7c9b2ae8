from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.controller.harness import ControllerHarness


@pytest.fixture
def harness() -> Iterator[ControllerHarness]:
    """A controller whose records, after every test, must replay to its working image."""
    harness = ControllerHarness()
    yield harness
    assert harness.replayed() == harness.image, "replaying the records differs"
