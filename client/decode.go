package client

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/stellaops/signer-agent/proto"
)

// decodeBody decodes a successful response body into out. Sign responses
// (and each item of a batch response) take a faster path than
// encoding/json: they carry the signed statement several times over (base64
// in the envelope and again in every bundle), so most of their bytes are
// long strings that need neither reflection nor a second scan.
func decodeBody(b []byte, out any) error {
	switch v := out.(type) {
	case *proto.SignResponse:
		return decodeSignResponse(b, v)
	case *proto.BatchResponse:
		return decodeBatchResponse(b, v)
	}
	return json.Unmarshal(b, out)
}

// decodeSignResponse decodes b into out with the result json.Unmarshal
// would give (a differential fuzz target checks it): the body is checked
// once (validJSON), then walked member by member; the envelope's
// payload is decoded from base64 in place, each bundle is kept as a slice
// of b (b belongs to the caller and is not reused), and the small members
// go through encoding/json. Anything unusual — a member name that differs
// from a field's only in case, an escaped name, a value of an unexpected
// JSON type — is handed to json.Unmarshal whole, so the two never differ.
func decodeSignResponse(b []byte, out *proto.SignResponse) error {
	if !validJSON(b) {
		return json.Unmarshal(b, out) // for its error
	}
	w := walker{b: b}
	if !w.object(func(name string, raw []byte) bool { return signMember(out, name, raw) }) {
		*out = proto.SignResponse{}
		return json.Unmarshal(b, out)
	}
	return nil
}

// signMember decodes one member of a sign response (top level, or a batch
// item). It reports false when the fast path must give up.
func signMember(out *proto.SignResponse, name string, raw []byte) bool {
	var err error
	switch name {
	case "envelope":
		if len(raw) == 0 || raw[0] != '{' {
			return false
		}
		w := walker{b: raw}
		return w.object(func(name string, raw []byte) bool { return envelopeMember(&out.Envelope, name, raw) })
	case "bundles":
		if len(raw) == 0 || raw[0] != '[' {
			return false
		}
		out.Bundles = []json.RawMessage{}
		w := walker{b: raw}
		w.array(func(elem []byte) { out.Bundles = append(out.Bundles, json.RawMessage(elem)) })
		return true
	case "requestId":
		err = json.Unmarshal(raw, &out.RequestID)
	case "auditId":
		err = json.Unmarshal(raw, &out.AuditID)
	case "signingIdentity":
		err = json.Unmarshal(raw, &out.SigningIdentity)
	case "payloadDigest":
		err = json.Unmarshal(raw, &out.PayloadDigest)
	case "bundleHash":
		err = json.Unmarshal(raw, &out.BundleHash)
	case "quota":
		err = json.Unmarshal(raw, &out.Quota)
	default:
		return !foldsTo(name, signNames)
	}
	return err == nil
}

func envelopeMember(env *proto.Envelope, name string, raw []byte) bool {
	var err error
	switch name {
	case "payload":
		if p, ok := plainBase64(raw); ok {
			env.Payload = p
			return true
		}
		err = json.Unmarshal(raw, &env.Payload)
	case "payloadType":
		err = json.Unmarshal(raw, &env.PayloadType)
	case "signatures":
		err = json.Unmarshal(raw, &env.Signatures)
	default:
		return !foldsTo(name, envelopeNames)
	}
	return err == nil
}

var (
	signNames     = []string{"requestId", "auditId", "envelope", "bundles", "signingIdentity", "payloadDigest", "bundleHash", "quota"}
	envelopeNames = []string{"payloadType", "payload", "signatures"}
	batchNames    = []string{"requestId", "results"}
	resultNames   = append([]string{"status", "problem"}, signNames...)
)

// foldsTo reports whether name matches one of names only case-
// insensitively, which encoding/json would accept as that field.
func foldsTo(name string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// plainBase64 decodes a JSON string holding standard base64 without escapes,
// as encoding/json decodes a []byte field.
func plainBase64(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return nil, false
	}
	s := raw[1 : len(raw)-1]
	p := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(p, s)
	if err != nil {
		return nil, false
	}
	return p[:n], true
}

