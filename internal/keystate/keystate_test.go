package keystate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
)

func TestRevokeKeepsEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "revoked.yaml")
	at := time.Date(2026, 12, 6, 10, 0, 0, 500, time.UTC)
	if err := Revoke(path, "b", "leaked", at); err != nil {
		t.Fatal(err)
	}
	if err := Revoke(path, "a", "rotated out", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Revoking again keeps the first reason and time.
	if err := Revoke(path, "b", "again", at.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	rev, err := LoadRevocations(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rev) != 2 || rev["b"].Reason != "leaked" || !rev["b"].At.Equal(at.Truncate(time.Second)) || rev["a"].Reason != "rotated out" {
		t.Fatalf("revocations: %+v", rev)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestLoadRevocationsErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown field": "revoked:\n  - id: a\n    colour: red\n",
		"missing id":    "revoked:\n  - reason: x\n",
		"not yaml":      "revoked: [",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadRevocations(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if rev, err := LoadRevocations(filepath.Join(dir, "absent")); err != nil || len(rev) != 0 {
		t.Fatalf("missing file: %v %v", rev, err)
	}
}

// TestUndoRotationByID: undoing a rotation removes that rotation (and the
// key file it generated) and keeps every other, including one recorded
// after it (the old undo dropped "the last rotation").
func TestUndoRotationByID(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, "b2.pem")
	if err := os.WriteFile(gen, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, r := range []Rotation{
		{From: "a", To: "a2", URI: "file:/k/a2.pem", At: at},
		{From: "b", To: "b2", URI: "file:" + gen, At: at, Generated: gen},
		{From: "c", To: "c2", URI: "pkcs11:token=t;object=c2", At: at},
	} {
		if err := AddRotation(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := AddRotation(dir, Rotation{From: "x", To: "b2"}); err == nil {
		t.Fatal("a second rotation onto b2 was recorded")
	}
	if err := UndoRotation(dir, "b2"); err != nil {
		t.Fatal(err)
	}
	rs, err := LoadRotations(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].To != "a2" || rs[1].To != "c2" {
		t.Fatalf("rotations after undo: %+v", rs)
	}
	if _, err := os.Stat(gen); !os.IsNotExist(err) {
		t.Fatalf("generated key left behind: %v", err)
	}
	if err := UndoRotation(dir, "never"); err != nil {
		t.Fatal(err)
	}
}

func TestApplyRotations(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{
		StateDir: dir,
		Keys:     []config.Key{{ID: "a", URI: "file:/a.pem", Tenants: []string{"t"}, Status: proto.KeyStatusActive}},
		Tenants:  []config.Tenant{{ID: "t", DefaultKey: "a"}},
	}
	if err := AddRotation(dir, Rotation{From: "a", To: "a2", URI: "file:/a2.pem", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := AddRotation(dir, Rotation{From: "gone", To: "g2", URI: "file:/g2.pem", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyRotations(cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Keys) != 2 || cfg.Keys[0].Status != proto.KeyStatusVerifyOnly || cfg.Keys[1].ID != "a2" ||
		cfg.Keys[1].Status != proto.KeyStatusActive || cfg.Keys[1].Tenants[0] != "t" || cfg.Tenants[0].DefaultKey != "a2" {
		t.Fatalf("config after rotations: %+v %+v", cfg.Keys, cfg.Tenants)
	}
	// A configuration that already has the new id is refused.
	cfg2 := &config.Config{StateDir: dir, Keys: []config.Key{{ID: "a"}, {ID: "a2"}}}
	if err := ApplyRotations(cfg2); err == nil {
		t.Fatal("clash with a configured key accepted")
	}
}
