package fault

import (
	"os"
	"testing"
	"time"
)

// SoakEnv, when set to a Go duration, turns the short form into the soak
// (make soak).
const SoakEnv = "SIGNER_AGENT_SOAK"

// roleEnv makes the test binary act as a helper process instead of
// running tests (the refused peer, which must run under another uid).
const roleEnv = "SIGNER_AGENT_FAULT_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "flood":
		os.Exit(flood())
	case "hold":
		os.Exit(hold())
	}
	os.Exit(m.Run())
}

// soak returns the soak duration, 0 in the short form.
func soak(t testing.TB) time.Duration {
	t.Helper()
	v := os.Getenv(SoakEnv)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration such as 10m", SoakEnv, v)
	}
	return d
}

// loadFor is how long a scenario's load phase lasts: short in the short
// form, the soak duration (split over the phases) in the soak.
func loadFor(t testing.TB, short time.Duration, phases int) time.Duration {
	if d := soak(t); d > 0 {
		return max(d/time.Duration(phases), short)
	}
	return short
}

// needRoot fails the test unless it runs as root.
func needRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs root (%s); run it as root, as make test does", why)
	}
}
