from tests.unit.controller.conftest import harness  # noqa: F401  (the shared fixture)
