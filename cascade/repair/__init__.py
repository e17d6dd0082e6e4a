"""Repair without a model: mutation operators on the most suspicious statements, validated by the
proving tests (`repair/mutate`)."""
