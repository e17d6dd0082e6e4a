"""The engine: the loop of one task, and the pure parts it sequences (ladder policy, routing,
budget, prices, history, context, prompt, samples, gate, edits). Imports nothing from the edges."""
