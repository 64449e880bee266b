// Command meridian is Meridian's single binary: the node (`server`, `demo`),
// the client CLI (`key ...`, `operator ...`), the cluster's certificate
// authority (`tls ...`), the game-day runner (`chaos run`) and `version`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/meridiankms/meridian/buildinfo"
)

// Exit codes: 1 for a failed operation, 2 for a command line that could not
// be understood (bad flag, unknown command, missing or conflicting input).
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns its exit code; it is main
// without the process, so tests drive the real command tree in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	printError(stderr, cmd, args, err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}

// newRootCmd builds the whole command tree. Each call returns a fresh tree,
// so tests never share flag state.
func newRootCmd() *cobra.Command {
	root := groupCmd(&cobra.Command{
		Use:   "meridian",
		Short: "Meridian: a replicated multi-region key management service",
		Long: `Meridian is a self-hosted key management service that runs as one cluster
spread over several regions. This binary runs a node and is also the
command-line client for the key management API.`,
		Example: `  meridian demo
  meridian key create --insecure --description "orders"`,
	})
	root.Version = buildinfo.Version() // --version; `meridian version` says more
	root.SetVersionTemplate("meridian {{.Version}}\n")
	root.SilenceErrors = true // run prints errors once, in one format
	root.SilenceUsage = true  // a failed operation is not a usage problem
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	addCommands(root)
	return root
}

// addCommands registers the top-level commands: the node's (server, demo),
// the clients' (operator, key) and the rest.
func addCommands(root *cobra.Command) {
	root.AddCommand(newServerCmd(), newDemoCmd(), newOperatorCmd(), newTLSCmd(), newChaosCmd(), newVersionCmd())
	addKeyCommands(root)
}

// usageError marks an error in the command line itself (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// groupCmd makes cmd a command that only holds subcommands: without one it
// prints help, and an unknown one is a usage error rather than cobra's
// silent help (which would exit 0). Setting Args takes over from cobra's
// own check, so the "did you mean" suggestions are made here.
func groupCmd(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2 // cobra's default, applied only on its own path
		}
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return usageError{errors.New(msg)}
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	return cmd
}

// noArgs rejects positional arguments: every input is a named flag.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s takes no positional arguments (got %q); inputs are flags", c.CommandPath(), args[0])
	}
	return nil
}
