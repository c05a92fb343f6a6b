package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
)

func TestBenchRequest(t *testing.T) {
	for _, size := range []int{0, 100, 1024, 4096, 100000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r1, err := benchRequest(size, "stella.ops/sbom@v1", []string{"dev"})
			if err != nil {
				t.Fatal(err)
			}
			r2, _ := benchRequest(size, "stella.ops/sbom@v1", []string{"dev"})
			st1, err := attest.BuildStatement(r1)
			if err != nil {
				t.Fatal(err)
			}
			st2, _ := attest.BuildStatement(r2)
			if !bytes.Equal(st1, st2) {
				t.Fatal("the same arguments gave different statements")
			}
			empty, _ := benchRequest(0, "stella.ops/sbom@v1", nil)
			stEmpty, _ := attest.BuildStatement(empty)
			if want := max(size, len(stEmpty)); len(st1) != want {
				t.Errorf("statement %d bytes, want %d", len(st1), want)
			}
			if got := r1.KeyIDs(); len(got) != 1 || got[0] != "dev" {
				t.Errorf("key ids %v", got)
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	if got := percentiles(nil); got != (latencyStats{}) {
		t.Errorf("empty: %+v", got)
	}
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	want := latencyStats{P50: 50, P90: 90, P99: 99, Max: 100}
	if got := percentiles(ds); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := percentiles([]time.Duration{3 * time.Millisecond}); got != (latencyStats{3, 3, 3, 3}) {
		t.Errorf("one sample: %+v", got)
	}
}

func TestParseProcStatus(t *testing.T) {
	const status = "Name:\tsigner-agent\nVmPeak:\t  999 kB\nVmHWM:\t   30720 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n"
	m, err := parseProcStatus(42, strings.NewReader(status))
	if err != nil {
		t.Fatal(err)
	}
	if *m != (procMem{PID: 42, RSSKiB: 20480, HWMKiB: 30720}) {
		t.Errorf("got %+v", m)
	}
	if s := m.String(); s != "pid 42, VmRSS 20.0 MiB, VmHWM 30.0 MiB" {
		t.Errorf("String() = %q", s)
	}
	for name, in := range map[string]string{
		"kernel thread": "Name:\tkthreadd\nThreads:\t1\n",
		"bad unit":      "VmHWM:\t1 MB\nVmRSS:\t1 kB\n",
		"bad number":    "VmHWM:\tx kB\nVmRSS:\t1 kB\n",
	} {
		if _, err := parseProcStatus(1, strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := readProcMem(1 << 30); err == nil {
		t.Error("nonexistent pid: no error")
	}
}

// TestRunBenchInProcess drives the engine without an agent.
func TestRunBenchInProcess(t *testing.T) {
	req, err := benchRequest(512, "stella.ops/sbom@v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	cfg := benchConfig{
		Mode: benchInProcess, Concurrency: 3, Requests: 31, Request: req,
		Signers: []attest.Signer{{ID: "bench", Source: "memory", Key: k}},
	}
	res, err := runBench(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 31 || res.Succeeded != 31 || res.Failed != 0 || res.StatementBytes != 512 || res.PredicateBytes != len(req.Predicate) {
		t.Errorf("result %+v", res)
	}

	// Duration mode: runs until the duration passes; no timing asserted.
	cfg.Requests, cfg.Duration = 0, 20*time.Millisecond
	if res, err = runBench(context.Background(), cfg); err != nil || res.Succeeded == 0 || res.Failed != 0 {
		t.Errorf("duration mode: %+v, %v", res, err)
	}

	// A closed key fails every request; failures are counted by class.
	_ = k.Close()
	cfg.Requests, cfg.Duration = 7, 0
	if res, err = runBench(context.Background(), cfg); err != nil || res.Failed != 7 || res.Errors["sign_failed"] != 7 || res.ErrorSamples["sign_failed"] == "" {
		t.Errorf("closed key: %+v, %v", res, err)
	}

	// A cancelled context stops the run without counting aborted work.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res, err = runBench(ctx, cfg); err != nil || res.Requests != 0 {
		t.Errorf("cancelled: %+v, %v", res, err)
	}

	for name, bad := range map[string]benchConfig{
		"no concurrency":   {Mode: benchInProcess, Requests: 1, Request: req, Signers: cfg.Signers},
		"no count or time": {Mode: benchInProcess, Concurrency: 1, Request: req, Signers: cfg.Signers},
		"no signers":       {Mode: benchInProcess, Concurrency: 1, Requests: 1, Request: req},
		"no client":        {Mode: benchSign, Concurrency: 1, Requests: 1, Request: req},
		"unknown mode":     {Mode: "x", Concurrency: 1, Requests: 1},
	} {
		if _, err := runBench(context.Background(), bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
