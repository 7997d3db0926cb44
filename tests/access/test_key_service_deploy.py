"""The key service as the program deploys it (components/access/self_service.py): on OIDC
stacks only; its rights (Secrets in Authorino's namespace, and of those only its own to
write); its doors; the identity Authorino hands it; its code rolled by digest; and the tier
of a key following the key's label."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from components.access import realm, self_service, tiers
from components.access.key_service import portal, server
from components.cluster.rollout import content_digest
from components.flavour.choice import choose
from components.names import GATEWAY_NAME, KEY_SERVICE_LABELS, KEYCLOAK_NAMESPACE, MODEL_HEADER
from components.pins import upstream, versions
from components.platform import kuadrant, monitoring
from components.serving import gateway, model_list
from harness.program import Evaluation, stack_config, typed_config
from maas_policies import network, objects
from tests.support import authorino, cel
from tests.support.configs import evaluate_variant
from tests.support.policy_runner import added, assert_only, edited, violations

KEY_SERVICE = "key-service"


def test_the_key_service_runs_on_oidc_stacks_only(stack: Evaluation) -> None:
    config = typed_config(stack.stack)
    deployments = [d for d in stack.objects("Deployment") if d.object_name == KEY_SERVICE]
    assert config.key_service_on == config.auth.oidc.enabled
    assert len(deployments) == (1 if config.auth.oidc.enabled else 0)


def test_two_restricted_replicas_of_the_pinned_image_with_probes_limits_and_a_budget(
    oidc_stack: Evaluation,
) -> None:
    deployment = oidc_stack.one("Deployment", KEY_SERVICE).inputs
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == versions.PYTHON_IMAGE
    assert "@sha256:" in container["image"]
    assert container["command"] == ["python3", "/app/server.py"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert set(container["resources"]) == {"requests", "limits"}
    assert pod["serviceAccountName"] == KEY_SERVICE
    budget = oidc_stack.one("PodDisruptionBudget", KEY_SERVICE).inputs["spec"]
    assert budget == {"maxUnavailable": 1, "selector": {"matchLabels": KEY_SERVICE_LABELS}}


def test_the_environment_is_what_server_py_reads(oidc_stack: Evaluation) -> None:
    """Every variable the program sets is one server.py's Config.from_env reads (or Python's),
    and the tiers' key caps and lifetimes are the config's."""
    container = oidc_stack.one("Deployment", KEY_SERVICE).inputs["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    source = (self_service.CODE_DIR / self_service.ENTRYPOINT).read_text()
    for name in env:
        assert name == "PYTHONDONTWRITEBYTECODE" or f'"{name}"' in source, name
    config = typed_config(oidc_stack.stack)
    assert json.loads(env["KEY_TIERS"]) == {
        t.name: {"maxKeys": t.keys.max_keys, "maxLifetimeDays": t.keys.max_lifetime_days}
        for t in config.tiers
    }
    assert env["KEYS_NAMESPACE"] == config.namespaces.kuadrant
    assert env["SWEEP_INTERVAL_SECONDS"] == "30"
    assert env["TIER_SYNC_INTERVAL_SECONDS"] == "60"
    secret_mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["client"]
    assert env["KEYCLOAK_CLIENT_SECRET_FILE"] == f"{secret_mount}/secret"


def test_usage_reads_limitador_of_the_tier_limits_and_the_stacks_prometheus(oidc_stack: Evaluation) -> None:
    """`GET /v1/usage` is configured: Limitador's HTTP API (the Service the operator makes for
    the Limitador CR Kuadrant patches), the Limitador namespace Kuadrant files the tier limits
    under (the policy route's), and the query URL of the stack's Prometheus (OpenShift's:
    test_on_openshift_usage_asks_the_tenancy_port_as_its_own_account)."""
    container = oidc_stack.one("Deployment", KEY_SERVICE).inputs["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    config = typed_config(oidc_stack.stack)
    (limitador,) = oidc_stack.objects("Limitador")
    cr_name = limitador.inputs["metadata"]["name"]
    assert cr_name == kuadrant.LIMITADOR_NAME
    # Kuadrant/limitador-operator@7472d1c pkg/limitador/k8s_objects.go: Service limitador-<CR>.
    assert f"limitador-{cr_name}" == upstream.LIMITADOR_SERVICE
    assert env["LIMITADOR_URL"] == (
        f"http://{upstream.LIMITADOR_SERVICE}.{config.namespaces.kuadrant}.svc:"
        f"{upstream.LIMITADOR_PODS.ports['http']}"
    )
    (policy_route,) = [r for r in oidc_stack.objects("HTTPRoute") if r.object_name == model_list.POLICY_ROUTE]
    (rate_limits,) = [
        p
        for p in oidc_stack.objects("RateLimitPolicy")
        if p.inputs["spec"]["targetRef"]["name"] == policy_route.object_name
    ]
    assert rate_limits.namespace == policy_route.namespace
    assert env["LIMITADOR_NAMESPACE"] == f"{policy_route.namespace}/{policy_route.object_name}"
    assert env["LIMITADOR_NAMESPACE"] == f"{config.namespaces.models}/metered-paths"
    if config.flavour == "openshift":
        return
    assert not {"PROMETHEUS_BEARER_TOKEN_FILE", "PROMETHEUS_CA_FILE"} & set(env)
    assert env["PROMETHEUS_URL"] == monitoring.query_url(config.namespaces.observability)
    assert env["PROMETHEUS_URL"] == (
        f"http://{monitoring.PROMETHEUS_SERVICE}.{config.namespaces.observability}.svc.cluster.local:9090"
    )


def test_on_openshift_usage_asks_the_tenancy_port_as_its_own_account(stack_of: Any) -> None:
    """ocp: the Thanos querier's tenancy port for the rules' namespace, with the pod's own
    token (automounted, as for the API) and the service CA a ConfigMap of its own is filled
    with; a Role there with exactly what kube-rbac-proxy checks; the read series labelled
    with that namespace, which prom-label-proxy puts on every query."""
    stack = stack_of("ocp")
    config = typed_config(stack.stack)
    rules_namespace = config.namespaces.observability
    deployment = stack.one("Deployment", KEY_SERVICE).inputs["spec"]["template"]["spec"]
    (container,) = deployment["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PROMETHEUS_URL"] == (
        f"https://thanos-querier.openshift-monitoring.svc:9092?namespace={rules_namespace}"
    )
    assert env["PROMETHEUS_BEARER_TOKEN_FILE"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    assert deployment.get("automountServiceAccountToken", True) is not False
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["volumes"]}
    assert env["PROMETHEUS_CA_FILE"] == f"{mounts['prometheus-ca']['mountPath']}/service-ca.crt"
    ca_name = volumes["prometheus-ca"]["configMap"]["name"]
    (ca,) = [c for c in stack.objects("ConfigMap") if c.object_name == ca_name]
    assert ca.namespace == config.namespaces.models
    assert ca.inputs["metadata"]["annotations"] == {"service.beta.openshift.io/inject-cabundle": "true"}
    # Filled by the operator: nothing of ours there for it to overwrite.
    assert "data" not in ca.inputs
    roles = [r for r in stack.objects("Role") if r.object_name == self_service.PROMETHEUS_READER]
    (role,) = roles
    assert role.namespace == rules_namespace
    assert role.inputs["rules"] == [
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get"]}
    ]
    (binding,) = [b for b in stack.objects("RoleBinding") if b.object_name == self_service.PROMETHEUS_READER]
    assert binding.namespace == rules_namespace
    assert binding.inputs["roleRef"]["name"] == role.object_name
    assert binding.inputs["subjects"] == [
        {"kind": "ServiceAccount", "name": KEY_SERVICE, "namespace": config.namespaces.models}
    ]
    assert not [
        b for b in stack.objects("ClusterRoleBinding") if KEY_SERVICE in json.dumps(b.inputs["subjects"])
    ]
    (rules,) = [r for r in stack.objects("PrometheusRule") if r.object_name == "maas-usage"]
    assert rules.namespace == rules_namespace
    recorded = {r["record"]: r for g in rules.inputs["spec"]["groups"] for r in g["rules"] if "record" in r}
    for name in (server.REQUESTS_RULE, server.TOKENS_RULE, server.COST_RULE):
        assert recorded[name]["labels"] == {"namespace": rules_namespace}


def test_without_a_prometheus_to_ask_usage_is_left_unconfigured() -> None:
    """No Prometheus (observability off): no PROMETHEUS_URL, so usage answers 503
    usage_not_configured rather than a made-up bill."""
    # One model that does not scale on its queue, and no budget: both need the stack's Prometheus.
    prices = {k: v for k, v in stack_config("dev-oidc")["maas:prices"].items() if k != "budgets"}
    result = evaluate_variant(
        "dev-oidc",
        {
            "maas:observability": {"enabled": False},
            "maas:models": [{"name": "simulator", "host": "simulator", "runtime": "simulator"}],
            "maas:prices": prices,
        },
    )
    assert result.error is None, result.error
    container = result.one("Deployment", KEY_SERVICE).inputs["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"] for e in container["env"]}
    assert "PROMETHEUS_URL" not in env
    assert {"LIMITADOR_URL", "LIMITADOR_NAMESPACE"} <= env


def test_the_portal_client_logs_people_in_with_pkce_back_to_the_page_only(oidc_stack: Evaluation) -> None:
    config = typed_config(oidc_stack.stack)
    spec = oidc_stack.one("KeycloakRealmImport", f"realm-{config.auth.oidc.realm}").inputs["spec"]
    clients = {c["clientId"]: c for c in spec["realm"]["clients"]}
    portal_client = clients[realm.PORTAL_CLIENT]
    assert portal_client["publicClient"] is True
    assert "secret" not in portal_client
    assert portal_client["standardFlowEnabled"] is True
    assert portal_client["directAccessGrantsEnabled"] is False
    assert portal_client["implicitFlowEnabled"] is False
    assert portal_client["serviceAccountsEnabled"] is False
    assert portal_client["attributes"] == {"pkce.code.challenge.method": "S256"}
    # The same groups claim as the CLI's client: the AuthPolicy reads the tier from it.
    assert portal_client["protocolMappers"] == clients[config.auth.oidc.client_id]["protocolMappers"]
    # The OIDC stacks serve HTTPS only: the shared host on 443, and as users reach it (on kind
    # through the port-forward; on OpenShift its Route, the same origin).
    host = f"{config.gateway.api_host}.{config.domain}"
    assert config.gateway.https.only
    reached = choose(config).client(host, "https", gateway.LOCAL_PORT).base_url
    origins = list(dict.fromkeys([f"https://{host}", reached]))
    assert portal_client["redirectUris"] == [f"{origin}/portal/" for origin in origins]
    assert portal_client["webOrigins"] == origins
    assert not any(u.startswith("http:") or "*" in u for u in portal_client["redirectUris"])


def test_the_key_services_authpolicy_takes_the_portals_tokens(oidc_stack: Evaluation) -> None:
    """Authorino v0.26.2 checks neither a token's audience nor its `iss` claim, only its
    signature against the realm's keys (Kuadrant/authorino@v0.26.2
    pkg/evaluators/identity/jwt.go tokenVerifierConfig: SkipClientIDCheck, SkipIssuerCheck;
    NewJwksVerifier): a token of the portal client is taken like the CLI's as long as no rule
    names an audience and the rule reads the keys of the realm the page logs in at."""
    issuer = oidc_stack.outputs["oidcIssuer"]
    keys = f"http://keycloak-service.keycloak.svc.cluster.local:8080/realms/{issuer.rsplit('/', 1)[1]}"
    auth = oidc_stack.one("AuthPolicy", KEY_SERVICE).inputs["spec"]
    jwt_rules = [
        rule["jwt"]
        for section in _every(auth)
        if isinstance(section, dict)
        for rule in section.values()
        if isinstance(rule, dict) and "jwt" in rule
    ]
    assert jwt_rules, auth
    for rule in jwt_rules:
        assert rule == {"jwksUrl": f"{keys}/protocol/openid-connect/certs"}, rule
    page = oidc_stack.one("ConfigMap", KEY_SERVICE).inputs["data"]["page.html"]
    assert f'<meta name="maas-oidc-issuer" content="{issuer}">' in page


def _every(node: Any) -> Any:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _every(value)
    elif isinstance(node, list):
        for value in node:
            yield from _every(value)


def test_the_code_is_every_file_but_the_package_marker_and_its_digest_rolls_the_pods(
    oidc_stack: Evaluation, tmp_path: Path
) -> None:
    config_map = oidc_stack.one("ConfigMap", KEY_SERVICE).inputs
    issuer = oidc_stack.outputs["oidcIssuer"]
    files = self_service.code_files()
    assert "__init__.py" not in files
    # Every file as it is, but the page, which is shipped rendered for the realm's issuer and
    # the portal client: the raw page has empty meta tags and no policy.
    rendered = portal.render(issuer, realm.PORTAL_CLIENT)
    assert config_map["data"] == {**files, "page.html": rendered}
    assert config_map["data"]["page.html"] != files["page.html"]
    assert f'<meta name="maas-oidc-issuer" content="{issuer}">' in rendered
    assert '<meta name="maas-oidc-client-id" content="maas-portal">' in rendered
    template = oidc_stack.one("Deployment", KEY_SERVICE).inputs["spec"]["template"]
    digest = template["metadata"]["annotations"][self_service.CODE_ANNOTATION]
    assert digest == content_digest(config_map["data"])
    assert digest != content_digest(files)
    # A page beside it is shipped too, and an edit of any file, or another issuer, gives
    # another digest.
    (tmp_path / "__init__.py").write_text('"""marker"""\n')
    (tmp_path / "server.py").write_text("print('v1')\n")
    (tmp_path / "page.html").write_text(portal.PAGE.read_text())
    (tmp_path / "__pycache__").mkdir()
    shipped = self_service.shipped_files(issuer, tmp_path)
    assert sorted(shipped) == ["page.html", "server.py"]
    assert shipped["page.html"] == rendered
    before = content_digest(shipped)
    assert content_digest(self_service.shipped_files("https://sso.example/realms/maas", tmp_path)) != before
    (tmp_path / "page.html").write_text(portal.PAGE.read_text().replace("</body>", "<p>v2</p></body>"))
    assert content_digest(self_service.shipped_files(issuer, tmp_path)) != before
    (tmp_path / "server.py").unlink()
    with pytest.raises(FileNotFoundError, match=r"server\.py"):
        self_service.code_files(tmp_path)


def test_its_rights_are_secrets_in_authorinos_namespace_only(oidc_stack: Evaluation) -> None:
    config = typed_config(oidc_stack.stack)
    role = oidc_stack.one("Role", KEY_SERVICE).inputs
    assert role["metadata"]["namespace"] == config.namespaces.kuadrant
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get", "list", "watch", "create", "patch", "delete"],
        }
    ]
    binding = oidc_stack.one("RoleBinding", KEY_SERVICE).inputs
    assert binding["metadata"]["namespace"] == config.namespaces.kuadrant
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": KEY_SERVICE,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": KEY_SERVICE, "namespace": config.namespaces.models}
    ]
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        assert not [o for o in oidc_stack.objects(kind) if KEY_SERVICE in o.object_name]


def _admission(stack: Evaluation) -> tuple[dict[str, Any], dict[str, Any]]:
    (policy,) = [
        p for p in stack.objects("ValidatingAdmissionPolicy") if p.object_name.endswith("writes-own-keys")
    ]
    (binding,) = [
        b
        for b in stack.objects("ValidatingAdmissionPolicyBinding")
        if b.inputs["spec"]["policyName"] == policy.object_name
    ]
    return policy.inputs["spec"], binding.inputs["spec"]


def _allowed(
    stack: Evaluation, user: str, operation: str, old: dict[str, Any] | None, new: dict[str, Any] | None
) -> bool:
    """The API server's verdict on a Secret write in Authorino's namespace: the match
    conditions select the request, then every validation must hold (celpy)."""
    spec, binding = _admission(stack)
    namespace = typed_config(stack.stack).namespaces.kuadrant
    assert binding["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": namespace
    }
    assert binding["validationActions"] == ["Deny"]
    (rule,) = spec["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["secrets"]
    assert operation in rule["operations"]
    values = {
        "request": {"operation": operation, "userInfo": {"username": user}},
        "object": new,
        "oldObject": old,
    }
    if not all(cel.evaluate(c["expression"], values) for c in spec["matchConditions"]):
        return True
    return all(bool(cel.evaluate(v["expression"], values)) for v in spec["validations"])


def _secret(labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": labels}}


def test_admission_lets_the_service_write_only_the_secrets_it_minted(stack_of: Any) -> None:
    stack = stack_of("dev-oidc")
    me = self_service.service_account_user(typed_config("dev-oidc").namespaces.models)
    ours = _secret({"maas-platform/minted-by": "key-service", "maas-platform/api-key": "true"})
    foreign = _secret({"authorino.kuadrant.io/managed-by": "authorino", "maas-platform/api-key": "true"})
    bare: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    assert _allowed(stack, me, "CREATE", None, ours)
    assert _allowed(stack, me, "UPDATE", ours, copy.deepcopy(ours))
    assert _allowed(stack, me, "DELETE", ours, None)
    assert not _allowed(stack, me, "CREATE", None, foreign)
    assert not _allowed(stack, me, "CREATE", None, bare)
    assert not _allowed(stack, me, "DELETE", foreign, None)
    assert not _allowed(stack, me, "DELETE", bare, None)
    # adopting a Secret by labelling it, or giving one of ours away
    assert not _allowed(stack, me, "UPDATE", foreign, ours)
    assert not _allowed(stack, me, "UPDATE", ours, foreign)
    # anyone else is not this policy's business
    assert _allowed(stack, "system:serviceaccount:kuadrant-system:authorino", "DELETE", foreign, None)


def test_only_the_gateway_reaches_it_and_it_reaches_keycloak(oidc_stack: Evaluation) -> None:
    config = typed_config(oidc_stack.stack)
    policies = [p.inputs for p in oidc_stack.objects("NetworkPolicy")]
    namespaces = {
        str(n.inputs["metadata"]["name"]): dict(n.inputs["metadata"].get("labels") or {})
        for n in oidc_stack.objects("Namespace")
    }
    models = config.namespaces.models
    service = network.Endpoint(
        "key service", "10.244.1.5", models, KEY_SERVICE_LABELS, {"http": (8080, "TCP")}
    )
    gateway_pod = network.Endpoint("gateway", "10.244.1.6", models, gateway.POD_LABELS)
    stranger = network.Endpoint("a pod", "10.244.1.7", models, {"app": "x"})
    elsewhere = network.Endpoint("a pod elsewhere", "10.244.2.7", "default", gateway.POD_LABELS)
    assert network.admits(policies, namespaces, gateway_pod, service, 8080)
    for source in (stranger, elsewhere):
        assert not network.admits(policies, namespaces, source, service, 8080), source.name
    port = upstream.KEYCLOAK_SERVER_PODS.ports["http"]
    keycloak = network.Endpoint(
        "keycloak",
        "10.244.3.5",
        KEYCLOAK_NAMESPACE,
        upstream.KEYCLOAK_SERVER_PODS.labels,
        {"http": (port, "TCP")},
    )
    caller = network.Endpoint("key service", "10.244.1.5", models, KEY_SERVICE_LABELS)
    assert network.admits(policies, namespaces, caller, keycloak, port)
    impostor = network.Endpoint("look-alike", "10.244.2.8", "default", KEY_SERVICE_LABELS)
    assert not network.admits(policies, namespaces, impostor, keycloak, port)


def _key_service_auth(stack: Evaluation) -> dict[str, Any]:
    policy = stack.one("AuthPolicy", KEY_SERVICE).inputs
    assert policy["spec"]["targetRef"] == {
        "group": "gateway.networking.k8s.io",
        "kind": "HTTPRoute",
        "name": KEY_SERVICE,
    }
    rules: dict[str, Any] = policy["spec"]["rules"]
    return rules


def _headers(rules: dict[str, Any], identity: dict[str, Any]) -> dict[str, str]:
    """The success headers Authorino returns for a verified `identity` (its overrides applied)."""
    values = cel.activation({"auth": {"identity": identity}})
    return {
        name: str(cel.evaluate_in(header["plain"]["expression"], values))
        for name, header in rules["response"]["success"]["headers"].items()
    }


def _token_identity(rules: dict[str, Any], claims: dict[str, Any]) -> dict[str, Any]:
    overrides = rules["authentication"]["keycloak"]["overrides"]
    claims_cel = cel.activation({"auth": {"identity": claims}})
    added_claims = {
        name: value["value"] if "value" in value else cel.evaluate_in(value["expression"], claims_cel)
        for name, value in overrides.items()
    }
    return {**claims, **added_claims}


def test_a_token_gives_the_service_user_tier_way_in_and_admin(oidc_stack: Evaluation) -> None:
    rules = _key_service_auth(oidc_stack)
    assert rules["authentication"]["keycloak"]["jwt"]["jwksUrl"].endswith(
        "/realms/maas/protocol/openid-connect/certs"
    )
    assert "when" not in rules["authentication"]["keycloak"]
    admin = _token_identity(
        rules, {"preferred_username": "alice", "groups": ["free", "premium", "maas-admins"]}
    )
    assert _headers(rules, admin) == {
        "x-maas-user": "alice",
        "x-maas-tier": "premium",
        "x-maas-via": "token",
        "x-maas-admin": "true",
    }
    user = _token_identity(rules, {"preferred_username": "bob", "groups": ["free"]})
    assert _headers(rules, user)["x-maas-admin"] == "false"
    nobody = _token_identity(rules, {"preferred_username": "carol"})
    assert _headers(rules, nobody) == {
        "x-maas-user": "carol",
        "x-maas-tier": "",
        "x-maas-via": "token",
        "x-maas-admin": "false",
    }


def test_a_key_reads_its_usage_and_nothing_else(oidc_stack: Evaluation) -> None:
    rules = _key_service_auth(oidc_stack)
    secret = {
        "metadata": {
            "labels": {"maas-platform/api-key": "true", "maas-platform/tier": "premium"},
            "annotations": {"secret.kuadrant.io/user-id": "dave"},
        }
    }
    identity = authorino.api_key_identity(rules["authentication"], secret, "/v1/usage")
    assert identity is not None
    assert _headers(rules, identity) == {
        "x-maas-user": "dave",
        "x-maas-tier": "premium",
        "x-maas-via": "key",
        "x-maas-admin": "false",
    }
    for path in ("/v1/api-keys", "/v1/admin/api-keys", "/v1/admin/api-keys/revoke", "/v1/usage/x"):
        assert authorino.api_key_identity(rules["authentication"], secret, path) is None, path


def test_the_gateway_removes_client_copies_of_the_identity_headers() -> None:
    """Authorino's headers are set over a client's (the wasm-shim's Set), and a request no
    policy judged carries none: the Lua filter drops them before anything reads them."""
    config = typed_config("dev-oidc")
    source = gateway.request_filter_source("api.maas.local", config.models, config.domain, config.tiers)
    for name in ("x-maas-user", "x-maas-tier", "x-maas-via", "x-maas-admin"):
        assert name in gateway.GATEWAY_HEADERS
        assert f'["{name}"] = true' in source, name


def test_its_routes_take_no_host_and_no_metered_path(oidc_stack: Evaluation) -> None:
    """On every host like the policy route (a host of their own with a policy would take the
    shared host's requests from the tier policies); the page needs no credential, so it has a
    route of its own without a policy."""
    api = oidc_stack.one("HTTPRoute", KEY_SERVICE).inputs["spec"]
    page = oidc_stack.one("HTTPRoute", f"{KEY_SERVICE}-page").inputs["spec"]
    for spec in (api, page):
        assert "hostnames" not in spec
    paths = [m["path"] for r in api["rules"] for m in r["matches"]]
    assert paths == [{"type": "PathPrefix", "value": p} for p in self_service.API_PATHS]
    assert [m["path"] for r in page["rules"] for m in r["matches"]] == [
        {"type": "PathPrefix", "value": "/portal"}
    ]
    targeted = {p.inputs["spec"]["targetRef"]["name"] for p in oidc_stack.objects("AuthPolicy")}
    assert f"{KEY_SERVICE}-page" not in targeted


def test_a_stack_file_key_is_taken_by_its_tiers_rule_and_a_label_edit_moves_it(stack: Evaluation) -> None:
    """Authorino ignores an annotation edit on a key it holds, but moves a key whose label
    changes between rules (docs/access.md "Self-service keys"): the tier is the label's."""
    config = typed_config(stack.stack)
    if not config.auth.api_keys:
        pytest.skip("no API keys on this stack")
    methods = stack.one("AuthPolicy", "inference-gateway-authpolicy").inputs["spec"]["rules"][
        "authentication"
    ]
    users = {u.name: u.tier for u in config.users}
    for user, tier in users.items():
        secret = stack.one("Secret", f"apikey-{user}").inputs
        identity = authorino.api_key_identity(methods, secret)
        assert identity == {"userid": user, "tier": tier}
        for other in config.tiers:
            moved = copy.deepcopy(secret)
            moved["metadata"]["labels"]["maas-platform/tier"] = other.name
            assert authorino.api_key_identity(methods, moved) == {"userid": user, "tier": other.name}
        annotated = copy.deepcopy(secret)
        annotated["metadata"]["annotations"]["maas-platform/tier"] = "enterprise"
        assert authorino.api_key_identity(methods, annotated) == identity
        unknown = copy.deepcopy(secret)
        unknown["metadata"]["labels"]["maas-platform/tier"] = "gold-plated"
        assert authorino.api_key_identity(methods, unknown) is None
        revoked = copy.deepcopy(secret)
        del revoked["metadata"]["labels"]["maas-platform/api-key"]
        assert authorino.api_key_identity(methods, revoked) is None


def test_server_py_and_the_program_agree_on_the_key_labels() -> None:
    """The service writes what the AuthPolicy's rules select and the admission policy allows."""
    source = (self_service.CODE_DIR / self_service.ENTRYPOINT).read_text()
    for name, value in (
        ("API_KEY_LABEL", tiers.API_KEY_LABEL),
        ("TIER_LABEL", tiers.TIER_LABEL),
        ("USER_ANNOTATION", tiers.USER_ANNOTATION),
        ("MINTED_BY_LABEL", self_service.MINTED_BY_LABEL),
        ("MINTED_BY", self_service.MINTED_BY),
    ):
        assert f'{name} = "{value}"' in source, name


def test_the_keycloak_client_is_confidential_with_a_generated_secret(oidc_stack: Evaluation) -> None:
    spec = oidc_stack.one("KeycloakRealmImport", "realm-maas").inputs["spec"]
    realm = spec["realm"]
    (client,) = [c for c in realm["clients"] if c["clientId"] == "maas-key-service"]
    assert client["publicClient"] is False
    assert client["serviceAccountsEnabled"] is True
    assert client["directAccessGrantsEnabled"] is False
    assert client["standardFlowEnabled"] is False
    placeholder = client["secret"].removeprefix("${").removesuffix("}")
    assert spec["placeholders"][placeholder] == {
        "secret": {"name": "keycloak-key-service-client", "key": "secret"}
    }
    (account,) = [u for u in realm["users"] if u.get("serviceAccountClientId") == "maas-key-service"]
    assert account["clientRoles"] == {"realm-management": ["view-users"]}
    assert "maas-admins" in [g["name"] for g in realm["groups"]]
    for name in ("keycloak-key-service-client", "key-service-keycloak-client"):
        assert oidc_stack.one("Secret", name).is_secret("stringData.secret")


# --- the policy pack -------------------------------------------------------------------


def test_the_pack_refuses_a_key_service_that_writes_more_than_its_secrets(stack_of: Any) -> None:
    stack = stack_of("dev-oidc")
    assert not violations(stack)

    def widen(role: dict[str, Any]) -> None:
        role["rules"].append({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]})

    assert_only(
        violations(stack, edited(stack, "Role", KEY_SERVICE, widen)),
        "key-writers-confined",
        "configmaps",
        "Fix:",
        also="least-privilege",  # no longer confined, it is no reader either
    )

    def update(role: dict[str, Any]) -> None:
        role["rules"][0]["verbs"].append("update")

    assert_only(
        violations(stack, edited(stack, "Role", KEY_SERVICE, update)),
        "key-writers-confined",
        "update",
        also="least-privilege",
    )
    cluster_wide = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "key-service-everywhere"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-writer"},
        "subjects": [{"kind": "ServiceAccount", "name": KEY_SERVICE, "namespace": "llm"}],
    }
    found = violations(stack, [*stack.resources, added(stack, "RoleBinding", cluster_wide)])
    assert_only(found, "key-writers-confined", "ClusterRole secret-writer", also="least-privilege")


