// Package sigstack starts a local sigstore stack for tests: Fulcio with an
// ephemeral (or a given, short-lived) CA trusting a test OIDC issuer, the
// RFC 3161 timestamp authority with its in-memory signer, and rekor-tiles
// with the POSIX backend on a temporary directory. The servers are the real
// binaries `make sigstack` builds into bin/ (pinned in the Makefile); each
// runs as a subprocess on free 127.0.0.1 ports and is killed, and waited
// for, when the test ends. A missing binary fails the test loudly.
//
// The timestamp authority binds its Prometheus port :2112 on every
// interface, hard-coded and fatal when busy, so only one can run per
// network namespace. Main (for TestMain) therefore runs a test binary in a
// private network namespace (unshare -n, loopback up) when it is root, and
// otherwise serialises test binaries that start a stack with a lock file.
// Inside the namespace nothing but loopback exists, which is also what the
// offline verification tests want.
//
// Other facts found on the way: Fulcio's legacy gRPC server listens on an
// abstract Unix socket with a fixed name (@fulcio-legacy-grpc-socket), so a
// second Fulcio in one namespace needs --legacy-unix-domain-socket; Fulcio
// answers 400 (not 401) to an identity token it cannot verify; the fileca
// CA type takes an unencrypted PKCS#8 key with an empty --fileca-key-passwd;
// rekor-tiles' metrics port defaults to :2112 too (set
// --http-metrics-port); go-oidc, inside Fulcio, needs
// id_token_signing_alg_values_supported in the issuer's discovery document
// for anything but RS256.
package sigstack

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Stack is a running set of sigstore servers.
type Stack struct {
	Issuer *Issuer

	// FulcioURL is Fulcio's HTTP base URL; FulcioChain its CA chain
	// (intermediates then root, as its trust bundle lists them).
	FulcioURL   string
	FulcioChain []*x509.Certificate
	// TSAURL is the timestamp endpoint (…/api/v1/timestamp); TSAChain the
	// TSA's certificate chain, leaf first.
	TSAURL   string
	TSAChain []*x509.Certificate
	// RekorURL is the Rekor v2 base URL; RekorKey its Ed25519 log key and
	// RekorOrigin the checkpoint origin (its hostname, 127.0.0.1).
	RekorURL    string
	RekorKey    ed25519.PublicKey
	RekorOrigin string

	Dir string

	fulcio, tsa, rekor *proc
}

// StopFulcio kills Fulcio and waits for it (a Fulcio outage).
func (s *Stack) StopFulcio() { s.fulcio.stop() }

// StopTSA kills the timestamp authority and waits for it.
func (s *Stack) StopTSA() { s.tsa.stop() }

// Options choose the servers to start.
type Options struct {
	Fulcio, TSA, Rekor bool
	// FulcioCA, when set, makes Fulcio issue from this CA (fileca)
	// instead of an ephemeral one: for a CA that expires soon.
	FulcioCA *CA
}

// CA is a certificate authority Fulcio signs with (fileca): a
// self-signed root and its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// BinDir is where `make sigstack` puts the servers: $SIGNER_AGENT_SIGSTACK_BIN,
// else bin/ at the top of the repository.
func BinDir() string {
	if d := os.Getenv("SIGNER_AGENT_SIGSTACK_BIN"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(file))), "bin")
}

// Binary returns the path of a server binary, failing the test when it is
// missing.
func Binary(t TB, name string) string {
	t.Helper()
	p := filepath.Join(BinDir(), name)
	if fi, err := os.Stat(p); err != nil || fi.IsDir() {
		t.Fatalf("sigstore test server %s missing (run `make sigstack`): %v", p, err)
	}
	return p
}

