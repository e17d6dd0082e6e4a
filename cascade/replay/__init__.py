"""Batch replay over a backlog: the runner, its ledger and batch folder, backlogs, shards and
merging, shadow ladders, and re-gating recorded patches."""
