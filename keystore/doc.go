// Package keystore is every key operation's rules: key lifecycle, aliases,
// tags and rotation, the cryptographic data plane (encrypt, decrypt,
// re-encrypt, data keys, sign, verify, MACs), the ciphertext format and the
// key-material cache. Its contract is Service, declared here once and
// implemented by *Store; a client plane (transport) calls it with a Request
// on the context. Reads and cryptography are answered from this node's fsm
// replica with material this node's HSM unwrapped; writes become fsm
// commands proposed through an Applier (cluster.Node in production), whose
// no-leader failure is fsm.ErrNoLeader, so keystore never imports cluster
// or raft.
package keystore
