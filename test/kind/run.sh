#!/usr/bin/env bash
# Runs Keystile's end-to-end suite on a kind cluster, for users with Docker (it cannot run where there is
# no Docker engine, like the machine the suite is usually run on: there the local control plane stands in).
#
#   bash test/kind/run.sh                              # every e2e suite
#   bash test/kind/run.sh test/e2e/inject.test.ts      # some of them (arguments go to vitest)
#
# Steps: create the cluster (or reuse it), build the operator and enforcer images and `kind load` them,
# `helm upgrade --install` the chart with them (waiting for the operator: kind has kubelets), `helm test`,
# then the e2e suite with KUBECONFIG pointing at kind. The suite's global setup sees a KUBECONFIG that is
# not the local control plane's and uses that cluster; Envoy, Redis and Prometheus still run on the host,
# under a state directory and ports of their own so a running local system is left alone.
#
# The chart goes to keystile-system as release `keystile`: its operator and the one the suite runs out
# of cluster (as the same ServiceAccount name, with the same Lease) elect one leader between them.
#
# Environment: KEYSTILE_KIND_CLUSTER (default keystile), KEYSTILE_KIND_NODE_IMAGE (a kindest/node image;
# default: kind's own), KEYSTILE_IMAGE_TAG (default: package.json's version), KEYSTILE_KIND_DELETE=1
# (delete the cluster at the end; by default it stays for the next run).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

cluster=${KEYSTILE_KIND_CLUSTER:-keystile}
state="$root/.keystile/kind"
kubeconfig="$state/kind.kubeconfig"
tag=${KEYSTILE_IMAGE_TAG:-$(node -p "require('./package.json').version")}
operator_image=ghcr.io/keystile/operator
enforcer_image=ghcr.io/keystile/enforcer
namespace=keystile-system

log() { printf '[kind] %s\n' "$*" >&2; }
die() { printf '[kind] error: %s\n' "$*" >&2; exit 1; }
for tool in docker kind node; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH (this script is for machines with Docker, kind and Node.js)"
done
docker info >/dev/null 2>&1 || die "no Docker engine answers (docker info failed)"
[ -n "$tag" ] || die "no version in package.json"

# The npm dependencies, and the host's parts of the suite (Envoy, Redis, Prometheus, kubectl and helm
# built for the version the suite pins): the same bootstrap as npm test.
bash test/ground/bootstrap.sh
eval "$(bash test/ground/install.sh paths | sed -n "s/^HELM=\(.*\)$/HELM='\1'/p")"
[ -x "${HELM:-}" ] || die "helm was not built (bash test/ground/install.sh helm)"
export PATH="$root/node_modules/.bin:$PATH"

mkdir -p "$state"
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "reusing the kind cluster $cluster"
  kind export kubeconfig --name "$cluster" --kubeconfig "$kubeconfig"
else
  log "creating the kind cluster $cluster"
  kind create cluster --name "$cluster" --config test/kind/kind-config.yaml --kubeconfig "$kubeconfig" \
    ${KEYSTILE_KIND_NODE_IMAGE:+--image "$KEYSTILE_KIND_NODE_IMAGE"} --wait 120s
fi
cleanup() {
  if [ "${KEYSTILE_KIND_DELETE:-}" = 1 ]; then
    kind delete cluster --name "$cluster"
  else
    log "the cluster stays: kind delete cluster --name $cluster (or KEYSTILE_KIND_DELETE=1)"
  fi
}
trap cleanup EXIT

log "building $operator_image:$tag and $enforcer_image:$tag (docs/images.md)"
docker build -f operator/Dockerfile --build-arg VERSION="$tag" -t "$operator_image:$tag" .
docker build -f enforcer/Dockerfile --build-arg VERSION="$tag" -t "$enforcer_image:$tag" .
kind load docker-image --name "$cluster" "$operator_image:$tag" "$enforcer_image:$tag"

log "installing the chart (charts/keystile) into $namespace"
"$HELM" upgrade --install keystile charts/keystile --kubeconfig "$kubeconfig" \
  --namespace "$namespace" --create-namespace \
  --set operator.image.repository="$operator_image" \
  --set operator.image.tag="$tag" \
  --set operator.image.pullPolicy=Never \
  --set gateway.enforcer.image.repository="$enforcer_image" \
  --set gateway.enforcer.image.tag="$tag" \
  --set gateway.enforcer.image.pullPolicy=Never \
  --set tests.image.repository="$operator_image" \
  --set tests.image.tag="$tag" \
  --set tests.image.pullPolicy=Never \
  --wait --timeout 5m
"$HELM" test keystile --kubeconfig "$kubeconfig" --namespace "$namespace" --timeout 2m

log "running the e2e suite on kind"
KUBECONFIG="$kubeconfig" KEYSTILE_STATE_DIR="$state/ground" KEYSTILE_PORT_BASE="${KEYSTILE_PORT_BASE:-27000}" \
  "$root/node_modules/.bin/vitest" run --project e2e "$@"
