// Package identity says who is on the other end of a connection, and holds
// the TLS material that proves who this process is.
//
// A Principal is a caller: its SPIFFE ID, kind (node, client, other
// workload, anonymous), name, a node's region, and how it was
// authenticated. FromCertificate reads one from an X509-SVID; FromPeer and
// FromTLS read one from a verified connection; NewContext and FromContext
// carry it through a request, for authorization, audit and rate limits.
//
// A Source loads a certificate, its key and a CA bundle from files, and
// hands out TLS 1.3 configurations that read the current material at
// every handshake, so that Reload, Watch (file changes) and ReloadOn
// (SIGHUP) rotate certificates and CAs with no restart. ServerConfig
// enforces a plane's policy on who may connect: ClientAPI (a verified
// client certificate or anonymous) or ClusterPlane (nodes of this
// cluster's trust domain only). ClientConfig verifies a server against the
// current bundle and requires a node identity, optionally a given node and
// host name.
//
// The package imports nothing of Meridian's. See DESIGN.md.
package identity
