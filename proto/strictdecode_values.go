package proto

import (
	"encoding/base64"
	"reflect"
	"strconv"
)

// Decoders of maps, slices, scalars and interface{} for the strict decoder
// (strictdecode.go has the mapping rules, the type cache and structs).

func mapDecoder(t reflect.Type) decodeFunc {
	if t == reflect.TypeFor[map[string]string]() {
		return decodeStringMap
	}
	elem := typeDecoder(t.Elem())
	plainKey := t.Key() == reflect.TypeFor[string]()
	return func(d *decoder, v reflect.Value) error {
		if isNull, err := d.null(); isNull || err != nil {
			v.SetZero()
			return err
		}
		if d.peek() != '{' {
			return d.typeError("object")
		}
		objStart := d.pos
		if err := d.enter(); err != nil {
			return err
		}
		d.pos++
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		if d.peek() == '}' {
			d.pos++
			d.leave()
			return nil
		}
		base, arenaBase := len(d.names), len(d.arena)
		for {
			n, err := d.memberName()
			if err != nil {
				return err
			}
			d.names = append(d.names, n)
			key := reflect.ValueOf(string(d.name(n)))
			if !plainKey {
				key = key.Convert(t.Key())
			}
			ev := reflect.New(t.Elem()).Elem()
			if err := elem(d, ev); err != nil {
				return err
			}
			v.SetMapIndex(key, ev)
			if more, err := d.more('}'); err != nil {
				return err
			} else if !more {
				break
			}
		}
		if err := d.checkDuplicates(base, objStart); err != nil {
			return err
		}
		d.names, d.arena = d.names[:base], d.arena[:arenaBase]
		d.leave()
		return nil
	}
}

// decodeStringMap is mapDecoder for map[string]string (subject digests)
// without reflection on every member.
func decodeStringMap(d *decoder, v reflect.Value) error {
	if isNull, err := d.null(); isNull || err != nil {
		v.SetZero()
		return err
	}
	if d.peek() != '{' {
		return d.typeError("object")
	}
	objStart := d.pos
	if err := d.enter(); err != nil {
		return err
	}
	d.pos++
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	m := v.Interface().(map[string]string)
	if d.peek() == '}' {
		d.pos++
		d.leave()
		return nil
	}
	base, arenaBase := len(d.names), len(d.arena)
	for {
		n, err := d.memberName()
		if err != nil {
			return err
		}
		d.names = append(d.names, n)
		if d.peek() != '"' {
			if isNull, err := d.null(); isNull || err != nil {
				// null leaves a string unchanged: the entry gets "".
				m[string(d.name(n))] = ""
				if err != nil {
					return err
				}
			} else {
				return d.typeError("string")
			}
		} else {
			val, err := d.readString()
			if err != nil {
				return err
			}
			m[string(d.name(n))] = val
		}
		if more, err := d.more('}'); err != nil {
			return err
		} else if !more {
			break
		}
	}
	if err := d.checkDuplicates(base, objStart); err != nil {
		return err
	}
	d.names, d.arena = d.names[:base], d.arena[:arenaBase]
	d.leave()
	return nil
}

func sliceDecoder(t reflect.Type) decodeFunc {
	elem := typeDecoder(t.Elem())
	return func(d *decoder, v reflect.Value) error {
		if isNull, err := d.null(); isNull || err != nil {
			v.SetZero()
			return err
		}
		if d.peek() != '[' {
			return d.typeError("array")
		}
		if err := d.enter(); err != nil {
			return err
		}
		d.pos++
		if v.IsNil() {
			v.Set(reflect.MakeSlice(t, 0, 0))
		}
		v.SetLen(0)
		if d.peek() == ']' {
			d.pos++
			d.leave()
			return nil
		}
		for i := 0; ; i++ {
			if i == v.Cap() {
				v.Grow(1)
			}
			v.SetLen(i + 1)
			ev := v.Index(i)
			ev.SetZero()
			d.path = append(d.path, pathElem{index: i})
			if err := elem(d, ev); err != nil {
				return err
			}
			d.path = d.path[:len(d.path)-1]
			if more, err := d.more(']'); err != nil {
				return err
			} else if !more {
				break
			}
		}
		d.leave()
		return nil
	}
}

