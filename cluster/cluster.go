// Package cluster owns Raft (hashicorp/raft over TCP, raft-boltdb log and
// stable stores, file snapshots), bootstrap and join, and forwarding of
// writes from followers to the leader.
package cluster
