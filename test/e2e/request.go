package e2e

import (
	"context"
	"io"
	"net/http"

	"github.com/stellaops/signer-agent/proto"
)

func newRequest(ctx context.Context, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+proto.Host+proto.PathSignDSSE, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", proto.MediaTypeJSON)
	return req, nil
}
