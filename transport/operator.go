package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
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
//
// The calls on other members (MemberDomainKeyVersions, SyncMember) and
// SyncDomainKeysFrom go over the cluster plane, never the client API:
// transport dials nobody. Their errors that carry a gRPC status are
// another member's answer or the cluster's refusal, with messages already
// safe for a caller; they are passed on (see peerStatus).
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
	// MemberDomainKeyVersions asks member nodeID which DK versions its HSM
	// holds.
	MemberDomainKeyVersions(ctx context.Context, nodeID string) ([]uint32, error)
	// SyncMember asks member nodeID to import from member sourceID the DK
	// versions its HSM lacks (a rotation's distribution step).
	SyncMember(ctx context.Context, nodeID, sourceID string) (DomainKeySync, error)
	// SyncDomainKeysFrom imports into this node's HSM the DK versions it
	// lacks from member sourceID.
	SyncDomainKeysFrom(ctx context.Context, sourceID string) (DomainKeySync, error)
}

// DomainKeySync is what a sync did on one node.
type DomainKeySync struct {
	Imported []uint32 // DK versions imported; empty when it held them all
	Versions []uint32 // DK versions its HSM holds afterwards, ascending
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

// WithOperator serves meridian.v1.Operator over b. The service needs
// WithMembership to find the members; without it RotateDomainKey rotates
// this node alone and SyncDomainKeys is refused. It reaches other members
// only through b (the cluster plane), never by dialling their API.
//
// SECURITY: until mTLS identities and admin authorization arrive, anyone
// who reaches the API can start a rotation or a sync (the server already
// demands --insecure). No call here hands out the domain keys, even
// wrapped: that is the cluster plane's, which clients cannot reach.
func WithOperator(b OperatorBackend) Option {
	return func(s *Server) {
		if b == nil {
			s.operator = nil
			return
		}
		s.operator = &operatorService{backend: b}
	}
}

// operatorService implements apiv1.OperatorServer. Its unary calls pass
// through the server's interceptors (request id, metrics, panics, expired
// deadlines) but map their own errors with toStatus, since mapErrors is
// KeyManagement's; RotateDomainKey, a stream, does all of that itself.
type operatorService struct {
	apiv1.UnimplementedOperatorServer
	backend OperatorBackend

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

func (o *operatorService) SyncDomainKeys(ctx context.Context, req *apiv1.SyncDomainKeysRequest) (*apiv1.SyncDomainKeysResponse, error) {
	src := req.GetSourceApiAddr()
	source, err := o.checkSource(ctx, src)
	if err != nil {
		return nil, err
	}
	res, err := o.backend.SyncDomainKeysFrom(ctx, source)
	if err != nil {
		return nil, o.peerFail(ctx, "SyncDomainKeys", err)
	}
	return &apiv1.SyncDomainKeysResponse{NodeId: o.srv.nodeID, ImportedVersions: res.Imported, HsmDomainKeyVersions: res.Versions}, nil
}

// checkSource admits only a live member other than this node as a source,
// and returns its node id: the operator names it by API address, the
// cluster plane by id. Importing from an arbitrary address would let
// anyone who reaches the API plant DK versions of their own choosing.
func (o *operatorService) checkSource(ctx context.Context, src string) (string, error) {
	if _, _, err := net.SplitHostPort(src); err != nil || len(src) > 255 {
		return "", invalidArg(fmt.Sprintf("source_api_addr %s is not host:port", quoteShort(src, 64)))
	}
	if o.srv.members == nil {
		return "", newStatusError(codes.FailedPrecondition,
			"SyncDomainKeys needs the cluster membership view, and this server was started without one", "UnsupportedOperationException")
	}
	view, err := membersView(ctx, o.srv.members)
	if err != nil {
		return "", o.fail(ctx, "SyncDomainKeys", err)
	}
	for _, m := range view.Members {
		if m.APIAddr != src {
			continue
		}
		if m.NodeID == view.ServedBy {
			return "", invalidArg(fmt.Sprintf("source_api_addr %s is this node (%s) itself", src, m.NodeID))
		}
		if m.Status == StatusDead || m.Status == StatusLeft {
			return "", newStatusError(codes.FailedPrecondition, fmt.Sprintf("source %s (node %s) is %s", src, m.NodeID, m.Status), "KMSInvalidStateException")
		}
		return m.NodeID, nil
	}
	return "", invalidArg(fmt.Sprintf("source_api_addr %s is not the API address of any member of this cluster", src))
}

// peerFail maps the error of a backend call that went over the cluster
// plane. One that carries a gRPC status is a member's answer (mapped by
// that member) or the cluster's refusal, safe to show: its code and
// exception are kept, except that a member's internal failure (or a
// member without the method: version skew) is this call's dependency
// failure, Unavailable. Anything else is a local error, mapped as usual.
func (o *operatorService) peerFail(ctx context.Context, op string, err error) error {
	var se *statusError
	if errors.As(err, &se) {
		return se
	}
	if _, ok := status.FromError(err); !ok {
		return o.fail(ctx, op, err)
	}
	return peerStatus(err)
}

// peerStatus is the status a member's failure shows the caller (peerFail).
func peerStatus(err error) error {
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
	return newStatusError(code, st.Message(), exception)
}

// StatusOf maps err to the status the client API would answer for it
// (errors.go), logging the detail of what the caller does not see. The
// node wiring uses it for the failures of its HSM that a member's
// domain-key peer calls return over the cluster plane: they reach an
// operator through the client API, so they get the same treatment.
func StatusOf(ctx context.Context, log *slog.Logger, op string, err error) error {
	if err == nil {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return toStatus(ctx, log, op, err)
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

func joinVersions(vs []uint32) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprintf("v%d", v)
	}
	return strings.Join(s, ",")
}
