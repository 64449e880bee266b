package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

// operatorCall runs fn against the Operator service of exactly one node,
// the first --addr: operator commands are about that node (its HSM, its
// view), so there is no discovery or failover. With stream set the
// --timeout bounds the call only when given explicitly, since a rotation
// of many key versions can outlast any default.
func (o *clientOptions) operatorCall(cmd *cobra.Command, stream bool, fn func(context.Context, apiv1.OperatorClient) error) error {
	if err := o.check(); err != nil {
		return err
	}
	addr := o.addrs[0]
	ctx, cancel := context.WithCancel(cmd.Context())
	if !stream || cmd.Flags().Changed("timeout") {
		ctx, cancel = context.WithTimeout(cmd.Context(), o.timeout)
	}
	defer cancel()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return usageErrorf("--addr %s: %v", addr, err)
	}
	defer conn.Close()
	if err := fn(ctx, apiv1.NewOperatorClient(conn)); err != nil {
		return operatorError(addr, err)
	}
	return nil
}

// operatorError prints a status as the key commands do, "<Exception>:
// <message>", and says which node answered (or did not).
func operatorError(addr string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	name := st.Code().String()
	for _, d := range st.Details() {
		if info, ok := d.(*apiv1.ErrorInfo); ok && info.GetException() != "" {
			name = info.GetException()
		}
	}
	e := &codedError{code: name, msg: st.Message(), text: fmt.Sprintf("node %s: %s: %s", addr, name, st.Message())}
	switch st.Code() {
	case codes.Unimplemented:
		e.text = fmt.Sprintf("node %s does not serve the Operator API (an older version?): %s", addr, st.Message())
	case codes.Unavailable:
		if name != codes.Unavailable.String() {
			break // the node answered, with an exception
		}
		e.code = codeConnection
		e.text = fmt.Sprintf("node %s unreachable: %s", addr, st.Message())
		if client.IsNotGRPC(err) {
			e.msg = client.ErrNotGRPC.Error()
			e.text = fmt.Sprintf("node %s: %s", addr, e.msg)
		}
	}
	return e
}

// versionList spells DK versions as "v1,v2".
func versionList(vs []uint32) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = "v" + strconv.FormatUint(uint64(v), 10)
	}
	return strings.Join(s, ",")
}

func newOperatorDomainKeyCmd(o *clientOptions) *cobra.Command {
	c := groupCmd(&cobra.Command{
		Use:   "domain-key",
		Short: "Rotate the cluster's domain key and see where key versions stand",
		Long: `The domain key (DK) lives only inside the nodes' HSMs and wraps every key
version Meridian stores. These commands rotate it across the cluster, show
which DK versions a node's HSM holds and how many key versions each wraps,
and bring a node that missed a rotation up to date.`,
		Example: `  meridian operator domain-key status --insecure --addr 10.0.0.1:7400
  meridian operator domain-key rotate --insecure --addr 10.0.0.1:7400`,
	})
	c.AddCommand(newDKStatusCmd(o), newDKRotateCmd(o), newDKSyncCmd(o))
	return c
}