def test_the_pack_refuses_a_pod_run_as_the_portals_account(stack_of: Any) -> None:
    stack = stack_of("dev-oidc")

    def as_portal(deployment: dict[str, Any]) -> None:
        deployment["spec"]["template"]["spec"]["serviceAccountName"] = "developer-portal-controller-manager"

    found = violations(stack, edited(stack, "Deployment", "model-list", as_portal))
    assert_only(found, "key-writers-confined", "developer-portal-controller-manager", "Fix:")


def test_the_pack_refuses_keys_without_a_lifetime_outside_dev(stack_of: Any) -> None:
    stack = stack_of("dev-oidc")

    def lasting(deployment: dict[str, Any]) -> None:
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        (variable,) = [e for e in env if e["name"] == "KEY_TIERS"]
        tiers_ = json.loads(variable["value"])
        del tiers_["premium"]["maxLifetimeDays"]
        variable["value"] = json.dumps(tiers_)

    resources = edited(stack, "Deployment", KEY_SERVICE, lasting)
    assert_only(violations(stack, resources), "keys-expire", "premium", "Fix:")
    # a dev stack may keep keys for ever
    assert not violations(stack, resources, **{"keys-expire": {"devStacks": ["dev", "dev-oidc"]}})


def test_mints_and_every_call_are_limited_per_user_on_its_route(oidc_stack: Evaluation) -> None:
    """A RateLimitPolicy on the service's API route counts, per user Authorino resolved, the
    mints (POST /v1/api-keys, nothing else) and every call; its limits sit in a Limitador
    namespace of their own, not the tier limits' that GET /v1/usage reads."""
    policy = oidc_stack.one("RateLimitPolicy", KEY_SERVICE)
    route = oidc_stack.one("HTTPRoute", KEY_SERVICE)
    assert policy.namespace == route.namespace
    spec = policy.inputs["spec"]
    assert spec["targetRef"] == {
        "group": "gateway.networking.k8s.io",
        "kind": "HTTPRoute",
        "name": KEY_SERVICE,
    }
    config = typed_config(oidc_stack.stack).key_service
    mints, calls = spec["limits"][self_service.MINT_LIMIT], spec["limits"][self_service.CALL_LIMIT]
    assert mints["rates"] == [{"limit": r.limit, "window": r.window} for r in config.mints]
    assert calls["rates"] == [{"limit": r.limit, "window": r.window} for r in config.calls]
    assert mints["counters"] == calls["counters"] == [{"expression": tiers.USER_ID}]
    assert "when" not in calls

    def minting(method: str, path: str) -> bool:
        values = cel.activation({"request": {"method": method, "url_path": path}})
        return all(cel.evaluate_in(c["predicate"], values) for c in mints["when"])

    assert minting("POST", "/v1/api-keys")
    for method, path in (
        ("GET", "/v1/api-keys"),
        ("DELETE", "/v1/api-keys/k1"),
        ("POST", "/v1/admin/api-keys/revoke"),
        ("GET", "/v1/usage"),
    ):
        assert not minting(method, path), (method, path)
    container = oidc_stack.one("Deployment", KEY_SERVICE).inputs["spec"]["template"]["spec"]["containers"][0]
    usage = {e["name"]: e["value"] for e in container["env"]}["LIMITADOR_NAMESPACE"]
    assert f"{route.namespace}/{route.object_name}" != usage


