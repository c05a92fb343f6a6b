package agent

import (
	"bytes"
	"crypto"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys/fido2"
)

// TestAcquireAfterClose: once the agent's last snapshot is retired (Run is
// stopping), acquire returns nil at once; it used to spin forever.
func TestAcquireAfterClose(t *testing.T) {
	a := &Agent{}
	s := &snapshot{done: make(chan struct{})}
	a.snap.Store(s)
	if a.acquire() != s {
		t.Fatal("live snapshot not acquired")
	}
	s.release()
	s.retire()
	got := make(chan *snapshot, 1)
	go func() { got <- a.acquire() }()
	select {
	case g := <-got:
		if g != nil {
			t.Fatal("acquired a retired snapshot")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("acquire loops on the retired snapshot")
	}
}

// pinCatcher is a FIDO2 key that keeps the PIN string it was given, to
// look at its bytes after the request.
type pinCatcher struct {
	crypto.Signer
	pin string
}

func (p *pinCatcher) Unlock(_ fido2.Authenticator, pin string) error { p.pin = pin; return nil }
func (p *pinCatcher) Close() error                                   { return nil }

// TestUnlockWipesPIN: the PIN the unlock handler decoded is zeroed once
// the unlock returns (clearing a []byte copy of a string, as before, left
// the PIN in memory).
func TestUnlockWipesPIN(t *testing.T) {
	const pin = "731946"
	k := &pinCatcher{}
	aud := &audit.Memory{}
	a := &Agent{
		log: zap.NewNop(), auditor: aud, now: time.Now,
		fido2: func() (fido2.Authenticator, error) { return nil, nil },
	}
	snap := &snapshot{cfg: &config.Config{}, keys: map[string]*keyEntry{
		"f": {cfg: config.Key{ID: "f"}, key: k, source: "fido2"},
	}, done: make(chan struct{})}
	r := httptest.NewRequest(http.MethodPost, "/admin/v1/keys/f/unlock", strings.NewReader(`{"pin":"`+pin+`"}`))
	r.SetPathValue("id", "f")
	rc := &requestContext{id: "t", r: r, snap: snap, start: time.Now()}
	w := httptest.NewRecorder()
	a.handleUnlock(w, rc)
	if w.Code != http.StatusOK {
		t.Fatalf("unlock: %d %s", w.Code, w.Body)
	}
	if len(k.pin) != len(pin) {
		t.Fatalf("key got a PIN of %d bytes", len(k.pin))
	}
	if k.pin == pin || !bytes.Equal([]byte(k.pin), make([]byte, len(pin))) {
		t.Fatal("the PIN is still in memory after the unlock")
	}
	b, _ := io.ReadAll(w.Body)
	for _, rec := range aud.Records() {
		if strings.Contains(rec.Reason, pin) || strings.Contains(string(b), pin) {
			t.Fatal("the PIN leaked into the audit record or the response")
		}
	}
}
