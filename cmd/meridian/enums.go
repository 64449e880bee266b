package main

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// protoEnum is a generated protobuf enum type such as apiv1.KeySpec.
type protoEnum interface {
	~int32
	protoreflect.Enum
}

// enumFlag is a flag holding a protobuf enum, spelled the AWS way: the value
// name without the enum's prefix ("SYMMETRIC_DEFAULT" for
// KEY_SPEC_SYMMETRIC_DEFAULT), case-insensitively, '-' accepted for '_'.
type enumFlag[E protoEnum] struct {
	p      *E
	prefix string // e.g. "KEY_SPEC_"
	kind   string // e.g. "key spec", for error messages
}

func (f *enumFlag[E]) String() string { return enumText(*f.p, f.prefix) }
func (f *enumFlag[E]) Type() string   { return strings.ToUpper(strings.ReplaceAll(f.kind, " ", "_")) }

func (f *enumFlag[E]) Set(s string) error {
	v, err := parseEnum[E](s, f.prefix, f.kind)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}

// addEnumFlag registers an enum flag whose help lists the allowed values.
func addEnumFlag[E protoEnum](fs *pflag.FlagSet, p *E, name, prefix, kind, help string) {
	usage := fmt.Sprintf("%s: %s", help, strings.Join(enumNames[E](prefix), ", "))
	fs.Var(&enumFlag[E]{p: p, prefix: prefix, kind: kind}, name, usage)
}

// parseEnum reads an AWS-style enum spelling; UNSPECIFIED is never accepted.
func parseEnum[E protoEnum](s, prefix, kind string) (E, error) {
	norm := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	norm = strings.TrimPrefix(norm, prefix)
	var zero E
	values := zero.Descriptor().Values()
	if v := values.ByName(protoreflect.Name(prefix + norm)); v != nil && v.Number() != 0 && norm != "" {
		return E(v.Number()), nil
	}
	return zero, fmt.Errorf("unknown %s %q; allowed: %s", kind, s, strings.Join(enumNames[E](prefix), ", "))
}

// enumNames lists E's values as users spell them, UNSPECIFIED left out.
func enumNames[E protoEnum](prefix string) []string {
	var zero E
	values := zero.Descriptor().Values()
	var names []string
	for i := range values.Len() {
		if v := values.Get(i); v.Number() != 0 {
			names = append(names, strings.TrimPrefix(string(v.Name()), prefix))
		}
	}
	return names
}

// enumText prints an enum value the way users type it ("" when unset).
func enumText[E protoEnum](v E, prefix string) string {
	if v == 0 {
		return ""
	}
	d := v.Descriptor().Values().ByNumber(protoreflect.EnumNumber(v))
	if d == nil {
		return fmt.Sprintf("%d", int32(v))
	}
	return strings.TrimPrefix(string(d.Name()), prefix)
}
