package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Errors of reading a request body.
var (
	// errBodyBudget: the in-flight memory budget cannot take the body
	// now (503 agent_busy).
	errBodyBudget = errors.New("in-flight memory budget exhausted")
	// errBodyTooLarge: the body is over the transport cap (413).
	errBodyTooLarge = errors.New("request body over the cap")
)

// bodyChunk is how much of a body is charged and read at a time when its
// length is not declared.
const bodyChunk = 64 << 10

// bodyBudget is the agent-wide memory budget of the request bodies in
// flight (SPEC §3). A body is charged factor times its size — what a
// request holds per body byte while it is decoded, canonicalised, signed
// and answered — before the bytes are read: the declared Content-Length up
// front, or chunk by chunk as an undeclared body streams. The charge is
// given back when the request is answered.
type bodyBudget struct {
	sem    *semaphore.Weighted
	factor int64
	total  int64
	inUse  atomic.Int64 // charged now, for the metrics
}

// used is what is charged now.
func (b *bodyBudget) used() int64 { return b.inUse.Load() }

func newBodyBudget(total int64, factor int) *bodyBudget {
	return &bodyBudget{sem: semaphore.NewWeighted(total), factor: int64(factor), total: total}
}

// chargeAgain charges the budget a second time for a body of n bytes
// that read has already charged, for requests that hold about twice what
// a sign request holds per body byte (exports: the manifest and the
// statement each about the size of the body, both returned base64). The
// charge is capped so that with the body's own charge (at most
// (n+bodyChunk)×factor) it never exceeds the whole budget: a request the
// body cap admits can always run, alone. It fails with errBodyBudget when
// the budget cannot take it now; release gives the charge back and is
// non-nil either way.
func (b *bodyBudget) chargeAgain(n int64) (release func(), err error) {
	c := min(n*b.factor, b.total-(n+bodyChunk)*b.factor)
	if c <= 0 {
		return func() {}, nil
	}
	if !b.sem.TryAcquire(c) {
		return func() {}, errBodyBudget
	}
	b.inUse.Add(c)
	var once sync.Once
	return func() { once.Do(func() { b.sem.Release(c); b.inUse.Add(-c) }) }, nil
}

// read reads r's body, at most max bytes, charging the budget first. It
// never allocates by the declared length (an untrusted header): the
// buffer grows with the bytes that arrive. release gives the charge back;
// it is non-nil even on error and must be called once the request is
// answered.
func (b *bodyBudget) read(r *http.Request, max int64) (body []byte, release func(), err error) {
	var charged int64
	release = func() {
		if charged > 0 {
			b.sem.Release(charged)
			b.inUse.Add(-charged)
			charged = 0
		}
	}
	charge := func(n int64) bool {
		if !b.sem.TryAcquire(n * b.factor) {
			return false
		}
		charged += n * b.factor
		b.inUse.Add(n * b.factor)
		return true
	}
	if n := r.ContentLength; n >= 0 {
		if n > max {
			return nil, release, errBodyTooLarge
		}
		if !charge(n) {
			return nil, release, errBodyBudget
		}
		body, err = readUpTo(r.Body, n, max)
		return body, release, err
	}
	// Streamed (chunked) body: charge each chunk before reading it, up
	// to the cap. One byte past the cap, read into a probe that is not
	// charged, tells a body over the cap (413) from one that ends there,
	// so a streamed body over the cap is payload_too_large even when the
	// budget holds exactly one body of the cap's size.
	buf := make([]byte, 0, min(bodyChunk, max))
	for {
		n := min(int64(bodyChunk), max-int64(len(buf)))
		if n <= 0 {
			var probe [1]byte
			m, err := io.ReadFull(r.Body, probe[:])
			switch {
			case m > 0:
				return nil, release, errBodyTooLarge
			case errors.Is(err, io.EOF):
				return buf, release, nil
			default:
				return nil, release, err
			}
		}
		if !charge(n) {
			return nil, release, errBodyBudget
		}
		if int64(cap(buf)-len(buf)) < n {
			buf = append(buf, make([]byte, n)...)[:len(buf)]
		}
		m, err := io.ReadFull(r.Body, buf[len(buf):len(buf)+int(n)])
		buf = buf[:len(buf)+m]
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return buf, release, nil
		case err != nil:
			return nil, release, err
		}
	}
}

// readUpTo reads a body that declared n bytes (n <= max), growing its
// buffer as bytes arrive, and checks that it is exactly n bytes.
func readUpTo(r io.Reader, n, max int64) ([]byte, error) {
	buf := make([]byte, 0, min(n, bodyChunk))
	for int64(len(buf)) < n {
		if cap(buf) == len(buf) {
			buf = append(buf, make([]byte, min(int64(cap(buf)), n-int64(len(buf))))...)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) && int64(len(buf)) == n {
				break
			}
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("body ended after %d of %d bytes", len(buf), n)
			}
			return nil, err
		}
	}
	if int64(len(buf)) > max {
		return nil, errBodyTooLarge
	}
	return buf, nil
}

// readSmallBody reads a body capped at max bytes (admin requests), without
// the budget: the cap is small.
func readSmallBody(r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength > max {
		return nil, errBodyTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err == nil && int64(len(b)) > max {
		return nil, errBodyTooLarge
	}
	return b, err
}
