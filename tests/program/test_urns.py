"""No resource URN changes unnoticed: each stack's URNs against tests/urns/<stack>.txt.

A URN that disappears or changes makes Pulumi replace the live resource in every user's
stack. New resources are fine but must be added to the snapshot (`python -m harness.urns
--write`), so the review shows them; a rename needs `pulumi.Alias` in the code.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.access.realm import Realm
from components.platform.keycloak import Keycloak
from harness.program import Evaluation, stack_names, typed_config
from harness.urns import SNAPSHOTS, urns


def test_every_stack_has_a_snapshot() -> None:
    assert {p.stem for p in SNAPSHOTS.glob("*.txt")} == set(stack_names())


def test_no_urn_disappears_or_changes_and_new_ones_are_snapshotted(stack: Evaluation) -> None:
    """A renamed resource may leave the snapshot only with an alias to its snapshotted URN,
    which is how Pulumi updates the live resource in place instead of replacing it."""
    snapshot = SNAPSHOTS / f"{stack.stack}.txt"
    if not snapshot.is_file():
        pytest.fail(f"no {snapshot.name}: run `python -m harness.urns --write`")
    recorded = set(snapshot.read_text().split())
    declared = {r.urn for r in stack.resources}
    known_as = {alias for r in stack.resources for alias in r.aliases}
    gone = sorted(recorded - declared - known_as)
    assert not gone, (
        "these URNs disappeared or changed; users' stacks would replace the live resources. "
        "Keep the name, or give the renamed resource pulumi.Alias:\n" + "\n".join(gone)
    )
    new = sorted(r.urn for r in stack.resources if r.urn not in recorded and not set(r.aliases) & recorded)
    assert not new, "new resources: add them with `python -m harness.urns --write`:\n" + "\n".join(new)


def test_rewriting_the_snapshots_keeps_the_old_urns_aliases_still_reach(stack_of: Any) -> None:
    """`python -m harness.urns --write` keeps a renamed resource's snapshotted URN, so the
    test above goes on checking that its alias names it."""
    stack = stack_of("dev")
    recorded = set((SNAPSHOTS / "dev.txt").read_text().split())
    aliased = {alias for r in stack.resources for alias in r.aliases} & recorded
    assert aliased, "dev has renamed resources whose old URNs are snapshotted"
    assert aliased <= set(urns("dev"))


# The stacks that ran Keycloak before the realm moved; ocp turned OIDC on after it, so no
# state of it holds the old URNs (its aliases reach nothing, harmlessly).
_OIDC_BEFORE_THE_MOVE = {"dev-oidc", "gpu"}


def test_the_realm_s_resources_keep_the_urns_they_had_as_keycloak_s_children(stack_of: Any) -> None:
    """The realm, its users and their sync moved from Keycloak (components/platform/keycloak.py)
    to components/access/realm.py: each carries `pulumi.Alias(parent=<the Keycloak component>)`,
    which the engine resolves to the URN it had there, so `pulumi up` moves the live resource
    instead of replacing it (a new password, a lost realm)."""
    oidc = [name for name in stack_names() if typed_config(name).auth.oidc.enabled]
    assert oidc, "no stack turns OIDC on"
    for name in oidc:
        stack = stack_of(name)
        recorded = set((SNAPSHOTS / f"{name}.txt").read_text().split())
        [realm] = stack.of_type(Realm.TYPE)
        # The key service's client secret and the realm's route came after the move (issue 29):
        # they have no old URN.
        later = {"keycloak-key-service-client", "keycloak-route", "keycloak-route-grant"}
        moved = [r for r in stack.resources if r.parent == realm.urn and r.name not in later]
        passwords = [f"keycloak-user-{u.name}" for u in typed_config(name).users]
        realm_and_sync = [
            "keycloak-realm",
            "keycloak-user-passwords",
            "keycloak-user-sync",
            "keycloak-user-sync-files",
        ]
        assert sorted(r.name for r in moved) == sorted([*realm_and_sync, *passwords])
        for resource in moved:
            # The URN of a child of the Keycloak component, as the snapshot recorded it.
            old = f"urn:pulumi:{name}::maas-platform::{Keycloak.TYPE}${resource.type}::{resource.name}"
            assert old in resource.aliases, f"{resource.urn}: no alias to {old}, only {resource.aliases}"
            if name in _OIDC_BEFORE_THE_MOVE:
                assert old in recorded, f"{name}.txt lost {old}"
