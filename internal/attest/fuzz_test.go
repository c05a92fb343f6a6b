package attest

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/stellaops/signer-agent/proto"
)

// FuzzCanonicalRoundTrip: canonical JSON is a fixed point, and preserves
// the value, for every object the request validator accepts.
func FuzzCanonicalRoundTrip(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[true,false,null],"c":{"é":"\u00e9","\u20ac":"x"}}`,
		`{"n":[0,-0,1e2,1.5,-2.25e-7,9007199254740992]}`,
		`{"s":"\"\\\/\b\f\n\r\t\u0001"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("testdata/statement.json"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if proto.CheckJSONObject(b) != nil {
			return
		}
		c1, err := Canonicalize(b)
		if err != nil {
			return // e.g. invalid UTF-8, which encoding/json tolerates
		}
		c2, err := Canonicalize(c1)
		if err != nil {
			t.Fatalf("canonical output does not re-canonicalise: %v\n%s", err, c1)
		}
		if !bytes.Equal(c1, c2) {
			t.Fatalf("not a fixed point:\n%s\n%s", c1, c2)
		}
		var v1, v2 any
		if json.Unmarshal(b, &v1) != nil || json.Unmarshal(c1, &v2) != nil {
			t.Fatal("canonical output is not JSON")
		}
		// reflect.DeepEqual compares numbers with ==, so -0 equals 0 as in
		// RFC 8785.
		if !reflect.DeepEqual(v1, v2) {
			t.Fatalf("value changed:\n%s\n%s", b, c1)
		}
	})
}

// FuzzParseEnvelope: envelope and bundle parsing never panic and never
// verify garbage.
func FuzzParseEnvelope(f *testing.F) {
	st, _ := BuildStatement(&proto.SignRequest{
		Subject:       []proto.Subject{{Name: "a", Digest: map[string]string{"sha256": artifactSHA}}},
		PredicateType: "t", Predicate: json.RawMessage(`{}`),
	})
	key := goldenKey()
	res, err := Sign(context.Background(), st, []Signer{{ID: "k", Source: "memory", Key: key}})
	if err != nil {
		f.Fatal(err)
	}
	env, _ := json.Marshal(res.Envelope)
	f.Add(env)
	f.Add([]byte(res.Bundles[0]))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`))
	pubs := []crypto.PublicKey{key.Public()}
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := VerifyEnvelope(context.Background(), b, pubs, Expect{AnyArtifact: true}); err == nil {
			if !bytes.Equal(b, env) && v.PayloadDigest != res.PayloadDigest {
				t.Fatalf("verified a different payload: %s", b)
			}
		}
		if v, err := VerifyBundle(b, pubs, Expect{AnyArtifact: true}); err == nil && v.PayloadDigest != res.PayloadDigest {
			t.Fatalf("bundle verified a different payload: %s", b)
		}
	})
}
