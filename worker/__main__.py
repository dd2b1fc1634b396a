"""``python -m worker`` is ``order-worker``."""

from worker.cli import main

raise SystemExit(main())
