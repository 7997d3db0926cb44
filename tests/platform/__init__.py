"""The base-layer tests: providers, install order, determinism."""
