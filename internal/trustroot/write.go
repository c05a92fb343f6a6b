package trustroot

import "github.com/stellaops/signer-agent/internal/fsutil"

// WriteFile replaces path with data durably (fsutil.WriteFileAtomic).
// Trust material is public: the file is 0644.
func WriteFile(path string, data []byte) error {
	return fsutil.WriteFileAtomic(path, data, 0o644)
}
