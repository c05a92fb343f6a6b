package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stellaops/signer-agent/proto"
)

func TestCredentials(t *testing.T) {
	const opTok, poe, d = "optok-secret-value", "poe-secret-value", "jwk-private-d"
	dir := t.TempDir()
	p := writeFile(t, dir, "c.json", `{"opTok":"`+opTok+`","dpopKey":{"kty":"EC","d":"`+d+`"},"poe":"`+poe+`","scannerImageDigest":"sha256:`+hex256+`","extra":true}`)
	c, err := loadCredentials(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.OpTok) != opTok || string(c.PoE) != poe || len(c.DPoPKey) == 0 {
		t.Fatalf("not loaded: %v", c)
	}

	// Nothing prints a secret.
	js, _ := json.Marshal(c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", *c), string(js)} {
		mustNotContain(t, "formatted credentials", s, opTok, poe, d)
	}

	// poe and scannerImageDigest fill the request unless flags set them.
	req := &proto.SignRequest{}
	c.apply(req)
	if req.PoE == nil || req.PoE.Format != "jwt" || req.PoE.Value != poe || req.ScannerImageDigest != "sha256:"+hex256 {
		t.Errorf("applied: %+v %+v", req, req.PoE)
	}
	flagged := &proto.SignRequest{ScannerImageDigest: "sha256:" + hex256[:63] + "0"}
	c.apply(flagged)
	if flagged.ScannerImageDigest != "sha256:"+hex256[:63]+"0" {
		t.Error("credentials overrode --scanner-digest")
	}
	var none *credentials
	none.apply(req) // nil credentials are a no-op
	if none.authorize() != nil || c.authorize() != nil {
		t.Error("authorize hook should be empty until the OpTok/DPoP gates exist")
	}

	for name, content := range map[string]string{
		"not an object":    `["` + opTok + `"]`,
		"malformed":        `{"opTok": ` + opTok + `}`,
		"wrong type":       `{"poe": 42}`,
		"bad scanner":      `{"scannerImageDigest": "sha256:short"}`,
		"empty":            ``,
		"trailing garbage": `{"poe":"` + poe + `"} x`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadCredentials(writeFile(t, dir, "bad.json", content))
			if err == nil {
				t.Fatal("loaded")
			}
			mustNotContain(t, "error", err.Error(), opTok, poe)
		})
	}
}
