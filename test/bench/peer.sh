# Sourced by the benchmarks that compare with the trivy CLI, from the module
# root. Sets $bin to $REGISTRY_BIN (default bin/registry, built when
# missing) and $trivy to $TRIVY_CLI, or builds the trivy CLI of the Trivy
# version this module links with go install into a temporary directory
# removed on exit (its command's dependencies are not in this module's
# go.sum, so it is built outside it, which takes long).
export GOEXPERIMENT=jsonv2 CGO_ENABLED=0

bin=${REGISTRY_BIN:-bin/registry}
if [ ! -x "$bin" ]; then
  make build
  bin=bin/registry
fi

trivy=${TRIVY_CLI:-}
if [ -z "$trivy" ]; then
  version=$(go list -m -f '{{.Version}}' github.com/aquasecurity/trivy)
  trivy_tmp=$(mktemp -d)
  trap 'rm -rf "$trivy_tmp"' EXIT
  echo "building the trivy CLI $version with go install (this takes long; set TRIVY_CLI to reuse one)" >&2
  GOBIN=$trivy_tmp go install -trimpath -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${version#v}" \
    "github.com/aquasecurity/trivy/cmd/trivy@$version"
  trivy=$trivy_tmp/trivy
fi
