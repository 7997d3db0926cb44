"""Helpers the tests share: stack variants, the policy pack run in-process, a real Prometheus,
facts about upstream components, and the tools some tests need."""
