package proc

import (
	"context"
	"fmt"
	"strconv"
)

// Partitions are iptables rules in the namespace's filter OUTPUT hook
// (loopback traffic crosses OUTPUT once, when sent).
//
// Addresses alone cannot tell senders apart: a connection to 127.0.b.m
// from any node leaves from 127.0.0.1 (the source the 127/8 local route
// prefers), so a rule "from region a's addresses" matches nothing. Each
// region's processes therefore run under their own uid, and the sender is
// known by the socket's owner (-m owner). The receiver is known by the
// destination address for connections the sender opened, and by a
// connection mark for replies on connections the receiver opened: every
// new connection is marked, when its first packet leaves, with the
// opener's region.
const (
	markChain = "MERIDIAN-CHAOS-MARK"
	dropChain = "MERIDIAN-CHAOS-DROP"
)

// regionMark is the connmark of connections opened by region index r
// (0-based); 0 is left for connections the harness itself opens.
func regionMark(r int) int { return r + 1 }

// regionNet is region index r's slice of loopback: node n is 127.0.r+1.n+1.
func regionNet(r int) string { return fmt.Sprintf("127.0.%d.0/24", r+1) }

// setupRules is the rule set installed once, before any node starts.
func setupRules(uids []int) [][]string {
	rules := [][]string{
		{"-N", markChain},
		{"-N", dropChain},
		{"-A", "OUTPUT", "-j", markChain},
		{"-A", "OUTPUT", "-j", dropChain},
	}
	for r, uid := range uids {
		rules = append(rules, []string{"-A", markChain,
			"-m", "conntrack", "--ctstate", "NEW",
			"-m", "owner", "--uid-owner", strconv.Itoa(uid),
			"-j", "CONNMARK", "--set-mark", strconv.Itoa(regionMark(r))})
	}
	return rules
}

// dropRules silences everything region index a's processes send to region
// index b's: new and existing connections a opened to b (by destination),
// and a's replies on connections b opened (by mark). A TCP connection needs
// both directions, so even a one-way drop ends every TCP exchange between
// the two (handshakes and replies are lost); what stays one-way is UDP
// gossip, and which side sees its requests time out versus never arrive.
func dropRules(a, b, uidA int) [][]string {
	uid := strconv.Itoa(uidA)
	return [][]string{
		{"-A", dropChain, "-m", "owner", "--uid-owner", uid, "-d", regionNet(b), "-j", "DROP"},
		{"-A", dropChain, "-m", "owner", "--uid-owner", uid,
			"-m", "connmark", "--mark", strconv.Itoa(regionMark(b)), "-j", "DROP"},
	}
}

// healRules removes every partition rule, leaving the marks.
func healRules() [][]string { return [][]string{{"-F", dropChain}} }

// iptables applies rules in order inside the namespace; -w waits for the
// xtables lock, which every namespace on the machine shares.
func (n *netns) iptables(ctx context.Context, rules [][]string) error {
	for _, r := range rules {
		if err := n.execIn(ctx, "iptables", append([]string{"-w", "5"}, r...)...); err != nil {
			return err
		}
	}
	return nil
}
