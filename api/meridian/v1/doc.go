// Package meridianv1 is Meridian's public gRPC contract, meridian.v1: the
// KeyManagement service every node serves to clients (operation and field
// names follow AWS KMS) and the Operator service, with the Go code protoc
// generates from meridian.proto (committed; `make generate` rebuilds it).
// Both are served on a node's client API listener only; node-to-node calls
// are cluster/clusterpb's.
package meridianv1
