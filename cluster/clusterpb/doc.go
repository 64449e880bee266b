// Package clusterpb is the cluster plane's gRPC contract,
// meridian.cluster.v1: the Cluster service (Join, forwarded Apply, Status)
// and the DomainKeys service (domain-key versions, export to a transport
// key, sync from a member), with the Go code protoc generates from
// cluster.proto (committed; `make generate` rebuilds it). Package cluster
// serves them on each node's cluster listener (--cluster-addr), never on
// the client API.
package clusterpb
