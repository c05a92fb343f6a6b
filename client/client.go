package client

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/stellaops/signer-agent/proto"
)

// Limits and timeouts.
const (
	// MaxResponseBytes caps the body read from any successful response.
	// A sign response may additionally be as large as the envelope and
	// bundles derived from the request (see SignDSSE).
	MaxResponseBytes = 64 << 20
	// DefaultTimeout bounds one call when Client.Timeout is zero and the
	// caller's context has no earlier deadline.
	DefaultTimeout = 2 * time.Minute
	// dialTimeout bounds connecting to the socket. A local socket accepts
	// at once or not at all; a full backlog should fail fast.
	dialTimeout = 5 * time.Second
	// idleConnTimeout is shorter than any sensible agent idle timeout so
	// the client rarely reuses a connection the agent is closing.
	idleConnTimeout = 30 * time.Second
	userAgent       = "signer-agent-go-client"
)

// Client talks to a signer-agent over its api socket. The zero value is
// ready to use: it finds the socket from SIGNER_AGENT_SOCKET, else
// proto.DefaultSocket.
//
// A Client is safe for concurrent use. Its fields are read once, on first
// use, and must not be changed afterwards; do not copy a Client after first
// use.
type Client struct {
	// Socket is the api socket: a unix URI ("unix:///run/signer-agent/api.sock")
	// or a path. Empty means SIGNER_AGENT_SOCKET, else proto.DefaultSocket.
	Socket string

	// Dial, if set, opens connections instead of dialling Socket (tests,
	// custom transports). It is called for each new connection.
	Dial func(ctx context.Context) (net.Conn, error)

	// Token, if set, supplies the OpTok. Every request then carries
	// "Authorization: DPoP <token>" and a fresh DPoP proof signed with
	// DPoPKey (RFC 9449); the client learns the agent's DPoP-Nonce from
	// every response and, when the agent answers use_dpop_nonce, retries
	// the request once with the new nonce. Token without DPoPKey is an
	// error on every call: an unbound token is never sent.
	Token TokenSource

	// DPoPKey signs the DPoP proofs: an ECDSA P-256 key (ES256) or an
	// Ed25519 key (EdDSA), in software or behind any crypto.Signer (HSM,
	// TPM). Its public key is embedded in each proof; its thumbprint
	// (JWKThumbprint) must be the token's cnf.jkt. Other key types are an
	// error on every call. Credentials.Apply sets Token and DPoPKey.
	DPoPKey crypto.Signer

	// HTUBase is the URL put in front of the request path in each proof's
	// htu claim; it must match the agent's configured base. Empty means
	// DefaultHTUBase ("http://signer-agent"). It must be an http or https
	// URL without user info, query or fragment; a trailing slash is
	// dropped.
	HTUBase string

	// PoE and ScannerImageDigest fill sign requests that do not carry
	// their own (Credentials.Apply sets them from a credentials file).
	PoE                *proto.PoE
	ScannerImageDigest string

	// Authorize, if set, is called with each fully built request just
	// before it is sent (again for the nonce retry), to add credentials or
	// other headers. It runs after the Token and DPoP headers are set and
	// may replace them. req.Method and req.URL ("http://signer-agent" +
	// path) are final; the body can be re-read through req.GetBody. An
	// error aborts the call. Origin and Referer headers are removed after
	// it runs.
	Authorize func(req *http.Request) error

	// Timeout bounds each call, retries included, when the context has
	// no earlier deadline. Zero means DefaultTimeout; negative means no
	// bound beyond the context.
	Timeout time.Duration

	// DisableIdempotencyKeys stops the client from giving sign, batch and
	// export calls a random Idempotency-Key (SPEC §4.6). Such calls are
	// then never retried. A key set with WithIdempotencyKey is still sent.
	DisableIdempotencyKeys bool

	// MaxAttempts bounds the attempts of a call that carries an
	// Idempotency-Key, the first one included: a 429 or 503 answer or a
	// transport failure is retried with exponential backoff and jitter,
	// never sooner than the agent's Retry-After, within the call's
	// context. Each retry carries the same key and body and a fresh DPoP
	// proof. Zero means DefaultMaxAttempts (3); 1 or less disables
	// retries. Calls without a key are never retried.
	MaxAttempts int

	// MaxRetryWait is the longest Retry-After the client waits out
	// before a retry. A longer one (a plan throttled for minutes, a daily
	// quota exhausted until midnight) ends the call with the agent's
	// error, whose RetryAfter says when to come back: a library should not
	// sleep for minutes inside a call. Zero means DefaultMaxRetryWait
	// (10 s); negative means no limit beyond the call's context.
	MaxRetryWait time.Duration

	once    sync.Once
	initErr error
	where   string // for transport error messages
	tr      *http.Transport
	hc      *http.Client
	dpop    *dpopProver // nil unless Token is set
	nonce   nonceCache  // the agent's latest DPoP-Nonce
}

