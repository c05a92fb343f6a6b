package audit

import "testing"

func TestLogSyncMode(t *testing.T) {
	for _, tc := range []struct {
		name         string
		blocking     bool
		mode, reason string
	}{
		{"aio by default", false, SyncAIO, ""},
		{"blocking when configured", true, SyncBlocking, "configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, LogConfig{Dir: dir, BlockingSync: tc.blocking})
			appendN(t, l, 0, 5)
			st := l.Stats()
			if st.SyncMode != tc.mode || st.SyncFallback != tc.reason {
				t.Fatalf("SyncMode, SyncFallback = %q, %q; want %q, %q", st.SyncMode, st.SyncFallback, tc.mode, tc.reason)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(dir)
			if err != nil || !rep.OK || rep.Records != 5 {
				t.Fatalf("Verify: %+v, %v", rep, err)
			}
		})
	}
}
