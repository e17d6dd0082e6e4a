"""Scripts that measure cascade, and the task suites they run."""