func (c *Client) init() error {
	c.once.Do(func() {
		dial := c.Dial
		if dial == nil {
			path, err := resolveSocket(c.Socket)
			if err != nil {
				c.initErr = err
				return
			}
			c.where = "unix socket " + path
			d := &net.Dialer{Timeout: dialTimeout}
			dial = func(ctx context.Context) (net.Conn, error) {
				return d.DialContext(ctx, "unix", path)
			}
		} else {
			c.where = "custom dialer"
		}
		c.tr = &http.Transport{
			// Proxy is nil: proxy environment variables must never
			// divert requests meant for the local socket.
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dial(ctx)
			},
			DisableCompression:  true,
			MaxIdleConns:        16,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     idleConnTimeout,
		}
		c.hc = &http.Client{
			Transport: c.tr,
			// The agent never redirects; following one would also
			// add a Referer header, which the agent refuses.
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
		c.initErr = c.initDPoP()
	})
	return c.initErr
}

// initDPoP checks Token, DPoPKey and HTUBase and prepares the prover.
func (c *Client) initDPoP() error {
	switch {
	case c.Token == nil && c.DPoPKey == nil:
		return nil
	case c.DPoPKey == nil:
		return errors.New("signer-agent: Client.Token is set but Client.DPoPKey is not: " +
			"OpToks are DPoP-bound and are never sent without a proof")
	}
	p, err := newDPoPProver(c.DPoPKey, c.HTUBase)
	if err != nil {
		return err
	}
	if c.Token != nil {
		c.dpop = p
	}
	return nil
}

// CloseIdleConnections closes connections kept open for reuse.
func (c *Client) CloseIdleConnections() {
	if c.init() == nil {
		c.tr.CloseIdleConnections()
	}
}

// SignDSSE asks the agent to sign a statement (POST
// /api/v1/signer/sign/dsse). The request is sent as given; the agent
// validates it. Agent refusals are *Error values (see the Err* sentinels).
func (c *Client) SignDSSE(ctx context.Context, req *proto.SignRequest) (*proto.SignResponse, error) {
	if req == nil {
		return nil, errors.New("signer-agent: SignDSSE: nil request")
	}
	if poe, digest, filled := c.defaults(req.PoE, req.ScannerImageDigest); filled {
		r := *req // the caller's request is not modified
		r.PoE, r.ScannerImageDigest = poe, digest
		req = &r
	}
	// The statement comes back in the envelope and in each signature's bundle.
	var out proto.SignResponse
	replayed, err := c.signCall(ctx, "SignDSSE", proto.PathSignDSSE, req, max(len(req.KeyIDs()), 1)+1, &out)
	if err != nil {
		return nil, err
	}
	out.Replayed = replayed
	return &out, nil
}

