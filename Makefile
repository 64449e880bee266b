# Meridian's developer commands. `make test` is the one README.md and CI run.
PROTOS := api/meridian/v1/meridian.proto fsm/fsmpb/fsm.proto cluster/clusterpb/cluster.proto
GOBIN := $(shell go env GOPATH)/bin

.PHONY: test test-under-load fresh-machine-check deps lint generate check-generate bench build

# -buildvcs=true stamps the commit into `meridian version` even where
# GOFLAGS turns VCS stamping off (then the version reads "(devel)").
build:
	go build -buildvcs=true -o meridian ./cmd/meridian

# Everything CI checks, on a fresh machine too: installs missing Debian
# packages, then formatting, vet, generated code, and the race-enabled tests.
test: deps lint check-generate
	go test -race -count=1 -timeout 20m ./...

# The same suite while CPU hogs keep every core busy (twice as many hogs as
# cores; HOGS=N to change): correctness must not depend on a quiet machine.
HOGS ?= $(shell echo $$(( $$(nproc) * 2 )))
test-under-load: deps lint check-generate
	./scripts/under-load.sh -n $(HOGS) -- go test -race -count=1 -timeout 40m ./...

# `bash .ci/run` on a clean clone of HEAD in a bare Debian container (root,
# Docker, debootstrap): proves deps.sh installs everything the suite needs.
fresh-machine-check:
	./scripts/fresh-machine-check.sh

deps:
	./scripts/deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

# Regenerates the committed protobuf code with the plugin versions pinned in
# go.mod's tool block and Debian's protoc.
generate:
	go build -o $(GOBIN)/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	go build -o $(GOBIN)/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	protoc -I . --plugin=protoc-gen-go=$(GOBIN)/protoc-gen-go \
		--plugin=protoc-gen-go-grpc=$(GOBIN)/protoc-gen-go-grpc \
		--go_out=paths=source_relative:. --go-grpc_out=paths=source_relative:. $(PROTOS)

# Fails when the committed generated code differs from what generate makes.
check-generate: generate
	@git diff --exit-code -- '*.pb.go' || { echo "generated code is stale: run make generate"; exit 1; }

bench:
	go test -run '^$$' -bench . -benchmem ./...
