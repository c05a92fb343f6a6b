package release

import (
	"errors"
	"testing"
)

func TestCheckVersionWindow(t *testing.T) {
	tests := []struct {
		name                      string
		version, earliest, latest string
		want                      error // nil, or the sentinel the error wraps
	}{
		{"no window, unknown version", "", "", "", nil},
		{"no window, any version", "0.0.1", "", "", nil},
		{"inside", "1.4.2", "1.4.0", "1.5.0", nil},
		{"v prefixes mixed", "v1.4.2", "1.4.0", "v1.5.0", nil},
		{"on earliest", "1.4.0", "1.4.0", "1.5.0", nil},
		{"on latest", "1.5.0", "1.4.0", "1.5.0", nil},
		{"before earliest", "1.3.9", "1.4.0", "1.5.0", ErrVersionOutsideWindow},
		{"after latest", "1.5.1", "1.4.0", "1.5.0", ErrVersionOutsideWindow},
		{"only earliest", "2.0.0", "1.4.0", "", nil},
		{"only earliest, before", "1.0.0", "1.4.0", "", ErrVersionOutsideWindow},
		{"only latest", "1.0.0", "", "1.5.0", nil},
		{"only latest, after", "2.0.0", "", "1.5.0", ErrVersionOutsideWindow},
		{"prerelease before its release", "1.4.0-rc.1", "1.4.0", "", ErrVersionOutsideWindow},
		{"prerelease under latest", "1.5.0-rc.1", "", "1.5.0", nil},
		{"build metadata ignored", "1.5.0+build.7", "", "1.5.0", nil},
		{"short latest covers patch releases", "1.5.9", "", "1.5", nil},
		{"short latest, next minor", "1.6.0", "", "1.5", ErrVersionOutsideWindow},
		{"major-only latest", "1.99.3", "", "v1", nil},
		{"major-only latest, next major", "2.0.0", "", "1", ErrVersionOutsideWindow},
		{"short earliest", "1.5.0", "1.5", "", nil},
		{"short earliest, before", "1.4.9", "1.5", "", ErrVersionOutsideWindow},
		{"window set, version unknown", "", "1.0.0", "", ErrVersionUnknown},
		{"latest set, version unknown", "", "", "2.0.0", ErrVersionUnknown},
		{"version not semver", "latest", "1.0.0", "", ErrInvalidVersion},
		{"leading zero", "1.04.0", "1.0.0", "", ErrInvalidVersion},
		{"bad earliest", "1.0.0", "one", "", ErrInvalidVersion},
		{"bad latest", "1.0.0", "", "2.x", ErrInvalidVersion},
		{"double v", "vv1.0.0", "1.0.0", "", ErrInvalidVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckVersionWindow(tc.version, tc.earliest, tc.latest)
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("error %v, want nil", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}
