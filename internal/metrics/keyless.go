package metrics

import "github.com/prometheus/client_golang/prometheus"

// Causes of a keyless signing failure, the cause label of
// signer_keyless_failures_total.
const (
	KeylessFulcio   = "fulcio"
	KeylessTSA      = "tsa"
	KeylessIdentity = "identity"
	KeylessOther    = "other"
)

// keylessCauses are exported at 0 from the start, so that increase()
// sees the first failure.
var keylessCauses = []string{KeylessFulcio, KeylessTSA, KeylessIdentity, KeylessOther}

// keylessMetrics count keyless signing failures by cause.
type keylessMetrics struct {
	failures *prometheus.CounterVec
}

func newKeylessMetrics(reg prometheus.Registerer) *keylessMetrics {
	k := &keylessMetrics{failures: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signer_keyless_failures_total",
		Help: "Keyless signatures that failed, by cause (fulcio/tsa/identity/other); each was refused or signed by the tenant's fallback key.",
	}, []string{"cause"})}
	reg.MustRegister(k.failures)
	for _, c := range keylessCauses {
		k.failures.WithLabelValues(c)
	}
	return k
}

// KeylessFailure records one keyless signature that failed: cause is
// KeylessFulcio, KeylessTSA, KeylessIdentity or KeylessOther (anything
// else counts as other).
func (m *Metrics) KeylessFailure(cause string) {
	if m == nil {
		return
	}
	switch cause {
	case KeylessFulcio, KeylessTSA, KeylessIdentity:
	default:
		cause = KeylessOther
	}
	add(m.keyless.failures, cause)
}
