package client

import (
	"google.golang.org/grpc"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
)

// endpoint is one node connection.
type endpoint struct {
	addr string
	conn *grpc.ClientConn
	api  apiv1.KeyManagementClient
}

// router chooses the node for each attempt. Today it holds the single
// endpoint New connected to; nearest-node ranking, discovery and failover
// replace its internals later, and only pick's callers see the choice.
type router struct {
	eps []*endpoint
}

func newRouter(eps ...*endpoint) *router { return &router{eps: eps} }

// pick returns the endpoint for the next attempt.
func (r *router) pick() *endpoint { return r.eps[0] }

func (r *router) close() error {
	var first error
	for _, ep := range r.eps {
		if err := ep.conn.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
