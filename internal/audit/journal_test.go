package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

type sentEntry struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

// fakeJournal records what a JournalForwarder sends.
type fakeJournal struct {
	mu      sync.Mutex
	entries []sentEntry
	gate    chan struct{} // when set, each send says so on started and waits for it to close
	started chan struct{}
	fail    error
}

func (f *fakeJournal) send(msg string, pri journal.Priority, vars map[string]string) error {
	if f.gate != nil {
		select {
		case f.started <- struct{}{}:
		default:
		}
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.entries = append(f.entries, sentEntry{msg, pri, vars})
	return nil
}

func newFakeForwarder(f *fakeJournal, queue int) *JournalForwarder {
	j := &JournalForwarder{queue: make(chan []byte, queue), done: make(chan struct{}), send: f.send}
	go j.run()
	return j
}

func TestJournalForwarderEntries(t *testing.T) {
	f := &fakeJournal{}
	j := newFakeForwarder(f, 16)
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, Forwarder: j})
	appendN(t, l, 0, 6) // rec alternates allow and deny
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	lines := bytes.Split(bytes.TrimSuffix(segData(t, segPaths(t, dir)[0]), []byte{'\n'}), []byte{'\n'})
	if len(f.entries) != len(lines) || len(lines) != 6 {
		t.Fatalf("%d entries for %d records", len(f.entries), len(lines))
	}
	for i, e := range f.entries {
		if e.vars["SIGNER_AUDIT_RECORD"] != string(lines[i]) {
			t.Fatalf("entry %d does not carry record line %d", i, i+1)
		}
		h, err := checkLine(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		r := rec(i)
		wantPri := journal.PriInfo
		if r.Decision == Deny {
			wantPri = journal.PriNotice
		}
		if e.pri != wantPri || e.vars["SIGNER_DECISION"] != r.Decision || e.vars["SIGNER_TENANT"] != r.Tenant ||
			e.vars["SIGNER_AUDIT_HASH"] != h.Hash || e.vars["SIGNER_AUDIT_SEQ"] != strconv.FormatUint(h.Seq, 10) ||
			e.vars["SYSLOG_IDENTIFIER"] != "signer-agent-audit" || !strings.HasPrefix(e.msg, "audit seq=") {
			t.Fatalf("entry %d: %q pri %d %v", i, e.msg, e.pri, e.vars)
		}
		if _, ok := e.vars["SIGNER_CODE"]; ok != (r.Code != "") {
			t.Fatalf("entry %d: SIGNER_CODE present %v for code %q", i, ok, r.Code)
		}
	}
	if st := j.Stats(); st.Sent != 6 || st.Dropped != 0 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A slow or failing journal never holds up the log: a full queue drops
// (and counts) entries, failed sends are counted, Appends all succeed.
func TestJournalForwarderBestEffort(t *testing.T) {
	f := &fakeJournal{gate: make(chan struct{}), started: make(chan struct{}, 1)}
	j := newFakeForwarder(f, 2)
	l := openLog(t, LogConfig{Forwarder: j})
	appendN(t, l, 0, 1)
	<-f.started         // the sender holds the first record
	appendN(t, l, 1, 9) // one commit each: two queue, seven drop
	// The writer forwards after the acknowledgements: a flush request
	// waits for the last one.
	if err := l.control(context.Background(), opFlush); err != nil {
		t.Fatal(err)
	}
	st := j.Stats()
	if st.Dropped != 7 {
		t.Fatalf("dropped %d, want 7", st.Dropped)
	}
	f.mu.Lock()
	f.fail = errors.New("journald gone")
	f.mu.Unlock()
	close(f.gate)
	l.Close()
	j.Close()
	if st := j.Stats(); st.Sent != 0 || st.Failed != 3 || st.Dropped != 7 {
		t.Fatalf("stats %+v", st)
	}
}

// TestJournalForwarderNative sends through go-systemd's journal client to a
// journald stand-in, in a private mount namespace whose /run is a tmpfs
// (so a real journald is never touched), and parses the native protocol.
func TestJournalForwarderNative(t *testing.T) {
	if os.Getenv("SIGNER_AUDIT_JOURNAL_CHILD") != "" {
		journalChild(t)
		return
	}
	if os.Getuid() != 0 {
		t.Logf("!!! SKIPPING the journald protocol test: it needs root for a private mount namespace (unshare -m)")
		t.Skip("not root")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare (util-linux) is needed: %v", err)
	}
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs tmpfs /run && exec "$0" -test.run '^TestJournalForwarderNative$' -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), "SIGNER_AUDIT_JOURNAL_CHILD=1", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestJournalForwarderNative")) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func journalChild(t *testing.T) {
	if err := os.MkdirAll("/run/systemd/journal", 0o755); err != nil {
		t.Fatal(err)
	}
	sock := "/run/systemd/journal/socket"
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !JournalAvailable() {
		t.Fatal("JournalAvailable is false with the socket in place")
	}
	j := NewJournalForwarder(0)
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, Forwarder: j})
	appendN(t, l, 0, 4)
	l.Close()
	j.Close()
	lines := bytes.Split(bytes.TrimSuffix(segData(t, segPaths(t, dir)[0]), []byte{'\n'}), []byte{'\n'})
	buf := make([]byte, 1<<20)
	for i, line := range lines {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		fields, err := parseNative(buf[:n])
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if fields["SIGNER_AUDIT_RECORD"] != string(line) || fields["SYSLOG_IDENTIFIER"] != "signer-agent-audit" ||
			fields["PRIORITY"] == "" || !strings.HasPrefix(fields["MESSAGE"], "audit seq=") {
			t.Fatalf("datagram %d: %v", i, fields)
		}
	}
	if st := j.Stats(); st.Sent != uint64(len(lines)) {
		t.Fatalf("stats %+v", st)
	}
}

// parseNative parses journald's native protocol: KEY=VALUE lines, or KEY,
// a newline, a 64-bit little-endian length and that many bytes of value.
func parseNative(b []byte) (map[string]string, error) {
	out := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, errors.New("entry without newline")
		}
		if eq := bytes.IndexByte(b[:nl], '='); eq >= 0 {
			out[string(b[:eq])] = string(b[eq+1 : nl])
			b = b[nl+1:]
			continue
		}
		key := string(b[:nl])
		b = b[nl+1:]
		if len(b) < 8 {
			return nil, errors.New("short binary field")
		}
		n := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < n+1 || b[n] != '\n' {
			return nil, errors.New("bad binary field")
		}
		out[key] = string(b[:n])
		b = b[n+1:]
	}
	return out, nil
}
