"""Assembles the policy pack; the policies themselves live in `maas_policies` (importable, testable)."""

from pulumi_policy import PolicyPack

from maas_policies import PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, policies=POLICIES)
