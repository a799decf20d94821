# The versions of the real parts the local system runs. One place: install.sh builds them, and the Go
# wrapper modules (kube/go.mod, etcd/go.mod) must require the same versions (test/ground/versions.test.ts
# checks that they do).
KUBE_VERSION=1.36.3
ETCD_VERSION=3.6.16
HELM_VERSION=3.18.6
ENVOY_VERSION=1.40.0
# The prometheus-operator CRDs (ServiceMonitor, PrometheusRule) the chart's manifests are dry-run against.
PROMETHEUS_OPERATOR_VERSION=0.85.0
