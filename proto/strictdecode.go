package proto

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// The strict decoder: Go values straight from the scanner, in one pass.
//
// Why by hand rather than a validating pass followed by encoding/json: a
// pass alone cannot stop encoding/json from matching "SUBJECT" to subject,
// so a schema check by reflection was needed either way, and encoding/json
// then scans the whole body twice more (its checkValid pass and its decode
// pass, one function call per byte) — for a 1 MiB predicate that was most
// of the cost (docs/perf.md §8). encoding/json/v2 has the right semantics
// (case-sensitive, duplicates and invalid UTF-8 refused) but is behind
// GOEXPERIMENT=jsonv2 in Go 1.26, and still rounds numbers.
//
// Mapping, as encoding/json v1 does unless noted: a struct field's name is
// its json tag name or its Go name, matched exactly (never case-folded);
// unknown names are refused; fields of embedded structs are promoted
// (embedded pointers, ",string" and name clashes are refused when the type
// is first seen). null leaves a string, bool or number unchanged and sets a
// pointer, slice, map or interface to nil; json.Unmarshaler (json.RawMessage
// included, which keeps the exact input bytes) and encoding.TextUnmarshaler
// are honoured; []byte is standard base64; interface{} gets map[string]any,
// []any, string, float64 (exact, by the number rule), bool or nil. Integer
// fields take integer literals only. float32, arrays, non-empty interfaces,
// channels and funcs are not decoded (a programming error, reported without
// ErrInvalidRequest).

type decodeFunc func(d *decoder, v reflect.Value) error

// decoder is a scanner plus the field path, for error messages.
type decoder struct {
	scanner
	path []pathElem
}

type pathElem struct {
	name  string // a field name; "" for an index
	index int
}

func (d *decoder) pathString() string {
	var b strings.Builder
	for _, p := range d.path {
		if p.name == "" {
			fmt.Fprintf(&b, "[%d]", p.index)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p.name)
	}
	return b.String()
}

func (d *decoder) typeError(want string) error {
	got := jsonKind(d.peek())
	if got == "" {
		return d.unexpected()
	}
	return d.fail(d.pos, "want a JSON %s, got %s", want, got)
}

var (
	rawMessageType      = reflect.TypeFor[json.RawMessage]()
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	decoders            sync.Map // reflect.Type -> decodeFunc
)

// unsupportedError is a type DecodeStrict cannot decode into: a programming
// error, deliberately not wrapping ErrInvalidRequest.
type unsupportedError struct{ t reflect.Type }

func (e *unsupportedError) Error() string {
	return "proto: DecodeStrict cannot decode into " + e.t.String()
}

// typeDecoder returns the cached decoder of t, building it once. A
// recursive type finds its own entry while it is being built: a forwarder
// that waits for the real one.
func typeDecoder(t reflect.Type) decodeFunc {
	if f, ok := decoders.Load(t); ok {
		return f.(decodeFunc)
	}
	var (
		wg sync.WaitGroup
		f  decodeFunc
	)
	wg.Add(1)
	fwd, loaded := decoders.LoadOrStore(t, decodeFunc(func(d *decoder, v reflect.Value) error {
		wg.Wait()
		return f(d, v)
	}))
	if loaded {
		return fwd.(decodeFunc)
	}
	f = newDecoder(t)
	wg.Done()
	decoders.Store(t, f)
	return f
}

func unsupported(t reflect.Type) decodeFunc {
	err := &unsupportedError{t}
	return func(*decoder, reflect.Value) error { return err }
}

