"""Operating the fleet: the ``order-worker`` command line, status and health, dead
letters, logs and metrics."""