func decodeBytes(d *decoder, v reflect.Value) error {
	if isNull, err := d.null(); isNull || err != nil {
		v.SetZero()
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
	b, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(s))), []byte(s))
	if err != nil {
		return d.fail(start, "invalid base64")
	}
	v.SetBytes(b)
	return nil
}

func decodeString(d *decoder, v reflect.Value) error {
	if isNull, err := d.null(); isNull || err != nil {
		return err
	}
	if d.peek() != '"' {
		return d.typeError("string")
	}
	s, err := d.readString()
	if err != nil {
		return err
	}
	v.SetString(s)
	return nil
}

func decodeBool(d *decoder, v reflect.Value) error {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case 't':
		v.SetBool(true)
		return d.literal("true")
	case 'f':
		v.SetBool(false)
		return d.literal("false")
	}
	return d.typeError("boolean")
}

// number reads a number for a numeric field (the RFC 8785 rule applies to
// every number in a request).
func (d *decoder) number() (start int, lit []byte, isNull bool, err error) {
	if isNull, err := d.null(); isNull || err != nil {
		return 0, nil, true, err
	}
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		return 0, nil, false, d.typeError("number")
	}
	start, end, err := d.scanNumber()
	if err != nil {
		return 0, nil, false, err
	}
	return start, d.data[start:end], false, nil
}

func decodeInt(d *decoder, v reflect.Value) error {
	start, lit, isNull, err := d.number()
	if isNull || err != nil {
		return err
	}
	n, err := strconv.ParseInt(string(lit), 10, v.Type().Bits())
	if err != nil {
		return d.fail(start, "want an integer in the range of %s", v.Type())
	}
	v.SetInt(n)
	return nil
}

func decodeUint(d *decoder, v reflect.Value) error {
	start, lit, isNull, err := d.number()
	if isNull || err != nil {
		return err
	}
	n, err := strconv.ParseUint(string(lit), 10, v.Type().Bits())
	if err != nil {
		return d.fail(start, "want an unsigned integer in the range of %s", v.Type())
	}
	v.SetUint(n)
	return nil
}

func decodeFloat(d *decoder, v reflect.Value) error {
	_, lit, isNull, err := d.number()
	if isNull || err != nil {
		return err
	}
	f, _ := strconv.ParseFloat(string(lit), 64) // the number rule proved it finite
	v.SetFloat(f)
	return nil
}

func decodeAnyInto(d *decoder, v reflect.Value) error {
	x, err := d.anyValue()
	if err != nil {
		return err
	}
	if x == nil {
		v.SetZero()
		return nil
	}
	v.Set(reflect.ValueOf(x))
	return nil
}

// anyValue decodes a value as encoding/json does into an empty interface.
func (d *decoder) anyValue() (any, error) {
	switch c := d.peek(); {
	case c == '{':
		objStart := d.pos
		if err := d.enter(); err != nil {
			return nil, err
		}
		d.pos++
		m := map[string]any{}
		if d.peek() == '}' {
			d.pos++
			d.leave()
			return m, nil
		}
		base, arenaBase := len(d.names), len(d.arena)
		for {
			n, err := d.memberName()
			if err != nil {
				return nil, err
			}
			d.names = append(d.names, n)
			x, err := d.anyValue()
			if err != nil {
				return nil, err
			}
			m[string(d.name(n))] = x
			if more, err := d.more('}'); err != nil {
				return nil, err
			} else if !more {
				break
			}
		}
		if err := d.checkDuplicates(base, objStart); err != nil {
			return nil, err
		}
		d.names, d.arena = d.names[:base], d.arena[:arenaBase]
		d.leave()
		return m, nil
	case c == '[':
		if err := d.enter(); err != nil {
			return nil, err
		}
		d.pos++
		a := []any{}
		if d.peek() == ']' {
			d.pos++
			d.leave()
			return a, nil
		}
		for {
			x, err := d.anyValue()
			if err != nil {
				return nil, err
			}
			a = append(a, x)
			if more, err := d.more(']'); err != nil {
				return nil, err
			} else if !more {
				break
			}
		}
		d.leave()
		return a, nil
	case c == '"':
		return d.readString()
	case c == '-' || c >= '0' && c <= '9':
		start, end, err := d.scanNumber()
		if err != nil {
			return nil, err
		}
		f, _ := strconv.ParseFloat(string(d.data[start:end]), 64)
		return f, nil
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, d.unexpected()
}
