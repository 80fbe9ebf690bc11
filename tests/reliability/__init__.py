"""Reliability and scale: bad inputs, properties, numerics, compile/export, serialization,
distributed training (issue 7)."""
