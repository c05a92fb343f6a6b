package keyless_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keyless"
	"github.com/stellaops/signer-agent/test/sigstack"
)

// signErr signs keylessly with s and returns the error; nothing may be
// signed when there is one.
func signErr(t *testing.T, s *keyless.Signer) error {
	t.Helper()
	_, digest := artifact(t, "never signed\n")
	ctx := context.Background()
	sg, release, err := s.ForRequest(ctx, "keyless")
	if err != nil {
		return err
	}
	defer release()
	res, err := attest.Sign(ctx, statement(t, digest), []attest.Signer{sg})
	if err == nil {
		t.Fatalf("signed despite the failure: %d bundles", len(res.Bundles))
	}
	if res != nil {
		t.Fatal("a result came with the error")
	}
	return err
}

// TestKeylessFailures: each outage ends in its own sentinel, wrapping
// keys.ErrBackendUnavailable (the agent's signing_backend_unavailable),
// with a Retry-After hint, and nothing is signed.
func TestKeylessFailures(t *testing.T) {
	closedURL := "http://127.0.0.1:" + strconv.Itoa(sigstack.FreePort(t))
	stop := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Never answers. The body is read first: only then does the
		// server notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer slow.Close()
	defer close(stop)
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer busy.Close()

	expired := filepath.Join(t.TempDir(), "expired")
	os.WriteFile(expired, []byte(stack.Issuer.Mint(sigstack.Email, time.Now().Add(-time.Hour), 10*time.Minute)), 0o600)
	stranger := sigstack.NewIssuer(t) // Fulcio does not trust it
	unknown := filepath.Join(t.TempDir(), "unknown-issuer")
	os.WriteFile(unknown, []byte(stranger.Mint(sigstack.Email, time.Now(), 10*time.Minute)), 0o600)

	for _, tc := range []struct {
		name      string
		mod       func(*keyless.Config)
		want      error
		wantToo   error
		wantRetry time.Duration
	}{
		{"Fulcio unreachable", func(c *keyless.Config) { c.FulcioURL = closedURL }, keyless.ErrFulcioUnavailable, nil, 5 * time.Second},
		{"Fulcio too slow", func(c *keyless.Config) { c.FulcioURL = slow.URL; c.Timeout = 300 * time.Millisecond }, keyless.ErrFulcioUnavailable, context.DeadlineExceeded, 5 * time.Second},
		{"Fulcio 503 with Retry-After", func(c *keyless.Config) { c.FulcioURL = busy.URL }, keyless.ErrFulcioUnavailable, nil, 7 * time.Second},
		{"TSA unreachable", func(c *keyless.Config) { c.TSAURL = closedURL + "/api/v1/timestamp" }, keyless.ErrTSAUnavailable, nil, 5 * time.Second},
		{"TSA too slow", func(c *keyless.Config) { c.TSAURL = slow.URL; c.Timeout = 300 * time.Millisecond }, keyless.ErrTSAUnavailable, context.DeadlineExceeded, 5 * time.Second},
		{"TSA 503", func(c *keyless.Config) { c.TSAURL = busy.URL }, keyless.ErrTSAUnavailable, nil, 7 * time.Second},
		{"identity token expired", func(c *keyless.Config) { c.Identity = &keyless.FileToken{Path: expired} }, keyless.ErrIdentityUnavailable, keyless.ErrIdentityExpired, 30 * time.Second},
		{"identity token file missing", func(c *keyless.Config) { c.Identity = &keyless.FileToken{Path: expired + ".missing"} }, keyless.ErrIdentityUnavailable, os.ErrNotExist, 30 * time.Second},
		{"identity token refused by Fulcio", func(c *keyless.Config) { c.Identity = &keyless.FileToken{Path: unknown} }, keyless.ErrIdentityUnavailable, nil, 30 * time.Second},
		{"Authority down (client credentials)", func(c *keyless.Config) {
			c.Identity = &keyless.ClientCredentials{TokenURL: closedURL + "/token", ClientID: sigstack.ClientID, ClientSecret: sigstack.ClientSecret}
		}, keyless.ErrIdentityUnavailable, nil, 30 * time.Second},
		{"client credentials refused", func(c *keyless.Config) {
			c.Identity = &keyless.ClientCredentials{TokenURL: stack.Issuer.URL + "/token", ClientID: sigstack.ClientID, ClientSecret: "wrong"}
		}, keyless.ErrIdentityUnavailable, nil, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := signErr(t, newSigner(t, stack, tc.mod))
			if !errors.Is(err, tc.want) || !errors.Is(err, keys.ErrBackendUnavailable) {
				t.Fatalf("got %v, want %v wrapping keys.ErrBackendUnavailable", err, tc.want)
			}
			if tc.wantToo != nil && !errors.Is(err, tc.wantToo) {
				t.Errorf("got %v, want it to wrap %v", err, tc.wantToo)
			}
			for _, other := range []error{keyless.ErrFulcioUnavailable, keyless.ErrTSAUnavailable, keyless.ErrIdentityUnavailable} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("error also wraps %v", other)
				}
			}
			if got := keyless.RetryAfter(err); got != tc.wantRetry {
				t.Errorf("Retry-After %s, want %s", got, tc.wantRetry)
			}
			if strings.Contains(err.Error(), "eyJ") {
				t.Error("error carries a token")
			}
		})
	}
}

