package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
)

const benchHelp = `
Measure signing throughput and latency. Every request is the same: one fixed
subject and a predicate {"filler":"xx…"} sized so that the canonical
statement is about --predicate-bytes long. --requests N sends exactly N
requests (and overrides --duration); otherwise requests start until
--duration has passed and those in flight finish.

Modes:
  (default)    sign requests to the agent through the Go client, one
               connection per worker
  --noop       GET /healthz on the agent: the same HTTP-over-socket stack
               with a handler that does nothing, as a baseline
  --inprocess  no agent: build, canonicalise and sign the same statement in
               this process with --key-file (a PEM path or a file: key URI,
               e.g. file:/k.pem?password-env=VAR for an encrypted key)

Prints requests per second, MB/s of predicate (MB = 10^6 bytes), latency
percentiles of the successful requests, failures by error code, and memory:
the agent's VmRSS/VmHWM from /proc with --pid (e.g. --pid $(pidof
signer-agent)) and signerctl's own. Exits 1 when no request succeeded.
`

// cmdBench is `signerctl bench`.
func (a *app) cmdBench(ctx context.Context, args []string) error {
	fs := a.flagSet("bench", "bench [--concurrency N] [--duration D | --requests N] [--predicate-bytes B] [--key ID]... [--noop | --inprocess --key-file PEM] [--pid PID] [--json]", benchHelp)
	var keyIDs stringList
	var (
		concurrency = fs.Int("concurrency", 16, "concurrent `workers`")
		duration    = fs.Duration("duration", 10*time.Second, "how long to start requests (a Go `duration`)")
		requests    = fs.Int("requests", 0, "send exactly `N` requests (overrides --duration)")
		predBytes   = fs.Int("predicate-bytes", 1024, "approximate canonical statement size in `bytes`")
		predType    = fs.String("type", "stella.ops/sbom@v1", "predicate `TYPE`")
		noop        = fs.Bool("noop", false, "measure GET /healthz instead of signing")
		inprocess   = fs.Bool("inprocess", false, "sign in this process with --key-file instead of the agent")
		keyFile     = fs.String("key-file", "", "private key `PEM` file or file: URI for --inprocess")
		pid         = fs.Int("pid", 0, "agent `PID` whose memory to report (from /proc/PID/status)")
		credsPath   = fs.String("credentials", "", "credentials JSON `FILE` (signerctl dev token)")
		asJSON      = fs.Bool("json", false, "print the result as JSON")
		noIdemKeys  = fs.Bool("no-idempotency-keys", false, "send no Idempotency-Key (the agent then journals no answers)")
	)
	fs.Var(&keyIDs, "key", "signing key `ID` (repeatable; with --inprocess, the key id to label the signature)")
	a.socketFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	switch {
	case *concurrency < 1 || *concurrency > 4096:
		return usagef("--concurrency must be between 1 and 4096")
	case *requests < 0:
		return usagef("--requests must not be negative")
	case *requests == 0 && *duration <= 0:
		return usagef("--duration must be positive")
	case *predBytes < 0 || *predBytes > 64<<20:
		return usagef("--predicate-bytes must be between 0 and %d", 64<<20)
	case *noop && *inprocess:
		return usagef("--noop and --inprocess exclude each other")
	case *inprocess && *keyFile == "":
		return usagef("--inprocess needs --key-file")
	case !*inprocess && *keyFile != "":
		return usagef("--key-file is for --inprocess")
	case *inprocess && len(keyIDs) > 1:
		return usagef("--inprocess signs with one key; give at most one --key")
	case *noop && (len(keyIDs) > 0 || *credsPath != ""):
		return usagef("--noop signs nothing; --key and --credentials do not apply")
	case *inprocess && *credsPath != "":
		return usagef("--inprocess talks to no agent; --credentials does not apply")
	case *pid < 0:
		return usagef("--pid must be positive")
	}

	cfg := benchConfig{Mode: benchSign, Concurrency: *concurrency, Requests: *requests, Duration: *duration}
	var err error
	switch {
	case *noop:
		cfg.Mode = benchNoop
	case *inprocess:
		cfg.Mode = benchInProcess
		cfg.Request, err = benchRequest(*predBytes, *predType, nil)
	default:
		cfg.Request, err = benchRequest(*predBytes, *predType, keyIDs)
	}
	if err != nil {
		return fmt.Errorf("bench request: %w", err)
	}
	var creds *client.Credentials
	if !*noop && !*inprocess {
		if creds, err = a.loadCredentials(*credsPath); err != nil {
			return err
		}
		applyCredentials(creds, cfg.Request)
	}
	cfg.NewClient = func() *client.Client {
		c := a.client()
		creds.Apply(c)
		c.DisableIdempotencyKeys = *noIdemKeys
		return c
	}
	if *inprocess {
		k, err := openKeyFile(ctx, *keyFile)
		if err != nil {
			return err
		}
		defer k.Close()
		id := "bench"
		if len(keyIDs) == 1 {
			id = keyIDs[0]
		}
		cfg.Signers = []attest.Signer{{ID: id, Source: "file", Key: k}}
	}
	if *pid > 0 {
		if _, err := readProcMem(*pid); err != nil {
			return fmt.Errorf("--pid: %w", err)
		}
	}

	res, err := runBench(ctx, cfg)
	if err != nil {
		return err
	}
	if *pid > 0 {
		res.Agent, _ = readProcMem(*pid) // nil if the agent has gone meanwhile
	}
	res.Self, _ = readProcMem(os.Getpid())
	if *asJSON {
		if err := printJSON(a.stdout, res); err != nil {
			return err
		}
	} else {
		a.printBench(res, *pid)
	}
	if res.Succeeded == 0 && res.Requests > 0 {
		return fmt.Errorf("bench: no request succeeded (%d failed)", res.Failed)
	}
	return nil
}

