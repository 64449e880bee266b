// Package fakekms is the one fake of the KeyManagement gRPC service, for
// the tests of its callers (the Go client, the meridian CLI). It serves
// real gRPC on loopback, records every call, fails on demand and answers
// every method; the nodes of one test share a Cluster. Tests that need
// real behaviour (Raft, an HSM, the transport's interceptors) start real
// nodes instead.
package fakekms

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// DefaultID names a server whose Config gives no ID.
const DefaultID = "fake-1"

// BuildVersion is the version every fake member reports.
const BuildVersion = "v1.2.3"

// ConsistencyTokenHeader is client.ConsistencyTokenHeader and
// transport.ConsistencyTokenHeader. It is spelled out here because the
// client's own tests import this package, which therefore cannot import
// the client; a test checks the three agree.
const ConsistencyTokenHeader = "x-meridian-consistency-token"

// NodeHeader is the response header naming the node that answered, so a
// test can check the client passes response headers on.
const NodeHeader = "meridian-node"

// Config is a fake node's identity; Faults, which a test may change while
// the node runs, start as Config.Faults.
type Config struct {
	// ID names the node in Members and in NodeHeader; DefaultID if empty.
	ID string
	// Region is the node's region in Members; its zone is Region+"a".
	Region string
	// Cluster is shared by the nodes of one test. Nil gives the node a
	// cluster of its own, in which it is the only member.
	Cluster *Cluster
	// Started, if set, is sent the method of each recorded call before any
	// fault applies, so a test can act while a call is known to be in
	// flight. It must have room (buffered), or calls wait for the reader.
	Started chan<- string
	// Faults are in force from the first call.
	Faults Faults
}

// Faults are what a test makes a node do besides answering. They apply in
// field order. Health checks meet only Delay, and the client's discovery
// (Members, unless RecordMembers) only Delay and NoMembers.
type Faults struct {
	// Delay holds every call, health checks and discovery included, as
	// distance would: the client's probes measure it as round-trip time.
	Delay time.Duration
	// Slow adds a delay per method (short name, "Encrypt") to recorded
	// calls: a node stuck on one operation.
	Slow map[string]time.Duration
	// Block holds recorded calls until their context ends.
	Block bool
	// Unavailable fails the next N recorded calls with Unavailable before
	// they do anything: a node that lost its leader.
	Unavailable int
	// Err, if set, is the answer to every recorded call.
	Err error
	// AppliedIndex, if not zero, is how far the node has applied: it
	// refuses consistency tokens above it and reports it in Members, as a
	// node lagging behind the leader does.
	AppliedIndex uint64
	// NoMembers answers Members with Unimplemented, as servers older than
	// the RPC do.
	NoMembers bool
	// AfterApply makes the next N writes take effect and then answer
	// Unavailable: the ambiguous outcome a client's retry must survive.
	AfterApply int
}

// Call is one recorded call.
type Call struct {
	Method    string        // short name: "Encrypt"
	Request   proto.Message // as decoded; no handler here modifies it
	RequestID string        // "" for reads and for writes sent without one
	Token     string        // ConsistencyTokenHeader's values, comma-joined; "" if none
	At        time.Time     // arrival
}

// Server is a running fake node.
type Server struct {
	id, region, addr string
	cluster          *Cluster
	started          chan<- string
	srv              *grpc.Server
	health           *health.Server
	discoveries      atomic.Int64

	mu            sync.Mutex
	faults        Faults
	recordMembers bool
	calls         []Call
	// answers holds the answer to every write that took effect, by method
	// and request id: a retry gets the first answer, as from a real node.
	answers map[string]any
}

