package entitlement

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// introspection is the licensing service's answer.
type introspection struct {
	Active        bool    `json:"active"`
	Tenant        string  `json:"tid"`
	Installation  string  `json:"inst"`
	Plan          string  `json:"plan"`
	Quotas        *Quotas `json:"quotas,omitempty"`
	VersionWindow *Window `json:"versionWindow,omitempty"`
	Exp           int64   `json:"exp"`
	Reason        string  `json:"reason"`
}

// errUpstream marks a failure to get an answer (network, timeout, 5xx,
// malformed), as opposed to a negative answer.
var errUpstream = errors.New("licensing unreachable or failing")

// introspectCached serves a fresh cached verdict, else asks licensing
// (single-flight per PoE), falling back to grace on upstream failure.
func (c *Checker) introspectCached(ctx context.Context, poe, h string) (Verdict, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	e := c.cache[h]
	c.mu.Unlock()
	if e != nil && e.positive && now.Before(e.fetchedAt.Add(c.cfg.CacheTTL)) && now.Before(e.v.Expiry) {
		v := e.v
		v.State = StateCached
		return v, nil
	}
	res, err, _ := c.sf.Do(h, func() (any, error) { return c.introspect(ctx, poe) })
	now = c.cfg.Now()
	if err == nil {
		in := res.(*introspection)
		if !in.Active {
			// A negative verdict replaces any positive one: it is never
			// overridden by the cache or by grace.
			reason := in.Reason
			if reason == "" {
				reason = "licensing reports the PoE inactive"
			}
			v := Verdict{State: StateDenied, Tenant: in.Tenant, Installation: in.Installation, Reason: "licensing: " + oneLine(reason)}
			c.mu.Lock()
			c.cache[h] = &cached{v: v, fetchedAt: now}
			c.mu.Unlock()
			return v, &Error{Err: ErrDenied, Verdict: v}
		}
		exp := time.Unix(in.Exp, 0)
		if in.Exp == 0 || !now.Before(exp) {
			v := Verdict{State: StateDenied, Reason: "licensing verdict has no future exp"}
			return v, &Error{Err: ErrDenied, Verdict: v}
		}
		v := Verdict{State: StateValid, Tenant: in.Tenant, Installation: in.Installation, Plan: in.Plan,
			Quotas: in.Quotas, VersionWindow: in.VersionWindow, Expiry: exp}
		c.mu.Lock()
		c.cache[h] = &cached{v: v, fetchedAt: now, positive: true}
		c.mu.Unlock()
		return v, nil
	}
	// Upstream failed: the last positive verdict serves until its grace
	// ends (and never beyond the PoE's exp); a negative one stays negative.
	if e != nil && !e.positive {
		v := e.v
		return v, &Error{Err: ErrDenied, Verdict: v}
	}
	if e != nil && e.positive && now.Before(e.fetchedAt.Add(c.cfg.Grace)) && now.Before(e.v.Expiry) {
		v := e.v
		v.State = StateGrace
		v.Reason = "licensing unavailable (" + oneLine(err.Error()) + "); last positive verdict from " +
			e.fetchedAt.UTC().Format(time.RFC3339) + " serves until grace ends"
		return v, nil
	}
	v := Verdict{State: StateUnavailable, Reason: oneLine(err.Error())}
	return v, &Error{Err: ErrUnavailable, Verdict: v}
}

// introspect calls licensing with bounded retries and backoff. A definite
// answer (200 with a JSON verdict) is returned as is; anything else is
// errUpstream.
func (c *Checker) introspect(ctx context.Context, poe string) (*introspection, error) {
	body, _ := json.Marshal(map[string]string{"poe": poe})
	url := strings.TrimSuffix(c.cfg.IntrospectionURL, "/") + "/license/introspect"
	var last error
	delay := c.cfg.Backoff
	for attempt := 0; attempt <= c.cfg.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %v", errUpstream, ctx.Err())
			case <-time.After(delay):
			}
			delay *= 2
		}
		c.mu.Lock()
		c.upstream++
		c.mu.Unlock()
		in, err := c.once(ctx, url, body)
		if err == nil {
			return in, nil
		}
		last = err
	}
	return nil, last
}

func (c *Checker) once(ctx context.Context, url string, body []byte) (*introspection, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUpstream, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUpstream, scrub(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %v", errUpstream, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP %d", errUpstream, resp.StatusCode)
	}
	var in introspection
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("%w: malformed verdict", errUpstream)
	}
	return &in, nil
}

// scrub keeps a transport error's kind without the URL's query.
func scrub(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
