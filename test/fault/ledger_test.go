package fault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/client/verify"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
)

// answer is what a caller was given for a 200.
type answer struct {
	auditID, payloadDigest string
}

// ledger records, per request id, what callers were told: a 200 (with
// its audit id and payload digest), a refusal (its code), or nothing (the
// connection broke: the kill cut the answer off). check compares it with
// the audit log.
type ledger struct {
	prefix string
	keys   *verify.KeySet // verifies every envelope received

	seq     atomic.Int64
	okN     atomic.Int64
	refN    atomic.Int64
	mu      sync.Mutex
	ok      map[string]answer
	refused map[string]refusal
	unknown map[string]string
	bad     []string // envelopes that did not verify
}

type refusal struct {
	code proto.Code
	// conn is set when the refusal came before a request id existed (a
	// connection closed at accept): it is audited per connection.
	conn bool
}

func newLedger(t testing.TB, p *agentProc) *ledger {
	t.Helper()
	ks, err := verify.KeysFromPEM([]string{filepath.Join(p.dir, "keys", "dev.pub")}, "")
	if err != nil {
		t.Fatal(err)
	}
	// The agent takes X-Request-Id only when it is plain ([A-Za-z0-9._:-]).
	prefix := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' {
			return r
		}
		return '-'
	}, "fault-"+t.Name())
	return &ledger{prefix: prefix, keys: ks,
		ok: map[string]answer{}, refused: map[string]refusal{}, unknown: map[string]string{}}
}

// nextID is a request id of this ledger.
func (l *ledger) nextID() string { return fmt.Sprintf("%s-%d", l.prefix, l.seq.Add(1)) }

// sign sends one sign request through c and records the answer.
func (l *ledger) sign(ctx context.Context, c *client.Client, req *proto.SignRequest) (*proto.SignResponse, error) {
	id := l.nextID()
	res, err := c.SignDSSE(client.WithRequestID(ctx, id), req)
	l.note(id, res, err)
	return res, err
}

// note records the answer to request id.
func (l *ledger) note(id string, res *proto.SignResponse, err error) {
	var ce *client.Error
	switch {
	case err == nil:
		env, _ := json.Marshal(&res.Envelope)
		v, verr := verify.Envelope(context.Background(), l.keys, env, verify.Options{AnyArtifact: true})
		l.mu.Lock()
		defer l.mu.Unlock()
		if verr != nil || v.PayloadDigest != res.PayloadDigest {
			l.bad = append(l.bad, fmt.Sprintf("%s: envelope does not verify or its digest differs: %v", id, verr))
		}
		l.ok[id] = answer{res.AuditID, res.PayloadDigest}
		l.okN.Add(1)
	case errors.As(err, &ce) && ce.Code != "":
		l.mu.Lock()
		defer l.mu.Unlock()
		l.refused[id] = refusal{code: ce.Code, conn: ce.RequestID == ""}
		l.refN.Add(1)
	default:
		l.mu.Lock()
		defer l.mu.Unlock()
		l.unknown[id] = err.Error()
	}
}

// noteRefused records a refusal seen on a raw request.
func (l *ledger) noteRefused(id string, code proto.Code) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused[id] = refusal{code: code}
	l.refN.Add(1)
}

// noteUnknown records a raw request that got no answer.
func (l *ledger) noteUnknown(id, why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unknown[id] = why
}

// codes counts the refusals by code.
func (l *ledger) codes() map[proto.Code]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[proto.Code]int{}
	for _, r := range l.refused {
		m[r.code]++
	}
	return m
}

func (l *ledger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var cs []string
	m := map[proto.Code]int{}
	for _, r := range l.refused {
		m[r.code]++
	}
	for c, n := range m {
		cs = append(cs, fmt.Sprintf("%s×%d", c, n))
	}
	sort.Strings(cs)
	return fmt.Sprintf("%d signed, %d refused [%s], %d unanswered", len(l.ok), len(l.refused), strings.Join(cs, " "), len(l.unknown))
}

// checkOpts relax check where a scenario cannot keep a promise.
type checkOpts struct {
	// crashed: the agent was killed while requests were in flight, so an
	// allow record may belong to a request whose answer was cut off.
	crashed bool
	// unaudited lists refusal codes that cannot have a record of their
	// own (audit_unavailable: the log refused the record).
	unaudited []proto.Code
}

