"""The config tests: a bad stack file stops with its message, before any resource."""
