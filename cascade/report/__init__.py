"""Replay reports: reading batch and run folders, computing the numbers, rendering Markdown and
charts."""
