"""The `cascade` command line: one module per command group, and what they share (options, how a
failure is reported, progress). Sync at the edge; async work runs through anyio.run."""
