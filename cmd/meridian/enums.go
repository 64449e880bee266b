package main

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// protoEnum is a generated protobuf enum type such as apiv1.KeySpec.
type protoEnum interface {
	~int32
	protoreflect.Enum
}

// Enum values are spelt the AWS KMS way everywhere users meet them (flags,
// text output, -o json): the value's name without its enum's prefix, which
// proto3 needs but AWS does not ("SYMMETRIC_DEFAULT" for
// KEY_SPEC_SYMMETRIC_DEFAULT). The prefix is the enum's name in upper snake
// case, so it is derived, never typed at a call site.

// pascalEnums are the enums AWS spells in PascalCase rather than upper snake
// case: KeyState is "Enabled", "Disabled", "PendingDeletion" in every AWS
// KMS response.
var pascalEnums = map[protoreflect.FullName]bool{
	"meridian.v1.KeyState": true,
}

// enumPrefix is the prefix every value of ed carries: "KEY_SPEC_" for KeySpec.
func enumPrefix(ed protoreflect.EnumDescriptor) string {
	var b strings.Builder
	for i, r := range string(ed.Name()) {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String() + "_"
}

// enumSpelling is how users read value n of ed: "" for the unset value 0,
// the number itself for a value this binary does not know (a newer server).
func enumSpelling(ed protoreflect.EnumDescriptor, n protoreflect.EnumNumber) string {
	if n == 0 {
		return ""
	}
	v := ed.Values().ByNumber(n)
	if v == nil {
		return fmt.Sprintf("%d", int32(n))
	}
	name := strings.TrimPrefix(string(v.Name()), enumPrefix(ed))
	if !pascalEnums[ed.FullName()] {
		return name
	}
	words := strings.Split(strings.ToLower(name), "_")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, "")
}

// enumText prints an enum value the way users type it ("" when unset).
func enumText[E protoEnum](v E) string {
	return enumSpelling(v.Descriptor(), protoreflect.EnumNumber(v))
}

// enumList prints several values comma-separated.
func enumList[E protoEnum](vs []E) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = enumText(v)
	}
	return strings.Join(s, ",")
}

// enumFlag is a flag holding a protobuf enum, in its user spelling,
// case-insensitively, '-' accepted for '_'.
type enumFlag[E protoEnum] struct {
	p    *E
	kind string // e.g. "key spec", for error messages
}

func (f *enumFlag[E]) String() string { return enumText(*f.p) }
func (f *enumFlag[E]) Type() string   { return strings.ToUpper(strings.ReplaceAll(f.kind, " ", "_")) }

func (f *enumFlag[E]) Set(s string) error {
	v, err := parseEnum[E](s, f.kind)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}

// addEnumFlag registers an enum flag whose help lists the allowed values.
func addEnumFlag[E protoEnum](fs *pflag.FlagSet, p *E, name, kind, help string) {
	usage := fmt.Sprintf("%s: %s", help, strings.Join(enumNames[E](), ", "))
	fs.Var(&enumFlag[E]{p: p, kind: kind}, name, usage)
}

// parseEnum reads a user spelling of E (the full proto name is accepted
// too); the unset value 0 (UNSPECIFIED) is never accepted.
func parseEnum[E protoEnum](s, kind string) (E, error) {
	var zero E
	ed := zero.Descriptor()
	prefix := enumPrefix(ed)
	norm := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	norm = strings.TrimPrefix(norm, prefix)
	if v := ed.Values().ByName(protoreflect.Name(prefix + norm)); v != nil && v.Number() != 0 && norm != "" {
		return E(v.Number()), nil
	}
	return zero, fmt.Errorf("unknown %s %q; allowed: %s", kind, s, strings.Join(enumNames[E](), ", "))
}

// enumNames lists E's values as users spell them, UNSPECIFIED left out.
func enumNames[E protoEnum]() []string {
	var zero E
	values := zero.Descriptor().Values()
	var names []string
	for i := range values.Len() {
		if v := values.Get(i); v.Number() != 0 {
			names = append(names, enumSpelling(zero.Descriptor(), v.Number()))
		}
	}
	return names
}
