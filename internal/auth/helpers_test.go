package auth

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/auth/authoritytest"
	"github.com/stellaops/signer-agent/proto"
)

const signPath = "/api/v1/signer/sign/dsse"

// fixture is an Authority, a fake clock, a Verifier in the discovery form
// (or the file form) and a DPoP key.
type fixture struct {
	t     testing.TB
	a     *authoritytest.Authority
	clock *authoritytest.Clock
	v     *Verifier
	dpop  crypto.Signer
	cfg   Config
}

type fixtureOpt struct {
	file      bool
	authority []authoritytest.Option
	cfg       func(*Config)
}

func newFixture(t testing.TB, o fixtureOpt) *fixture {
	t.Helper()
	clock := authoritytest.NewClock(time.Time{})
	a := authoritytest.New(t, append([]authoritytest.Option{authoritytest.WithClock(clock)}, o.authority...)...)
	cfg := Config{
		Issuer:          a.Issuer,
		Installation:    authoritytest.Installation,
		NonceRequired:   true,
		NonceKey:        []byte("0123456789abcdef0123456789abcdef"),
		Now:             clock.Now,
		RefreshInterval: -1,
	}
	if o.file {
		cfg.JWKSFile = a.JWKSFile
	} else {
		cfg.Discovery = true
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	v, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return &fixture{t: t, a: a, clock: clock, v: v, dpop: authoritytest.NewDPoPKey(), cfg: cfg}
}

// token mints a default token bound to the fixture's DPoP key, after edit.
func (f *fixture) token(edit func(claims map[string]any), opts authoritytest.MintOptions) string {
	c := f.a.Claims(authoritytest.Thumbprint(f.dpop.Public()))
	if edit != nil {
		edit(c)
	}
	return f.a.Mint(c, opts)
}

// proof is a valid proof for POST signPath with the current nonce, after
// mutate.
func (f *fixture) proof(token string, mutate func(hdr, claims map[string]any)) string {
	return authoritytest.Proof(f.dpop, "POST", DefaultHTUBase+signPath, token, f.v.Nonce(), f.clock.Now(), "", mutate)
}

// request runs the whole gate: Authorization header, token, proof.
func (f *fixture) request(authz, proof string) (*Claims, error) {
	ctx := context.Background()
	tok, err := ParseAuthorization(authz)
	if err != nil {
		return nil, err
	}
	c, err := f.v.VerifyToken(ctx, tok)
	if err != nil {
		return nil, err
	}
	if err := f.v.VerifyDPoP(ctx, proof, "POST", signPath, c, tok); err != nil {
		return nil, err
	}
	return c, nil
}

// wantCode fails unless err is an *Error with code.
func wantCode(t testing.TB, err error, code proto.Code) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *Error with code %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code %s (%s), want %s", e.Code, e.Reason, code)
	}
	if e.Reason == "" || e.Detail == "" {
		t.Fatalf("error without reason or detail: %+v", e)
	}
	return e
}

// noSecrets fails if any segment of the given JWSs appears in e's texts.
func noSecrets(t testing.TB, e *Error, jwss ...string) {
	t.Helper()
	for _, s := range jwss {
		for _, seg := range strings.Split(s, ".") {
			if len(seg) < 8 {
				continue
			}
			for _, text := range []string{e.Reason, e.Detail, e.Error(), e.Challenge()} {
				if strings.Contains(text, seg) || strings.Contains(text, seg[:8]) {
					t.Fatalf("error text %q contains a token or proof segment", text)
				}
			}
		}
	}
}

// eventually polls cond until it holds or 10 s pass. It asserts no timing,
// only that the condition is reached at all.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
