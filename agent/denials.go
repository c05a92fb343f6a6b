package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/peercred"
)

// denialLimiter bounds the denial records one peer adds to the audit log
// (SPEC §3): each peer (uid; the mTLS listener's callers share one key)
// has a token bucket; denials beyond it are counted instead of written,
// and flush writes one summary record per peer and burst. Allowed
// requests and admin changes never pass through it.
type denialLimiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu    sync.Mutex
	peers map[string]*peerDenials
}

type peerDenials struct {
	lim        *rate.Limiter
	cred       *peercred.Cred
	suppressed int
	codes      map[string]int
	first      time.Time
	last       time.Time
}

// peerIdle is how long a quiet peer's bucket is kept.
const peerIdle = time.Minute

func newDenialLimiter(r float64, burst int, now func() time.Time) *denialLimiter {
	return &denialLimiter{rate: rate.Limit(r), burst: burst, now: now, peers: map[string]*peerDenials{}}
}

func peerKey(cr *peercred.Cred) string {
	if cr == nil {
		return "unknown"
	}
	return fmt.Sprintf("uid:%d", cr.UID)
}

// allow reports whether a denial of code from cr may be written now; if
// not, it is counted for the next summary.
func (l *denialLimiter) allow(cr *peercred.Cred, code string) bool {
	now := l.now()
	k := peerKey(cr)
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.peers[k]
	if p == nil {
		p = &peerDenials{lim: rate.NewLimiter(l.rate, l.burst), cred: cr}
		l.peers[k] = p
	}
	p.last = now
	if p.lim.AllowN(now, 1) {
		return true
	}
	if p.suppressed == 0 {
		p.first, p.codes = now, map[string]int{}
	}
	p.suppressed++
	p.codes[code]++
	return false
}

// denialSummary is one peer's suppressed burst: its record and how many
// denials it stands for.
type denialSummary struct {
	rec audit.Record
	n   int
}

// summaries takes the suppressed bursts (one record per peer) and drops
// the buckets of peers quiet for peerIdle.
func (l *denialLimiter) summaries() []denialSummary {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []denialSummary
	for k, p := range l.peers {
		if p.suppressed > 0 {
			var codes []string
			for c, n := range p.codes {
				codes = append(codes, fmt.Sprintf("%s×%d", c, n))
			}
			sort.Strings(codes)
			out = append(out, denialSummary{n: p.suppressed, rec: audit.Record{
				Time: now.UTC(), RequestID: "denial-summary", Route: "", Peer: p.cred,
				Decision: audit.Deny, Gate: gateAuditLimit,
				Reason: fmt.Sprintf("%d denials of %s not recorded one by one (over %g/s): %s, from %s to %s",
					p.suppressed, k, float64(l.rate), strings.Join(codes, ", "),
					p.first.UTC().Format(time.RFC3339Nano), p.last.UTC().Format(time.RFC3339Nano)),
			}})
			p.suppressed, p.codes = 0, nil
			continue
		}
		if now.Sub(p.last) > peerIdle {
			delete(l.peers, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.Reason < out[j].rec.Reason })
	return out
}

// flushDenials writes the summary records of suppressed denials (a task,
// every second, and once more when Run stops).
func (a *Agent) flushDenials(ctx context.Context) {
	for _, s := range a.denials.summaries() {
		a.metrics.DenialsSuppressed(s.n)
		if err := a.auditor.Append(ctx, &s.rec); err != nil {
			a.log.Error("audit append failed for a denial summary", zap.Error(err))
		}
	}
}

// auditDenial appends a denial record unless its peer is over its
// denial-record rate (then the denial is counted for a summary).
func (a *Agent) auditDenial(ctx context.Context, r *audit.Record) error {
	if a.denials != nil && !a.denials.allow(r.Peer, r.Code) {
		return nil
	}
	return a.auditor.Append(ctx, r)
}
