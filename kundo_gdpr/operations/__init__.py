"""The operator's view: stage counters the workers keep, and /healthz and /metrics
figures read back from the database (so they cover every worker)."""
