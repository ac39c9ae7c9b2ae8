"""`pytest tests/scenarios --rewrite` regenerates the expected traces of scenario files."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rewrite",
        action="store_true",
        default=False,
        help="rewrite the expected traces in tests/scenarios/*.txt from the actual ones",
    )
