package keystate

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stellaops/signer-agent/internal/fsutil"
)

// Revoked is one entry of the revocation list.
type Revoked struct {
	ID     string    `yaml:"id"`
	Reason string    `yaml:"reason,omitempty"`
	At     time.Time `yaml:"at,omitempty"`
}

type revocationList struct {
	Revoked []Revoked `yaml:"revoked"`
}

const revocationHeader = "# Revoked signing keys (signer-agent). Edits take effect at once.\n"

// LoadRevocations reads the revocation list at path, keyed by key id. A
// missing file is an empty list; a malformed one is an error (the agent
// then keeps its running configuration).
func LoadRevocations(path string) (map[string]Revoked, error) {
	out := map[string]Revoked{}
	var rl revocationList
	if err := readYAML(path, "revocation list", &rl); err != nil {
		return nil, err
	}
	for i, r := range rl.Revoked {
		if r.ID == "" {
			return nil, fmt.Errorf("revocation list %s: revoked[%d].id: required", path, i)
		}
		out[r.ID] = r
	}
	return out, nil
}

// Revoke adds key id to the revocation list at path (kept when it is
// already there) and writes the list durably.
func Revoke(path, id, reason string, at time.Time) error {
	rev, err := LoadRevocations(path)
	if err != nil {
		return err
	}
	if _, ok := rev[id]; !ok {
		rev[id] = Revoked{ID: id, Reason: reason, At: at.UTC().Truncate(time.Second)}
	}
	var rl revocationList
	for _, r := range rev {
		rl.Revoked = append(rl.Revoked, r)
	}
	sort.Slice(rl.Revoked, func(i, j int) bool { return rl.Revoked[i].ID < rl.Revoked[j].ID })
	b, err := yaml.Marshal(&rl)
	if err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	return fsutil.WriteFileAtomic(path, append([]byte(revocationHeader), b...), 0o600)
}
