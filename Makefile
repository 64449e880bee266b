# Regenerates the committed protobuf code. Needs protoc (Debian:
# protobuf-compiler) and the two plugins pinned in go.mod's tool block.
PROTOS := api/meridian/v1/meridian.proto fsm/fsmpb/fsm.proto cluster/clusterpb/cluster.proto
GOBIN := $(shell go env GOPATH)/bin

.PHONY: generate check-generate test
generate:
	go install google.golang.org/protobuf/cmd/protoc-gen-go
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc
	protoc -I . --plugin=protoc-gen-go=$(GOBIN)/protoc-gen-go \
		--plugin=protoc-gen-go-grpc=$(GOBIN)/protoc-gen-go-grpc \
		--go_out=paths=source_relative:. --go-grpc_out=paths=source_relative:. $(PROTOS)

# Fails when the committed generated code differs from what generate makes.
check-generate: generate
	git diff --exit-code -- '*.pb.go'
