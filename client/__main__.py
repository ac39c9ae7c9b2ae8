"""`python -m client ...` is `kraft ...` (the local cluster starts its nodes this way)."""

from client.cli import main

raise SystemExit(main())
