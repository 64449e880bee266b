package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meridiankms/meridian/client"
)

// Error codes of failures that are not the server's: with -o json every
// error is {"error": {"code": ..., "message": ...}}, and a script branches
// on code, so the CLI's own failures get names too.
const (
	codeUsage      = "UsageError"      // the command line was wrong (exit 2)
	codeConnection = "ConnectionError" // no node could be reached
	codeCLI        = "CLIError"        // anything else on this side: a file, the terminal
)

// codedError is a failure the CLI reports under an exception name although
// no *client.Error carries it: a signature or MAC that did not verify (the
// API answers valid=false) or an Operator API status.
type codedError struct {
	code string // e.g. "KMSInvalidSignatureException"
	msg  string // the message alone, for -o json
	text string // the text-mode line; "" means "code: msg"
}

func (e *codedError) Error() string {
	switch {
	case e.text != "":
		return e.text
	case e.msg == "":
		return e.code
	}
	return e.code + ": " + e.msg
}

// errorReport names err for -o json: the exception name that the text
// error shows (from the API's ErrorInfo detail, or the gRPC code when the
// server sent none), and the message without that name.
func errorReport(err error) (code, msg string) {
	var ce *codedError
	var ae *client.Error
	var ue usageError
	switch {
	case errors.As(err, &ce):
		if ce == err {
			return ce.code, ce.msg
		}
		return ce.code, err.Error()
	case errors.As(err, &ae):
		code = ae.Exception
		if code == "" {
			code = ae.Code.String()
		}
		if ae == err {
			return code, ae.Message
		}
		return code, err.Error()
	case errors.As(err, &ue):
		return codeUsage, err.Error()
	case errors.Is(err, client.ErrNoReachableNode):
		return codeConnection, err.Error()
	}
	return codeCLI, err.Error()
}

// printError writes err to w as run reports it: one JSON object when the
// command line asked for -o json, else "error: ..." plus, for a usage
// error, where to find help.
func printError(w io.Writer, cmd *cobra.Command, args []string, err error) {
	if wantsJSON(cmd, args) {
		code, msg := errorReport(err)
		type body struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		b, _ := json.Marshal(struct {
			Error body `json:"error"`
		}{body{code, msg}})
		w.Write(append(b, '\n'))
		return
	}
	io.WriteString(w, "error: "+err.Error()+"\n")
	var ue usageError
	if errors.As(err, &ue) {
		io.WriteString(w, "Run '"+cmd.CommandPath()+" --help' for usage.\n")
	}
}

// wantsJSON reports whether cmd's output is JSON: its -o flag, else what
// the raw args say (flag parsing may have stopped at an earlier bad flag),
// else MERIDIAN_OUTPUT.
func wantsJSON(cmd *cobra.Command, args []string) bool {
	if cmd == nil {
		return false
	}
	f := cmd.Flags().Lookup("output")
	if f == nil {
		return false
	}
	if f.Changed {
		return f.Value.String() == string(outputJSON)
	}
	v, given := "", false // the last -o wins, as in flag parsing
	for i, a := range args {
		if a == "--" {
			break
		}
		switch {
		case (a == "-o" || a == "--output") && i+1 < len(args):
			v, given = args[i+1], true
		case strings.HasPrefix(a, "--output="):
			v, given = strings.TrimPrefix(a, "--output="), true
		case strings.HasPrefix(a, "-o") && a != "-o":
			v, given = strings.TrimPrefix(strings.TrimPrefix(a, "-o"), "="), true
		}
	}
	if !given {
		v = strings.TrimSpace(os.Getenv(envName("output")))
	}
	return strings.EqualFold(v, string(outputJSON))
}
