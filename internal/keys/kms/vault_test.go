package kms

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
)

// fakeVault serves the two calls of Vault's transit API that the sigstore
// provider makes: read a key, sign a prehashed digest.
type fakeVault struct {
	priv   *ecdsa.PrivateKey
	name   string        // transit key name
	fail   atomic.Bool   // answer 503 to everything
	signed atomic.Uint64 // sign requests served
}

func (v *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Vault-Token") != "test-token" {
		http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
		return
	}
	if v.fail.Load() {
		http.Error(w, `{"errors":["Vault is sealed"]}`, http.StatusServiceUnavailable)
		return
	}
	reply := func(data map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/transit/keys/"+v.name:
		der, err := x509.MarshalPKIXPublicKey(&v.priv.PublicKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		reply(map[string]any{
			"latest_version": 1,
			"keys": map[string]any{"1": map[string]any{
				"name":       v.priv.Curve.Params().Name,
				"public_key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
			}},
		})
	case (r.Method == http.MethodPut || r.Method == http.MethodPost) && r.URL.Path == "/v1/transit/sign/"+v.name+"/sha2-256":
		var req struct {
			Input     string `json:"input"`
			Prehashed bool   `json:"prehashed"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Prehashed {
			http.Error(w, `{"errors":["bad request"]}`, http.StatusBadRequest)
			return
		}
		digest, err := base64.StdEncoding.DecodeString(req.Input)
		if err != nil || len(digest) != 32 {
			http.Error(w, `{"errors":["bad input"]}`, http.StatusBadRequest)
			return
		}
		sig, err := ecdsa.SignASN1(rand.Reader, v.priv, digest)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		v.signed.Add(1)
		reply(map[string]any{"signature": "vault:v1:" + base64.StdEncoding.EncodeToString(sig), "key_version": 1})
	default:
		http.Error(w, `{"errors":["no handler for route"]}`, http.StatusNotFound)
	}
}

// startVault starts a fake Vault on 127.0.0.1 and points the provider at it.
func startVault(t *testing.T, c elliptic.Curve) (*fakeVault, *httptest.Server) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v := &fakeVault{priv: priv, name: "signer"}
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", "test-token")
	t.Setenv("TRANSIT_SECRET_ENGINE_PATH", "")
	return v, srv
}

func TestConformanceVault(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		t.Run(c.Params().Name, func(t *testing.T) {
			v, _ := startVault(t, c)
			keystest.Run(t, func(t *testing.T) keys.Key {
				k, err := Open(context.Background(), "hashivault://signer")
				if err != nil {
					t.Fatal(err)
				}
				if !v.priv.PublicKey.Equal(k.Public()) {
					t.Fatal("Public() is not Vault's key")
				}
				return k
			})
			if v.signed.Load() == 0 {
				t.Error("no signature came from the fake Vault")
			}
		})
	}
}

func TestVaultFailures(t *testing.T) {
	v, srv := startVault(t, elliptic.P256())
	ctx := context.Background()

	t.Run("NoSuchKey", func(t *testing.T) {
		_, err := Open(ctx, "hashivault://missing")
		if !errors.Is(err, keys.ErrBackendUnavailable) {
			t.Fatalf("got %v, want ErrBackendUnavailable", err)
		}
	})
	t.Run("BadToken", func(t *testing.T) {
		t.Setenv("VAULT_TOKEN", "wrong")
		_, err := Open(ctx, "hashivault://signer")
		if !errors.Is(err, keys.ErrBackendUnavailable) {
			t.Fatalf("got %v, want ErrBackendUnavailable", err)
		}
	})

	k, err := Open(ctx, "hashivault://signer")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if _, err := keys.SignMessage(ctx, k, []byte("up")); err != nil {
		t.Fatal(err)
	}
	t.Run("Sealed", func(t *testing.T) {
		v.fail.Store(true)
		defer v.fail.Store(false)
		_, err := keys.SignMessage(ctx, k, []byte("sealed"))
		if !errors.Is(err, keys.ErrBackendUnavailable) {
			t.Fatalf("got %v, want ErrBackendUnavailable", err)
		}
	})
	t.Run("Recovered", func(t *testing.T) {
		if _, err := keys.SignMessage(ctx, k, []byte("back")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Down", func(t *testing.T) {
		srv.Close()
		_, err := keys.SignMessage(ctx, k, []byte("down"))
		if !errors.Is(err, keys.ErrBackendUnavailable) {
			t.Fatalf("got %v, want ErrBackendUnavailable", err)
		}
	})
}
