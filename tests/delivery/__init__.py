"""The delivery tests (workflows, scripts, the deploy path under recording stand-ins)."""