func newDKStatusCmd(o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the DK versions a node's HSM holds and key versions per DK version",
		Long: `Show, for the node at --addr, the DK versions its HSM holds and the current
one, and from its replica of the cluster state how many key versions each
DK version wraps. Pending counts the key versions not yet under the
current DK version: what "domain-key rotate" still has to re-wrap.`,
		Example: `  meridian operator domain-key status --insecure --addr 10.0.0.1:7400 -o json`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.operatorCall(cmd, false, func(ctx context.Context, c apiv1.OperatorClient) error {
				resp, err := c.DomainKeyStatus(ctx, &apiv1.DomainKeyStatusRequest{})
				if err != nil {
					return err
				}
				r := &result{msg: resp}
				r.add("Node", resp.GetNodeId())
				r.add("HSMBackend", resp.GetHsmBackend())
				held := versionList(resp.GetHsmDomainKeyVersions())
				if held == "" {
					held = "none (not initialised or enrolled)"
				}
				r.add("HSMDomainKeyVersions", held)
				if v := resp.GetCurrentDomainKeyVersion(); v != 0 {
					r.add("Current", "v"+strconv.FormatUint(uint64(v), 10))
				}
				r.add("KeyVersions", strconv.FormatUint(resp.GetTotalKeyVersions(), 10))
				r.add("Pending", strconv.FormatUint(resp.GetPendingKeyVersions(), 10))
				t := &table{header: []string{"DOMAIN_KEY", "KEY_VERSIONS"}}
				for _, kv := range resp.GetKeyVersions() {
					t.rows = append(t.rows, []string{"v" + strconv.FormatUint(uint64(kv.GetDomainKeyVersion()), 10), strconv.FormatUint(kv.GetKeyVersions(), 10)})
				}
				if len(t.rows) > 0 {
					r.table = t
				}
				return emit(cmd, o, rawOut{}, r)
			})
		},
	}
}

func newDKRotateCmd(o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate",
		Short: "Rotate the domain key across the cluster and re-wrap every key version",
		Long: `Rotate the domain key, led by the node at --addr, while the cluster keeps
serving:

  1. rotate-hsm   a new DK version is made inside that node's HSM;
  2. distribute   every other live member imports it from that node, HSM to
                  HSM (enrolment's transport-key exchange, over the nodes'
                  cluster plane, which clients cannot reach); a member that
                  fails stops the rotation here, before anything is
                  re-wrapped, and is named;
  3. rewrap       every key version is re-wrapped under the new DK version
                  through Raft, in batches;
  4. done.

Progress prints as it happens: one line per step, or a progress bar for the
re-wrap on a terminal; -o json prints each progress message as one JSON
line. The key material itself does not change, so every ciphertext keeps
decrypting throughout.

Running it again is safe: when the node's HSM already holds a DK version
newer than some key versions use (an interrupted run), no further version
is made and the run resumes. Members that are dead are skipped and told
about; when one is back, run "domain-key sync" on it.

There is no deadline unless --timeout is given. Interrupting the command
cancels the run at the next step; run it again to resume.`,
		Example: `  meridian operator domain-key rotate --insecure --addr 10.0.0.1:7400`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.operatorCall(cmd, true, func(ctx context.Context, c apiv1.OperatorClient) error {
				stream, err := c.RotateDomainKey(ctx, &apiv1.RotateDomainKeyRequest{})
				if err != nil {
					return err
				}
				p := newProgressPrinter(cmd.OutOrStdout(), o.output == outputJSON)
				defer p.finish()
				for {
					msg, err := stream.Recv()
					if errors.Is(err, io.EOF) {
						return nil
					}
					if err != nil {
						p.finish()
						return err
					}
					if err := p.print(msg); err != nil {
						return err
					}
				}
			})
		},
	}
}

func newDKSyncCmd(o *clientOptions) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Make a node fetch the DK versions it lacks from another member",
		Long: `Make the node at --addr import the DK versions its HSM lacks from the member
at --from: its HSM makes a transport key pair, the member's HSM wraps its
DK versions to it, and the node's HSM unwraps them. No DK is ever in the
clear outside an HSM. For a node that was down during "domain-key rotate".
--from must be the API address of a live member of the same cluster (as
"operator members" lists it); the node at --addr looks that member up and
makes the exchange with it over the cluster plane (--cluster-addr), so
neither address needs to be the cluster one.`,
		Example: `  meridian operator domain-key sync --insecure --addr 10.0.0.3:7400 --from 10.0.0.1:7400`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return usageErrorf("--from is required: the API address of a member that holds the DK versions")
			}
			if err := checkAddr("--from", from); err != nil {
				return err
			}
			return o.operatorCall(cmd, false, func(ctx context.Context, c apiv1.OperatorClient) error {
				resp, err := c.SyncDomainKeys(ctx, &apiv1.SyncDomainKeysRequest{SourceApiAddr: from})
				if err != nil {
					return err
				}
				r := &result{msg: resp}
				r.add("Node", resp.GetNodeId())
				imported := versionList(resp.GetImportedVersions())
				if imported == "" {
					imported = "none (it already held every version)"
				}
				r.add("Imported", imported)
				r.add("HSMDomainKeyVersions", versionList(resp.GetHsmDomainKeyVersions()))
				return emit(cmd, o, rawOut{}, r)
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "API `HOST:PORT` of the member to fetch the DK versions from")
	return cmd
}