def test_the_counted_user_is_the_one_the_service_is_told(oidc_stack: Evaluation) -> None:
    """Authorino hands the limiters `auth.identity.userid` and `.tier` (its success filter,
    as the tier policy does): the user counted is the x-maas-user the service acts for,
    whether a token or a key authenticated the call."""
    rules = _key_service_auth(oidc_stack)
    exposed = rules["response"]["success"]["filters"]["identity"]["json"]["properties"]
    assert exposed == {"userid": {"expression": tiers.USER_ID}, "tier": {"expression": tiers.TIER}}
    secret = {
        "metadata": {
            "labels": {"maas-platform/api-key": "true", "maas-platform/tier": "premium"},
            "annotations": {"secret.kuadrant.io/user-id": "dave"},
        }
    }
    by_key = authorino.api_key_identity(rules["authentication"], secret, "/v1/usage")
    assert by_key is not None
    by_token = _token_identity(rules, {"preferred_username": "alice", "groups": ["free"]})
    for identity in (by_key, by_token):
        values = cel.activation({"auth": {"identity": identity}})
        counted = {name: str(cel.evaluate_in(p["expression"], values)) for name, p in exposed.items()}
        told = _headers(rules, identity)
        assert (counted["userid"], counted["tier"]) == (told["x-maas-user"], told["x-maas-tier"])


