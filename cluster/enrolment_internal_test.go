package cluster

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestPermanentJoinErr pins which refusals end a join at once: the ones no
// retry can change. "Not the leader" shares FailedPrecondition with
// ErrEnrolmentUnavailable and must stay retryable.
func TestPermanentJoinErr(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		permanent bool
		sentinel  error
	}{
		{"no exporter", rpcStatus("join n4", fmt.Errorf("enrol n4: %w", ErrEnrolmentUnavailable)), true, ErrEnrolmentUnavailable},
		{"bad key", rpcStatus("join n4", fmt.Errorf("export: %w", ErrInvalidTransportKey)), true, ErrInvalidTransportKey},
		{"bad request", status.Error(codes.InvalidArgument, "join: node id is required"), true, nil},
		{"not leader", status.Error(codes.FailedPrecondition, ErrNotLeader.Error()), false, nil},
		{"exporter hiccup", rpcStatus("join n4", errRetry{errors.New("hsm device error")}), false, nil},
		{"no leader", status.Error(codes.Unavailable, ErrNoLeader.Error()), false, nil},
		{"not a status", errors.New("dial: connection refused"), false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := permanentJoinErr(tc.err)
			if (got != nil) != tc.permanent {
				t.Fatalf("permanentJoinErr(%v) = %v, want permanent %v", tc.err, got, tc.permanent)
			}
			if tc.sentinel != nil && !errors.Is(got, tc.sentinel) {
				t.Errorf("%v does not match %v", got, tc.sentinel)
			}
		})
	}
}
