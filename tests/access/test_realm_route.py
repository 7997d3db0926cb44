"""Browsers reach the user realm on the shared host, through the gateway, so the page's login
completes (issue 29): the realm's frontend URL is the way users reach the gateway, the
gateway sends the realm's pages and nothing else of Keycloak there, and Authorino and the
key service still reach Keycloak in-cluster."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from components.access import realm
from components.flavour.choice import choose
from components.names import GATEWAY_NAME, KEYCLOAK_NAMESPACE
from components.platform import keycloak
from components.serving import gateway
from harness.program import Evaluation, stack_config, typed_config
from tests.support.configs import assert_refused, evaluate_variant

IN_CLUSTER = "http://keycloak-service.keycloak.svc.cluster.local:8080"


def _realm_import(stack: Evaluation) -> dict[str, Any]:
    spec: dict[str, Any] = stack.one("KeycloakRealmImport", "realm-maas").inputs["spec"]["realm"]
    return spec


def _env(stack: Evaluation, name: str) -> dict[str, str]:
    (container,) = stack.one("Deployment", name).inputs["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_the_realm_is_where_users_reach_the_gateway_and_its_tokens_say_so(oidc_stack: Evaluation) -> None:
    """One origin for the page and the realm (no cross-origin call, no mixed content): the
    realm's frontendUrl is the shared host as users reach it (on kind, the port-forward's
    https://api.<domain>:8000; on OpenShift, its Route's https://api.<apps domain>), the page
    sends people there, and its redirect back to the page is one the portal client allows."""
    config = typed_config(oidc_stack.stack)
    host = f"{config.gateway.api_host}.{config.domain}"
    reached = choose(config).client(host, "https", gateway.LOCAL_PORT).base_url
    assert reached == (
        f"https://{host}" if config.flavour == "openshift" else f"https://{host}:{gateway.LOCAL_PORT}"
    )
    imported = _realm_import(oidc_stack)
    assert imported["attributes"]["frontendUrl"] == reached
    issuer = oidc_stack.outputs["oidcIssuer"]
    assert issuer == f"{reached}/realms/{config.auth.oidc.realm}"
    page = oidc_stack.one("ConfigMap", "key-service").inputs["data"]["page.html"]
    assert f'<meta name="maas-oidc-issuer" content="{issuer}">' in page
    (portal,) = [c for c in imported["clients"] if c["clientId"] == realm.PORTAL_CLIENT]
    assert f"{reached}/portal/" in portal["redirectUris"]
    assert reached in portal["webOrigins"]
    # Its login pages are public: repeated failed logins lock the user out for a while.
    assert imported["bruteForceProtected"] is True


def test_keycloak_itself_stays_in_cluster_behind_the_gateways_tls(oidc_stack: Evaluation) -> None:
    """Keycloak's own hostname (the master realm, the admin console) is the in-cluster URL,
    backchannel URLs follow the request, and the scheme comes from the gateway's
    X-Forwarded-Proto (TLS ends there). In-cluster callers use the in-cluster URL: Authorino
    for the realm's keys, the key service and the user sync for tokens and the admin API."""
    spec = oidc_stack.one("Keycloak", keycloak.KEYCLOAK_NAME).inputs["spec"]
    assert spec["hostname"] == {"hostname": IN_CLUSTER, "strict": True, "backchannelDynamic": True}
    assert spec["proxy"] == {"headers": "xforwarded"}
    assert _env(oidc_stack, "key-service")["KEYCLOAK_URL"] == IN_CLUSTER
    assert oidc_stack.outputs["keycloakUrl"] == IN_CLUSTER
    keys = f"{IN_CLUSTER}/realms/maas/protocol/openid-connect/certs"
    for policy in oidc_stack.objects("AuthPolicy"):
        rules = policy.inputs["spec"]["rules"]["authentication"]
        assert rules["keycloak"]["jwt"] == {"jwksUrl": keys}, policy.object_name