def test_the_limits_follow_the_stack_config() -> None:
    result = evaluate_variant(
        "dev-oidc",
        {
            "maas:keyService": {
                "mints": [{"limit": 2, "window": "1m"}, {"limit": 10, "window": "1h"}],
                "calls": {"limit": 30, "window": "10s"},
            }
        },
    )
    assert result.error is None, result.error
    limits = result.one("RateLimitPolicy", KEY_SERVICE).inputs["spec"]["limits"]
    assert limits[self_service.MINT_LIMIT]["rates"] == [
        {"limit": 2, "window": "1m"},
        {"limit": 10, "window": "1h"},
    ]
    assert limits[self_service.CALL_LIMIT]["rates"] == [{"limit": 30, "window": "10s"}]


def test_its_429_passes_the_gateways_refusals_filter(oidc_stack: Evaluation) -> None:
    """A RateLimitPolicy cannot shape its 429 (RateLimitPolicy v1 has no response field; the
    wasm-shim answers "Too Many Requests\\n" with Limitador's headers): the gateway's
    refusals.lua does, on every listener of the Gateway, for every route on them, so the key
    service's 429 is OpenAI-shaped with a Retry-After like a tier limit's
    (tests/serving/test_refusals.py runs the filter)."""
    refusals = gateway.REFUSALS_LUA.read_text()
    (body_filter,) = [
        f
        for f in oidc_stack.objects("EnvoyFilter")
        if any(refusals in text for _, text in objects.string_leaves(f.inputs["spec"]["configPatches"]))
    ]
    assert body_filter.inputs["spec"]["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME}
    ]
    (lua,) = [p for p in body_filter.inputs["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER"]
    assert set(lua["match"]) == {"context", "listener"}
    assert set(lua["match"]["listener"]) == {"filterChain"}, "the filter is on some listeners only"
    listeners = [each["name"] for each in oidc_stack.one("Gateway", GATEWAY_NAME).inputs["spec"]["listeners"]]
    parents = oidc_stack.one("HTTPRoute", KEY_SERVICE).inputs["spec"]["parentRefs"]
    assert {p["name"] for p in parents} == {GATEWAY_NAME}
    assert {p["sectionName"] for p in parents} <= set(listeners)


def test_its_limited_calls_are_never_billed(oidc_stack: Evaluation) -> None:
    """Now that Limitador counts the key service's calls, the TelemetryPolicy on the Gateway
    labels them too; with no model header (the gateway removes a client's on every request,
    and sets one on model requests only) their `model` label is empty, and the billing rules
    read only series with a model."""
    (telemetry,) = oidc_stack.objects("TelemetryPolicy")
    labels = telemetry.inputs["spec"]["metrics"]["default"]["labels"]
    assert MODEL_HEADER in gateway.GATEWAY_HEADERS
    values = cel.activation(
        {"request": {"headers": {}}, "auth": {"identity": {"userid": "alice", "tier": "free"}}}
    )
    assert {name: str(cel.evaluate_in(expression, values)) for name, expression in labels.items()} == {
        "user": "alice",
        "tier": "free",
        "model": "",
    }
    rules = oidc_stack.one("PrometheusRule", "maas-usage").inputs["spec"]
    read = [r.get("expr", "") for g in rules["groups"] for r in g["rules"]]
    billed = [expr for expr in read if "authorized_calls{" in expr or "limited_calls{" in expr]
    assert billed, "no rule reads Limitador's authorized calls"
    assert all('model!=""' in expr for expr in billed), billed
