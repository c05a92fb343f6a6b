package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// source yields the raw JWKS document.
type source interface {
	load(ctx context.Context) ([]byte, error)
	String() string
}

// fileSource is the offline form: a JWKS file.
type fileSource struct{ path string }

func (s fileSource) String() string { return s.path }

func (s fileSource) load(context.Context) ([]byte, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f)
}

// discoverySource is the online form: the issuer's OpenID discovery
// document names the jwks_uri. Both are fetched on every load, so a moved
// jwks_uri is followed.
type discoverySource struct {
	issuer string
	client *http.Client
}

func (s discoverySource) String() string { return s.issuer }

func (s discoverySource) load(ctx context.Context) ([]byte, error) {
	doc, err := httpGet(ctx, s.client, strings.TrimSuffix(s.issuer, "/")+"/.well-known/openid-configuration")
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	m, err := decodeObject(doc)
	if err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	iss, _, err := stringMember(m, "issuer")
	if err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	if iss != s.issuer {
		return nil, fmt.Errorf("discovery document: issuer %s, want %s", q(iss), q(s.issuer))
	}
	uri, _, err := stringMember(m, "jwks_uri")
	if err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	if uri == "" {
		return nil, errors.New("discovery document: no jwks_uri")
	}
	if err := checkFetchURL(uri); err != nil {
		return nil, fmt.Errorf("discovery document: jwks_uri %w", err)
	}
	b, err := httpGet(ctx, s.client, uri)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	return b, nil
}

func httpGet(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return readLimited(resp.Body)
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("document larger than %d bytes", maxJWKSBytes)
	}
	if !json.Valid(b) {
		return nil, errors.New("document is not valid JSON")
	}
	return b, nil
}
