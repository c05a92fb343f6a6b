package agent

import (
	"io"
	"net/http"
)

// readBody reads at most max+1 bytes of the body, in one allocation when
// the request declares its length.
func readBody(r *http.Request, max int64) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= max {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, max+1))
}