// Keys lists the agent's public keys (GET /api/v1/signer/keys).
func (c *Client) Keys(ctx context.Context) (*proto.KeysResponse, error) {
	var out proto.KeysResponse
	if err := c.call(ctx, http.MethodGet, proto.PathKeys, nil, MaxResponseBytes, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Health checks liveness (GET /healthz). See Ready for the results.
func (c *Client) Health(ctx context.Context) (*proto.Health, error) {
	return c.health(ctx, proto.PathHealthz)
}

// Ready checks readiness (GET /readyz): keys unlocked, trust roots loaded.
//
// When the agent answers non-2xx with a Health body (503 while not ready),
// Ready returns that Health together with an *Error whose Code is empty and
// whose Detail names the failing checks, so callers can both test err and
// inspect the checks.
func (c *Client) Ready(ctx context.Context) (*proto.Health, error) {
	return c.health(ctx, proto.PathReadyz)
}

func (c *Client) health(ctx context.Context, path string) (*proto.Health, error) {
	var h *proto.Health
	err := c.exchange(ctx, http.MethodGet, path, nil, func(resp *http.Response) error {
		if ok(resp) {
			var nh proto.Health
			if err := decodeJSON(resp, MaxResponseBytes, &nh); err != nil {
				return err
			}
			h = &nh
			return nil
		}
		b, truncated, rerr := readErrorBody(resp)
		if rerr == nil && !truncated && mediaType(resp.Header) == proto.MediaTypeJSON {
			var nh proto.Health
			if json.Unmarshal(b, &nh) == nil && nh.Status != "" {
				h = &nh
				return healthError(resp, path, h)
			}
		}
		return errorFrom(resp, b, truncated, rerr)
	})
	return h, err
}

// callReplayed POSTs a sign, batch or export call and decodes a 2xx JSON
// answer into out; it reports whether the answer was a replay of an
// earlier one with the same Idempotency-Key (Idempotent-Replayed: true).
func (c *Client) callReplayed(ctx context.Context, path string, body []byte, limit int64, out any) (bool, error) {
	var replayed bool
	err := c.exchange(ctx, http.MethodPost, path, body, func(resp *http.Response) error {
		if !ok(resp) {
			return readError(resp)
		}
		replayed = resp.Header.Get(proto.HeaderIdempotentReplayed) == "true"
		return decodeJSON(resp, limit, out)
	})
	return replayed, err
}

// call sends one request and decodes a 2xx JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, body []byte, limit int64, out any) error {
	return c.exchange(ctx, method, path, body, func(resp *http.Response) error {
		if !ok(resp) {
			return readError(resp)
		}
		return decodeJSON(resp, limit, out)
	})
}

// exchange builds, authorizes and sends a request, hands the response to
// handle and then drains and closes the body. Transport failures are
// wrapped with the method, path and socket.
//
// A sign, batch or export call carries an Idempotency-Key and is retried
// as Client.MaxAttempts describes (retry.go); every other call is sent
// once. Within each attempt, with a Token, the request carries the OpTok
// and a DPoP proof; a 401 use_dpop_nonce answer that brings a new
// DPoP-Nonce is sent again once, with the same body and a new proof.
func (c *Client) exchange(ctx context.Context, method, path string, body []byte, handle func(*http.Response) error) error {
	if err := c.init(); err != nil {
		return err
	}
	switch {
	case c.Timeout == 0:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	case c.Timeout > 0:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	idem, err := c.idempotencyKey(ctx, method, path)
	if err != nil {
		return fmt.Errorf("signer-agent: %s %s: %w", method, path, err)
	}
	attempts := 1
	if idem != "" {
		attempts = c.maxAttempts()
	}
	for n := 1; ; n++ {
		err = c.attempt(ctx, method, path, body, idem, handle)
		if err == nil || n >= attempts {
			break
		}
		retry, after := retryDelay(ctx, err)
		if !retry || (c.MaxRetryWait >= 0 && after > c.maxRetryWait()) || !wait(ctx, backoff(n, after)) {
			break
		}
	}
	var te *transportError
	if errors.As(err, &te) {
		return te.err
	}
	return err
}

// attempt sends the request once (plus the one nonce retry). A failure to
// send it or to read a successful response is a *transportError.
func (c *Client) attempt(ctx context.Context, method, path string, body []byte, idem string, handle func(*http.Response) error) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+proto.Host+path, rd)
	if err != nil {
		return fmt.Errorf("signer-agent: %s %s: %w", method, path, err)
	}
	path = req.URL.Path // without the query, for messages
	req.Host = proto.Host
	req.Header.Set("Accept", proto.MediaTypeJSON+", "+proto.MediaTypeProblem)
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", proto.MediaTypeJSON)
	}
	if id := requestID(ctx); id != "" {
		req.Header.Set(proto.HeaderRequestID, id)
	}
	if idem != "" {
		req.Header.Set(proto.HeaderIdempotencyKey, idem)
	}
	var token string
	if c.dpop != nil {
		if token, err = c.token(ctx); err != nil {
			return fmt.Errorf("signer-agent: %s %s: %w", method, path, err)
		}
	}

	for try := 0; ; try++ {
		sentNonce, err := c.authorize(req, token)
		if err != nil {
			return fmt.Errorf("signer-agent: %s %s: %w", method, path, err)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // drop the repeated "Post http://signer-agent/…"
			}
			return &transportError{fmt.Errorf("signer-agent: %s %s via %s: %w", method, path, c.where, err)}
		}
		fresh := c.nonce.learn(resp.Header)
		if try == 0 && c.dpop != nil && fresh != "" && fresh != sentNonce && needsNonce(resp) {
			closeBody(resp)
			if req, err = replay(req); err != nil {
				return fmt.Errorf("signer-agent: %s %s: nonce retry: %w", method, path, err)
			}
			continue
		}
		err = handle(resp)
		closeBody(resp)
		return err
	}
}

