package transport

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/keystore"
)

// OperatorBackend is this node's side of the meridian.v1.Operator service:
// its keystore and its HSM. It is declared here, by its consumer; the node
// wiring adapts *keystore.Store and the node's hsm.HSM to it. Errors go
// through the same mapping as keystore errors (errors.go), which knows the
// HSM's own sentinels: a device down or closed, or a missing domain key
// (hsm.ErrUnavailable, ErrClosed, ErrNoDomainKey), is Unavailable as it
// is; any other HSM failure is internal. Failures whose message is meant
// for the operator wrap a keystore sentinel (ErrValidation for a bad
// transport key or bundle, ErrUnsupported for a backend that cannot
// enrol), as keystore.Store's own errors do.
type OperatorBackend interface {
	// DomainKeyStatus is (*keystore.Store).DomainKeyStatus.
	DomainKeyStatus(ctx context.Context) (keystore.DomainKeyStatus, error)
	// HSMStatus describes the node's HSM. An unhealthy HSM is reported in
	// the result (Healthy false, Reason), not as an error.
	HSMStatus(ctx context.Context) (HSMStatus, error)
	// RotateHSMDomainKey makes DK version n+1 inside this node's HSM and
	// returns it (soft and pkcs11 RotateDomainKey).
	RotateHSMDomainKey(ctx context.Context) (uint32, error)
	// RewrapDomainKey re-wraps every key version under the HSM's current
	// DK version through Raft: (*keystore.Store).RotateDomainKey.
	RewrapDomainKey(ctx context.Context, progress func(done, total int)) (uint32, error)
	// TransportPublicKey, ExportDomainKeys and ImportDomainKeys are the
	// HSM's hsm.Enroller, with the bundle in its wire encoding
	// (hsm.DomainKeyBundle MarshalBinary/UnmarshalBinary).
	TransportPublicKey(ctx context.Context) ([]byte, error)
	ExportDomainKeys(ctx context.Context, transportPub []byte) ([]byte, error)
	ImportDomainKeys(ctx context.Context, bundle []byte) error
}

// HSMStatus is what HSMStatus answers about a node's HSM. Nothing in it is
// secret: Detail names the module and token, or the sealed file.
type HSMStatus struct {
	Backend           string // "soft" or "pkcs11"
	Detail            string
	Healthy           bool
	Reason            string // why not healthy
	DomainKeyVersions []uint32
	Mechanisms        []HSMMechanism // PKCS#11 only
}

// HSMMechanism is one PKCS#11 mechanism Meridian uses (pkcs11.Mechanism).
type HSMMechanism struct {
	Name     string
	Present  bool
	Required bool
	Use      string
}

// maxTransportKey bounds ExportDomainKeys' input before the backend parses
// it: an RSA-8192 PKIX key is about 1.1 KiB.
const maxTransportKey = 4096

// WithOperator serves meridian.v1.Operator over b. Calls to other members
// (RotateDomainKey's distribution, SyncDomainKeys' fetch) dial their API
// address with dialOpts; none means plaintext, as node-to-node traffic is
// until TLS arrives. The service needs WithMembership to find the members;
// without it RotateDomainKey rotates this node alone and SyncDomainKeys is
// refused.
//
// SECURITY: ExportDomainKeys hands the domain keys, wrapped, to any
// caller's transport key. Until mTLS identities and admin authorization
// arrive, this service is only as safe as the network: serve it only where
// every peer is trusted (the server already demands --insecure).
func WithOperator(b OperatorBackend, dialOpts ...grpc.DialOption) Option {
	return func(s *Server) {
		if b == nil {
			s.operator = nil
			return
		}
		if len(dialOpts) == 0 {
			dialOpts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		}
		s.operator = &operatorService{backend: b, dialOpts: dialOpts}
	}
}

// operatorService implements apiv1.OperatorServer. Its unary calls pass
// through the server's interceptors (request id, metrics, panics, expired
// deadlines) but map their own errors with toStatus, since mapErrors is
// KeyManagement's; RotateDomainKey, a stream, does all of that itself.
type operatorService struct {
	apiv1.UnimplementedOperatorServer
	backend  OperatorBackend
	dialOpts []grpc.DialOption

	// Filled in by bind.
	srv *Server

	rotating sync.Mutex // one rotation at a time on this node
}

var _ apiv1.OperatorServer = (*operatorService)(nil)

// bind attaches the service to its server once every option is applied.
func (o *operatorService) bind(s *Server) *operatorService {
	o.srv = s
	return o
}

func (o *operatorService) log() *slog.Logger { return o.srv.log }

func (o *operatorService) fail(ctx context.Context, op string, err error) error {
	return toStatus(ctx, o.log(), "Operator/"+op, err)
}

