package harness

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/proto"
)

// Scrape returns the agent's /metrics, read on its admin socket.
func (h *Agent) Scrape(t testing.TB) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://signer-agent"+proto.PathAdminMetrics, nil)
	resp, b := Do(t, h.AdminSock, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", proto.PathAdminMetrics, resp.Status)
	}
	return string(b)
}

// MetricValue reads one sample of a scrape, series written as in the
// exposition format ("name" or "name{label=\"v\"}"); a series absent from
// the scrape is 0.
func MetricValue(t testing.TB, scrape, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(scrape, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// WaitMetric polls the agent's /metrics until series is at least min,
// failing the test after 10 s.
func (h *Agent) WaitMetric(t testing.TB, series string, min float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for MetricValue(t, h.Scrape(t), series) < min {
		if time.Now().After(deadline) {
			t.Fatalf("%s stayed below %v", series, min)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