func newDecoder(t reflect.Type) decodeFunc {
	if t == rawMessageType {
		return decodeRaw
	}
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(unmarshalerType) {
		return decodeUnmarshaler
	}
	if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return decodeText
	}
	switch t.Kind() {
	case reflect.Pointer:
		return ptrDecoder(t)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			return unsupported(t)
		}
		return decodeAnyInto
	case reflect.Struct:
		return structDecoder(t)
	case reflect.Map:
		if t.Key().Kind() != reflect.String || reflect.PointerTo(t.Key()).Implements(textUnmarshalerType) {
			return unsupported(t)
		}
		return mapDecoder(t)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(unmarshalerType) &&
			!reflect.PointerTo(t.Elem()).Implements(textUnmarshalerType) {
			return decodeBytes
		}
		return sliceDecoder(t)
	case reflect.String:
		return decodeString
	case reflect.Bool:
		return decodeBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return decodeInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return decodeUint
	case reflect.Float64:
		return decodeFloat
	}
	return unsupported(t)
}

// null consumes a null literal if one is next.
func (d *decoder) null() (bool, error) {
	if d.peek() != 'n' {
		return false, nil
	}
	return true, d.literal("null")
}

func decodeRaw(d *decoder, v reflect.Value) error {
	d.skipWS()
	start := d.pos
	if err := d.skipValue(); err != nil {
		return err
	}
	v.SetBytes(bytes.Clone(d.data[start:d.pos]))
	return nil
}

func decodeUnmarshaler(d *decoder, v reflect.Value) error {
	d.skipWS()
	start := d.pos
	if err := d.skipValue(); err != nil {
		return err
	}
	if err := v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(d.data[start:d.pos]); err != nil {
		// The type's own message may quote the input: not repeated.
		return d.fail(start, "invalid %s value", v.Type())
	}
	return nil
}

func decodeText(d *decoder, v reflect.Value) error {
	if isNull, err := d.null(); isNull || err != nil {
		return err
	}
	if d.peek() != '"' {
		return d.typeError("string")
	}
	start := d.pos
	s, err := d.readString()
	if err != nil {
		return err
	}
	if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
		return d.fail(start, "invalid %s value", v.Type())
	}
	return nil
}

func ptrDecoder(t reflect.Type) decodeFunc {
	elem := typeDecoder(t.Elem())
	return func(d *decoder, v reflect.Value) error {
		if isNull, err := d.null(); isNull || err != nil {
			v.SetZero()
			return err
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return elem(d, v.Elem())
	}
}

// field is one decodable struct field.
type field struct {
	name  string
	index []int
	dec   decodeFunc
}

type structInfo struct {
	fields []field
	byName map[string]int // only for structs with many fields
}

func (s *structInfo) lookup(name []byte) int {
	if s.byName != nil {
		if i, ok := s.byName[string(name)]; ok {
			return i
		}
		return -1
	}
	for i := range s.fields {
		if s.fields[i].name == string(name) {
			return i
		}
	}
	return -1
}

// maxStructFields bounds the fields of a decodable struct (one bit each in
// the duplicate mask).
const maxStructFields = 64

func structDecoder(t reflect.Type) decodeFunc {
	info := &structInfo{}
	if err := collectFields(t, nil, info, map[string]bool{}); err != nil || len(info.fields) > maxStructFields {
		return unsupported(t)
	}
	if len(info.fields) > 8 {
		info.byName = make(map[string]int, len(info.fields))
		for i, f := range info.fields {
			info.byName[f.name] = i
		}
	}
	return func(d *decoder, v reflect.Value) error {
		return d.decodeStruct(v, info)
	}
}

// collectFields lists t's fields as encoding/json names them, promoting the
// fields of embedded structs. A name seen twice is refused rather than
// resolved: the request types have no such clash, and a clash in a new
// type should be noticed, not silently shadowed.
func collectFields(t reflect.Type, index []int, info *structInfo, seen map[string]bool) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, hasTag := sf.Tag.Lookup("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		for _, o := range strings.Split(opts, ",") {
			if o == "string" {
				return fmt.Errorf("field %s: ,string is not supported", sf.Name)
			}
		}
		idx := append(append([]int(nil), index...), i)
		if sf.Anonymous && name == "" {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				return fmt.Errorf("field %s: embedded pointer is not supported", sf.Name)
			}
			if ft.Kind() == reflect.Struct {
				if err := collectFields(ft, idx, info, seen); err != nil {
					return err
				}
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if !hasTag || name == "" {
			name = sf.Name
		}
		if seen[name] {
			return fmt.Errorf("field name %q used twice", name)
		}
		seen[name] = true
		info.fields = append(info.fields, field{name: name, index: idx, dec: typeDecoder(sf.Type)})
	}
	return nil
}

