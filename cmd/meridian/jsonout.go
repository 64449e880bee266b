package main

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// -o json prints a response as docs/CLI.md promises: protojson's
// lowerCamelCase field names, every field present, bytes as base64, but
// with the spellings of the text output rather than protojson's: enum
// values as AWS writes them ("SYMMETRIC_DEFAULT", "Enabled"; null when
// unset), 64-bit integers as JSON numbers (protojson quotes them), and
// timestamps in RFC 3339. Fields come in the .proto's order, so the bytes
// are the same on every run.

// marshalJSON renders m indented (indent true) or on one line.
func marshalJSON(m proto.Message, indent bool) ([]byte, error) {
	v, err := messageJSON(m.ProtoReflect())
	if err != nil {
		return nil, err
	}
	if indent {
		return json.MarshalIndent(v, "", "  ")
	}
	return json.Marshal(v)
}

// object is a JSON object whose members keep their order.
type object []member

type member struct {
	name  string
	value any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.name)
		v, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func messageJSON(m protoreflect.Message) (any, error) {
	switch msg := m.Interface().(type) {
	case *timestamppb.Timestamp:
		return msg.AsTime().UTC().Format(time.RFC3339Nano), nil
	case *durationpb.Duration:
		return strconv.FormatFloat(msg.AsDuration().Seconds(), 'f', -1, 64) + "s", nil
	}
	if m.Descriptor().FullName().Parent() == "google.protobuf" {
		b, err := protojson.Marshal(m.Interface()) // another well-known type: its own JSON form
		return json.RawMessage(b), err
	}
	fields := m.Descriptor().Fields()
	out := make(object, 0, fields.Len())
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && !m.Has(fd) {
			continue // an unset oneof member is not a field of this response
		}
		var v any
		var err error
		switch {
		case fd.IsList():
			v, err = listJSON(fd, m.Get(fd).List())
		case fd.IsMap():
			v, err = mapJSON(fd, m.Get(fd).Map())
		case fd.HasPresence() && !m.Has(fd):
			v = nil // an unset message (or optional) field
		default:
			v, err = singularJSON(fd, m.Get(fd))
		}
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", fd.Name(), err)
		}
		out = append(out, member{fd.JSONName(), v})
	}
	return out, nil
}

func listJSON(fd protoreflect.FieldDescriptor, l protoreflect.List) (any, error) {
	out := make([]any, l.Len())
	for i := range l.Len() {
		v, err := singularJSON(fd, l.Get(i))
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func mapJSON(fd protoreflect.FieldDescriptor, m protoreflect.Map) (any, error) {
	type entry struct {
		key string
		val protoreflect.Value
	}
	var entries []entry
	m.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		entries = append(entries, entry{k.String(), v})
		return true
	})
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.key, b.key) })
	out := make(object, 0, len(entries))
	for _, e := range entries {
		v, err := singularJSON(fd.MapValue(), e.val)
		if err != nil {
			return nil, err
		}
		out = append(out, member{e.key, v})
	}
	return out, nil
}

func singularJSON(fd protoreflect.FieldDescriptor, v protoreflect.Value) (any, error) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageJSON(v.Message())
	case protoreflect.EnumKind:
		switch n := v.Enum(); {
		case n == 0:
			return nil, nil // unset: UNSPECIFIED is no AWS spelling
		case fd.Enum().Values().ByNumber(n) == nil:
			return json.Number(strconv.Itoa(int(n))), nil // a value this binary does not know
		default:
			return enumSpelling(fd.Enum(), n), nil
		}
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes()), nil
	case protoreflect.StringKind:
		return v.String(), nil
	case protoreflect.BoolKind:
		return v.Bool(), nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return json.Number(strconv.FormatInt(v.Int(), 10)), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return json.Number(strconv.FormatUint(v.Uint(), 10)), nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'g', -1, 64), nil // "NaN", "+Inf": JSON has no such numbers
		}
		return f, nil
	}
	return nil, fmt.Errorf("unsupported field kind %v", fd.Kind())
}
