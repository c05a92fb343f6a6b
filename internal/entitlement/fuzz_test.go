package entitlement

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stellaops/signer-agent/proto"
)

// FuzzVerifyPoE: the offline PoE parser never panics and never accepts
// anything but the PoE the test signed.
func FuzzVerifyPoE(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	good, _ := jwt.Signed(s).Claims(map[string]any{"sub": "n", "tid": "t", "plan": "p", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	ch, err := New(Config{LicensingKeys: []crypto.PublicKey{key.Public()}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := ch.Check(context.Background(), &proto.PoE{Format: "jwt", Value: raw}, "t", "n")
		if err == nil && raw != good {
			// Only re-encodings of the signed token may pass.
			if v.Tenant != "t" || v.Plan != "p" {
				t.Fatalf("accepted %q", raw)
			}
		}
	})
}
