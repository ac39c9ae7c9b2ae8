"""Settings for the whole test suite.

Hypothesis runs derandomized by default: the same examples on every run, so a property test
cannot pass on one run and fail on the next (a random search once found a codec edge case
in CI that no earlier run had met). Explore with fresh random examples on demand:
`HYPOTHESIS_PROFILE=explore scripts/test tests/unit`; a failure it finds becomes an
`@example` of the test.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
