package agent

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestBodyBudgetRead: bodies against the cap and a budget that holds
// exactly one body of the cap's size (the smallest the configuration
// allows), declared and streamed. A body over the cap is too large (413),
// never busy; one that does not fit what is already charged is busy
// (503); every charge is given back.
func TestBodyBudgetRead(t *testing.T) {
	const max, factor = 256 << 10, 8
	cases := []struct {
		name     string
		size     int
		declared bool
		held     int64 // charged by another request first
		want     error
	}{
		{"streamed, at the cap", max, false, 0, nil},
		{"streamed, one byte over", max + 1, false, 0, errBodyTooLarge},
		{"streamed, far over", 4 * max, false, 0, errBodyTooLarge},
		{"streamed, empty", 0, false, 0, nil},
		{"streamed, not a whole chunk", bodyChunk + 7, false, 0, nil},
		{"declared, at the cap", max, true, 0, nil},
		{"declared, over the cap", max + 1, true, 0, errBodyTooLarge},
		{"streamed, budget taken", 10, false, max * factor, errBodyBudget},
		{"declared, budget taken", 10, true, max * factor, errBodyBudget},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBodyBudget(max*factor, factor)
			if c.held > 0 && !b.sem.TryAcquire(c.held) {
				t.Fatal("could not hold the budget")
			}
			body := strings.Repeat("x", c.size)
			r, _ := http.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(body)))
			r.ContentLength = -1
			if c.declared {
				r.ContentLength = int64(c.size)
			}
			got, release, err := b.read(r, max)
			if !errors.Is(err, c.want) || (c.want == nil && !bytes.Equal(got, []byte(body))) {
				t.Fatalf("read: %d bytes, %v; want %v", len(got), err, c.want)
			}
			release()
			if b.used() != 0 {
				t.Fatalf("%d bytes still charged after release", b.used())
			}
			if c.held > 0 {
				b.sem.Release(c.held)
			}
			if !b.sem.TryAcquire(max * factor) {
				t.Fatal("the budget was not given back")
			}
		})
	}
}
