"""Turns configuration into parts: settings (layering and provenance), the registry of evaluators,
sandboxes and sources, assembling an engine, running one issue, and `cascade init`'s starter
config."""