// progressPrinter shows a rotation's progress: a line per step, or on a
// terminal a re-wrap bar redrawn in place; JSON mode prints one JSON
// object per line.
type progressPrinter struct {
	w      io.Writer
	json   bool
	tty    bool
	barLen int // length of the bar line on screen; 0 when none is drawn
}

func newProgressPrinter(w io.Writer, json bool) *progressPrinter {
	return &progressPrinter{w: w, json: json, tty: isTerminal(w)}
}

func (p *progressPrinter) print(m *apiv1.RotateDomainKeyProgress) error {
	if p.json {
		b, err := marshalJSON(m, false)
		if err != nil {
			return fmt.Errorf("encode progress as JSON: %w", err)
		}
		_, err = fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	if m.GetPhase() == apiv1.RotatePhase_ROTATE_PHASE_REWRAP && p.tty {
		line := fmt.Sprintf("rewrap: %s %d/%d key versions", bar(m.GetDone(), m.GetTotal(), 30), m.GetDone(), m.GetTotal())
		_, err := fmt.Fprintf(p.w, "\r%-*s", p.barLen, line)
		p.barLen = len(line)
		return err
	}
	p.finish()
	_, err := fmt.Fprintln(p.w, progressLine(m))
	return err
}

// finish ends a bar line so the next output starts on its own line.
func (p *progressPrinter) finish() {
	if p.barLen > 0 {
		fmt.Fprintln(p.w)
		p.barLen = 0
	}
}

func bar(done, total uint64, width int) string {
	filled := width
	if total > 0 {
		filled = int(done * uint64(width) / total)
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

func progressLine(m *apiv1.RotateDomainKeyProgress) string {
	v := m.GetDomainKeyVersion()
	switch m.GetPhase() {
	case apiv1.RotatePhase_ROTATE_PHASE_ROTATE_HSM:
		if m.GetSkipped() {
			return fmt.Sprintf("rotate-hsm: resuming with domain key v%d, already in this node's HSM (an earlier run was interrupted)", v)
		}
		return fmt.Sprintf("rotate-hsm: made domain key v%d in this node's HSM", v)
	case apiv1.RotatePhase_ROTATE_PHASE_DISTRIBUTE:
		node := fmt.Sprintf("%s (%s)", m.GetNodeId(), m.GetApiAddr())
		switch m.GetOutcome() {
		case apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_OK:
			if imp := m.GetImportedVersions(); len(imp) > 0 {
				return fmt.Sprintf("distribute: %s ok, imported %s", node, versionList(imp))
			}
			return fmt.Sprintf("distribute: %s ok, already held v%d", node, v)
		case apiv1.DistributeOutcome_DISTRIBUTE_OUTCOME_SKIPPED:
			return fmt.Sprintf("distribute: %s skipped: %s", node, m.GetDetail())
		default:
			return fmt.Sprintf("distribute: %s FAILED: %s", node, m.GetDetail())
		}
	case apiv1.RotatePhase_ROTATE_PHASE_REWRAP:
		return fmt.Sprintf("rewrap: %d/%d key versions", m.GetDone(), m.GetTotal())
	case apiv1.RotatePhase_ROTATE_PHASE_DONE:
		return fmt.Sprintf("done: every key version is under domain key v%d", v)
	}
	return fmt.Sprintf("progress: %v", m)
}