func (d *decoder) decodeStruct(v reflect.Value, info *structInfo) error {
	if isNull, err := d.null(); isNull || err != nil {
		return err
	}
	if d.peek() != '{' {
		return d.typeError("object")
	}
	if err := d.enter(); err != nil {
		return err
	}
	d.pos++
	if d.peek() == '}' {
		d.pos++
		d.leave()
		return nil
	}
	var seen uint64
	for {
		nameOff := d.pos
		arenaBase := len(d.arena)
		n, err := d.memberName()
		if err != nil {
			return err
		}
		name := d.name(n)
		i := info.lookup(name)
		if i < 0 {
			return d.unknownField(nameOff, name, info)
		}
		d.arena = d.arena[:arenaBase]
		f := &info.fields[i]
		if seen&(1<<i) != 0 {
			return d.fail(nameOff, "duplicate field %q", f.name)
		}
		seen |= 1 << i
		d.path = append(d.path, pathElem{name: f.name})
		fv := v
		if len(f.index) == 1 {
			fv = v.Field(f.index[0])
		} else {
			fv = v.FieldByIndex(f.index)
		}
		if err := f.dec(d, fv); err != nil {
			return err
		}
		d.path = d.path[:len(d.path)-1]
		if more, err := d.more('}'); err != nil {
			return err
		} else if !more {
			break
		}
	}
	d.leave()
	return nil
}

// unknownField refuses a name the struct does not have, pointing out a
// case variant of a field it does have.
func (d *decoder) unknownField(off int, name []byte, info *structInfo) error {
	for _, f := range info.fields {
		if strings.EqualFold(f.name, string(name)) {
			return d.fail(off, "unknown field %s (names are case-sensitive; the field is %q)", quoteName(name), f.name)
		}
	}
	return d.fail(off, "unknown field %s", quoteName(name))
}

// decodeStrict decodes exactly one JSON value from b into v (a non-nil
// pointer), with nesting bounded by maxDepth.
func decodeStrict(b []byte, v any, maxDepth int) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("proto: DecodeStrict needs a non-nil pointer, got %T", v)
	}
	d := getDecoder(b, maxDepth)
	defer putDecoder(d)
	if d.peek() == 0 {
		return d.fail(d.pos, "empty JSON body")
	}
	if err := typeDecoder(rv.Type().Elem())(d, rv.Elem()); err != nil {
		return err
	}
	return d.end()
}

// Decoders are pooled for their stacks (names, arena, path), which would
// otherwise be regrown on every request.
var decoderPool = sync.Pool{New: func() any {
	d := new(decoder)
	d.pathFn = d.pathString
	return d
}}

// maxPooledStack keeps the stacks of one huge document out of the pool.
const maxPooledStack = 64 << 10

func getDecoder(b []byte, maxDepth int) *decoder {
	d := decoderPool.Get().(*decoder)
	d.data, d.pos, d.depth, d.maxDepth, d.err = b, 0, 0, maxDepth, nil
	return d
}

func putDecoder(d *decoder) {
	d.data, d.err = nil, nil
	if cap(d.arena) > maxPooledStack || cap(d.strBuf) > maxPooledStack || cap(d.names) > maxPooledStack/16 {
		return
	}
	d.names, d.arena, d.strBuf, d.path = d.names[:0], d.arena[:0], d.strBuf[:0], d.path[:0]
	decoderPool.Put(d)
}
