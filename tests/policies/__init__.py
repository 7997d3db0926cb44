"""The policy-pack tests, one module per family of rules in policies/maas_policies/."""
