// Package cluster owns Raft (hashicorp/raft over TCP, raft-boltdb log and
// stable stores, file snapshots), bootstrap and join (with the enrolment of
// a joiner's HSM), forwarding of writes from followers to the leader,
// memberlist gossip and the leader's autopilot, and the cluster plane: the
// node-to-node gRPC services (meridian.cluster.v1 Cluster and DomainKeys)
// served on each node's own cluster listener, never on the client API.
package cluster
