package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// TestVerifyKeysJSON: --keys-json takes a saved GET /keys answer and
// honours each key's status and validity window.
func TestVerifyKeysJSON(t *testing.T) {
	s := signFixture(t)
	pubPEMBytes, err := os.ReadFile(s.pub)
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := parsePublicKeysPEM(pubPEMBytes)
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := keys.PublicKeyHint(pubs[0])
	n := 0
	answer := func(edit func(*proto.KeyInfo)) string {
		n++
		k := proto.KeyInfo{ID: "k1", Algorithm: "ecdsa-p256-sha256", PublicKey: string(pubPEMBytes), PublicKeyHint: hint, Status: proto.KeyStatusActive, Tenants: []string{"t"}}
		if edit != nil {
			edit(&k)
		}
		b, _ := json.Marshal(proto.KeysResponse{Keys: []proto.KeyInfo{k}})
		return writeFile(t, s.dir, fmt.Sprintf("keys-%d.json", n), string(b))
	}
	okLine := "Verified OK: predicateType=stella.ops/sbom@v1 subjects=1 payloadDigest=" + s.payloadDigest + "\n"
	tests := map[string]struct {
		args    []string
		code    int
		wantErr string
	}{
		"bundle, active key":   {args: []string{"--bundle", s.bundle, "--keys-json", answer(nil), "--artifact", s.artifact}},
		"envelope, active key": {args: []string{"--envelope", s.envelope, "--keys-json", answer(nil), "--artifact", s.artifact}},
		"verify-only key":      {args: []string{"--bundle", s.bundle, "--keys-json", answer(func(k *proto.KeyInfo) { k.Status = proto.KeyStatusVerifyOnly }), "--artifact", s.artifact}},
		"with --key as well":   {args: []string{"--bundle", s.bundle, "--keys-json", answer(nil), "--key", s.wrongPub, "--artifact", s.artifact}},
		"revoked key": {args: []string{"--bundle", s.bundle, "--keys-json", answer(func(k *proto.KeyInfo) { k.Status = proto.KeyStatusRevoked }), "--artifact", s.artifact},
			code: exitFailure, wantErr: `key revoked: key "k1" is revoked`},
		"revoked key beats --key": {args: []string{"--envelope", s.envelope, "--key", s.pub, "--keys-json", answer(func(k *proto.KeyInfo) { k.Status = proto.KeyStatusRevoked }), "--artifact", s.artifact},
			code: exitFailure, wantErr: "key revoked"},
		"expired key": {args: []string{"--bundle", s.bundle, "--keys-json", answer(func(k *proto.KeyInfo) {
			na := mustTime(t, "2026-01-01T00:00:00Z")
			k.NotAfter = &na
		}), "--artifact", s.artifact}, code: exitFailure, wantErr: "expired at 2026-01-01"},
		"not a keys answer": {args: []string{"--bundle", s.bundle, "--keys-json", s.bundle, "--artifact", s.artifact}, code: exitFailure, wantErr: "keys JSON"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, append([]string{"verify"}, tc.args...)...)
			r.wantCode(t, tc.code)
			if tc.code == exitOK && r.stdout != okLine {
				t.Errorf("stdout %q, want %q", r.stdout, okLine)
			}
			if tc.code == exitFailure && !strings.Contains(r.stderr, tc.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tc.wantErr)
			}
		})
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
