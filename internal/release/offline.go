package release

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Offline directory limits.
const (
	maxManifestFile = 4 << 20
	maxOfflineFiles = 64 // signature files examined per digest
)

// checkOffline looks for signatures of digest in the offline directory (the
// layout is in the package documentation). final reports that the verdict
// must not be overridden by the registry: the directory is unreadable, a
// manifest file is corrupt, or the signatures are ambiguous.
func (c *Checker) checkOffline(digest string) (v Verdict, final bool) {
	base := strings.Replace(digest, ":", "-", 1)
	ents, err := os.ReadDir(c.offlineDir)
	if err != nil {
		return c.untrusted(digest, "offline: read directory: "+err.Error()), true
	}
	var bundles, sigs []string
	hasManifest := false
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, base+".") || e.IsDir() {
			continue
		}
		switch {
		case n == base+".manifest.json":
			hasManifest = true
		case strings.HasSuffix(n, ".sigstore.json"):
			bundles = append(bundles, n)
		case strings.HasSuffix(n, ".sig"):
			sigs = append(sigs, n)
		}
	}
	sort.Strings(bundles)
	sort.Strings(sigs)

	var manifest []byte
	if hasManifest {
		manifest, err = readCapped(filepath.Join(c.offlineDir, base+".manifest.json"), maxManifestFile)
		if err != nil {
			return c.untrusted(digest, "offline: "+err.Error()), true
		}
		if "sha256:"+sha256Hex(manifest) != digest {
			return c.untrusted(digest, fmt.Sprintf("offline: %s.manifest.json does not hash to the digest", base)), true
		}
	}

	var found []finding
	for i, n := range append(bundles, sigs...) {
		if i >= maxOfflineFiles {
			break
		}
		where := "offline " + n
		if strings.HasSuffix(n, ".sigstore.json") {
			b, err := readCapped(filepath.Join(c.offlineDir, n), maxBundle)
			if err != nil {
				return c.untrusted(digest, "offline: "+err.Error()), true
			}
			f := c.evalBundle(where, b, digest, manifest)
			f.source = SourceOfflineBundle
			found = append(found, f)
			continue
		}
		sig, err := readCapped(filepath.Join(c.offlineDir, n), 64<<10)
		if err != nil {
			return c.untrusted(digest, "offline: "+err.Error()), true
		}
		pn := strings.TrimSuffix(n, ".sig") + ".payload"
		pl, err := readCapped(filepath.Join(c.offlineDir, pn), maxPayload)
		if errors.Is(err, fs.ErrNotExist) {
			found = append(found, finding{where: where, kind: "cosign signature", source: SourceOfflineBundle, problem: "has no " + pn})
			continue
		}
		if err != nil {
			return c.untrusted(digest, "offline: "+err.Error()), true
		}
		f := c.evalSimpleSigning(where, pl, string(sig), digest)
		f.source = SourceOfflineBundle
		found = append(found, f)
	}

	none := fmt.Sprintf("offline: no signature or bundle for %s in the offline directory", digest)
	ok, reason := decide(found, none)
	if ok == nil {
		return c.untrusted(digest, prefixOffline(reason)), strings.HasPrefix(reason, "ambiguous")
	}
	version := ""
	if manifest != nil {
		version = manifestVersion(manifest)
	}
	if version == "" {
		version = ok.version
	}
	return c.trusted(digest, SourceOfflineBundle, ok, version), true
}

func prefixOffline(reason string) string {
	if strings.HasPrefix(reason, "offline: ") {
		return reason
	}
	return "offline: " + reason
}

// readCapped reads a file of at most limit bytes.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is over %d bytes", path, limit)
	}
	return b, nil
}
