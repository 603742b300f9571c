#!/usr/bin/env bash
# Builds the real test tier's components from their Go modules (versions: versions.env, the one place
# they are pinned) into a cache directory keyed by a hash of versions.env, and prints that directory on
# stdout. A second run finds the directory complete and builds nothing; a run that stopped half-way
# keeps the binaries it finished and builds only the rest.
#
#   <dir>/bin/     etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok
#                  source-controller kustomize-controller helm-controller flux-operator argocd kustomize
#                  cosign (a test-only peer: the tests verify the signatures ksail writes with it)
#   <dir>/crds/    flux/ flux-operator/ argocd/   (CRDs of exactly these module versions)
#   <dir>/share/   kwok-stages.yaml, flux-operator-data/, install/{flux-operator,argocd}.yaml
#
# Modules whose go.mod has `replace` directives pointing into their own repository (kubernetes' staging
# modules, the Flux controllers' ./api, etcd's ../api, Argo CD's ./gitops-engine) cannot be built with
# `go install pkg@version`; the module source is copied, the local replaces are swapped for the published
# module versions (localize.py), and the copy is built as the main module with its own go.sum.
#
# `build.sh --peers` also builds the reference peers the benchmarks compare ksail with (not needed by the
# tests, not built in CI): bin/flux, the flux CLI of the pinned Flux release.
#
# Environment: KSAIL_REAL_CACHE (default ~/.cache/ksail-real). Go's module and build caches live under it
# too, so one directory holds everything this tier downloads.
set -euo pipefail

# Everything runs inside main, which bash reads whole before it runs: editing this file while a build
# runs cannot change that build.
main() {
  local here cache key recipe out work started
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  # shellcheck source=versions.env
  . "$here/versions.env"

  cache=${KSAIL_REAL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ksail-real}
  # The binaries are keyed by the version set; a change to the recipe alone re-runs it over them.
  key=$(sha256sum <"$here/versions.env" | cut -c1-16)
  recipe=$(cat "$here/build.sh" "$here/localize.py" | sha256sum | cut -c1-16)
  out=$cache/$key
  mkdir -p "$cache"

  # One build at a time (two test binaries may ask at once); the second waits, then finds it complete.
  exec 9>"$cache/.lock"
  flock 9
  if [ "$(cat "$out/complete" 2>/dev/null)" = "$recipe" ] && { [ "${1:-}" != --peers ] || [ -x "$out/bin/flux" ]; }; then
    echo "$out"
    return 0
  fi

  command -v go >/dev/null 2>&1 ||
    fail "the go command is not on PATH; the real tier builds its components with Go (1.26 or newer)"
  command -v python3 >/dev/null 2>&1 || fail "python3 is not on PATH; the build edits go.mod files with it"

  export GOMODCACHE=$cache/gomod
  export GOCACHE=$cache/gocache
  export GOFLAGS="-mod=mod -modcacherw"
  export CGO_ENABLED=0
  export GOTOOLCHAIN=local
  # Some modules ship a go.work for their own development (kubernetes does); build each as a lone module.
  export GOWORK=off
  work=$out/work
  mkdir -p "$out/bin" "$out/crds" "$out/share" "$work" "$out/logs"
  started=$(date +%s)
  if [ "$(cat "$out/complete" 2>/dev/null)" = "$recipe" ]; then
    build_flux_cli # --peers on a complete set
    rm -rf "$work"
    prune
    echo "$out"
    return 0
  fi
  rm -f "$out/complete"

  # Go's build cache of one component is of little use to the next (they pin different versions of
  # the libraries they share). Kept, the caches reached about 17 GB; dropped after each component,
  # a cold build peaks at about 10 GB (the module cache plus one component's build cache).
  local step
  for step in build_kubernetes build_etcd build_kwok build_flux build_flux_operator build_kustomize \
    build_argocd build_cosign; do
    "$step"
    rm -rf "$GOCACHE"
  done
  [ "${1:-}" != --peers ] || build_flux_cli
  # The flux-operator install manifest of its release is `kustomize build config/default` of the module.
  "$out/bin/kustomize" build "$(module_dir github.com/controlplaneio-fluxcd/flux-operator "$FLUX_OPERATOR")/config/default" \
    >"$out/share/install/flux-operator.yaml" || fail "kustomize build of flux-operator's config/default failed"

  chmod -R u+w "$out"
  rm -rf "$work"
  echo "$(($(date +%s) - started))" >"$out/build-seconds"
  echo "$recipe" >"$out/complete"
  say "all components ready in $(($(date +%s) - started)) s: $out"
  prune
  echo "$out"
}

