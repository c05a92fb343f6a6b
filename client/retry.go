package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"time"

	"github.com/stellaops/signer-agent/proto"
)

// Retries (SPEC §4.6). A sign, batch or export call carries an
// Idempotency-Key, so the agent answers a repeated request with the
// original response instead of signing (and counting) it again. Only such
// a call is retried, and only when the failure says the request may not
// have been served: 429 (plan_throttled, quota_exhausted), 503
// (agent_busy, signing_backend_unavailable, audit_unavailable, …) and
// transport failures (the agent restarting, a connection cut before or
// while the response was read).
const (
	// DefaultMaxAttempts is the number of attempts of a call with an
	// Idempotency-Key when Client.MaxAttempts is zero (the first try
	// included).
	DefaultMaxAttempts = 3
	// DefaultMaxRetryWait is the longest Retry-After waited out when
	// Client.MaxRetryWait is zero.
	DefaultMaxRetryWait = 10 * time.Second
	// retryBaseDelay is the first backoff; it doubles per retry up to
	// retryMaxDelay, and each delay is drawn uniformly from its upper
	// half (jitter), so callers that failed together do not come back
	// together.
	retryBaseDelay = 100 * time.Millisecond
	retryMaxDelay  = 5 * time.Second
)

type idempotencyKeyCtx struct{}

// WithIdempotencyKey returns a context whose sign, batch and export calls
// carry key as their Idempotency-Key instead of a fresh random one. A
// caller that must survive its own restart (a scanner that signs, crashes
// and starts again) stores the key with its work item and passes it again:
// the agent then returns the first answer instead of signing twice, within
// its idempotency window (default 10 minutes). The key must be 1–255
// printable ASCII characters (proto.ValidateIdempotencyKey); an invalid key
// fails the call before anything is sent. The same key with a different
// request is refused by the agent (ErrIdempotencyKeyReused).
//
// An explicit key is sent even when Client.DisableIdempotencyKeys is set.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKeyCtx{}, key)
}

// idempotentPaths are the calls that carry an Idempotency-Key (SPEC §4.6).
var idempotentPaths = map[string]bool{
	proto.PathSignDSSE:   true,
	proto.PathSignBatch:  true,
	proto.PathSignExport: true,
}

// idempotencyKey returns the key for one call: the context's, else a new
// random one (128 bits, base64url) unless the client disables them; "" for
// calls that take none.
func (c *Client) idempotencyKey(ctx context.Context, method, path string) (string, error) {
	if method != http.MethodPost || !idempotentPaths[path] {
		return "", nil
	}
	if k, ok := ctx.Value(idempotencyKeyCtx{}).(string); ok {
		if err := proto.ValidateIdempotencyKey(k); err != nil {
			return "", err
		}
		return k, nil
	}
	if c.DisableIdempotencyKeys {
		return "", nil
	}
	return newIdempotencyKey()
}

func newIdempotencyKey() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("idempotency key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// maxAttempts is the attempt budget of a call with an idempotency key.
func (c *Client) maxAttempts() int {
	switch {
	case c.MaxAttempts == 0:
		return DefaultMaxAttempts
	case c.MaxAttempts < 1:
		return 1
	}
	return c.MaxAttempts
}

func (c *Client) maxRetryWait() time.Duration {
	if c.MaxRetryWait == 0 {
		return DefaultMaxRetryWait
	}
	return c.MaxRetryWait
}

// transportError marks a failure to send a request or to read its
// response: the agent may or may not have served it.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// retryDelay reports whether a failed attempt may be retried and the
// server's Retry-After, if any. Context errors are final.
func retryDelay(ctx context.Context, err error) (retry bool, after time.Duration) {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false, 0
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Status {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			return true, e.RetryAfter
		}
		return false, 0
	}
	var te *transportError
	return errors.As(err, &te), 0
}

// backoff is the wait before retry number n (1 for the first retry):
// exponential with jitter, and never shorter than the agent's Retry-After.
func backoff(n int, retryAfter time.Duration) time.Duration {
	d := retryMaxDelay
	if n < 16 {
		d = min(retryBaseDelay<<(n-1), retryMaxDelay)
	}
	d = d/2 + mrand.N(d/2+1)
	return max(d, retryAfter)
}

// wait sleeps d unless ctx ends first or its deadline falls before d has
// passed (then waiting is pointless: the retry could not finish). It
// reports whether the retry should go ahead.
func wait(ctx context.Context, d time.Duration) bool {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
