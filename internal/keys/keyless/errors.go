package keyless

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
)

// Causes of a keyless signing failure. Every Error wraps exactly one of
// them and keys.ErrBackendUnavailable.
var (
	// ErrFulcioUnavailable: Fulcio could not be reached, failed, answered
	// too slowly, or returned a certificate that does not check out.
	ErrFulcioUnavailable = errors.New("fulcio unavailable")
	// ErrTSAUnavailable: the timestamp authority could not be reached,
	// failed, answered too slowly, or returned a timestamp that does not
	// check out.
	ErrTSAUnavailable = errors.New("timestamp authority unavailable")
	// ErrIdentityUnavailable: the agent has no usable identity token (file
	// missing or unreadable, Authority unreachable or refusing the client,
	// token expired, or Fulcio refusing the token).
	ErrIdentityUnavailable = errors.New("identity token unavailable")
	// ErrIdentityExpired is wrapped (with ErrIdentityUnavailable) when the
	// token has expired or is about to.
	ErrIdentityExpired = errors.New("identity token expired")
)

// Default Retry-After hints.
const (
	retryBackend  = 5 * time.Second
	retryIdentity = 30 * time.Second
)

// Error is a keyless signing failure: its cause (one of the sentinels), a
// Retry-After hint, and the underlying error.
type Error struct {
	Cause      error
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return fmt.Sprintf("keyless: %v: %v", e.Cause, e.Err) }

// Unwrap exposes the cause, keys.ErrBackendUnavailable and the underlying
// error to errors.Is and errors.As.
func (e *Error) Unwrap() []error { return []error{e.Cause, keys.ErrBackendUnavailable, e.Err} }

// RetryAfter is the Retry-After hint of a keyless failure, 0 for other
// errors.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

func fail(cause error, retry time.Duration, err error) error {
	if retry <= 0 {
		retry = retryBackend
		if cause == ErrIdentityUnavailable {
			retry = retryIdentity
		}
	}
	return &Error{Cause: cause, RetryAfter: retry, Err: err}
}

// StatusError is a non-2xx answer from Fulcio, the TSA or the token
// endpoint. Its body is not kept: it may echo what was sent.
type StatusError struct {
	Service    string
	Code       int
	RetryAfter time.Duration
	// TokenRefused: the service refused the identity token (401, 403, or
	// Fulcio's 400 "error processing the identity token").
	TokenRefused bool
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s answered HTTP %d %s", e.Service, e.Code, http.StatusText(e.Code))
}

// parseRetryAfter reads a Retry-After header in seconds (dates are rare
// from these services and ignored).
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, 10*time.Minute)
}

// statusRetry is the Retry-After of a StatusError in err, if any.
func statusRetry(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}
