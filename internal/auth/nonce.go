package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"sync/atomic"
	"time"
)

// nonceSource makes stateless DPoP nonces: base64url(window index (8 bytes,
// big-endian) || HMAC-SHA256(key, label || index)[:16]). A nonce is valid
// in its window and the next one, so a client holding the nonce of the
// previous response never fails across a boundary, and every nonce expires
// between one and two windows after it was issued.
type nonceSource struct {
	key    []byte
	window time.Duration
	cur    atomic.Pointer[nonceValue]
}

type nonceValue struct {
	index int64
	nonce string
}

const nonceLabel = "signer-agent dpop-nonce v1\x00"

func newNonceSource(key []byte, window time.Duration) *nonceSource {
	return &nonceSource{key: append([]byte(nil), key...), window: window}
}

func (n *nonceSource) index(t time.Time) int64 {
	ns, w := t.UnixNano(), n.window.Nanoseconds()
	i := ns / w
	if ns%w < 0 {
		i--
	}
	return i
}

func (n *nonceSource) mac(index int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(index))
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte(nonceLabel))
	m.Write(b[:])
	return append(b[:], m.Sum(nil)[:16]...)
}

// current returns the nonce of now's window; it changes only at window
// boundaries.
func (n *nonceSource) current(now time.Time) string {
	i := n.index(now)
	if c := n.cur.Load(); c != nil && c.index == i {
		return c.nonce
	}
	s := b64.EncodeToString(n.mac(i))
	n.cur.Store(&nonceValue{index: i, nonce: s})
	return s
}

// valid reports whether s is the nonce of now's window or of the previous
// one.
func (n *nonceSource) valid(s string, now time.Time) bool {
	if len(s) != 32 {
		return false
	}
	// Most proofs carry the nonce current() handed out: the same string,
	// already computed, so no HMAC is needed to accept it while its window
	// (or the next) lasts.
	if c := n.cur.Load(); c != nil {
		if cur := n.index(now); (c.index == cur || c.index == cur-1) && subtle.ConstantTimeCompare([]byte(s), []byte(c.nonce)) == 1 {
			return true
		}
	}
	b, err := b64.DecodeString(s)
	if err != nil || len(b) != 24 {
		return false
	}
	i := int64(binary.BigEndian.Uint64(b[:8]))
	cur := n.index(now)
	if i != cur && i != cur-1 {
		return false
	}
	return hmac.Equal(b, n.mac(i))
}

// Nonce returns the current server nonce, for the DPoP-Nonce header of
// every response.
func (v *Verifier) Nonce() string { return v.nonces.current(v.cfg.Now()) }
