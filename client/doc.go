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
// context. Client.Authorize is the hook for credentials (OpTok and DPoP
// proofs): it sees each request just before it is sent.
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
// The package imports only the standard library and proto (and, for DPoP,
// go-jose); it does not log.
package client