// Start serves a fake node on a new 127.0.0.1 listener, which the gRPC
// server owns from then on (no port is reserved and released), until the
// test ends or Stop. The node joins its cluster's members.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{id: cfg.ID, region: cfg.Region, addr: lis.Addr().String(), cluster: cfg.Cluster,
		started: cfg.Started, health: health.NewServer(), faults: cfg.Faults, answers: map[string]any{}}
	if s.id == "" {
		s.id = DefaultID
	}
	if s.cluster == nil {
		s.cluster = &Cluster{}
	}
	s.srv = grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	apiv1.RegisterKeyManagementServer(s.srv, &service{s: s})
	healthpb.RegisterHealthServer(s.srv, s.health)
	s.health.SetServingStatus(apiv1.KeyManagement_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	s.cluster.add(&apiv1.Member{NodeId: s.id, Region: s.region, Zone: s.region + "a", ApiAddr: s.addr,
		Role: apiv1.MemberRole_MEMBER_ROLE_VOTER, Status: apiv1.MemberStatus_MEMBER_STATUS_ALIVE, Healthy: true,
		BuildVersion: BuildVersion})
	go func() { _ = s.srv.Serve(lis) }()
	tb.Cleanup(s.Stop)
	return s
}

// Addr is where the node listens, and its API address in Members.
func (s *Server) Addr() string { return s.addr }

// ID is the node's id.
func (s *Server) ID() string { return s.id }

// Region is the node's region.
func (s *Server) Region() string { return s.region }

// Cluster is the cluster the node belongs to (its own unless Config gave one).
func (s *Server) Cluster() *Cluster { return s.cluster }

// Stop kills the node: listener and connections closed, calls in flight cut.
func (s *Server) Stop() { s.srv.Stop() }

// Set changes the node's faults; calls already past a check keep what they saw.
func (s *Server) Set(f func(*Faults)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.faults)
}

// SetServing sets what the node's health service answers for KeyManagement.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus(apiv1.KeyManagement_ServiceDesc.ServiceName, st)
}

// RecordMembers makes Members calls recorded calls, subject to faults.
// Otherwise they are the client's own discovery, which a test of some
// other call must not see (or count, or fail): they are only counted,
// by Discoveries.
func (s *Server) RecordMembers(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordMembers = on
}

// Discoveries counts the Members calls that were not recorded.
func (s *Server) Discoveries() int { return int(s.discoveries.Load()) }

// Calls returns the recorded calls in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// RequestIDs returns each recorded call's request id, in arrival order.
func (s *Server) RequestIDs() []string {
	var ids []string
	for _, c := range s.Calls() {
		ids = append(ids, c.RequestID)
	}
	return ids
}

// Last returns the latest recorded call, failing the test if there is none.
func (s *Server) Last(tb testing.TB) Call {
	tb.Helper()
	calls := s.Calls()
	if len(calls) == 0 {
		tb.Fatalf("node %s saw no call", s.id)
	}
	return calls[len(calls)-1]
}

// First returns the first recorded call of method; the zero Call if none.
func (s *Server) First(method string) Call {
	for _, c := range s.Calls() {
		if c.Method == method {
			return c
		}
	}
	return Call{}
}

// Count returns how many recorded calls were of method.
func (s *Server) Count(method string) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Method == method {
			n++
		}
	}
	return n
}

// intercept sees every call first, so recording and faults apply to every
// method alike, implemented or not.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	s.mu.Lock()
	delay := s.faults.Delay
	s.mu.Unlock()
	if err := sleep(ctx, delay); err != nil {
		return nil, err
	}
	method, ok := strings.CutPrefix(info.FullMethod, "/"+apiv1.KeyManagement_ServiceDesc.ServiceName+"/")
	if !ok { // health checks
		return h(ctx, req)
	}
	s.mu.Lock()
	discovery := method == "Members" && !s.recordMembers
	noMembers := method == "Members" && s.faults.NoMembers
	s.mu.Unlock()
	if discovery {
		s.discoveries.Add(1)
		if noMembers {
			return nil, errNoMembers
		}
		return h(ctx, req)
	}
	tokens := metadata.ValueFromIncomingContext(ctx, ConsistencyTokenHeader)
	c := s.record(method, req, strings.Join(tokens, ","))
	_ = grpc.SetHeader(ctx, metadata.Pairs(NodeHeader, s.id))
	if s.started != nil {
		s.started <- method
	}
	if err := s.inject(ctx, method); err != nil {
		return nil, err
	}
	if len(tokens) > 0 {
		if err := s.checkToken(tokens[0]); err != nil {
			return nil, err
		}
	}
	if noMembers {
		return nil, errNoMembers
	}
	return s.answer(ctx, method, req, c.RequestID, h)
}

