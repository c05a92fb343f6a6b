package fido2

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
)

// Open opens a fido2: URI — fido2:/abs/wrapped-key.json[?ttl=1h&max-signatures=N]
// — as a locked Key; it signs only after Unlock (the agent's
// POST /admin/v1/keys/{id}/unlock). It fits keys.Opener's FIDO2 field.
func Open(_ context.Context, uri string) (keys.Key, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "fido2" {
		return nil, fmt.Errorf("fido2 key URI: want fido2:/abs/path.json[?ttl=…&max-signatures=…]")
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	if !filepath.IsAbs(p) {
		return nil, fmt.Errorf("fido2 key URI: the wrapped key file must be an absolute path")
	}
	q, err := keys.SingleValuedQuery(u.RawQuery, "ttl", "max-signatures")
	if err != nil {
		return nil, fmt.Errorf("fido2 key URI: %w", err)
	}
	var o Options
	if v := q["ttl"]; v != "" {
		if o.TTL, err = time.ParseDuration(v); err != nil || o.TTL <= 0 {
			return nil, fmt.Errorf("fido2 key URI: ttl: want a positive duration")
		}
	}
	if v := q["max-signatures"]; v != "" {
		if o.MaxSignatures, err = strconv.Atoi(v); err != nil || o.MaxSignatures < 1 {
			return nil, fmt.Errorf("fido2 key URI: max-signatures: want a positive number")
		}
	}
	return OpenFile(p, o)
}