// TestKeylessFulcioOutage: a real Fulcio certifies, is killed, and the
// next request fails with ErrFulcioUnavailable.
func TestKeylessFulcioOutage(t *testing.T) {
	own := sigstack.Start(t, sigstack.Options{Fulcio: true})
	s := newSigner(t, own, nil)
	_, digest := artifact(t, "before the outage\n")
	signKeyless(t, s, statement(t, digest))
	own.StopFulcio()
	if err := signErr(t, s); !errors.Is(err, keyless.ErrFulcioUnavailable) || !errors.Is(err, keys.ErrBackendUnavailable) {
		t.Fatalf("after the outage: %v", err)
	}
}

// TestKeylessClientCredentials: the identity token comes from the
// Authority's token endpoint (client credentials, audience sigstore) and
// is cached until shortly before it expires.
func TestKeylessClientCredentials(t *testing.T) {
	before := stack.Issuer.TokenRequests.Load()
	s := newSigner(t, stack, func(c *keyless.Config) {
		c.Identity = &keyless.ClientCredentials{TokenURL: stack.Issuer.URL + "/token", ClientID: sigstack.ClientID, ClientSecret: sigstack.ClientSecret}
	})
	_, digest := artifact(t, "client credentials\n")
	for i := 0; i < 3; i++ {
		res := signKeyless(t, s, statement(t, digest))
		if res.SigningIdentity[0].CertificateIdentity != sigstack.Email {
			t.Fatalf("identity %q", res.SigningIdentity[0].CertificateIdentity)
		}
	}
	if n := stack.Issuer.TokenRequests.Load() - before; n != 1 {
		t.Errorf("%d token requests for three signatures, want 1 (cached)", n)
	}
}

// TestKeylessTokenFileRotation: a token file replaced in place (as the
// kubelet rotates projected tokens) is read again; an expired one in its
// place stops signing at once.
func TestKeylessTokenFileRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	write := func(iat time.Time) {
		tmp := p + ".tmp"
		os.WriteFile(tmp, []byte(stack.Issuer.Mint(sigstack.Email, iat, 10*time.Minute)), 0o600)
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	write(time.Now())
	s := newSigner(t, stack, func(c *keyless.Config) { c.Identity = &keyless.FileToken{Path: p} })
	_, digest := artifact(t, "rotation\n")
	signKeyless(t, s, statement(t, digest))
	write(time.Now().Add(-time.Hour))
	if err := signErr(t, s); !errors.Is(err, keyless.ErrIdentityExpired) {
		t.Fatalf("expired token in place: %v", err)
	}
	write(time.Now())
	signKeyless(t, s, statement(t, digest))
}
