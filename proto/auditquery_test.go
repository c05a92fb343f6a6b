package proto

import (
	"testing"
	"time"
)

// TestAuditQueryTimesRoundTrip: Since and Until keep their fraction of a
// second through the query string (a query for the records after an
// event must not return the ones earlier in the same second).
func TestAuditQueryTimesRoundTrip(t *testing.T) {
	q := AuditQuery{Since: time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC), Until: time.Date(2026, 12, 6, 10, 0, 1, 5, time.UTC), Limit: 7}
	got, err := ParseAuditQuery(q.Values())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Since.Equal(q.Since) || !got.Until.Equal(q.Until) || got.Limit != 7 {
		t.Fatalf("got %+v, want %+v", got, q)
	}
}
