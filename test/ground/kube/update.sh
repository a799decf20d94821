#!/usr/bin/env bash
# Points this wrapper module at KUBE_VERSION from ../versions.sh: requires k8s.io/kubernetes at that
# version and replaces each of its staging modules (the `k8s.io/X => ./staging/src/k8s.io/X` lines of its
# go.mod) with the published `k8s.io/X v0.Y.Z` twin, then tidies. Run after changing KUBE_VERSION.
set -euo pipefail
cd "$(dirname "$0")"
source ../versions.sh
staging=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
{
  sed -n '1,/^module /p' go.mod
  printf '\ngo 1.26.0\n\nrequire k8s.io/kubernetes v%s\n\ntool (\n' "$KUBE_VERSION"
  printf '\tk8s.io/kubernetes/cmd/%s\n' kube-apiserver kube-controller-manager kubectl
  printf ')\n\nreplace (\n'
  grep -oE '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$staging" | awk -v v="v0.${KUBE_VERSION#1.}" '{print "\t" $1 " => " $1 " " v}'
  printf ')\n'
} > go.mod.new
mv go.mod.new go.mod
GOTOOLCHAIN=local go mod tidy