// decodeBatchResponse decodes a batch answer, each result with the sign
// response fast path.
func decodeBatchResponse(b []byte, out *proto.BatchResponse) error {
	if !validJSON(b) {
		return json.Unmarshal(b, out)
	}
	w := walker{b: b}
	ok := w.object(func(name string, raw []byte) bool {
		switch name {
		case "requestId":
			return json.Unmarshal(raw, &out.RequestID) == nil
		case "results":
			if len(raw) == 0 || raw[0] != '[' {
				return false
			}
			out.Results = []proto.BatchResult{}
			good := true
			rw := walker{b: raw}
			rw.array(func(elem []byte) {
				if !good {
					return
				}
				var r proto.BatchResult
				good = decodeBatchResult(elem, &r)
				out.Results = append(out.Results, r)
			})
			return good
		default:
			return !foldsTo(name, batchNames)
		}
	})
	if !ok {
		*out = proto.BatchResponse{}
		return json.Unmarshal(b, out)
	}
	return nil
}

func decodeBatchResult(b []byte, r *proto.BatchResult) bool {
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	w := walker{b: b}
	return w.object(func(name string, raw []byte) bool {
		switch name {
		case "status":
			return json.Unmarshal(raw, &r.Status) == nil
		case "problem":
			return json.Unmarshal(raw, &r.Problem) == nil
		}
		if foldsTo(name, resultNames) || isSignName(name) {
			if !isSignName(name) {
				return false
			}
			if r.SignResponse == nil {
				r.SignResponse = &proto.SignResponse{}
			}
			return signMember(r.SignResponse, name, raw)
		}
		return true
	})
}

func isSignName(name string) bool {
	for _, n := range signNames {
		if n == name {
			return true
		}
	}
	return false
}

// walker steps through JSON that validJSON has accepted. It does not
// validate again: it only finds where members and elements begin and end.
type walker struct {
	b []byte
	i int
}

func (w *walker) ws() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// str advances past the string at w.i.
func (w *walker) str() {
	w.i++ // opening quote
	for {
		j := bytes.IndexByte(w.b[w.i:], '"')
		if j < 0 {
			w.i = len(w.b)
			return
		}
		end := w.i + j
		// The quote is escaped when an odd number of backslashes precede it.
		k := end
		for k > w.i && w.b[k-1] == '\\' {
			k--
		}
		w.i = end + 1
		if (end-k)%2 == 0 {
			return
		}
	}
}

// value advances past one value and returns its bytes.
func (w *walker) value() []byte {
	w.ws()
	start := w.i
	if w.i >= len(w.b) {
		return nil
	}
	switch w.b[w.i] {
	case '"':
		w.str()
	case '{', '[':
		depth := 0
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case '"':
				w.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			w.i++
			if depth == 0 {
				break
			}
		}
	default:
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return w.b[start:w.i]
			}
			w.i++
		}
	}
	return w.b[start:w.i]
}

// object calls member for each member of the object at w.i, in order,
// until one returns false. Escaped member names are not decoded: the
// walk reports false for them.
func (w *walker) object(member func(name string, raw []byte) bool) bool {
	w.ws()
	if w.i >= len(w.b) || w.b[w.i] != '{' {
		return false
	}
	w.i++
	for {
		w.ws()
		if w.i < len(w.b) && w.b[w.i] == '}' {
			w.i++
			return true
		}
		if w.i < len(w.b) && w.b[w.i] == ',' {
			w.i++
			w.ws()
		}
		start := w.i
		w.str()
		key := w.b[start+1 : w.i-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		w.ws()
		w.i++ // ':'
		raw := w.value()
		if !member(string(key), raw) {
			return false
		}
	}
}

// array calls elem for each element of the array at w.i.
func (w *walker) array(elem func(raw []byte)) {
	w.ws()
	w.i++ // '['
	for {
		w.ws()
		if w.i >= len(w.b) || w.b[w.i] == ']' {
			w.i++
			return
		}
		if w.b[w.i] == ',' {
			w.i++
		}
		elem(w.value())
	}
}
