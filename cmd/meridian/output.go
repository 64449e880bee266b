package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// result is what a command prints: the response for -o json, and the
// ordered text lines for text mode.
type result struct {
	msg    proto.Message
	value  any // printed by -o json (encoding/json) when there is no msg
	fields []field
	table  *table // list commands print a table after the fields
}

type field struct {
	name, value string
	raw         []byte // set for the command's --raw-out payload
	primary     bool
}

func (r *result) add(name, value string) {
	if value != "" {
		r.fields = append(r.fields, field{name: name, value: value})
	}
}

func (r *result) addUint(name string, v uint32) {
	if v != 0 {
		r.add(name, strconv.FormatUint(uint64(v), 10))
	}
}

func (r *result) addBool(name string, v bool) { r.add(name, strconv.FormatBool(v)) }

func (r *result) addTime(name string, ts *timestamppb.Timestamp) {
	if ts != nil {
		r.add(name, ts.AsTime().UTC().Format(time.RFC3339))
	}
}

func (r *result) addCommit(v uint64) {
	if v != 0 {
		r.add("CommitIndex", strconv.FormatUint(v, 10))
	}
}

// addBinary adds a base64 field; primary marks the one --raw-out writes.
func (r *result) addBinary(name string, b []byte, primary bool) {
	if len(b) == 0 && !primary {
		return
	}
	r.fields = append(r.fields, field{name: name, value: base64.StdEncoding.EncodeToString(b), raw: b, primary: primary})
}

// table is a list with a header row.
type table struct {
	header []string
	rows   [][]string
}

// rawOut is the --raw-out flag of commands with a binary result.
type rawOut struct{ path string }

func addRawOutFlag(cmd *cobra.Command, r *rawOut, what string) {
	cmd.Flags().StringVar(&r.path, "raw-out", "",
		"write the "+what+" as raw bytes to `FILE` (mode 0600; \"-\" for stdout) instead of printing base64")
}

// check rejects combinations that would mix raw bytes with other output.
func (r rawOut) check(o *clientOptions) error {
	if r.path == "-" && o.output == outputJSON {
		return usageErrorf("--raw-out - writes raw bytes to stdout and cannot be combined with -o json")
	}
	return nil
}

// emit prints res in the chosen format and writes the raw payload if asked.
func emit(cmd *cobra.Command, o *clientOptions, raw rawOut, res *result) error {
	out := cmd.OutOrStdout()
	if raw.path != "" {
		for i, f := range res.fields {
			if !f.primary {
				continue
			}
			if raw.path == "-" {
				_, err := out.Write(f.raw)
				return err
			}
			if err := writeSecretFile(raw.path, f.raw); err != nil {
				return fmt.Errorf("--raw-out: %w", err)
			}
			res.fields[i].value = fmt.Sprintf("written to %s (%d bytes)", raw.path, len(f.raw))
		}
	}
	if o.output == outputJSON {
		var b []byte
		var err error
		if res.msg != nil {
			b, err = marshalJSON(res.msg, true)
		} else {
			b, err = json.MarshalIndent(res.value, "", "  ")
		}
		if err != nil {
			return fmt.Errorf("encode response as JSON: %w", err)
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	return printText(out, res)
}

func printText(w io.Writer, res *result) error {
	var b strings.Builder
	for _, f := range res.fields {
		fmt.Fprintf(&b, "%s: %s\n", f.name, f.value)
	}
	if t := res.table; t != nil {
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
		for _, row := range t.rows {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSecretFile writes data readable by the owner only: the payload may be
// a plaintext or a private key. An existing file is replaced.
func writeSecretFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
