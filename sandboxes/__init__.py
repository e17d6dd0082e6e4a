"""Built-in sandboxes: docker (the default when an engine answers) and local (unsafe)."""
