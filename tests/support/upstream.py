"""Facts about upstream components that tests check the program against.

Which Helm release (or CRD bundle) serves each API group: a custom resource must wait for
it on the way up, and is deleted before it on the way down.
"""

from __future__ import annotations

# API group -> the resource names (Helm release name, or ConfigFile name) that install
# its CRDs and run the controller that acts on them.
CRD_OWNERS = {
    "gateway.networking.k8s.io": ("gateway-api-standard", "istiod"),
    "kuadrant.io": ("kuadrant-operator",),
    "extensions.kuadrant.io": ("kuadrant-operator",),
    "limitador.kuadrant.io": ("kuadrant-operator",),
    "serving.kserve.io": ("kserve-crd", "kserve-resources"),
    "cert-manager.io": ("cert-manager",),
    "monitoring.coreos.com": ("monitoring-operator-crds", "monitoring"),
    "security.istio.io": ("istio-base", "istiod"),
    "networking.istio.io": ("istio-base", "istiod"),
    "k8s.keycloak.org": ("keycloak-crds", "keycloak-operator"),
    # Istio routes to InferencePools; the pickers (ours) read them and the objectives.
    "inference.networking.k8s.io": ("inference-extension-crds", "istiod"),
    "llm-d.ai": ("inference-extension-crds",),
    # OpenShift: Sail's Istio comes with the Service Mesh operator; OLM and Routes are the
    # cluster's own.
    "sailoperator.io": ("istio-base",),
    "operator.openshift.io": ("cert-manager",),
    "operators.coreos.com": ("openshift",),
    "route.openshift.io": ("openshift",),
}
