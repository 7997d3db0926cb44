"""The access tests (tiers, keys, Keycloak, limit policies)."""
