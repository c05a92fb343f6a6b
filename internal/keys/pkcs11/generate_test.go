//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
)

func TestGenerateKey(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "gen")
	ctx := context.Background()
	mod := h.moduleURI(t)

	uri, pub, err := pkcs11.GenerateKey(ctx, mod, "gen", "release key/2025", elliptic.P384())
	if err != nil {
		t.Fatal(err)
	}
	u, err := pkcs11.ParseURI(uri)
	if err != nil {
		t.Fatalf("GenerateKey returned a URI that does not parse: %v", err)
	}
	if u.Token != "gen" || u.Object != "release key/2025" || len(u.ID) != 8 || u.ModulePath != softhsmModule {
		t.Errorf("URI %s: unexpected attributes %+v", uri, u)
	}
	var o pkcs11.Opener
	k := openKey(t, &o, uri)
	if !k.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Error("the opened key's public key differs from GenerateKey's")
	}
	// Login is per token for the whole process: while k keeps the token
	// logged in, C_Login with a wrong PIN reports "already logged in".
	k.Close()

	for _, c := range []struct {
		name                  string
		moduleURI, token, obj string
		curve                 elliptic.Curve
		wantIn                string
	}{
		{"label in use", mod, "gen", "release key/2025", elliptic.P256(), "already in use"},
		{"id in use", strings.Replace(mod, "pkcs11:", "pkcs11:id="+escapeAll(u.ID), 1), "gen", "other", elliptic.P256(), "id is already in use"},
		{"P-224", mod, "gen", "p224", elliptic.P224(), "P-224"},
		{"object in module URI", strings.Replace(mod, "pkcs11:", "pkcs11:object=x", 1), "gen", "y", elliptic.P256(), "must not name an object"},
		{"other token in module URI", strings.Replace(mod, "pkcs11:", "pkcs11:token=other", 1), "gen", "y", elliptic.P256(), "names token"},
		{"no token", mod, "", "y", elliptic.P256(), "no token label"},
		{"no object", mod, "gen", "", elliptic.P256(), "no object label"},
		{"token label too long", mod, strings.Repeat("t", 33), "y", elliptic.P256(), "at most 32"},
		{"no PIN", "pkcs11:?module-path=" + softhsmModule, "gen", "y", elliptic.P256(), "pin-source"},
		{"wrong PIN", "pkcs11:?module-path=" + softhsmModule + "&pin-value=0000", "gen", "y", elliptic.P256(), "refused the PIN"},
		{"missing token", mod, "absent", "y", elliptic.P256(), "token not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			uri, _, err := pkcs11.GenerateKey(ctx, c.moduleURI, c.token, c.obj, c.curve)
			if err == nil {
				t.Fatalf("GenerateKey succeeded: %s", uri)
			}
			if !strings.Contains(err.Error(), c.wantIn) {
				t.Errorf("error %q does not mention %q", err, c.wantIn)
			}
			if strings.Contains(err.Error(), userPIN) {
				t.Errorf("error %q contains the PIN", err)
			}
		})
	}
	if _, _, err := pkcs11.GenerateKey(ctx, mod, "gen", "x", elliptic.P224()); !errors.Is(err, keys.ErrUnsupportedKey) {
		t.Errorf("P-224: got %v, want ErrUnsupportedKey", err)
	}
}

func TestListTokens(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "alpha")
	h.initToken(t, "beta")
	tokens, err := pkcs11.ListTokens(softhsmModule)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]pkcs11.TokenInfo{}
	free := 0
	for _, ti := range tokens {
		if !ti.Initialized {
			free++
			continue
		}
		labels[ti.Label] = ti
	}
	if len(labels) != 2 || free != 1 {
		t.Fatalf("tokens %+v: want alpha, beta and one free slot", tokens)
	}
	for _, label := range []string{"alpha", "beta"} {
		ti, ok := labels[label]
		if !ok {
			t.Fatalf("token %q not listed", label)
		}
		if !ti.LoginRequired || ti.Serial == "" || ti.Manufacturer != "SoftHSM project" {
			t.Errorf("token %q: %+v", label, ti)
		}
		u, err := pkcs11.ParseURI(ti.URI)
		if err != nil {
			t.Fatalf("token URI %s: %v", ti.URI, err)
		}
		if u.Token != label || u.Serial != ti.Serial || u.ModulePath != softhsmModule {
			t.Errorf("token URI %s does not name token %q", ti.URI, label)
		}
		// The token URI plus an object names a key.
		uri := h.generate(t, label, "k", elliptic.P256())
		var o pkcs11.Opener
		k := openKey(t, &o, strings.Replace(ti.URI, "?", ";object=k?", 1)+"&pin-source=file:"+h.pinFile(t, "p", userPIN))
		if !k.Public().(*ecdsa.PublicKey).Equal(openKey(t, &o, uri).Public()) {
			t.Error("token URI + object opened another key")
		}
	}

	for _, bad := range []string{"relative/lib.so", "/nonexistent/lib.so", "/usr/lib"} {
		if _, err := pkcs11.ListTokens(bad); err == nil {
			t.Errorf("ListTokens(%q) succeeded", bad)
		}
	}
}
