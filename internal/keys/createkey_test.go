package keys_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys"
)

// TestCreateFileKeyNeverReplaces: CreateFileKey writes a new key like
// GenerateFileKey but refuses an existing path and leaves it untouched.
func TestCreateFileKeyNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rotated.pem")
	k, err := keys.CreateFileKey(path, keys.AlgECDSAP384)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	reopened, err := new(keys.Opener).Open(context.Background(), "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer reopened.Close()
	samePublicKey(t, reopened.Public(), k.Public())

	before, _ := os.ReadFile(path)
	if _, err := keys.CreateFileKey(path, keys.AlgEd25519); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: %v, want fs.ErrExist", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("the existing key file was changed")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only rotated.pem", len(entries))
	}
}
