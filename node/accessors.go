package node

import "github.com/meridiankms/meridian/keystore"

// KeyStore exposes the node's keystore: the domain-key re-wrap
// (keystore.Store.RotateDomainKey) runs on it, and tests drive it directly
// to measure the keystore without gRPC in the way.
func (n *Node) KeyStore() *keystore.Store { return n.store }
