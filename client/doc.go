// Package client is the Go client for the signer-agent api socket.
//
// Scanners use it to ask the per-node agent for DSSE envelopes:
//
//	var c client.Client // the zero value is ready to use
//	resp, err := c.SignDSSE(ctx, &proto.SignRequest{…})
//
// # Finding the agent
//
// The agent speaks HTTP/1.1 + JSON over a Unix domain socket. A Client
// dials, in order of preference:
//
//   - Client.Dial, when set (tests, custom transports);
//   - Client.Socket, a unix URI ("unix:///run/signer-agent/api.sock") or a
//     path;
//   - the SIGNER_AGENT_SOCKET environment variable, in the same forms;
//   - proto.DefaultSocket (/run/signer-agent/api.sock).
//
// An invalid Socket or SIGNER_AGENT_SOCKET value is an error on every call,
// never a silent fallback to the default. Every request goes to
// http://signer-agent<path>, so it carries the Host header the agent
// requires; Origin and Referer are never sent, proxy environment variables
// are ignored and redirects are not followed.
//
// # Contexts and timeouts
//
// Every method takes a context, which governs the whole call. When the
// context has no earlier deadline, Client.Timeout (default DefaultTimeout)
// bounds it. WithRequestID attaches an X-Request-Id to the calls made with a
// context.
//
// # Tokens and DPoP
//
// The agent admits a call with a DPoP-bound operation token (OpTok, RFC
// 9449). Set Client.Token (a TokenSource; StaticToken for a fixed token)
// and Client.DPoPKey (the crypto.Signer the token's cnf.jkt names: ECDSA
// P-256 or Ed25519), or load both from the JSON that `signerctl dev token`
// prints:
//
//	creds, err := client.LoadCredentials("creds.json")
//	…
//	var c client.Client
//	creds.Apply(&c)
//
// Every request then carries "Authorization: DPoP <token>" and a fresh
// proof: a JWS with typ dpop+jwt, the public key as jwk, and the claims
// jti (random), htm, htu (Client.HTUBase, default "http://signer-agent",
// plus the path, never the query), iat, ath (the token's SHA-256) and the
// agent's nonce. The client keeps the DPoP-Nonce of every response (success
// or error) and, when the agent answers 401 use_dpop_nonce with a new
// nonce, retries the request once, with the same body and a new proof;
// later calls send the cached nonce, so they need no extra round trip.
// A Token without a DPoPKey, or a key of another
// type, is an error on every call: an unbound token is never sent.
// NewDPoPKey makes a key and JWKThumbprint computes the cnf.jkt it binds
// tokens to.
//
// Credentials and StaticToken never print their secrets, and the errors
// this package makes never contain a token or key material.
//
// Client.Authorize is a hook for other credentials or headers: it sees each
// request (after the DPoP headers are set) just before it is sent.
//
// # Idempotent retries
//
// Every sign, batch and export call carries an Idempotency-Key (SPEC §4.6):
// a random 128-bit key per call, or the caller's own through
// WithIdempotencyKey. Such a call is retried when the agent answers 429 or
// 503 or the connection fails before the answer is read: with exponential
// backoff and jitter, never sooner than Retry-After, at most
// Client.MaxAttempts times (default 3) and within the call's context; a
// Retry-After longer than Client.MaxRetryWait (default 10 s) is returned
// to the caller rather than waited out. Each
// retry sends the same key and body with a fresh DPoP proof; the agent
// answers a repeated key with the original response, so a retry never
// signs or counts twice. Such an answer has Replayed set (the agent's
// Idempotent-Replayed: true header) on the SignResponse, BatchResponse or
// ExportResponse. Calls without a key (Client.DisableIdempotencyKeys,
// and the read-only calls) are sent once.
//
// # Sidecars
//
// SignBatch signs up to 64 statements in one call, each succeeding or
// failing on its own (BatchItemError). SBOMRequest, ReportRequest and
// VEXRequest build the requests for the upstream predicate types, and
// Referrers checks a scanner release before signing. The verify
// subpackage checks envelopes and bundles offline against the agent's
// keys.
//
// # Errors
//
// A refusal by the agent is an *Error carrying the HTTP status, the stable
// code from the problem document (proto.Code), its detail, the request id
// and any Retry-After delay. Branch on the code with errors.Is and the
// sentinels, one per code:
//
//	if errors.Is(err, client.ErrPlanThrottled) {
//		var e *client.Error
//		errors.As(err, &e)
//		time.Sleep(e.RetryAfter)
//	}
//
// A non-2xx answer that is not a problem document (from a proxy or a
// foreign server on the socket) is an *Error with an empty Code; its Detail
// names the status and content type. It matches no sentinel.
//
// Failures to reach the agent (no socket, connection refused, context
// expired) are not *Error values: they wrap the underlying error with %w and
// name the socket path, so errors.Is(err, fs.ErrNotExist) or
// errors.Is(err, context.DeadlineExceeded) work as usual.
//
// Responses are decoded leniently (unknown fields are ignored) so that a
// client keeps working against a newer agent, and their size is capped
// (MaxResponseBytes, plus room for the envelope and bundles of a sign
// response).
//
// The package imports only the standard library, proto and go-jose (for
// DPoP); it does not log.
package client
