package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

// benchMode is what one bench request does.
type benchMode string

const (
	// benchSign: POST /api/v1/signer/sign/dsse through the client.
	benchSign benchMode = "sign"
	// benchNoop: GET /healthz, the no-op handler on the same HTTP stack.
	benchNoop benchMode = "noop"
	// benchInProcess: build, canonicalise and sign the same statement in
	// this process with a file key (no agent).
	benchInProcess benchMode = "inprocess"
)

// benchConfig configures runBench.
type benchConfig struct {
	Mode        benchMode
	Concurrency int
	// Requests is the number of requests to send; when zero the bench runs
	// for Duration (no new request starts after it; those in flight
	// finish).
	Requests int
	Duration time.Duration
	// Request is what every sign sends (sign and inprocess); see
	// benchRequest. It is only read.
	Request *proto.SignRequest
	// NewClient returns the client one worker uses (sign and noop). Each
	// worker has its own, so connections are neither shared nor churned by
	// the client's idle pool limit.
	NewClient func() *client.Client
	// Signers sign in-process (inprocess).
	Signers []attest.Signer
}

// benchResult is what runBench measured.
type benchResult struct {
	Mode        benchMode `json:"mode"`
	Concurrency int       `json:"concurrency"`
	// Requests counts completed requests; requests cut short by
	// cancellation are not counted.
	Requests  int `json:"requests"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Errors counts failures by agent error code ("http_503" for a non-
	// problem answer, "transport" when the agent could not be reached,
	// "timeout", "sign_failed" in-process); ErrorSamples holds the first
	// message of each.
	Errors       map[string]int    `json:"errors,omitempty"`
	ErrorSamples map[string]string `json:"errorSamples,omitempty"`

	ElapsedSeconds    float64 `json:"elapsedSeconds"`
	RequestsPerSecond float64 `json:"requestsPerSecond"` // successful requests
	// PredicateBytes is the size of each request's predicate JSON and
	// StatementBytes of its canonical statement; PredicateMBPerSecond is
	// successful predicate bytes per second (MB = 10^6 bytes).
	PredicateBytes       int     `json:"predicateBytes"`
	StatementBytes       int     `json:"statementBytes"`
	PredicateMBPerSecond float64 `json:"predicateMBPerSecond"`
	// LatencyMs is over successful requests.
	LatencyMs latencyStats `json:"latencyMs"`

	Agent *procMem `json:"agent,omitempty"`     // with --pid
	Self  *procMem `json:"signerctl,omitempty"` // this process
}

// latencyStats are nearest-rank percentiles in milliseconds.
type latencyStats struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// benchSubjectName names the fixed subject of every bench statement.
const benchSubjectName = "signerctl-bench"

// benchRequest builds the request every bench sign sends: one fixed
// subject, and a predicate {"filler":"xx…"} whose filler makes the
// canonical statement about size bytes (never less than its fixed part).
// The same arguments always give the same request.
func benchRequest(size int, predicateType string, keyIDs []string) (*proto.SignRequest, error) {
	sum := sha256.Sum256([]byte("signerctl bench subject"))
	req := &proto.SignRequest{
		Subject:       []proto.Subject{{Name: benchSubjectName, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}},
		PredicateType: predicateType,
		Predicate:     []byte(`{"filler":""}`),
	}
	if len(keyIDs) > 0 {
		req.Options = &proto.SignOptions{KeyIDs: keyIDs}
	}
	st, err := attest.BuildStatement(req)
	if err != nil {
		return nil, err
	}
	if fill := size - len(st); fill > 0 {
		req.Predicate = []byte(`{"filler":"` + strings.Repeat("x", fill) + `"}`)
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return req, nil
}

// runBench runs the configured requests and measures them. It returns an
// error only for a configuration it cannot run; failed requests are counted
// in the result. Cancelling ctx stops the run early.
func runBench(ctx context.Context, cfg benchConfig) (*benchResult, error) {
	if cfg.Concurrency < 1 {
		return nil, errors.New("bench: concurrency must be at least 1")
	}
	if cfg.Requests < 0 || (cfg.Requests == 0 && cfg.Duration <= 0) {
		return nil, errors.New("bench: give a request count or a positive duration")
	}
	res := &benchResult{Mode: cfg.Mode, Concurrency: cfg.Concurrency}
	newOp, err := cfg.opFactory()
	if err != nil {
		return nil, err
	}
	if cfg.Mode != benchNoop {
		st, err := attest.BuildStatement(cfg.Request)
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		res.PredicateBytes, res.StatementBytes = len(cfg.Request.Predicate), len(st)
	}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		next      atomic.Int64
		wg        sync.WaitGroup
	)
	res.Errors = map[string]int{}
	res.ErrorSamples = map[string]string{}
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	for range cfg.Concurrency {
		op, done := newOp()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer done()
			var lat []time.Duration
			errs := map[string]int{}
			samples := map[string]string{}
			for ctx.Err() == nil {
				if cfg.Requests > 0 {
					if next.Add(1) > int64(cfg.Requests) {
						break
					}
				} else if !time.Now().Before(deadline) {
					break
				}
				t0 := time.Now()
				err := op(ctx)
				d := time.Since(t0)
				if err != nil && ctx.Err() != nil {
					break // cut short by cancellation: not a result
				}
				if err == nil {
					lat = append(lat, d)
					continue
				}
				class := benchErrorClass(cfg.Mode, err)
				errs[class]++
				if _, ok := samples[class]; !ok {
					samples[class] = strings.TrimPrefix(formatError(err), "signerctl: ")
				}
			}
			mu.Lock()
			defer mu.Unlock()
			latencies = append(latencies, lat...)
			for k, n := range errs {
				res.Errors[k] += n
				if _, ok := res.ErrorSamples[k]; !ok {
					res.ErrorSamples[k] = samples[k]
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	res.Succeeded = len(latencies)
	for _, n := range res.Errors {
		res.Failed += n
	}
	res.Requests = res.Succeeded + res.Failed
	res.ElapsedSeconds = elapsed.Seconds()
	if s := elapsed.Seconds(); s > 0 {
		res.RequestsPerSecond = float64(res.Succeeded) / s
		res.PredicateMBPerSecond = float64(res.Succeeded) * float64(res.PredicateBytes) / s / 1e6
	}
	res.LatencyMs = percentiles(latencies)
	return res, nil
}

// opFactory returns a constructor of per-worker operations and their
// cleanup.
func (cfg *benchConfig) opFactory() (func() (func(context.Context) error, func()), error) {
	switch cfg.Mode {
	case benchSign, benchNoop:
		if cfg.NewClient == nil {
			return nil, errors.New("bench: no client")
		}
		if cfg.Mode == benchSign && cfg.Request == nil {
			return nil, errors.New("bench: no request")
		}
		return func() (func(context.Context) error, func()) {
			c := cfg.NewClient()
			if cfg.Mode == benchNoop {
				return func(ctx context.Context) error {
					_, err := c.Health(ctx)
					return err
				}, c.CloseIdleConnections
			}
			return func(ctx context.Context) error {
				_, err := c.SignDSSE(ctx, cfg.Request)
				return err
			}, c.CloseIdleConnections
		}, nil
	case benchInProcess:
		if len(cfg.Signers) == 0 || cfg.Request == nil {
			return nil, errors.New("bench: in-process mode needs a key and a request")
		}
		return func() (func(context.Context) error, func()) {
			return func(ctx context.Context) error {
				st, err := attest.BuildStatement(cfg.Request)
				if err != nil {
					return err
				}
				_, err = attest.Sign(ctx, st, cfg.Signers)
				return err
			}, func() {}
		}, nil
	}
	return nil, fmt.Errorf("bench: unknown mode %q", cfg.Mode)
}

func benchErrorClass(mode benchMode, err error) string {
	var ce *client.Error
	switch {
	case errors.As(err, &ce) && ce.Code != "":
		return string(ce.Code)
	case errors.As(err, &ce):
		return fmt.Sprintf("http_%d", ce.Status)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case mode == benchInProcess:
		return "sign_failed"
	}
	return "transport"
}

// percentiles returns nearest-rank p50/p90/p99 and the maximum.
func percentiles(ds []time.Duration) latencyStats {
	if len(ds) == 0 {
		return latencyStats{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		i = max(0, min(i, len(ds)-1))
		return ms(ds[i])
	}
	return latencyStats{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
