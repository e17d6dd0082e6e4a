"""Built-in gates. Each evaluator compares the patched workspace with the base commit."""