// errNoMembers is what grpc-go answers for a method the server lacks.
var errNoMembers = status.Error(codes.Unimplemented, "unknown method Members for service meridian.v1.KeyManagement")

func (s *Server) record(method string, req any, token string) Call {
	c := Call{Method: method, Token: token, At: time.Now()}
	if m, ok := req.(proto.Message); ok {
		c.Request = m
		if fd := m.ProtoReflect().Descriptor().Fields().ByName("request_id"); fd != nil {
			c.RequestID = m.ProtoReflect().Get(fd).String()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
	return c
}

func (s *Server) inject(ctx context.Context, method string) error {
	s.mu.Lock()
	slow, block, err := s.faults.Slow[method], s.faults.Block, s.faults.Err
	unavailable := s.faults.Unavailable > 0
	if unavailable {
		s.faults.Unavailable--
	}
	s.mu.Unlock()
	if err := sleep(ctx, slow); err != nil {
		return err
	}
	switch {
	case block:
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	case unavailable:
		return status.Error(codes.Unavailable, "injected: leader lost")
	case err != nil:
		return err
	}
	return nil
}

// checkToken refuses a token the node has not applied as the transport
// does: Unavailable, so the client tries a node that has.
func (s *Server) checkToken(tok string) error {
	idx, err := strconv.ParseUint(tok, 10, 64)
	if err != nil {
		return status.Error(codes.InvalidArgument, "bad consistency token")
	}
	s.mu.Lock()
	applied := s.faults.AppliedIndex
	s.mu.Unlock()
	if applied != 0 && idx > applied {
		return APIError(codes.Unavailable, "KMSUnavailableException", fmt.Sprintf(
			"node %s has not caught up to consistency token %d (applied %d); try another node", s.id, idx, applied))
	}
	return nil
}

// answer runs the handler, or gives the default answer when there is none.
// A write (a request with a request id) takes effect once: a retry gets
// the first answer.
func (s *Server) answer(ctx context.Context, method string, req any, requestID string, h grpc.UnaryHandler) (any, error) {
	key := method + "/" + requestID
	s.mu.Lock()
	resp, done := s.answers[key]
	s.mu.Unlock()
	if !done {
		var err error
		if resp, err = h(ctx, req); status.Code(err) == codes.Unimplemented {
			resp, err = s.defaultAnswer(method, req.(proto.Message))
		}
		if err != nil {
			return nil, err
		}
		if requestID != "" {
			s.mu.Lock()
			s.answers[key] = resp
			s.mu.Unlock()
		}
	}
	if requestID != "" {
		s.mu.Lock()
		fail := s.faults.AfterApply > 0
		if fail {
			s.faults.AfterApply--
		}
		s.mu.Unlock()
		if fail {
			return nil, status.Error(codes.Unavailable, "injected: leadership lost mid-apply")
		}
	}
	return resp, nil
}

// sleep waits d unless ctx ends first, with the status a server would give.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	case <-t.C:
		return nil
	}
}

// APIError is an error as a node sends it: the gRPC code and, in an
// ErrorInfo detail, the exception name callers match on.
func APIError(code codes.Code, exception, msg string) error {
	st, err := status.New(code, msg).WithDetails(&apiv1.ErrorInfo{Exception: exception})
	if err != nil {
		panic(err) // ErrorInfo always marshals
	}
	return st.Err()
}

// ClosedAddr returns a loopback address nothing listens on: the one place
// a port is reserved and released, because nothing is meant to be there.
func ClosedAddr(tb testing.TB) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}
