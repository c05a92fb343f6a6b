package client

import "context"

type requestIDKey struct{}

// WithRequestID returns a context whose calls carry id in the X-Request-Id
// header, so the caller's request id appears in the agent's log and audit
// record. An empty id sends no header.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