// check reads the audit log back from disk (the agent must be stopped)
// and fails the test unless: the chain verifies; every 200 has its allow
// record (same request id and payload digest) — no acknowledged record
// lost; every allow record is a 200 a caller got, or (crashed) a request
// whose answer never arrived — nothing signed unaudited, nothing audited
// as signed that a caller was refused; every refusal of a request has a
// deny record with its code; every envelope received verified.
func (l *ledger) check(t *testing.T, p *agentProc, o checkOpts) {
	t.Helper()
	rep, err := audit.Verify(p.auditDir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("audit chain broken: %+v", rep.Break)
	}
	byAudit := map[string]audit.Record{}
	allowByReq := map[string]audit.Record{}
	denyCodes := map[string]map[string]bool{}
	var dupAllow []string
	err = audit.Query(p.auditDir, audit.Filter{}, func(r audit.Record) error {
		byAudit[r.AuditID] = r
		switch r.Decision {
		case audit.Allow:
			if r.Gate == "sign" {
				if _, dup := allowByReq[r.RequestID]; dup {
					dupAllow = append(dupAllow, r.RequestID)
				}
				allowByReq[r.RequestID] = r
			}
		case audit.Deny:
			if denyCodes[r.RequestID] == nil {
				denyCodes[r.RequestID] = map[string]bool{}
			}
			denyCodes[r.RequestID][r.Code] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var problems []string
	fail := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	problems = append(problems, l.bad...)
	for _, id := range dupAllow {
		fail("request %s has two allow records", id)
	}
	for id, a := range l.ok {
		r, found := byAudit[a.auditID]
		switch {
		case !found:
			fail("LOST: the 200 of %s (auditId %s) has no record", id, a.auditID)
		case r.Decision != audit.Allow || r.Gate != "sign" || r.RequestID != id:
			fail("the 200 of %s has record %s/%s of request %s", id, r.Decision, r.Gate, r.RequestID)
		case r.PayloadDigest != a.payloadDigest:
			fail("the 200 of %s signed %s, its record says %s", id, a.payloadDigest, r.PayloadDigest)
		}
	}
	lostAnswers := 0
	for id := range allowByReq {
		if _, ok := l.ok[id]; ok {
			continue
		}
		if _, cut := l.unknown[id]; cut && o.crashed {
			lostAnswers++
			continue
		}
		if r, refused := l.refused[id]; refused {
			fail("request %s was refused (%s) but its record says allow", id, r.code)
			continue
		}
		fail("UNACKNOWLEDGED SIGNATURE: allow record of request %s, which no caller got as a 200", id)
	}
	skip := map[proto.Code]bool{}
	for _, c := range o.unaudited {
		skip[c] = true
	}
	for id, r := range l.refused {
		if r.conn || skip[r.code] {
			continue
		}
		if !denyCodes[id][string(r.code)] {
			fail("refusal %s of request %s has no deny record", r.code, id)
		}
	}
	if !o.crashed && len(l.unknown) > 0 {
		for id, why := range l.unknown {
			fail("request %s got no answer without a crash: %s", id, why)
			break
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%s\n%s", l.statsLocked(), strings.Join(problems, "\n"))
	}
	t.Logf("ledger %s: %d records, chain verifies (%d repaired tails); %d allow records whose answer the kill cut off",
		l.statsLocked(), rep.Records, rep.RepairedTails, lostAnswers)
}

func (l *ledger) statsLocked() string {
	return fmt.Sprintf("%d signed, %d refused, %d unanswered", len(l.ok), len(l.refused), len(l.unknown))
}

// finish ends a scenario the same way every time: kill -9, start again
// (the audit log recovers at open), a clean stop, then check.
func finish(t *testing.T, p *agentProc, l *ledger, o checkOpts) {
	t.Helper()
	p.kill9()
	p.start()
	p.stop()
	l.check(t, p, o)
}

// load runs sign workers until stopped.
type load struct {
	stopc chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// startLoad runs workers goroutines, each signing with its own client
// (its own connection and credentials) in a loop until halt.
func startLoad(t *testing.T, p *agentProc, l *ledger, workers int) *load {
	t.Helper()
	ld := &load{stopc: make(chan struct{})}
	for w := 0; w < workers; w++ {
		c := p.client()
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			defer c.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-ld.stopc:
					return
				default:
				}
				if _, err := l.sign(context.Background(), c, signRequest(i)); err != nil {
					// Refused or cut off: back off briefly so a scenario
					// that refuses everything does not spin.
					select {
					case <-ld.stopc:
						return
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		}()
	}
	return ld
}

// halt stops the workers and waits for them (once; later calls return).
func (ld *load) halt() {
	ld.once.Do(func() { close(ld.stopc) })
	ld.wg.Wait()
}

// subjectDigest is the dev artifact's digest in every request.
const subjectDigest = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"

// signRequest is a small SBOM statement; i makes each payload distinct.
func signRequest(i int) *proto.SignRequest {
	return &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "registry.example/app@sha256:" + subjectDigest, Digest: map[string]string{"sha256": subjectDigest}}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(fmt.Sprintf(`{"format":"cyclonedx-1.6","componentCount":%d}`, i)),
	}
}
