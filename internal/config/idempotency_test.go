package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIdempotencyDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "/etc/sa", "")
	if err != nil {
		t.Fatal(err)
	}
	want := Idempotency{Dir: filepath.Join(DefaultStateDir, "idempotency"), Window: 10 * time.Minute,
		MaxEntries: DefaultIdempotencyMaxEntries, MaxBytes: DefaultIdempotencyMaxBytes}
	if c.Idempotency != want {
		t.Fatalf("defaults %+v, want %+v", c.Idempotency, want)
	}
	c, err = Parse([]byte(minimal+"idempotency: {dir: idem, window: 1h, maxEntries: 5, maxBytes: 2097152}\n"), "/etc/sa", "")
	if err != nil {
		t.Fatal(err)
	}
	want = Idempotency{Dir: "/etc/sa/idem", Window: time.Hour, MaxEntries: 5, MaxBytes: 2 << 20}
	if c.Idempotency != want {
		t.Fatalf("set %+v, want %+v", c.Idempotency, want)
	}
	ex, err := Load(filepath.Join("..", "..", "packaging", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if ex.Idempotency.Window != DefaultIdempotencyWindow || ex.Idempotency.MaxEntries != DefaultIdempotencyMaxEntries ||
		ex.Idempotency.MaxBytes != DefaultIdempotencyMaxBytes || ex.Idempotency.Dir != "/var/lib/signer-agent/idempotency" {
		t.Fatalf("the example's idempotency section drifted from the defaults: %+v", ex.Idempotency)
	}
}

func TestIdempotencyRejects(t *testing.T) {
	for name, c := range map[string]struct{ yaml, key string }{
		"window too short":  {"{window: 500ms}", "idempotency.window"},
		"negative window":   {"{window: -1m}", "idempotency.window"},
		"negative entries":  {"{maxEntries: -1}", "idempotency.maxEntries"},
		"bytes under 1 MiB": {"{maxBytes: 1000}", "idempotency.maxBytes"},
		"unknown key":       {"{ttl: 1m}", "ttl"},
		"window not a span": {"{window: soon}", "time.Duration"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+"idempotency: "+c.yaml+"\n"), "/etc/sa", "")
			if err == nil || !strings.Contains(err.Error(), c.key) {
				t.Fatalf("got %v, want an error naming %s", err, c.key)
			}
		})
	}
}
