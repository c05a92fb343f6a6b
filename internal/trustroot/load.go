package trustroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Load reads a trusted root and, when keysPath is set, its keys file;
// keysPath "" looks for KeysPathFor(rootPath) and accepts its absence
// (trust material with no agent keys: keyless and logged output only).
func Load(rootPath, keysPath string) (*Material, error) {
	b, err := os.ReadFile(rootPath)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	tr, err := ParseRoot(b)
	if err != nil {
		return nil, err
	}
	m := &Material{Root: tr}
	optional := keysPath == ""
	if optional {
		keysPath = KeysPathFor(rootPath)
	}
	kb, err := os.ReadFile(keysPath)
	switch {
	case err == nil:
		if m.Keys, err = ParseKeys(kb); err != nil {
			return nil, err
		}
	case optional && errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("trusted keys: %w", err)
	}
	return m, nil
}