def test_the_gateway_sends_the_realms_pages_to_keycloak_and_nothing_else(oidc_stack: Evaluation) -> None:
    """On every listener of the gateway, PathPrefix /realms/<realm> and /resources (the pages'
    static files) to Keycloak's HTTP port; not the master realm, the admin console or the
    admin API. The route lives beside the gateway (it admits routes of its own namespace)
    and its backend in Keycloak's: Gateway API lets that reference through a ReferenceGrant
    in the backend's namespace naming the route's kind and namespace and the Service
    (kubernetes-sigs/gateway-api@v1.5.1 apis/v1beta1/referencegrant_types.go)."""
    route = oidc_stack.one("HTTPRoute", realm.REALM_ROUTE).inputs
    listeners = [
        listener["name"] for listener in oidc_stack.one("Gateway", GATEWAY_NAME).inputs["spec"]["listeners"]
    ]
    assert route["spec"]["parentRefs"] == [{"name": GATEWAY_NAME, "sectionName": name} for name in listeners]
    assert "hostnames" not in route["spec"]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/realms/maas"}},
        {"path": {"type": "PathPrefix", "value": "/resources"}},
    ]
    # Every request through the gateway is the realm's frontend URL to Keycloak, whatever the
    # client or a port-forward sent (components/access/realm.py as_frontend).
    origin = urllib.parse.urlsplit(oidc_stack.outputs["oidcIssuer"])
    assert rule["filters"] == [
        {
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {
                "set": [
                    {"name": "X-Forwarded-Host", "value": origin.netloc},
                    {"name": "X-Forwarded-Proto", "value": origin.scheme},
                ]
            },
        }
    ]
    (backend,) = rule["backendRefs"]
    assert backend == {"name": "keycloak-service", "namespace": KEYCLOAK_NAMESPACE, "port": 8080}
    grants = [
        g.inputs
        for g in oidc_stack.objects("ReferenceGrant")
        if g.inputs["metadata"]["namespace"] == backend["namespace"]
    ]
    route_namespace = route["metadata"]["namespace"]
    assert any(
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": route_namespace}
        in g["spec"]["from"]
        and any(
            t["kind"] == "Service" and t["group"] == "" and t.get("name", backend["name"]) == backend["name"]
            for t in g["spec"]["to"]
        )
        for g in grants
    ), grants
    gateway_namespace = oidc_stack.one("Gateway", GATEWAY_NAME).inputs["metadata"]["namespace"]
    assert route_namespace == gateway_namespace


def test_a_stack_reached_another_way_names_its_realms_origin() -> None:
    """Behind a load balancer and DNS, `maas:auth.oidc.hostname` says where browsers reach
    the realm: the frontend, the issuer and the page follow it; the in-cluster URLs do not."""
    auth = stack_config("gpu")["maas:auth"]
    public = "https://api.example.com"
    # As typed, with or without the trailing slash.
    changed = evaluate_variant(
        "gpu", {"maas:auth": {**auth, "oidc": {**auth["oidc"], "hostname": f"{public}/"}}}
    )
    assert changed.error is None, changed.error
    assert _realm_import(changed)["attributes"]["frontendUrl"] == public
    assert changed.outputs["oidcIssuer"] == f"{public}/realms/maas"
    assert _env(changed, "key-service")["KEYCLOAK_URL"] == IN_CLUSTER


@pytest.mark.parametrize(
    "hostname", ["api.example.com", "https://api.example.com/auth", "https://api.example.com//", "ftp://api"]
)
def test_the_realms_origin_is_an_origin(hostname: str) -> None:
    auth = stack_config("gpu")["maas:auth"]
    message = assert_refused(
        "gpu", {"maas:auth": {**auth, "oidc": {**auth["oidc"], "hostname": hostname}}}, "auth.oidc.hostname"
    )
    assert f"'{hostname}' must be an http(s) origin" in message
