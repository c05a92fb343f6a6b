package authoritytest

import (
	"time"

	"github.com/stellaops/signer-agent/internal/clocktest"
)

// Epoch is the default start of a Clock (clocktest.Epoch).
var Epoch = clocktest.Epoch

// Clock is the tests' fake clock, clocktest.Clock.
type Clock = clocktest.Clock

// NewClock returns a clock at t (Epoch when t is zero).
func NewClock(t time.Time) *Clock { return clocktest.New(t) }
