package keyless

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// callTransport runs one exchange of pkg/sign under the caller's context
// (pkg/sign builds its requests without one) and turns any non-2xx answer
// into a *StatusError, so that the exchange ends at once with a typed
// error instead of pkg/sign's retry loop and an error that quotes the
// body.
type callTransport struct {
	ctx     context.Context
	base    http.RoundTripper
	service string
}

func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req.WithContext(t.ctx))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		se := &StatusError{Service: t.service, Code: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
		// Fulcio answers 400 (gRPC InvalidArgument) to a token it cannot
		// verify, with a fixed message; only that fact is kept.
		se.TokenRefused = resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
			resp.StatusCode == http.StatusBadRequest && bytes.Contains(body, []byte("identity token"))
		return nil, se
	}
	return resp, nil
}

func transportFor(ctx context.Context, base http.RoundTripper, service string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &callTransport{ctx: ctx, base: base, service: service}
}

// newTransport is a Signer's own HTTP transport (Fulcio, the TSA and the
// token endpoint): http.DefaultTransport's settings (proxy from the
// environment, dial and TLS handshake timeouts, keep-alive), with
// connections that Signer.Close can close.
func newTransport() *http.Transport {
	return http.DefaultTransport.(*http.Transport).Clone()
}
