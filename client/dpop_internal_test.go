package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestValidNonce(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"abc", true},
		{"!#$%&'()*+,-./0123456789:;<=>?@AZ[]^_`az{|}~", true},
		{"", false},
		{"has space", false},
		{`quote"`, false},
		{`back\slash`, false},
		{"tab\t", false},
		{"é", false},
		{strings.Repeat("n", maxNonceLen), true},
		{strings.Repeat("n", maxNonceLen+1), false},
	}
	for _, tt := range tests {
		if got := validNonce(tt.in); got != tt.want {
			t.Errorf("validNonce(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseHTUBase(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "", want: "http://signer-agent"},
		{in: "http://signer-agent", want: "http://signer-agent"},
		{in: "http://signer-agent/", want: "http://signer-agent"},
		{in: "https://node.example:8443/prefix/", want: "https://node.example:8443/prefix"},
		{in: "signer-agent", wantErr: true},
		{in: "ftp://x", wantErr: true},
		{in: "http://", wantErr: true},
		{in: "http://u:p@x", wantErr: true},
		{in: "http://x?", wantErr: true},
		{in: "http://x/#", wantErr: true},
		{in: "http://x/%zz", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseHTUBase(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseHTUBase(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// The htu never carries the request's query or fragment (SPEC §15).
func TestProofHTUWithoutQuery(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newDPoPProver(key, "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse("http://signer-agent/api/v1/signer/verify/referrers?digest=sha256:ab#frag")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_770_000_000, 0)
	proof, err := p.proof("GET", u, "tok", "", now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("proof is not a compact JWS: %q", proof)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c["htu"] != "http://signer-agent/api/v1/signer/verify/referrers" || c["iat"] != float64(now.Unix()) {
		t.Errorf("claims = %v", c)
	}
	if _, ok := c["nonce"]; ok {
		t.Error("empty nonce sent")
	}
}
