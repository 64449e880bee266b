package settings

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/CONFIG.md from the settings table")

const configDocPath = "../../docs/CONFIG.md"

// docs/CONFIG.md is generated from the settings table, so it cannot
// drift: this test fails when it is stale; `go test ./node/settings -run
// ConfigReference -update` rewrites it.
func TestConfigReferenceUpToDate(t *testing.T) {
	want := renderConfigReference()
	if *updateDocs {
		if err := os.WriteFile(configDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(configDocPath)
	if err != nil || string(got) != want {
		t.Fatalf("%s is stale or missing (%v); run: go test ./node/settings -run ConfigReference -update", configDocPath, err)
	}
}

func renderConfigReference() string {
	var b strings.Builder
	b.WriteString(`# meridian server settings

Generated from the settings table (node/settings) by ` + "`go test ./node/settings -run ConfigReference -update`" + `;
edit the table, not this file.

Every setting is a flag of ` + "`meridian server`" + `, an environment variable and a key of the
` + "`--config`" + ` file (YAML, JSON or TOML), in that order of precedence: a flag beats the
variable, which beats the file. A value from the environment or the file is parsed by the
flag's own parser, so a bad one is refused naming where it came from. An unknown key in the
file is an error. Secrets have no flag of their own: each is read from a file named by a
flag or from an environment variable (` + "`" + EnvHSMPassphrase + "`, `" + EnvHSMPIN + "`, `" + EnvGossipKey + "`" + `).

Besides these, ` + "`server`" + ` takes ` + "`--config FILE`" + `, ` + "`--insecure`" + `, ` + "`--chaos`" + `, ` + "`--log-level`" + ` and
` + "`--log-format`" + ` (also as ` + "`MERIDIAN_<FLAG>`" + ` and file keys).

| flag | environment | config key | default | meaning |
| --- | --- | --- | --- | --- |
`)
	def := Defaults()
	fs := pflag.NewFlagSet("doc", pflag.ContinueOnError)
	Register(fs, &def)
	for _, s := range All() {
		if s.Deprecated != "" {
			continue
		}
		f := fs.Lookup(s.Name)
		d := f.DefValue
		switch {
		case s.Required:
			d = "(required)"
		case d == "" || d == "[]":
			d = "-"
		}
		_, usage := pflag.UnquoteUsage(f)
		fmt.Fprintf(&b, "| `--%s` | `%s` | `%s` | %s | %s |\n", s.Name, EnvName(s.Name), s.Name, code(d), strings.ReplaceAll(usage, "|", "\\|"))
	}
	b.WriteString(`
## TLS

` + "`--tls-cert`, `--tls-key` and `--tls-ca`" + ` turn TLS 1.3 on, together (one of them alone is refused,
naming the missing flag); without them the server refuses to start unless ` + "`--insecure`" + `.
With TLS:

- the client API (` + "`--api-addr`" + `) verifies a client certificate when the caller presents one and
  names the caller by its SPIFFE ID; a caller without one is anonymous;
- the cluster plane (` + "`--cluster-addr`" + `) and Raft (` + "`--raft-addr`" + `) run mutual TLS and admit only
  node certificates of the cluster's trust domain (` + "`spiffe://TRUST-DOMAIN/node/ID`" + `); a join is
  accepted only from the node its certificate names; every node-to-node dial presents this
  node's certificate and accepts only a node of the trust domain;
- gossip stays encrypted with the gossip key, not TLS;
- the metrics endpoint (` + "`--metrics-addr`" + `) stays plaintext: keep it on a host-local or
  monitoring network.

` + "`--tls-cert`" + ` must be a node certificate naming ` + "`--node-id`" + ` (` + "`meridian tls cert create --node ID`" + `).
The files are reloaded when they change and on SIGHUP, without a restart; new connections
present the new certificate, established ones keep theirs. See docs/PKI.md.

## Bind and advertise addresses

Every listener has a bind address (` + "`--api-addr`, `--cluster-addr`, `--raft-addr`, `--gossip-addr`, `--metrics-addr`" + `)
and, metrics apart, an advertise address (` + "`--advertise-*-addr`" + `) that other nodes and clients are
told. The advertise address defaults to the bound one. A bind to every interface (` + "`0.0.0.0`" + `,
` + "`[::]`" + ` or an empty host, as in a container) is no address anyone can dial, so the server refuses
it without the matching ` + "`--advertise-*-addr`" + `, naming the flag.

- API and cluster advertise addresses are kept as given: a host name (a Kubernetes service,
  a compose service name) is resolved by whoever dials, at every dial.
- Raft and gossip need IP addresses: a host name there is resolved when the node starts,
  every time it starts. Nothing resolved is kept in the node's own state; a node restarted
  at a new IP advertises the new one in gossip, and the leader updates the Raft
  configuration and the node's registration to match. The other members only retry its
  old gossip address, so a node that may come back elsewhere should always start with
  ` + "`--join-gossip`" + ` seeds (or ` + "`--join`" + `, which is idempotent and also updates its addresses;
  without gossip it is the only way).
- The deprecated ` + "`--gossip-advertise-addr`" + ` still works and means ` + "`--advertise-gossip-addr`" + `.

In a container: bind ` + "`0.0.0.0`" + ` and advertise the container's service name (API, cluster)
and its name or IP (Raft, gossip), e.g.

    meridian server --insecure --data-dir /data --join kms-0.kms:7404 \
      --api-addr 0.0.0.0:7400 --advertise-api-addr kms-1.kms:7400 \
      --cluster-addr 0.0.0.0:7404 --advertise-cluster-addr kms-1.kms:7404 \
      --raft-addr 0.0.0.0:7401 --advertise-raft-addr kms-1.kms:7401 \
      --gossip-addr 0.0.0.0:7403 --advertise-gossip-addr kms-1.kms:7403 \
      --metrics-addr 0.0.0.0:7402
`)
	return b.String()
}

func code(s string) string {
	if s == "-" || strings.HasPrefix(s, "(") {
		return s
	}
	return "`" + s + "`"
}