// Start starts the chosen servers (and, for Fulcio, an OIDC issuer) and
// waits until each answers.
func Start(t TB, o Options) *Stack {
	t.Helper()
	s := &Stack{Dir: t.TempDir()}
	// The TSA first: it must own :2112 (Fulcio's metrics listener gives
	// up quietly when the port is taken).
	if o.TSA {
		s.startTSA(t)
	}
	if o.Fulcio {
		s.Issuer = NewIssuer(t)
		s.startFulcio(t, o.FulcioCA)
	}
	if o.Rekor {
		s.startRekor(t)
	}
	return s
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc runs a server until the test ends; its output goes to a log file
// that is printed when the server does not come up.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (s *Stack) run(t TB, name, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(s.Dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = s.Dir
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop kills the server and waits for it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitHTTP polls url until it answers with status want, the server exits,
// or a minute passes.
func (p *proc) waitHTTP(t TB, url string, want int) []byte {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last string
	for {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, p.tail())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == want {
				return body
			}
			last = fmt.Sprintf("HTTP %d", resp.StatusCode)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after a minute (last: %s)\n%s", p.name, url, last, p.tail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Stack) startTSA(t TB) {
	t.Helper()
	port := FreePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	p := s.run(t, "timestamp-server", Binary(t, "timestamp-server"), "serve",
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--timestamp-signer", "memory", "--disable-ntp-monitoring")
	body := p.waitHTTP(t, base+"/api/v1/timestamp/certchain", http.StatusOK)
	chain, err := parseCerts(body)
	if err != nil || len(chain) == 0 {
		t.Fatalf("timestamp authority certificate chain: %v\n%s", err, body)
	}
	s.tsa = p
	s.TSAURL = base + "/api/v1/timestamp"
	s.TSAChain = chain
}

func (s *Stack) startFulcio(t TB, ca *CA) {
	t.Helper()
	cfg := map[string]any{"OIDCIssuers": map[string]any{
		s.Issuer.URL: map[string]any{"IssuerURL": s.Issuer.URL, "ClientID": Audience, "Type": "email"},
	}}
	cfgPath := filepath.Join(s.Dir, "fulcio-config.json")
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	port, grpcPort, metricsPort := FreePort(t), FreePort(t), FreePort(t)
	for grpcPort == port {
		grpcPort = FreePort(t)
	}
	args := []string{"serve",
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--grpc-host", "127.0.0.1", "--grpc-port", strconv.Itoa(grpcPort),
		"--metrics-port", strconv.Itoa(metricsPort),
		// The legacy gRPC server's abstract Unix socket has a fixed name
		// by default: a second Fulcio in the namespace would fail to bind.
		"--legacy-unix-domain-socket", "@signer-agent-fulcio-" + strconv.Itoa(port),
		"--config-path", cfgPath, "--ct-log-url", "", "--log_type", "prod",
	}
	if ca == nil {
		args = append(args, "--ca", "ephemeralca")
	} else {
		certPath, keyPath := filepath.Join(s.Dir, "fulcio-ca.pem"), filepath.Join(s.Dir, "fulcio-ca.key")
		der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o600)
		os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
		args = append(args, "--ca", "fileca", "--fileca-cert", certPath, "--fileca-key", keyPath,
			"--fileca-key-passwd", "", "--fileca-watch=false")
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	p := s.run(t, "fulcio", Binary(t, "fulcio"), args...)
	body := p.waitHTTP(t, base+"/api/v2/trustBundle", http.StatusOK)
	var tb struct {
		Chains []struct {
			Certificates []string `json:"certificates"`
		} `json:"chains"`
	}
	if err := json.Unmarshal(body, &tb); err != nil || len(tb.Chains) == 0 {
		t.Fatalf("Fulcio trust bundle: %v\n%s", err, body)
	}
	for _, c := range tb.Chains[0].Certificates {
		certs, err := parseCerts([]byte(c))
		if err != nil {
			t.Fatal(err)
		}
		s.FulcioChain = append(s.FulcioChain, certs...)
	}
	s.FulcioURL = base
	s.fulcio = p
}

func (s *Stack) startRekor(t TB) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(s.Dir, "rekor-signer.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	storage := filepath.Join(s.Dir, "rekor-tiles")
	if err := os.MkdirAll(storage, 0o700); err != nil {
		t.Fatal(err)
	}
	port, grpcPort, metricsPort := FreePort(t), FreePort(t), FreePort(t)
	p := s.run(t, "rekor-server", Binary(t, "rekor-server-posix"), "serve",
		"--storage-dir", storage, "--signer-filepath", keyPath, "--hostname", "127.0.0.1",
		"--http-address", "127.0.0.1", "--http-port", strconv.Itoa(port),
		"--grpc-address", "127.0.0.1", "--grpc-port", strconv.Itoa(grpcPort),
		"--http-metrics-port", strconv.Itoa(metricsPort),
		"--checkpoint-interval", "500ms", "--batch-max-age", "50ms",
	)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	p.waitHTTP(t, base+"/healthz", http.StatusOK)
	s.RekorURL = base
	s.rekor = p
	s.RekorKey = pub
	s.RekorOrigin = "127.0.0.1"
}

// parseCerts reads every CERTIFICATE block of PEM data.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := bytes.TrimSpace(data); len(rest) > 0; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no certificate in %q", strings.TrimSpace(string(data[:min(len(data), 80)])))
	}
	return out, nil
}

// PEM encodes certificates as concatenated PEM blocks.
func PEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

// PublicKeyPEM encodes a public key as a PKIX PEM block.
func PublicKeyPEM(t TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