// authorize adds the OpTok and a DPoP proof (when the client has a Token),
// runs the Authorize hook and removes Origin and Referer. It returns the
// nonce put in the proof.
func (c *Client) authorize(req *http.Request, token string) (nonce string, err error) {
	if c.dpop != nil {
		nonce = c.nonce.get()
		proof, err := c.dpop.proof(req.Method, req.URL, token, nonce, time.Now())
		if err != nil {
			return "", fmt.Errorf("DPoP proof: %w", err)
		}
		req.Header.Set(proto.HeaderAuthorization, "DPoP "+token)
		req.Header.Set(proto.HeaderDPoP, proof)
	}
	if c.Authorize != nil {
		if err := c.Authorize(req); err != nil {
			return "", fmt.Errorf("authorize: %w", err)
		}
		req.Host = proto.Host
	}
	req.Header.Del("Origin")
	req.Header.Del("Referer")
	return nonce, nil
}

// needsNonce reports whether resp is a 401 problem with code
// use_dpop_nonce. It reads the (bounded) error body and puts it back, so
// the response can still be handled as usual.
func needsNonce(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized || mediaType(resp.Header) != proto.MediaTypeProblem {
		return false
	}
	b, truncated, err := readErrorBody(resp)
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	if err != nil || truncated {
		return false
	}
	p, err := proto.DecodeProblem(b)
	return err == nil && p.Code == proto.CodeUseDPoPNonce
}

// replay returns a copy of req with a fresh body from req.GetBody, ready to
// be authorized and sent again.
func replay(req *http.Request) (*http.Request, error) {
	next := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, errors.New("request body cannot be replayed")
		}
		b, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("replay body: %w", err)
		}
		next.Body = b
	}
	return next, nil
}

// closeBody drains a little of the body, so the connection can be reused,
// and closes it.
func closeBody(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

func ok(resp *http.Response) bool { return resp.StatusCode >= 200 && resp.StatusCode < 300 }

// readError reads a bounded error body and builds its *Error.
func readError(resp *http.Response) error {
	b, truncated, err := readErrorBody(resp)
	return errorFrom(resp, b, truncated, err)
}

// readErrorBody reads at most maxErrorBody bytes of an error body.
func readErrorBody(resp *http.Response) (b []byte, truncated bool, err error) {
	b, err = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	if len(b) > maxErrorBody {
		b, truncated = b[:maxErrorBody], true
	}
	return b, truncated, err
}

func errorFrom(resp *http.Response, b []byte, truncated bool, readErr error) *Error {
	if readErr != nil {
		e := newError(resp, nil, false)
		e.Detail = fmt.Sprintf("reading error body: %v", readErr)
		return e
	}
	return newError(resp, b, truncated)
}

// decodeJSON reads at most limit bytes of a JSON body into out. Unknown
// fields are tolerated so older clients work with newer agents.
func decodeJSON(resp *http.Response, limit int64, out any) error {
	req := resp.Request
	if ct := mediaType(resp.Header); ct != proto.MediaTypeJSON {
		return fmt.Errorf("signer-agent: %s %s: HTTP %d with content type %q, want %s",
			req.Method, req.URL.Path, resp.StatusCode, ct, proto.MediaTypeJSON)
	}
	var b []byte
	var err error
	if n := resp.ContentLength; n >= 0 && n <= limit {
		// Sized by the agent's Content-Length: one allocation, one read.
		b = make([]byte, n)
		_, err = io.ReadFull(resp.Body, b)
	} else {
		b, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	}
	if err != nil {
		// Cut while reading: the agent may have served the request.
		return &transportError{fmt.Errorf("signer-agent: %s %s: read response: %w", req.Method, req.URL.Path, err)}
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("signer-agent: %s %s: response larger than %d bytes", req.Method, req.URL.Path, limit)
	}
	if err := decodeBody(b, out); err != nil {
		return fmt.Errorf("signer-agent: %s %s: decode response: %w", req.Method, req.URL.Path, err)
	}
	return nil
}