// openKeyFile opens a private key for --inprocess: a file: URI as given,
// or a path.
func openKeyFile(ctx context.Context, s string) (keys.Key, error) {
	uri := s
	if keys.Scheme(s) != "file" {
		abs, err := filepath.Abs(s)
		if err != nil {
			return nil, fmt.Errorf("--key-file: %w", err)
		}
		uri = "file:" + abs
	}
	var o keys.Opener
	k, err := o.Open(ctx, uri)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	return k, nil
}

func (a *app) printBench(r *benchResult, pid int) {
	w := a.stdout
	where := "via " + a.socketName()
	if r.Mode == benchInProcess {
		where = "in process"
	}
	fmt.Fprintf(w, "mode:        %s %s, concurrency %d\n", r.Mode, where, r.Concurrency)
	fmt.Fprintf(w, "requests:    %d (%d ok, %d failed) in %.3fs\n", r.Requests, r.Succeeded, r.Failed, r.ElapsedSeconds)
	if r.Mode == benchNoop {
		fmt.Fprintf(w, "throughput:  %.1f req/s\n", r.RequestsPerSecond)
	} else {
		fmt.Fprintf(w, "throughput:  %.1f req/s, %.3f MB/s of predicate (predicate %d B, statement %d B)\n",
			r.RequestsPerSecond, r.PredicateMBPerSecond, r.PredicateBytes, r.StatementBytes)
	}
	l := r.LatencyMs
	fmt.Fprintf(w, "latency:     p50 %.3fms  p90 %.3fms  p99 %.3fms  max %.3fms\n", l.P50, l.P90, l.P99, l.Max)
	if len(r.Errors) > 0 {
		classes := make([]string, 0, len(r.Errors))
		for c := range r.Errors {
			classes = append(classes, c)
		}
		sort.Strings(classes)
		for _, c := range classes {
			fmt.Fprintf(w, "errors:      %s=%d (first: %s)\n", c, r.Errors[c], r.ErrorSamples[c])
		}
	}
	switch {
	case r.Agent != nil:
		fmt.Fprintf(w, "agent:       %s\n", r.Agent)
	case pid > 0:
		fmt.Fprintf(w, "agent:       pid %d: gone\n", pid)
	case r.Mode != benchInProcess:
		fmt.Fprintln(w, "agent:       memory not measured (give --pid)")
	}
	if r.Self != nil {
		fmt.Fprintf(w, "signerctl:   %s\n", r.Self)
	}
}

// procMem is a process's resident memory from /proc/PID/status.
type procMem struct {
	PID    int   `json:"pid"`
	RSSKiB int64 `json:"vmRSSKiB"`
	HWMKiB int64 `json:"vmHWMKiB"` // peak resident set
}

func (m *procMem) String() string {
	return fmt.Sprintf("pid %d, VmRSS %.1f MiB, VmHWM %.1f MiB", m.PID, float64(m.RSSKiB)/1024, float64(m.HWMKiB)/1024)
}

func readProcMem(pid int) (*procMem, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseProcStatus(pid, f)
}

// parseProcStatus reads VmRSS and VmHWM ("VmRSS:   12345 kB") from a
// /proc/PID/status document.
func parseProcStatus(pid int, r io.Reader) (*procMem, error) {
	m := &procMem{PID: pid}
	found := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return nil, fmt.Errorf("/proc/%d/status: malformed %s line", pid, name)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/status: malformed %s line", pid, name)
		}
		if name == "VmRSS" {
			m.RSSKiB = n
		} else {
			m.HWMKiB = n
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if found < 2 {
		return nil, errors.New("/proc/" + strconv.Itoa(pid) + "/status: no VmRSS/VmHWM (a kernel thread or a zombie?)")
	}
	return m, nil
}
