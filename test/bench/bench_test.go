// Package bench holds the performance benchmarks of issue #2 (never timing
// assertions). Run them in one process so the ratios compare like with like:
//
//	go test -run '^$' -bench . -benchtime 5s ./test/bench
//
// (a) BenchmarkNoopOverSocket      a no-op handler on the same client + HTTP-over-Unix-socket stack
// (b) BenchmarkInProcessSign       canonicalise + DSSE + bundle with the same file key
// (c) BenchmarkAgentSign           the agent end to end through the client
// Target: (c) ≥ 0.7 × 1/(1/a + 1/b) in throughput. All with 1 KiB
// predicates and 16 concurrent callers. The 16 MiB pair reports MB/s.
package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

const digestA = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"

// request builds a sign request whose canonical statement is about size
// bytes.
func request(size int) *proto.SignRequest {
	overhead := 260
	fill := size - overhead
	if fill < 0 {
		fill = 0
	}
	return &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "registry.example/app", Digest: map[string]string{"sha256": digestA}}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(`{"format":"cyclonedx-1.6","componentCount":412,"filler":"` + strings.Repeat("x", fill) + `"}`),
	}
}

// parallel16 runs body from 16 goroutines regardless of GOMAXPROCS.
func parallel16(b *testing.B, body func(pb *testing.PB)) {
	p := (16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	b.SetParallelism(p)
	b.RunParallel(body)
}

// BenchmarkNoopOverSocket is (a): the same stack — client.SignDSSE, HTTP/1.1
// over a Unix socket, net/http server — with the agent's handler replaced by
// a no-op that drains the request and returns a canned sign response of the
// real size (captured from the agent). It measures what moving and coding
// the bytes costs without any agent work.
func BenchmarkNoopOverSocket(b *testing.B) {
	h := harness.StartAgent(b, harness.Options{FileAudit: true})
	req := request(1024)
	res, err := h.Client.SignDSSE(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	canned, _ := json.Marshal(res)
	sock := filepath.Join(harness.ShortTempDir(b), "noop.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", proto.MediaTypeJSON)
		w.Header().Set("Content-Length", strconv.Itoa(len(canned)))
		_, _ = w.Write(canned)
	})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	// The same client configuration as (c): it builds a DPoP proof per
	// request; the no-op server checks nothing.
	c := h.ClientWith(h.Creds)
	c.Socket = sock
	ctx := context.Background()
	b.ResetTimer()
	parallel16(b, func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.SignDSSE(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkHealthz: GET /healthz on the agent, for reference (the smallest
// request the agent serves, through the transport and peer gates).
func BenchmarkHealthz(b *testing.B) {
	h := harness.StartAgent(b, harness.Options{FileAudit: true})
	ctx := context.Background()
	b.ResetTimer()
	parallel16(b, func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Client.Health(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func fileSigner(b *testing.B, h *harness.Agent) attest.Signer {
	k, err := (&keys.Opener{}).Open(context.Background(), "file:"+h.KeyPEM)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { k.Close() })
	return attest.Signer{ID: "dev", Source: "file", Key: k}
}

func inProcess(b *testing.B, size int) {
	h := harness.StartAgent(b, harness.Options{FileAudit: true})
	s := fileSigner(b, h)
	body, _ := json.Marshal(request(size))
	b.SetBytes(int64(len(body)))
	ctx := context.Background()
	b.ResetTimer()
	parallel16(b, func(pb *testing.PB) {
		for pb.Next() {
			req, err := proto.DecodeSignRequest(body)
			if err != nil {
				b.Error(err)
				return
			}
			if err := signInProcess(ctx, req, s); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// signInProcess builds req's statement and signs it with s (DSSE and
// bundle): the in-process benchmarks' work for one statement.
func signInProcess(ctx context.Context, req *proto.SignRequest, s attest.Signer) error {
	st, err := attest.BuildStatement(req)
	if err != nil {
		return err
	}
	_, err = attest.Sign(ctx, st, []attest.Signer{s})
	return err
}

// agentSign runs the agent end to end; durable selects the agent's own
// fdatasync'ed audit log, otherwise audit is off (discardAuditor). Both
// report p50 and p99 request latency.
func agentSign(b *testing.B, size int, durable bool) {
	opts := harness.Options{FileAudit: true}
	if !durable {
		opts = harness.Options{Auditor: discardAuditor{}}
	}
	h := harness.StartAgent(b, opts)
	req := request(size)
	body, _ := json.Marshal(req)
	b.SetBytes(int64(len(body)))
	ctx := context.Background()
	b.ResetTimer()
	parallel16Timed(b, func() error {
		_, err := h.Client.SignDSSE(ctx, req)
		return err
	})
}

// discardAuditor is the audit log switched off: each record gets an id
// (the response carries it) and is dropped.
type discardAuditor struct{}

func (discardAuditor) Append(_ context.Context, r *audit.Record) error {
	if r.AuditID == "" {
		r.AuditID = audit.NewID()
	}
	return nil
}

func (d discardAuditor) AppendBatch(ctx context.Context, rs []*audit.Record) (int, error) {
	for _, r := range rs {
		_ = d.Append(ctx, r)
	}
	return len(rs), nil
}

func (discardAuditor) Close() error                                       { return nil }
func (discardAuditor) Query(audit.Filter, func(audit.Record) error) error { return nil }
func (discardAuditor) Rotate(context.Context) error                       { return audit.ErrNotDurable }
func (discardAuditor) Export(context.Context, string, uint64) (*audit.Manifest, error) {
	return nil, audit.ErrNotDurable
}
func (discardAuditor) Prune() ([]string, error) { return nil, nil }
func (discardAuditor) Ready() error             { return nil }

// parallel16Timed is parallel16 around op, reporting the median and 99th
// percentile of op's latency as p50-µs and p99-µs.
func parallel16Timed(b *testing.B, op func() error) {
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	parallel16(b, func(pb *testing.PB) {
		var d []time.Duration
		for pb.Next() {
			t := time.Now()
			if err := op(); err != nil {
				b.Error(err)
				return
			}
			d = append(d, time.Since(t))
		}
		mu.Lock()
		all = append(all, d...)
		mu.Unlock()
	})
	reportLatency(b, all)
}

// reportLatency reports the p50 and p99 of d.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}

func BenchmarkInProcessSign(b *testing.B) { inProcess(b, 1024) }
func BenchmarkAgentSign(b *testing.B)     { agentSign(b, 1024, true) }

// BenchmarkAgentSignAuditOff is (c) with the audit log switched off
// (discardAuditor): issue #6's baseline ("audit disabled"), and the
// non-durable audit issue #3's target was written against.
func BenchmarkAgentSignAuditOff(b *testing.B) { agentSign(b, 1024, false) }

// The 16 MiB pair: MB/s end to end against in-process decode +
// canonicalise + hash + sign.
func BenchmarkInProcessSign16MiB(b *testing.B) {
	if os.Getenv("BENCH_LARGE") == "" {
		b.Skip("set BENCH_LARGE=1 (make bench does)")
	}
	inProcess(b, 16<<20)
}

func BenchmarkAgentSign16MiB(b *testing.B) {
	if os.Getenv("BENCH_LARGE") == "" {
		b.Skip("set BENCH_LARGE=1 (make bench does)")
	}
	agentSign(b, 16<<20, true)
}

// BenchmarkECDSAP256Verify is the `verify` term of issue #3's target:
// in-process ECDSA P-256 verification throughput (a DPoP proof costs one
// verification; the OpTok's is cached), 16 callers.
func BenchmarkECDSAP256Verify(b *testing.B) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("dpop proof signing input"))
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	parallel16(b, func(pb *testing.PB) {
		for pb.Next() {
			if !ecdsa.VerifyASN1(&k.PublicKey, digest[:], sig) {
				b.Error("verify failed")
				return
			}
		}
	})
}
