# Sourced by the benchmark scripts: the binary under test and the peer tools,
# each taken from its variable or built (peers in throwaway modules outside
# this one, whose go.sum cannot hold their commands' dependencies) into
# $peers_tmp, which the sourcing script removes.

# registry_bin prints the binary under test: REGISTRY_BIN or bin/registry
# (built if missing).
registry_bin() {
  local bin=${REGISTRY_BIN:-bin/registry}
  if [ ! -x "$bin" ]; then
    make build >&2
    bin=bin/registry
  fi
  echo "$bin"
}

# cosign_cli prints COSIGN_CLI or a cosign v2.6.5 built for the run.
cosign_cli() {
  if [ -n "${COSIGN_CLI:-}" ]; then echo "$COSIGN_CLI"; return; fi
  echo "building the cosign CLI v2.6.5 in a throwaway module" >&2
  (
    mkdir -p "$peers_tmp/cosign-module" && cd "$peers_tmp/cosign-module"
    export GOEXPERIMENT= GOFLAGS=-mod=mod
    go mod init cosignbench >/dev/null 2>&1
    go get github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 >get.log 2>&1 || { cat get.log >&2; exit 1; }
    go build -trimpath -ldflags "-s -w" -o "$peers_tmp/cosign" github.com/sigstore/cosign/v2/cmd/cosign
  ) || return 1
  echo "$peers_tmp/cosign"
}

# trivy_cli prints TRIVY_CLI or the trivy CLI of the Trivy version this
# module links, installed for the run (long).
trivy_cli() {
  if [ -n "${TRIVY_CLI:-}" ]; then echo "$TRIVY_CLI"; return; fi
  local version
  version=$(go list -m -f '{{.Version}}' github.com/aquasecurity/trivy)
  echo "building the trivy CLI $version with go install (this takes long)" >&2
  GOBIN=$peers_tmp go install -trimpath -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${version#v}" \
    "github.com/aquasecurity/trivy/cmd/trivy@$version" >&2 || return 1
  echo "$peers_tmp/trivy"
}

# crane_cli prints CRANE_CLI or crane built from the go-containerregistry
# version in go.mod.
crane_cli() {
  if [ -n "${CRANE_CLI:-}" ]; then echo "$CRANE_CLI"; return; fi
  go build -trimpath -o "$peers_tmp/crane" github.com/google/go-containerregistry/cmd/crane >&2 || return 1
  echo "$peers_tmp/crane"
}
