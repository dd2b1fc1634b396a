"""``python -m worker`` is ``order-worker``."""

from worker.ops.cli import main

raise SystemExit(main())
