package keystore

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Limits, as in AWS KMS where it has one.
const (
	maxPlaintext       = 4096
	maxCiphertext      = 6144
	maxDescription     = 8192
	maxTags            = 50
	maxTagKey          = 128
	maxTagValue        = 256
	maxAliasName       = 250 // after "alias/"
	maxKeyIDInput      = 2048
	maxRequestID       = 128
	maxContextBytes    = 8192
	maxMessage         = 4096
	maxSignature       = 8192
	maxMac             = 128
	maxDataKeyBytes    = 1024
	maxRandomBytes     = 1024
	defaultLimit       = 100
	maxLimit           = 1000
	defaultWindowDays  = 30
	minWindowDays      = 7
	maxWindowDays      = 30
	defaultPeriodDays  = 365
	minPeriodDays      = 90
	maxPeriodDays      = 2560
	reservedAliasSpace = "alias/meridian/"
)

// userError is an error whose message is safe to show the caller; Unwrap
// gives the sentinel that transport maps to a code.
type userError struct {
	kind error
	msg  string
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.kind }

// CallerMessage returns the caller-safe message of err when err is (or
// wraps) a keystore user error: text written for the caller, with no
// internal detail. Transport uses it to explain an Unavailable refusal
// (no quorum, stale node, HSM without the domain key) instead of a generic
// text, while other Unavailable causes keep their detail in the logs.
func CallerMessage(err error) (string, bool) {
	var ue *userError
	if errors.As(err, &ue) {
		return ue.msg, true
	}
	return "", false
}

// userErr builds a caller-safe error of the given sentinel kind.
func userErr(kind error, format string, args ...any) error {
	return &userError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func validationErr(format string, args ...any) error {
	return userErr(ErrValidation, format, args...)
}

// quote shows caller input in a message, cut short so a megabyte of junk
// does not come back in the error.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

func checkSize(what string, n, min, max int) error {
	if n < min || n > max {
		return validationErr("%s is %d bytes; must be %d-%d", what, n, min, max)
	}
	return nil
}

func checkRequestID(id string) error {
	if len(id) > maxRequestID {
		return validationErr("request id is %d bytes; must be at most %d", len(id), maxRequestID)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return validationErr("request id must be printable ASCII without spaces")
		}
	}
	return nil
}

func checkDescription(d string) error {
	if len(d) > maxDescription {
		return validationErr("description is %d bytes; must be at most %d", len(d), maxDescription)
	}
	if !utf8.ValidString(d) {
		return validationErr("description is not valid UTF-8")
	}
	return nil
}

func checkTagKey(k string) error {
	if n := utf8.RuneCountInString(k); n < 1 || n > maxTagKey || !utf8.ValidString(k) {
		return validationErr("tag key %s must be 1-%d UTF-8 characters", quote(k), maxTagKey)
	}
	if strings.HasPrefix(k, "meridian:") {
		return validationErr("tag key %s: the prefix meridian: is reserved", quote(k))
	}
	return nil
}

// checkTags validates a tag list and returns it as a map.
func checkTags(tags []Tag) (map[string]string, error) {
	if len(tags) > maxTags {
		return nil, validationErr("%d tags given; a key holds at most %d", len(tags), maxTags)
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		if err := checkTagKey(t.Key); err != nil {
			return nil, err
		}
		if utf8.RuneCountInString(t.Value) > maxTagValue || !utf8.ValidString(t.Value) {
			return nil, validationErr("tag %s: value must be 0-%d UTF-8 characters", quote(t.Key), maxTagValue)
		}
		if _, dup := m[t.Key]; dup {
			return nil, validationErr("tag key %s is given twice", quote(t.Key))
		}
		m[t.Key] = t.Value
	}
	return m, nil
}

// checkAliasName validates a name for creating or naming an alias; it
// accepts "alias/<name>" and "meridian:alias/<name>" and returns the former.
func checkAliasName(name string, forWrite bool) (string, error) {
	if rest, ok := strings.CutPrefix(name, aliasFullPrefix); ok {
		name = aliasPrefix + rest
	}
	rest, ok := strings.CutPrefix(name, aliasPrefix)
	if !ok {
		return "", validationErr("alias name %s must start with alias/", quote(name))
	}
	if len(rest) < 1 || len(rest) > maxAliasName {
		return "", validationErr("alias name %s: the part after alias/ must be 1-%d characters", quote(name), maxAliasName)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-') {
			return "", validationErr("alias name %s may contain only a-z, A-Z, 0-9, /, _ and -", quote(name))
		}
	}
	if forWrite && strings.HasPrefix(name, reservedAliasSpace) {
		return "", validationErr("alias name %s: names under %s are reserved", quote(name), reservedAliasSpace)
	}
	return name, nil
}

// checkLimit applies the listing limit rule: 0 means 100; 1-1000.
func checkLimit(limit int) (int, error) {
	if limit == 0 {
		return defaultLimit, nil
	}
	if limit < 1 || limit > maxLimit {
		return 0, validationErr("limit is %d; must be 1-%d", limit, maxLimit)
	}
	return limit, nil
}

// encodeContext validates an encryption context and returns its canonical
// encoding appended to dst: pairs sorted by key, each key and value prefixed
// with its length as 4 big-endian bytes. An empty context encodes to nothing.
func encodeContext(dst []byte, ctx map[string]string) ([]byte, error) {
	if len(ctx) == 0 {
		return dst, nil
	}
	keys := make([]string, 0, len(ctx))
	size := 0
	for k, v := range ctx {
		if k == "" {
			return nil, validationErr("encryption context keys must not be empty")
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, validationErr("encryption context key %s: keys and values must be UTF-8", quote(k))
		}
		size += 8 + len(k) + len(v)
		keys = append(keys, k)
	}
	if size > maxContextBytes {
		return nil, validationErr("encryption context is %d bytes encoded; must be at most %d", size, maxContextBytes)
	}
	sort.Strings(keys)
	for _, k := range keys {
		dst = appendLenPrefixed(dst, k)
		dst = appendLenPrefixed(dst, ctx[k])
	}
	return dst, nil
}

func appendLenPrefixed(dst []byte, s string) []byte {
	n := uint32(len(s))
	dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(dst, s...)
}
