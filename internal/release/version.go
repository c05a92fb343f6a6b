package release

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/semver"
)

// Version-window errors; the entitlement gate maps them to
// entitlement_denied.
var (
	// ErrVersionUnknown: a window is set but the release version is unknown.
	ErrVersionUnknown = errors.New("release version unknown and the entitlement has a version window")
	// ErrVersionOutsideWindow: the release version is outside the window.
	ErrVersionOutsideWindow = errors.New("release version outside the entitlement's version window")
	// ErrInvalidVersion: a version or window bound is not a semantic version.
	ErrInvalidVersion = errors.New("invalid semantic version")
)

// CheckVersionWindow checks a release version against a PoE versionWindow
// [earliest, latest], both bounds inclusive and optional. Versions are
// semantic versions with or without a leading "v"; pre-releases sort before
// their release (1.5.0-rc.1 < 1.5.0) and build metadata is ignored. A
// shortened bound covers its whole range: earliest "1.5" means from 1.5.0,
// latest "1.5" means up to and including every 1.5.x.
//
// With no bound set the window is open and any version, even unknown,
// passes. With a bound set, an unknown version is ErrVersionUnknown.
func CheckVersionWindow(version, earliest, latest string) error {
	if earliest == "" && latest == "" {
		return nil
	}
	if version == "" {
		return ErrVersionUnknown
	}
	v, err := canonicalVersion(version)
	if err != nil {
		return fmt.Errorf("release version: %w", err)
	}
	if earliest != "" {
		e, err := canonicalVersion(earliest)
		if err != nil {
			return fmt.Errorf("versionWindow earliest: %w", err)
		}
		if semver.Compare(v, e) < 0 {
			return fmt.Errorf("%w: %s is before %s", ErrVersionOutsideWindow, version, earliest)
		}
	}
	if latest != "" {
		l, err := canonicalVersion(latest)
		if err != nil {
			return fmt.Errorf("versionWindow latest: %w", err)
		}
		cmp := v
		switch components(l) {
		case 1:
			cmp = semver.Major(v)
		case 2:
			cmp = semver.MajorMinor(v)
		}
		if semver.Compare(cmp, l) > 0 {
			return fmt.Errorf("%w: %s is after %s", ErrVersionOutsideWindow, version, latest)
		}
	}
	return nil
}

// canonicalVersion returns s with a "v" prefix if it is a valid semantic
// version (x/mod/semver syntax, shorthands "v1" and "v1.2" allowed).
func canonicalVersion(s string) (string, error) {
	if len(s) > 128 {
		return "", fmt.Errorf("%w: too long", ErrInvalidVersion)
	}
	v := s
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	if !semver.IsValid(v) {
		return "", fmt.Errorf("%w: %q", ErrInvalidVersion, s)
	}
	return v, nil
}

// components counts the numeric components of a valid version (1 to 3).
func components(v string) int {
	core, _, _ := strings.Cut(v, "-")
	core, _, _ = strings.Cut(core, "+")
	return strings.Count(core, ".") + 1
}
