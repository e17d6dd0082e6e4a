"""The workspace a patch is judged in: the base commit's tree on the host, applying edits, and the
snapshots behind the gate's tamper check."""