# Once the set is complete, only its directory is needed: Go's module cache (and the last build cache)
# and the directories of other version sets go. A later recipe change re-downloads the few modules
# whose CRDs it copies; a version change rebuilds from scratch either way.
prune() {
  local dir
  chmod -R u+w "$GOMODCACHE" 2>/dev/null || true
  rm -rf "$GOMODCACHE" "$GOCACHE"
  for dir in "$cache"/*/; do
    [ "${dir%/}" = "$out" ] || rm -rf "${dir:?}"
  done
}

say() { printf '[real-tier build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

fail() {
  say "error: $*"
  exit 1
}

# module_dir MODULE VERSION: downloads the module; prints its (read-only) directory in the module cache.
module_dir() {
  local json
  # stderr apart: the go command may first report fetching a toolchain there.
  json=$(go mod download -json "$1@$2" 2>"$work/download.err") ||
    fail "cannot download $1@$2: $json $(cat "$work/download.err")"
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["Dir"]) if d.get("Dir") and not d.get("Error") else sys.exit(d.get("Error"))' \
    <<<"$json" || fail "cannot download $1@$2"
}

# source_copy NAME MODULE VERSION [STAGING_VERSION [REPLACES]]: copies the module source to $work/NAME and
# makes it buildable as a main module (localize.py).
source_copy() {
  local name=$1 module=$2 version=$3 staging=${4:-} replaces=${5:-} dir
  dir=$(module_dir "$module" "$version")
  rm -rf "${work:?}/$name"
  cp -r "$dir" "$work/$name"
  chmod -R u+w "$work/$name"
  # shellcheck disable=SC2086 # REPLACES is a space-separated list
  (cd "$work/$name" && go mod edit -json | python3 "$here/localize.py" "$staging" $replaces >"$work/$name.edits") ||
    fail "cannot read the go.mod of $module@$version"
  if [ -s "$work/$name.edits" ]; then
    (cd "$work/$name" && xargs go mod edit <"$work/$name.edits") || fail "cannot edit the go.mod of $module@$version"
  fi
}

# build NAME COMMAND...: runs a build step in $work/NAME, its output in logs/NAME.log; on failure names the
# component and shows the end of the log.
build() {
  local name=$1 log=$out/logs/$1.log t0=$SECONDS
  shift
  if ! (cd "$work/$name" && "$@") >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    fail "building $name failed (full log: $log)"
  fi
  say "built $name in $((SECONDS - t0)) s"
}

have() {
  local b
  for b in "$@"; do [ -x "$out/bin/$b" ] || return 1; done
}

build_kubernetes() {
  local minor ld pkg
  have kube-apiserver kube-controller-manager kube-scheduler kubectl && return
  say "kubernetes $KUBERNETES (staging modules $KUBERNETES_STAGING)"
  source_copy kubernetes k8s.io/kubernetes "$KUBERNETES" "$KUBERNETES_STAGING"
  # Without the version ldflags /version says v0.0.0, and kwok, Flux's version check and Helm's
  # kubeVersion constraints break.
  minor=${KUBERNETES#v1.}
  minor=${minor%%.*}
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$KUBERNETES -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  build kubernetes go build -trimpath -ldflags "$ld" -o "$out/bin/" \
    ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubectl
}

build_etcd() {
  have etcd && return
  say "etcd $ETCD"
  source_copy etcd go.etcd.io/etcd/server/v3 "$ETCD"
  build etcd go build -trimpath -ldflags "-s -w" -o "$out/bin/etcd" .
}

build_kwok() {
  local dir stage
  if ! have kwok; then
    say "kwok $KWOK"
    source_copy kwok sigs.k8s.io/kwok "$KWOK"
    build kwok go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK" \
      -o "$out/bin/kwok" ./cmd/kwok
  fi
  # The "fast" stages: Nodes Ready and Pods Running at once (kwok exits without a stage config).
  dir=$(module_dir sigs.k8s.io/kwok "$KWOK")
  : >"$out/share/kwok-stages.yaml"
  for stage in "$dir"/kustomize/stage/node/fast/*.yaml "$dir"/kustomize/stage/pod/fast/*.yaml; do
    [ "$(basename "$stage")" = kustomization.yaml ] && continue
    { echo '---'; cat "$stage"; } >>"$out/share/kwok-stages.yaml"
  done
  grep -q 'kind: Stage' "$out/share/kwok-stages.yaml" ||
    fail "kwok $KWOK ships no kustomize/stage/{node,pod}/fast stages; check the module layout"
}

build_flux() {
  local spec name version dir
  mkdir -p "$out/crds/flux"
  for spec in source-controller:"$SOURCE_CONTROLLER" kustomize-controller:"$KUSTOMIZE_CONTROLLER" \
    helm-controller:"$HELM_CONTROLLER"; do
    name=${spec%%:*}
    version=${spec#*:}
    if ! have "$name"; then
      say "$name $version (Flux $FLUX)"
      source_copy "$name" "github.com/fluxcd/$name" "$version"
      build "$name" go build -trimpath -ldflags "-s -w" -o "$out/bin/$name" .
    fi
    dir=$(module_dir "github.com/fluxcd/$name" "$version")
    cp "$dir"/config/crd/bases/*.yaml "$out/crds/flux/"
  done
}

build_flux_operator() {
  local dir
  if ! have flux-operator; then
    say "flux-operator $FLUX_OPERATOR"
    source_copy flux-operator github.com/controlplaneio-fluxcd/flux-operator "$FLUX_OPERATOR" "" \
      "${FLUX_OPERATOR_REPLACES:-}"
    # web/embed.go embeds the built UI (dist/), which the module zip does not carry.
    mkdir -p "$work/flux-operator/web/dist"
    echo '<!doctype html><title>flux-operator</title>' >"$work/flux-operator/web/dist/index.html"
    # The operator refuses to run outside FIPS 140-3 mode; its own Dockerfile builds it this way.
    build flux-operator env GOFIPS140=latest go build -trimpath \
      -ldflags "-s -w -X main.VERSION=${FLUX_OPERATOR#v}" -o "$out/bin/flux-operator" ./cmd/operator
  fi
  dir=$(module_dir github.com/controlplaneio-fluxcd/flux-operator "$FLUX_OPERATOR")
  mkdir -p "$out/crds/flux-operator"
  cp "$dir"/config/crd/bases/*.yaml "$out/crds/flux-operator/"
  # --storage-path: the Flux manifests the operator renders its installs from (its image's /data).
  rm -rf "$out/share/flux-operator-data"
  cp -r "$dir/config/data" "$out/share/flux-operator-data"
  chmod -R u+w "$out/share/flux-operator-data"
}

build_kustomize() {
  have kustomize && return
  say "kustomize $KUSTOMIZE"
  source_copy kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE"
  build kustomize go build -trimpath -ldflags "-s -w" -o "$out/bin/kustomize" .
}

# The flux CLI of the pinned release, for the benchmarks' side-by-side rows. Its `install` command
# embeds manifests that `make` generates and the module zip leaves out; the benchmarks never install, so
# a placeholder stands in for them.
build_flux_cli() {
  have flux && return
  say "flux CLI $FLUX (benchmark peer)"
  source_copy flux2 github.com/fluxcd/flux2/v2 "$FLUX"
  mkdir -p "$work/flux2/cmd/flux/manifests"
  echo '# placeholder: the benchmark peer never runs flux install' >"$work/flux2/cmd/flux/manifests/placeholder.yaml"
  build flux2 go build -trimpath -ldflags "-s -w -X main.VERSION=${FLUX#v}" -o "$out/bin/flux" ./cmd/flux
}

build_argocd() {
  local dir
  if ! have argocd; then
    say "argo-cd $ARGOCD (Go toolchain $ARGOCD_GO_TOOLCHAIN, fetched from the module proxy)"
    GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN source_copy argocd github.com/argoproj/argo-cd/v3 "$ARGOCD"
    build argocd env GOTOOLCHAIN="$ARGOCD_GO_TOOLCHAIN" go build -trimpath \
      -ldflags "-s -w -X github.com/argoproj/argo-cd/v3/common.version=${ARGOCD#v}" -o "$out/bin/argocd" ./cmd
  fi
  dir=$(GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN module_dir github.com/argoproj/argo-cd/v3 "$ARGOCD")
  mkdir -p "$out/crds/argocd" "$out/share/install"
  cp "$dir"/manifests/crds/*-crd.yaml "$out/crds/argocd/"
  cp "$dir/manifests/install.yaml" "$out/share/install/argocd.yaml"
}

# The test-only peer the tests verify ksail's signatures with. `cosign version` prints the gitVersion its
# Makefile sets; its other fields there (gitCommit, gitTreeState, buildDate) come from git, which a module
# zip does not carry.
build_cosign() {
  have cosign && return
  say "cosign $COSIGN"
  source_copy cosign github.com/sigstore/cosign/v3 "$COSIGN"
  build cosign go build -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN" -o "$out/bin/cosign" ./cmd/cosign
}

main "$@"
