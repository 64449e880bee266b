package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/CLI.md from the command tree")

const cliDocPath = "../../docs/CLI.md"

// docs/CLI.md is generated from the commands' own help, so it cannot drift:
// this test fails when it is stale; `go test ./cmd/meridian -run CLIReference
// -update` rewrites it.
func TestCLIReferenceUpToDate(t *testing.T) {
	want := renderCLIReference(newRootCmd())
	if *updateDocs {
		if err := os.WriteFile(cliDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(cliDocPath)
	if err != nil || string(got) != want {
		t.Fatalf("%s is stale or missing (%v); run: go test ./cmd/meridian -run CLIReference -update", cliDocPath, err)
	}
}

func renderCLIReference(root *cobra.Command) string {
	var b strings.Builder
	b.WriteString(`# meridian CLI reference

Generated from the commands' help by ` + "`go test ./cmd/meridian -run CLIReference -update`" + `;
edit the help text in cmd/meridian, not this file. ` + "`meridian <command> --help`" + ` prints the same.

Conventions for every ` + "`meridian key`" + ` command:

- ` + "`--key`" + ` names a key by id, alias (` + "`alias/NAME`" + `) or full name (` + "`meridian:key/<id>`" + `).
- Binary inputs: ` + "`--NAME STRING`" + ` or ` + "`--NAME-file PATH`" + ` (` + "`-`" + ` for stdin). Plaintexts and
  messages are raw bytes; ciphertexts, signatures and MACs are base64 unless ` + "`--binary`" + `.
- Binary outputs print as base64; ` + "`--raw-out FILE`" + ` writes the raw bytes (mode 0600; ` + "`-`" + ` for stdout).
- Enum values use the AWS spellings (` + "`SYMMETRIC_DEFAULT`" + `, ` + "`RSASSA_PSS_SHA_256`" + `), any case.
- ` + "`-o json`" + ` prints the response as JSON: lowerCamelCase field names, every field present
  (` + "`null`" + ` when unset), bytes as base64, enum values in the AWS spellings of the text output
  (` + "`\"keySpec\": \"SYMMETRIC_DEFAULT\"`" + `, ` + "`\"keyState\": \"Disabled\"`" + `), numbers as JSON numbers.
- Exit status: 0 success, 1 the operation failed (` + "`error: <Exception>: <message>`" + ` on stderr),
  2 the command line was wrong. With ` + "`-o json`" + ` the error is one JSON object on stderr instead:
  ` + "`{\"error\": {\"code\": \"DisabledException\", \"message\": \"...\"}}`" + `; the code is the
  exception name, or ` + "`UsageError`" + `, ` + "`ConnectionError`" + ` or ` + "`CLIError`" + ` for failures on the
  client's side.
- Plaintext gRPC needs ` + "`--insecure`" + ` until TLS client configuration arrives.

`)
	key, _, err := root.Find([]string{"key"})
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(&b, "## Connection and output flags (all `meridian key` and `meridian operator` commands)\n\n```\n%s```\n\n",
		key.PersistentFlags().FlagUsages())
	// The whole tree, so a new command cannot be left out: every available
	// command (hidden ones and cobra's help are not) in cobra's order. A
	// group only prints its help; its children carry the detail.
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.HasAvailableSubCommands() {
			fmt.Fprintf(&b, "## %s\n\n%s\n\n", c.CommandPath(), c.Long)
			fmt.Fprintf(&b, "```\n%s\n```\n\n", c.Example)
			if fl := c.LocalNonPersistentFlags().FlagUsages(); fl != "" {
				fmt.Fprintf(&b, "Flags:\n\n```\n%s```\n\n", fl)
			}
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub)
			}
		}
	}
	walk(root)
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// The reference covers every command a user can run: a command added
// anywhere in the tree appears without anyone listing it.
func TestCLIReferenceCoversEveryCommand(t *testing.T) {
	root := newRootCmd()
	doc := renderCLIReference(root)
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() {
				continue
			}
			if !sub.HasAvailableSubCommands() && !strings.Contains(doc, "\n## "+sub.CommandPath()+"\n") {
				t.Errorf("%s is missing from the reference", sub.CommandPath())
			}
			walk(sub)
		}
	}
	walk(root)
	for _, want := range []string{"meridian chaos run", "meridian version", "meridian operator gossip-keygen"} {
		if !strings.Contains(doc, "\n## "+want+"\n") {
			t.Errorf("%s is missing from the reference", want)
		}
	}
}

// A backquoted word in a flag's help becomes its value name in --help
// ("--chaos meridian chaos run" once): a flag that takes no value must not
// get one, and a value name is one word in capitals (HOST:PORT, FILE).
func TestFlagHelpValueNames(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			name, _ := pflag.UnquoteUsage(f)
			if f.NoOptDefVal != "" && strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s takes no value but its help names one: %q", c.CommandPath(), f.Name, f.Usage)
			}
			if strings.ContainsAny(name, " \t") {
				t.Errorf("%s --%s: value name %q is not one word (a backquoted phrase in its help?)", c.CommandPath(), f.Name, name)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
}
