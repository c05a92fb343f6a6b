package agent_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/test/harness"
)

// countingBackend opens "count:NAME" keys (software keys) and counts how
// often each opened key is closed.
type countingBackend struct {
	mu     sync.Mutex
	opened []*countedKey
}

type countedKey struct {
	keys.Key
	b      *countingBackend
	uri    string
	closes int
}

func (k *countedKey) Close() error {
	k.b.mu.Lock()
	k.closes++
	k.b.mu.Unlock()
	return k.Key.Close()
}

func (b *countingBackend) open(ctx context.Context, uri string) (keys.Key, error) {
	k, err := (&keys.Opener{}).Open(ctx, "memory:"+strings.TrimPrefix(uri, "count:"))
	if err != nil {
		return nil, err
	}
	ck := &countedKey{Key: k, b: b, uri: uri}
	b.mu.Lock()
	b.opened = append(b.opened, ck)
	b.mu.Unlock()
	return ck, nil
}

// check fails unless every opened key was closed exactly once.
func (b *countingBackend) check(t *testing.T, wantOpened int) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.opened) != wantOpened {
		t.Errorf("%d keys opened, want %d", len(b.opened), wantOpened)
	}
	for _, k := range b.opened {
		if k.closes != 1 {
			t.Errorf("key %s closed %d times when Run returned, want 1", k.uri, k.closes)
		}
	}
}

// TestRunJoinsEverything: when Run returns, every key of every snapshot
// (the retired ones included) is closed, and a reload afterwards is
// refused rather than opening keys nobody would close.
func TestRunJoinsEverything(t *testing.T) {
	// Every goroutine the agent started is gone when Run returns; the
	// test's own HTTP clients keep idle connections open.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"))
	b := &countingBackend{}
	h := harness.StartAgent(t, harness.Options{
		Edit:   harness.WithKey("counted", "count:one"),
		Opener: &keys.Opener{Backends: map[string]keys.OpenFunc{"count": b.open}},
	})
	ctx := context.Background()
	// Two reloads that replace the counted key: two retired snapshots.
	for _, uri := range []string{"count:two", "count:three"} {
		harness.EditConfig(t, h.Config, func(c *config.Config) {
			for i := range c.Keys {
				if c.Keys[i].ID == "counted" {
					c.Keys[i].URI = uri
				}
			}
		})
		if err := h.Agent.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Client.SignDSSE(ctx, signRequest()); err != nil {
			t.Fatal(err)
		}
	}
	h.Stop()
	b.check(t, 3)
	if err := h.Agent.Reload(ctx); err == nil {
		t.Fatal("reload after Run returned was accepted")
	}
	b.check(t, 3)
}
