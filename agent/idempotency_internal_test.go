package agent

import (
	"testing"

	"github.com/stellaops/signer-agent/proto"
)

// hashOfBody runs a sign or batch body through its body gate's decoding
// and returns its idempotency hash.
func hashOfBody(t *testing.T, route, body string) [32]byte {
	t.Helper()
	rc := &requestContext{route: route, body: []byte(body)}
	if route == proto.PathSignBatch {
		b, err := proto.DecodeBatchRequest(rc.body)
		if err != nil {
			t.Fatal(err)
		}
		rc.batch = b
		rc.batchStatements = make([]itemStatement, len(b.Items))
		for i, it := range b.Items {
			if it.Request != nil {
				rc.batchStatements[i].statement, rc.batchStatements[i].denial = buildStatement(it.Request)
			}
		}
	} else {
		req, err := proto.DecodeSignRequest(rc.body)
		if err != nil {
			t.Fatal(err)
		}
		if d := useRequest(rc, req); d != nil {
			t.Fatal(d.Reason)
		}
	}
	return requestHash(rc)
}

// TestRequestHash: what is signed and how decides; encoding and the PoE
// do not.
func TestRequestHash(t *testing.T) {
	const sub = `"subject":[{"name":"a","digest":{"sha256":"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}}]`
	base := `{` + sub + `,"predicateType":"stella.ops/sbom@v1","predicate":{"n":100},"scannerImageDigest":"sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881","poe":{"format":"jwt","value":"one"}}`
	h0 := hashOfBody(t, proto.PathSignDSSE, base)
	same := map[string]string{
		"members reordered": `{"predicate":{"n":100},"predicateType":"stella.ops/sbom@v1",` + sub + `,"poe":{"format":"jwt","value":"one"},"scannerImageDigest":"sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}`,
		"number spelled":    replace(base, `"n":100`, `"n":1e2`),
		"another PoE":       replace(base, `"value":"one"`, `"value":"two"`),
		"no PoE":            replace(base, `,"poe":{"format":"jwt","value":"one"}`, ``),
		"whitespace":        replace(base, `,"predicate"`, ` ,  "predicate"`),
	}
	for name, body := range same {
		if hashOfBody(t, proto.PathSignDSSE, body) != h0 {
			t.Errorf("%s: another hash", name)
		}
	}
	differs := map[string]string{
		"predicate":  replace(base, `"n":100`, `"n":101`),
		"type":       replace(base, `sbom@v1`, `vex@v1`),
		"scanner":    replace(base, `"scannerImageDigest":"sha256:2d71`, `"scannerImageDigest":"sha256:3d71`),
		"key ids":    replace(base, `"poe"`, `"options":{"keyIds":["k"]},"poe"`),
		"mode":       replace(base, `"poe"`, `"options":{"mode":"keyless"},"poe"`),
		"policy":     replace(base, `"poe"`, `"policy":{"digest":"sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"},"poe"`),
		"subject":    replace(base, `"name":"a"`, `"name":"b"`),
		"other uses": replace(base, `"poe"`, `"options":{"keyIds":["k","l"]},"poe"`),
	}
	seen := map[[32]byte]string{h0: "base"}
	for name, body := range differs {
		h := hashOfBody(t, proto.PathSignDSSE, body)
		if prev, ok := seen[h]; ok {
			t.Errorf("%s hashes as %s", name, prev)
		}
		seen[h] = name
	}
	// A batch of that one request is another request; a batch is the same
	// whether the PoE is at its top or in its items.
	b1 := hashOfBody(t, proto.PathSignBatch, `{"requests":[`+base+`]}`)
	b2 := hashOfBody(t, proto.PathSignBatch, `{"poe":{"format":"jwt","value":"x"},"requests":[`+replace(base, `,"poe":{"format":"jwt","value":"one"}`, ``)+`]}`)
	if b1 == h0 || b1 != b2 {
		t.Fatalf("batch hashes: sign %x, batch %x, PoE at the top %x", h0[:4], b1[:4], b2[:4])
	}
	if b3 := hashOfBody(t, proto.PathSignBatch, `{"requests":[`+base+`,`+base+`]}`); b3 == b1 {
		t.Fatal("a batch of two hashes as a batch of one")
	}
}

func replace(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	panic("replace: " + old + " not found")
}
