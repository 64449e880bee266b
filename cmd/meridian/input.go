package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// maxInput caps what the CLI reads from a file or stdin: far above any
// request the API accepts, low enough that a wrong path (a disk image, a
// never-ending pipe) fails fast instead of eating memory.
const maxInput = 1 << 20

// blobInput is one binary input given as --NAME STRING or --NAME-file PATH
// ("-" for stdin).
type blobInput struct {
	name     string // flag name, e.g. "plaintext"
	inline   string
	file     string
	encoded  bool // inline and file contents are base64 (ciphertexts, signatures, MACs)
	required bool
	// max, when set, is the most bytes the operation accepts; a larger
	// input is a usage error made before any call, ending with tooLarge
	// (what the limit is and what to do instead).
	max      int
	tooLarge string
}

// addBlobFlags registers --NAME and --NAME-file on cmd.
func addBlobFlags(cmd *cobra.Command, in *blobInput, what string) {
	fs := cmd.Flags()
	if in.encoded {
		fs.StringVar(&in.inline, in.name, "", what+", base64-encoded")
		fs.StringVar(&in.file, in.name+"-file", "", "read the "+what+" from `PATH` (\"-\" for stdin), base64 unless --binary")
		return
	}
	fs.StringVar(&in.inline, in.name, "", what+" given as a string on the command line")
	fs.StringVar(&in.file, in.name+"-file", "", "read the "+what+" (raw bytes) from `PATH` (\"-\" for stdin)")
}

// read returns the input's bytes. binary means an encoded input's file holds
// raw bytes rather than base64.
func (in *blobInput) read(cmd *cobra.Command, binary bool) ([]byte, error) {
	inlineSet := cmd.Flags().Changed(in.name)
	fileSet := in.file != ""
	switch {
	case inlineSet && fileSet:
		return nil, usageErrorf("give either --%s or --%s-file, not both", in.name, in.name)
	case !inlineSet && !fileSet:
		if !in.required {
			return nil, nil
		}
		return nil, usageErrorf("--%s or --%s-file is required", in.name, in.name)
	case inlineSet:
		if !in.encoded {
			return in.checkSize("--"+in.name, len(in.inline), false, []byte(in.inline))
		}
		data, err := decodeBase64(in.name, []byte(in.inline))
		if err != nil {
			return nil, err
		}
		return in.checkSize("--"+in.name, len(data), false, data)
	}
	flag := fmt.Sprintf("--%s-file %s", in.name, in.file)
	data, err := readFileOrStdin(cmd, in.file)
	if errors.Is(err, errTooLarge) && in.max > 0 {
		return in.checkSize(flag, fileSize(in.file), true, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("--%s-file: %w", in.name, err)
	}
	if in.encoded && !binary {
		if data, err = decodeBase64(in.name, data); err != nil {
			return nil, err
		}
	}
	return in.checkSize(flag, len(data), false, data)
}

// checkSize passes data through unless it is over in.max; n is its size
// (-1 unknown), atLeast says the reading stopped at maxInput.
func (in *blobInput) checkSize(what string, n int, atLeast bool, data []byte) ([]byte, error) {
	if in.max == 0 || (n <= in.max && !atLeast) {
		return data, nil
	}
	size := fmt.Sprintf("%d bytes", n)
	if n < 0 || (atLeast && n <= maxInput) {
		size = fmt.Sprintf("more than %d bytes", maxInput)
	}
	return nil, usageErrorf("%s is %s; %s", what, size, in.tooLarge)
}

// fileSize is a regular file's size, or -1 (stdin, a pipe, an error).
func fileSize(path string) int {
	if path == "-" {
		return -1
	}
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return -1
	}
	return int(st.Size())
}

var errTooLarge = fmt.Errorf("input larger than %d bytes (1 MiB), more than any request takes", maxInput)

func readFileOrStdin(cmd *cobra.Command, path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxInput {
		return nil, fmt.Errorf("read %s: %w", path, errTooLarge)
	}
	return data, nil
}

// decodeBase64 accepts standard base64 with or without padding and ignores
// whitespace (line-wrapped output of base64(1), a trailing newline).
func decodeBase64(name string, data []byte) ([]byte, error) {
	compact := bytes.Join(bytes.Fields(data), nil)
	if len(compact) == 0 {
		return nil, usageErrorf("--%s: empty input", name)
	}
	// Strict: non-zero trailing bits mean a damaged or mistyped value, and
	// accepting them would let two spellings name the same bytes.
	enc := base64.StdEncoding.Strict()
	if len(compact)%4 != 0 {
		enc = base64.RawStdEncoding.Strict()
	}
	out := make([]byte, enc.DecodedLen(len(compact)))
	n, err := enc.Decode(out, compact)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return nil, usageErrorf("--%s: not valid base64 at character %d, whitespace ignored (use --binary for a raw-bytes file)", name, int64(ce))
		}
		return nil, usageErrorf("--%s: not valid base64: %v", name, err)
	}
	return out[:n], nil
}

// oneStdin refuses two inputs read from stdin: the second would get nothing.
func oneStdin(ins ...*blobInput) error {
	var from []string
	for _, in := range ins {
		if in.file == "-" {
			from = append(from, "--"+in.name+"-file")
		}
	}
	if len(from) > 1 {
		return usageErrorf("only one input can come from stdin (%s all say \"-\")", strings.Join(from, " and "))
	}
	return nil
}
