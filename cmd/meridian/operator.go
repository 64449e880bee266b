package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	apiv1 "github.com/meridiankms/meridian/api/meridian/v1"
	"github.com/meridiankms/meridian/client"
)

func newOperatorCmd() *cobra.Command {
	op := groupCmd(&cobra.Command{
		Use:   "operator",
		Short: "Inspect and operate a cluster",
		Long: `Operator commands: the cluster's membership and Raft peers as a node sees
them, the nodes' HSMs and the cluster's domain key, and utilities for
setting a cluster up. As for "meridian key", every connection and output
flag may be set as MERIDIAN_<FLAG> in the environment; a flag wins.`,
		Example: `  meridian operator members --insecure --addr 127.0.0.1:7400
  meridian operator raft list-peers --insecure
  meridian operator gossip-keygen > gossip.key
  meridian operator hsm status --insecure --addr 127.0.0.1:7400
  meridian operator domain-key rotate --insecure --addr 127.0.0.1:7400`,
	})
	o := addClientFlags(op)
	raft := groupCmd(&cobra.Command{
		Use:     "raft",
		Short:   "Inspect the Raft configuration",
		Long:    "Inspect the Raft configuration: which nodes vote, which replicate without voting, and where.",
		Example: "  meridian operator raft list-peers --insecure",
	})
	raft.AddCommand(newRaftListPeersCmd(o))
	op.AddCommand(newMembersCmd(o), raft, newGossipKeygenCmd(), newOperatorHSMCmd(o), newOperatorDomainKeyCmd(o))
	return op
}

func newMembersCmd(o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the cluster's members with their regions, roles and health",
		Long: `List every node the answering node knows of, from its gossip view merged
with the Raft configuration: region, zone, API address, Raft role (VOTER,
NONVOTER, or NONE while autopilot has not added it), gossip status and the
health bit the node advertises.`,
		Example: `  meridian operator members --insecure --addr 127.0.0.1:7400 -o json`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.call(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Members(ctx, &apiv1.MembersRequest{})
				if err != nil {
					return err
				}
				t := &table{header: []string{"NODE", "REGION", "ZONE", "API", "ROLE", "LEADER", "STATUS", "HEALTHY", "VERSION"}}
				for _, m := range resp.GetMembers() {
					t.rows = append(t.rows, []string{m.GetNodeId(), m.GetRegion(), m.GetZone(), m.GetApiAddr(),
						enumText(m.GetRole()), strconv.FormatBool(m.GetLeader()),
						enumText(m.GetStatus()), strconv.FormatBool(m.GetHealthy()), m.GetBuildVersion()})
				}
				r := &result{msg: resp, table: t}
				r.add("ServedBy", resp.GetServedBy())
				r.add("Leader", resp.GetLeaderId())
				r.add("AppliedIndex", strconv.FormatUint(resp.GetAppliedIndex(), 10))
				return emit(cmd, o, rawOut{}, r)
			})
		},
	}
}

func newRaftListPeersCmd(o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list-peers",
		Short: "List the Raft voters and non-voters, by region",
		Long: `List the servers in the Raft configuration (voters and non-voters) with
their regions, and a per-region voter count: with three or more regions no
region should hold a majority of the voters, so that any one can be lost.`,
		Example: `  meridian operator raft list-peers --insecure`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.call(cmd, func(ctx context.Context, c *client.Client) error {
				resp, err := c.Members(ctx, &apiv1.MembersRequest{})
				if err != nil {
					return err
				}
				t := &table{header: []string{"NODE", "REGION", "ADDRESS", "ROLE", "LEADER", "STATUS"}}
				voters := map[string]int{}
				var regions []string
				for _, m := range resp.GetMembers() {
					role := m.GetRole()
					if role != apiv1.MemberRole_MEMBER_ROLE_VOTER && role != apiv1.MemberRole_MEMBER_ROLE_NONVOTER {
						continue
					}
					if _, seen := voters[m.GetRegion()]; !seen {
						regions = append(regions, m.GetRegion())
						voters[m.GetRegion()] = 0
					}
					if role == apiv1.MemberRole_MEMBER_ROLE_VOTER {
						voters[m.GetRegion()]++
					}
					t.rows = append(t.rows, []string{m.GetNodeId(), m.GetRegion(), m.GetApiAddr(),
						enumText(role), strconv.FormatBool(m.GetLeader()),
						enumText(m.GetStatus())})
				}
				var spread []string
				for _, r := range regions {
					spread = append(spread, fmt.Sprintf("%s=%d", r, voters[r]))
				}
				r := &result{msg: resp, table: t}
				r.add("Leader", resp.GetLeaderId())
				r.add("VotersByRegion", strings.Join(spread, " "))
				return emit(cmd, o, rawOut{}, r)
			})
		},
	}
}

func newGossipKeygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gossip-keygen",
		Short: "Print a new random gossip encryption key (base64, 32 bytes)",
		Long: `Print a new random 32-byte key, base64-encoded, for encrypting gossip.
Every node of a cluster needs the same key, given as MERIDIAN_GOSSIP_KEY or
in a file named by --gossip-key-file. Treat it as a secret.`,
		Example: `  meridian operator gossip-keygen > /etc/meridian/gossip.key && chmod 600 /etc/meridian/gossip.key`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key := make([]byte, 32)
			if _, err := rand.Read(key); err != nil {
				return fmt.Errorf("read random: %w", err)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(key))
			return err
		},
	}
}
