# Trivy imports encoding/json/v2: every go command of this module needs it.
export GOEXPERIMENT := jsonv2
export CGO_ENABLED := 0

MODULE  := github.com/registry-actions/registry
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X $(MODULE)/internal/version.Version=$(VERSION) -X $(MODULE)/internal/version.Commit=$(COMMIT) -X github.com/aquasecurity/trivy/pkg/version/app.ver=$(shell go list -m -f '{{slice .Version 1}}' github.com/aquasecurity/trivy)
BIN     := $(CURDIR)/bin/registry

.PHONY: build test vet fmt-check docs demo bench bench-push bench-pipeline image clean fuzz

build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

# The end-to-end tests run the binary built here instead of building their own.
test: build
	REGISTRY_BIN=$(BIN) go test -count=1 -timeout 25m ./...

vet:
	go vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

docs:
	go run ./internal/inputs/gendocs

# Every Fuzz* target of the module, each for FUZZTIME (docs/fuzzing.md).
FUZZTIME ?= 3s
fuzz:
	test/fuzz.sh $(FUZZTIME)

demo: build
	$(BIN) demo --out demo-output

bench: build
	test/bench/run.sh all

bench-push: build
	test/bench/run.sh push

bench-pipeline: build
	test/bench/run.sh pipeline

image:
	docker build --build-arg VERSION=$(VERSION) -t registry:$(VERSION) .

# demo-output goes only when it carries the marker the demo leaves (it is ours).
clean:
	rm -rf bin
	if [ -f demo-output/.registry-output ]; then rm -rf demo-output; fi
