package keyless

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TokenSource gives the agent's OIDC identity token for Fulcio. Errors
// wrap ErrIdentityUnavailable (and ErrIdentityExpired for an expired
// token) and never contain the token.
type TokenSource interface {
	IdentityToken(ctx context.Context) (string, error)
}

// ExpiryMargin is how long before its exp a token stops being used: a
// token that expires within it is treated as expired (Fulcio must still
// accept it when the request arrives).
const ExpiryMargin = 30 * time.Second

// tokenTimeout bounds one token request to the Authority.
const tokenTimeout = 10 * time.Second

// maxTokenBytes bounds a token file or response.
const maxTokenBytes = 64 << 10

// TokenClaims are the unverified claims the agent reads from its own
// identity token: Fulcio verifies the token; the agent only needs to know
// when to stop using it and whom it names.
type TokenClaims struct {
	Issuer  string
	Subject string
	Email   string
	Expiry  time.Time
}

// ParseTokenClaims reads iss, sub, email and exp from a JWT's payload
// without verifying it. A token that is not a three-part JWT, or has no
// exp, is refused.
func ParseTokenClaims(token string) (TokenClaims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return TokenClaims{}, errors.New("identity token is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return TokenClaims{}, errors.New("identity token payload is not base64url")
	}
	var c struct {
		Iss   string   `json:"iss"`
		Sub   string   `json:"sub"`
		Email string   `json:"email"`
		Exp   *float64 `json:"exp"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&c); err != nil {
		return TokenClaims{}, errors.New("identity token payload is not a JSON object")
	}
	if c.Exp == nil || *c.Exp <= 0 || *c.Exp > 1e11 {
		return TokenClaims{}, errors.New("identity token has no valid exp")
	}
	sec := int64(*c.Exp)
	return TokenClaims{Issuer: c.Iss, Subject: c.Sub, Email: c.Email, Expiry: time.Unix(sec, 0)}, nil
}

// checkFresh refuses a token that expires within ExpiryMargin of now.
func checkFresh(c TokenClaims, now time.Time) error {
	if !now.Add(ExpiryMargin).Before(c.Expiry) {
		return fail(ErrIdentityUnavailable, 0, fmt.Errorf("%w at %s", ErrIdentityExpired, c.Expiry.UTC().Format(time.RFC3339)))
	}
	return nil
}

// FileToken reads the identity token from a file, such as a Kubernetes
// projected service-account token that the kubelet rotates in place. The
// file is read again whenever it changes (inode, size or modification
// time) and otherwise served from memory; surrounding white space is
// trimmed.
type FileToken struct {
	Path string
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu     sync.Mutex
	stamp  fileStamp
	token  string
	claims TokenClaims
}

type fileStamp struct {
	ino   uint64
	size  int64
	mtime time.Time
}

// IdentityToken returns the file's token if it is fresh.
func (f *FileToken) IdentityToken(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	fi, err := os.Stat(f.Path)
	if err != nil {
		return "", fail(ErrIdentityUnavailable, 0, fmt.Errorf("token file: %w", err))
	}
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token == "" || st != f.stamp {
		if fi.Size() > maxTokenBytes {
			return "", fail(ErrIdentityUnavailable, 0, fmt.Errorf("token file %s is larger than %d bytes", f.Path, maxTokenBytes))
		}
		b, err := os.ReadFile(f.Path)
		if err != nil {
			return "", fail(ErrIdentityUnavailable, 0, fmt.Errorf("token file: %w", err))
		}
		tok := strings.TrimSpace(string(b))
		clear(b)
		c, err := ParseTokenClaims(tok)
		if err != nil {
			return "", fail(ErrIdentityUnavailable, 0, fmt.Errorf("token file %s: %w", f.Path, err))
		}
		f.token, f.claims, f.stamp = tok, c, st
	}
	if err := checkFresh(f.claims, now()); err != nil {
		return "", err
	}
	return f.token, nil
}

// ClientCredentials obtains the identity token from the Authority with
// the OAuth 2.0 client credentials grant (golang.org/x/oauth2), asking for
// audience "sigstore", and caches it until ExpiryMargin before it expires.
// The response's id_token is used when present, else its access_token
// (the Authority issues JWTs either way).
type ClientCredentials struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	// Audience defaults to "sigstore".
	Audience string
	Scopes   []string
	// HTTPClient makes the token requests (nil: a client with a 10 s
	// timeout).
	HTTPClient *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu     sync.Mutex
	token  string
	claims TokenClaims
}

// IdentityToken returns the cached token, or fetches a new one.
func (c *ClientCredentials) IdentityToken(ctx context.Context) (string, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && checkFresh(c.claims, now()) == nil {
		return c.token, nil
	}
	aud := c.Audience
	if aud == "" {
		aud = "sigstore"
	}
	cfg := clientcredentials.Config{
		ClientID:       c.ClientID,
		ClientSecret:   c.ClientSecret,
		TokenURL:       c.TokenURL,
		Scopes:         c.Scopes,
		EndpointParams: map[string][]string{"audience": {aud}},
		AuthStyle:      oauth2.AuthStyleInHeader,
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: tokenTimeout}
	}
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			// The body may name the client; keep the status only.
			return "", fail(ErrIdentityUnavailable, parseRetryAfter(re.Response.Header.Get("Retry-After")),
				fmt.Errorf("token endpoint answered HTTP %d %s", re.Response.StatusCode, re.ErrorCode))
		}
		return "", fail(ErrIdentityUnavailable, 0, fmt.Errorf("token endpoint: %w", scrubURLError(err)))
	}
	raw := tok.AccessToken
	if id, ok := tok.Extra("id_token").(string); ok && id != "" {
		raw = id
	}
	if len(raw) > maxTokenBytes {
		return "", fail(ErrIdentityUnavailable, 0, errors.New("token endpoint returned an oversized token"))
	}
	claims, err := ParseTokenClaims(raw)
	if err != nil {
		return "", fail(ErrIdentityUnavailable, 0, fmt.Errorf("token endpoint: %w", err))
	}
	if err := checkFresh(claims, now()); err != nil {
		return "", err
	}
	c.token, c.claims = raw, claims
	return raw, nil
}

// scrubURLError keeps a transport error's cause: url.Error repeats the
// URL, which may carry credentials in some deployments.
func scrubURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}

// StaticToken is a fixed token (tests, and one-shot tools).
type StaticToken string

// IdentityToken returns the token if it is fresh.
func (s StaticToken) IdentityToken(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	c, err := ParseTokenClaims(string(s))
	if err != nil {
		return "", fail(ErrIdentityUnavailable, 0, err)
	}
	if err := checkFresh(c, time.Now()); err != nil {
		return "", err
	}
	return string(s), nil
}