func (o *operatorService) DomainKeyStatus(ctx context.Context, _ *apiv1.DomainKeyStatusRequest) (*apiv1.DomainKeyStatusResponse, error) {
	st, err := o.backend.DomainKeyStatus(ctx)
	if err != nil {
		return nil, o.fail(ctx, "DomainKeyStatus", err)
	}
	hs, err := o.backend.HSMStatus(ctx)
	if err != nil {
		return nil, o.fail(ctx, "DomainKeyStatus", err)
	}
	return domainKeyStatusOut(o.srv.nodeID, hs.Backend, st), nil
}

func domainKeyStatusOut(nodeID, backend string, st keystore.DomainKeyStatus) *apiv1.DomainKeyStatusResponse {
	dks := make([]uint32, 0, len(st.Versions))
	for v := range st.Versions {
		dks = append(dks, v)
	}
	slices.Sort(dks)
	counts := make([]*apiv1.DomainKeyVersionCount, len(dks))
	for i, v := range dks {
		counts[i] = &apiv1.DomainKeyVersionCount{DomainKeyVersion: v, KeyVersions: uint64(st.Versions[v])}
	}
	return &apiv1.DomainKeyStatusResponse{
		NodeId:                  nodeID,
		HsmBackend:              backend,
		HsmDomainKeyVersions:    slices.Clone(st.HSMVersions),
		CurrentDomainKeyVersion: st.Current,
		KeyVersions:             counts,
		TotalKeyVersions:        uint64(st.Total),
		PendingKeyVersions:      uint64(st.Pending),
	}
}

func (o *operatorService) HSMStatus(ctx context.Context, _ *apiv1.HSMStatusRequest) (*apiv1.HSMStatusResponse, error) {
	hs, err := o.backend.HSMStatus(ctx)
	if err != nil {
		return nil, o.fail(ctx, "HSMStatus", err)
	}
	resp := &apiv1.HSMStatusResponse{
		NodeId: o.srv.nodeID, Backend: hs.Backend, Detail: hs.Detail, Healthy: hs.Healthy, Reason: hs.Reason,
		DomainKeyVersions: slices.Clone(hs.DomainKeyVersions),
	}
	for _, m := range hs.Mechanisms {
		resp.Mechanisms = append(resp.Mechanisms, &apiv1.HSMMechanism{Name: m.Name, Present: m.Present, Required: m.Required, Use: m.Use})
	}
	return resp, nil
}

// ExportDomainKeys answers any caller: see the SECURITY note on
// WithOperator. The backend checks the key (RSA, 3072..8192 bits).
func (o *operatorService) ExportDomainKeys(ctx context.Context, req *apiv1.ExportDomainKeysRequest) (*apiv1.ExportDomainKeysResponse, error) {
	pub := req.GetTransportPublicKey()
	if len(pub) == 0 || len(pub) > maxTransportKey {
		return nil, invalidArg(fmt.Sprintf("transport_public_key is %d bytes; want a PKIX DER RSA public key of 1..%d bytes", len(pub), maxTransportKey))
	}
	o.log().LogAttrs(ctx, slog.LevelInfo, "exporting domain keys to a transport key",
		slog.String("request_id", RequestIDFromContext(ctx)), slog.String("peer", peerAddr(ctx)))
	b, err := o.backend.ExportDomainKeys(ctx, pub)
	if err != nil {
		return nil, o.fail(ctx, "ExportDomainKeys", err)
	}
	return &apiv1.ExportDomainKeysResponse{Bundle: b}, nil
}

func (o *operatorService) SyncDomainKeys(ctx context.Context, req *apiv1.SyncDomainKeysRequest) (*apiv1.SyncDomainKeysResponse, error) {
	src := req.GetSourceApiAddr()
	if err := o.checkSource(ctx, src); err != nil {
		return nil, err
	}
	imported, held, err := o.syncFrom(ctx, src)
	if err != nil {
		return nil, o.fail(ctx, "SyncDomainKeys", err)
	}
	return &apiv1.SyncDomainKeysResponse{NodeId: o.srv.nodeID, ImportedVersions: imported, HsmDomainKeyVersions: held}, nil
}

// checkSource admits only a live member other than this node as a source:
// importing from an arbitrary address would let anyone who reaches the API
// plant DK versions of their own choosing.
func (o *operatorService) checkSource(ctx context.Context, src string) error {
	if _, _, err := net.SplitHostPort(src); err != nil || len(src) > 255 {
		return invalidArg(fmt.Sprintf("source_api_addr %s is not host:port", quoteShort(src, 64)))
	}
	if o.srv.members == nil {
		return newStatusError(codes.FailedPrecondition,
			"SyncDomainKeys needs the cluster membership view, and this server was started without one", "UnsupportedOperationException")
	}
	view, err := membersView(ctx, o.srv.members)
	if err != nil {
		return o.fail(ctx, "SyncDomainKeys", err)
	}
	for _, m := range view.Members {
		if m.APIAddr != src {
			continue
		}
		if m.NodeID == view.ServedBy {
			return invalidArg(fmt.Sprintf("source_api_addr %s is this node (%s) itself", src, m.NodeID))
		}
		if m.Status == StatusDead || m.Status == StatusLeft {
			return newStatusError(codes.FailedPrecondition, fmt.Sprintf("source %s (node %s) is %s", src, m.NodeID, m.Status), "KMSInvalidStateException")
		}
		return nil
	}
	return invalidArg(fmt.Sprintf("source_api_addr %s is not the API address of any member of this cluster", src))
}

