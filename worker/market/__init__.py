"""Market data in the worker: bars built from the trade feed."""
