package metrics

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stellaops/signer-agent/internal/quota"
)

// exerciseQuotaStore feeds the quota store observer known values (called
// by exercise, so the packaging tests see the families).
func exerciseQuotaStore(m *Metrics) {
	o := m.QuotaStoreObserver()
	o.ModeChanged(quota.ModeShared)
	o.StoreRoundTrip(quota.OpReserve, 200*time.Microsecond, nil)
	o.StoreRoundTrip(quota.OpReserve, 250*time.Millisecond, errors.New("i/o timeout"))
	o.StoreRoundTrip(quota.OpSettle, 300*time.Microsecond, nil)
	o.Reservation(quota.ModeShared, quota.OutcomeAdmitted)
	o.Reservation(quota.ModeShared, quota.OutcomeExhausted)
	o.ModeChanged(quota.ModeLocalShare)
	o.Reservation(quota.ModeLocalShare, quota.OutcomeAdmitted)
	o.SettleDropped(2)
}

const wantQuotaStore = `
# HELP signer_quota_store_mode 1 for the current quota mode (shared/local_share/unavailable), 0 for the others; absent with quota.store local.
# TYPE signer_quota_store_mode gauge
signer_quota_store_mode{mode="shared"} 0
signer_quota_store_mode{mode="local_share"} 1
signer_quota_store_mode{mode="unavailable"} 0
# HELP signer_quota_store_errors_total Round trips to the shared quota store that failed or timed out, by op (reserve/settle/probe).
# TYPE signer_quota_store_errors_total counter
signer_quota_store_errors_total{op="reserve"} 1
signer_quota_store_errors_total{op="settle"} 0
signer_quota_store_errors_total{op="probe"} 0
# HELP signer_quota_reservations_total Quota reservations with the shared store configured, by the mode that decided (shared/local_share/unavailable) and outcome.
# TYPE signer_quota_reservations_total counter
signer_quota_reservations_total{mode="shared",outcome="admitted"} 1
signer_quota_reservations_total{mode="shared",outcome="exhausted"} 1
signer_quota_reservations_total{mode="local_share",outcome="admitted"} 1
signer_quota_reservations_total{mode="unavailable",outcome="admitted"} 0
signer_quota_reservations_total{mode="unavailable",outcome="unavailable"} 0
# HELP signer_quota_store_settle_dropped_total Lease releases and refunds not sent to the store (down or queue full); their leases expire on their own.
# TYPE signer_quota_store_settle_dropped_total counter
signer_quota_store_settle_dropped_total 2
`

func TestQuotaStoreMetrics(t *testing.T) {
	m := newTest(t)
	// Before the observer exists (quota.store: local) nothing is exported.
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	names := []string{"signer_quota_store_mode", "signer_quota_store_errors_total", "signer_quota_reservations_total",
		"signer_quota_store_settle_dropped_total", "signer_quota_store_duration_seconds"}
	if n, err := testutil.GatherAndCount(m.Registry, names...); err != nil || n != 0 {
		t.Fatalf("%d quota store series with a local store (%v)", n, err)
	}
	exerciseQuotaStore(m)
	if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(wantQuotaStore), names[:4]...); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		op    string
		count uint64
		sum   float64
	}{{quota.OpReserve, 2, 0.2502}, {quota.OpSettle, 1, 0.0003}, {quota.OpProbe, 0, 0}} {
		h := histogram(t, m.Registry, "signer_quota_store_duration_seconds", map[string]string{"op": c.op})
		if h.GetSampleCount() != c.count || h.GetSampleSum()-c.sum > 1e-9 || c.sum-h.GetSampleSum() > 1e-9 {
			t.Errorf("%s: count %d sum %v, want %d %v", c.op, h.GetSampleCount(), h.GetSampleSum(), c.count, c.sum)
		}
		if c.op == quota.OpReserve && h.GetBucket()[1].GetCumulativeCount() != 0 || c.op == quota.OpReserve && h.GetBucket()[2].GetCumulativeCount() != 1 {
			t.Errorf("a 200 µs round trip is not in the 250 µs bucket: %v", h.GetBucket())
		}
	}
	// A nil *Metrics gives an observer that does nothing.
	var nilM *Metrics
	o := nilM.QuotaStoreObserver()
	o.ModeChanged(quota.ModeShared)
	o.StoreRoundTrip(quota.OpReserve, time.Millisecond, nil)
	o.Reservation(quota.ModeShared, quota.OutcomeAdmitted)
	o.SettleDropped(1)
}