// SyncDomainKeysFrom imports into this node's HSM the DK versions it lacks
// from the member at sourceAddr (the SyncDomainKeys RPC without the
// membership check): a node that was down during a rotation can call it at
// start-up. It returns the versions imported. It needs WithOperator.
func (s *Server) SyncDomainKeysFrom(ctx context.Context, sourceAddr string) ([]uint32, error) {
	if s.operator == nil {
		return nil, fmt.Errorf("sync domain keys: server has no operator backend: %w", ErrInvalidConfig)
	}
	imported, _, err := s.operator.syncFrom(ctx, sourceAddr)
	return imported, err
}

// syncFrom fetches the DK versions this HSM lacks from the member at src.
// It asks the source first, so a node that already holds everything makes
// no transport key.
func (o *operatorService) syncFrom(ctx context.Context, src string) (imported, held []uint32, err error) {
	before, err := o.backend.DomainKeyStatus(ctx)
	if err != nil {
		return nil, nil, err
	}
	conn, err := o.dial(src)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	source := apiv1.NewOperatorClient(conn)
	st, err := source.DomainKeyStatus(ctx, &apiv1.DomainKeyStatusRequest{})
	if err != nil {
		return nil, nil, remoteErr("sync domain keys: ask source "+src+" which versions it holds", err)
	}
	missing := without(st.GetHsmDomainKeyVersions(), before.HSMVersions)
	if len(missing) == 0 {
		return nil, before.HSMVersions, nil
	}
	pub, err := o.backend.TransportPublicKey(ctx)
	if err != nil {
		return nil, nil, err
	}
	resp, err := source.ExportDomainKeys(ctx, &apiv1.ExportDomainKeysRequest{TransportPublicKey: pub})
	if err != nil {
		return nil, nil, remoteErr("sync domain keys: export from source "+src, err)
	}
	if err := o.backend.ImportDomainKeys(ctx, resp.GetBundle()); err != nil {
		return nil, nil, err
	}
	after, err := o.backend.DomainKeyStatus(ctx)
	if err != nil {
		return nil, nil, err
	}
	if still := without(missing, after.HSMVersions); len(still) > 0 {
		return nil, nil, fmt.Errorf("sync domain keys from %s: still lacking dk versions %v after import: %w", src, still, keystore.ErrInternal)
	}
	imported = without(after.HSMVersions, before.HSMVersions)
	o.log().LogAttrs(ctx, slog.LevelInfo, "imported domain key versions",
		slog.String("source", src), slog.Any("versions", imported))
	return imported, after.HSMVersions, nil
}

func (o *operatorService) dial(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr, o.dialOpts...)
	if err != nil {
		return nil, newStatusError(codes.InvalidArgument, fmt.Sprintf("dial %s: %v", addr, err), "ValidationException")
	}
	return conn, nil
}

// remoteErr reports another node's failure. Its message was already shaped
// by that node's error mapping (no internal detail), so it is passed on
// with the call that failed; its code is kept, but a failure of the remote
// is this call's dependency failure, so Internal and Unknown become
// Unavailable.
func remoteErr(what string, err error) error {
	st := status.Convert(err)
	code := st.Code()
	switch code {
	case codes.Internal, codes.Unknown, codes.Unimplemented:
		code = codes.Unavailable
	}
	exception := ExceptionFromStatus(st)
	if exception == "" || code == codes.Unavailable {
		exception = "KMSUnavailableException"
	}
	return newStatusError(code, what+": "+st.Message(), exception)
}

// peerAddr is the caller's network address, for the log.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

func invalidArg(msg string) error {
	return newStatusError(codes.InvalidArgument, msg, "ValidationException")
}

// quoteShort quotes caller input for a message, cut to n bytes so a client
// cannot bloat the message (or a log line that repeats it).
func quoteShort(s string, n int) string {
	if len(s) > n {
		return fmt.Sprintf("%q...", s[:n])
	}
	return fmt.Sprintf("%q", s)
}

// without returns the elements of a not in b, in a's order.
func without(a, b []uint32) []uint32 {
	var out []uint32
	for _, v := range a {
		if !slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}

func joinVersions(vs []uint32) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprintf("v%d", v)
	}
	return strings.Join(s, ",")
}
