"""Names the platform fixes rather than configures: the Gateway every model route attaches to,
the request headers only the gateway sets, the label on every object of ours, and the
namespaces an upstream operator decides."""

# The Gateway every model route attaches to; KServe is told its "<namespace>/<name>".
GATEWAY_NAME = "inference-gateway"
# Request headers only the gateway sets (any a client sends are removed first): the model a
# request is for, which the routes and the model access rules match on (set by the gateway's
# Lua filter, components/serving/lua/request_body.lua), and the caller's tier (set by
# Authorino after authentication, components/access/tiers.py), which picks the model list.
MODEL_HEADER = "x-maas-model"
TIER_HEADER = "x-maas-tier"
PART_OF = {"app.kubernetes.io/part-of": "maas-platform"}
# Request headers only Authorino sets, on the key service's route (components/access/
# self_service.py): who the caller is, how they came in (token or key) and whether they
# administer keys. The key service trusts nothing else (and the gateway removes client copies).
USER_HEADER = "x-maas-user"
VIA_HEADER = "x-maas-via"
ADMIN_HEADER = "x-maas-admin"
# The key service's pods: the Keycloak door admits them (components/platform/keycloak.py).
KEY_SERVICE = "key-service"
KEY_SERVICE_LABELS = {"app.kubernetes.io/name": KEY_SERVICE, **PART_OF}
# Not configurable: the Keycloak operator's manifest binds its ClusterRole to a service
# account in namespace "keycloak".
KEYCLOAK_NAMESPACE = "keycloak"
OPENSHIFT_CERT_MANAGER_NAMESPACE = "cert-manager"
