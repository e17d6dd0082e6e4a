"""Issue sources: where issues come from (Markdown files in the repo; GitHub later)."""
