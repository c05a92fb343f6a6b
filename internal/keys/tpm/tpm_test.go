package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
)

const (
	testAuth  = "correct horse battery staple"
	wrongAuth = "tr0ub4dor&3-wrong"
	// testHandle is where tests persist keys.
	testHandle = 0x81000010
)

// writeFile writes a file into a test directory and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// createKey makes a key on the simulator and returns its URI and public key.
func createKey(t testing.TB, opts CreateOptions) (string, *ecdsa.PublicKey) {
	t.Helper()
	uri, pub, err := CreateKey(context.Background(), opts)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("CreateKey returned a %T public key, want ECDSA P-256", pub)
	}
	return uri, ec
}

// openKey opens uri and closes the key when the test ends.
func openKey(t testing.TB, uri string) *Key {
	t.Helper()
	k, err := Open(context.Background(), uri)
	if err != nil {
		t.Fatalf("Open(%s): %v", uri, err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k.(*Key)
}

// signVerify signs msg with k through keys.SignMessage and verifies the
// signature with crypto/ecdsa against pub.
func signVerify(t *testing.T, k keys.Key, pub *ecdsa.PublicKey, msg string) {
	t.Helper()
	sig, err := keys.SignMessage(context.Background(), k, []byte(msg))
	if err != nil {
		t.Fatalf("SignMessage: %v", err)
	}
	d := sha256.Sum256([]byte(msg))
	if !ecdsa.VerifyASN1(pub, d[:], sig) {
		t.Fatal("signature does not verify with crypto/ecdsa.VerifyASN1")
	}
}

func TestConformance(t *testing.T) {
	sim := startSimulator(t)
	dir := t.TempDir()
	authFile := writeFile(t, dir, "auth", testAuth+"\n")
	opener := keys.Opener{Backends: map[string]keys.OpenFunc{"tpm": Open}}
	for _, c := range []struct {
		name string
		opts CreateOptions
	}{
		{"blob", CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(dir, "plain.tss2")}},
		{"blob with auth", CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(dir, "auth.tss2"), AuthFile: authFile}},
		{"persistent", CreateOptions{Sim: sim.addr(), PersistentHandle: testHandle}},
		{"persistent with auth", CreateOptions{Sim: sim.addr(), PersistentHandle: testHandle + 1, AuthFile: authFile}},
	} {
		t.Run(c.name, func(t *testing.T) {
			uri, pub := createKey(t, c.opts)
			keystest.Run(t, func(t *testing.T) keys.Key {
				k, err := opener.Open(context.Background(), uri)
				if err != nil {
					t.Fatalf("Open(%s): %v", uri, err)
				}
				if !pub.Equal(k.Public()) {
					t.Fatal("the opened key's public key is not the one CreateKey returned")
				}
				return k
			})
		})
	}
}

func TestCreateKeyURI(t *testing.T) {
	sim := startSimulator(t)
	dir := t.TempDir()
	authFile := writeFile(t, dir, "auth", testAuth)
	blob := filepath.Join(dir, "key.tss2")
	uri, _ := createKey(t, CreateOptions{Sim: sim.addr(), BlobPath: blob, AuthFile: authFile})
	if want := "tpm:" + blob + "?sim=" + sim.addr() + "&auth-file=" + authFile; uri != want {
		t.Errorf("blob key URI %s, want %s", uri, want)
	}
	info, err := os.Stat(blob)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key blob mode %v, want 0600", info.Mode().Perm())
	}
	data, _ := os.ReadFile(blob)
	if !strings.HasPrefix(string(data), "-----BEGIN TSS2 PRIVATE KEY-----\n") {
		t.Errorf("key blob is not a TSS2 PEM key:\n%s", data)
	}
	uri, _ = createKey(t, CreateOptions{Sim: sim.addr(), PersistentHandle: testHandle})
	if want := "tpm:handle=0x81000010?sim=" + sim.addr(); uri != want {
		t.Errorf("persistent key URI %s, want %s", uri, want)
	}

	for _, c := range []struct {
		name   string
		opts   CreateOptions
		wantIn string
	}{
		{"blob exists", CreateOptions{Sim: sim.addr(), BlobPath: blob}, "already exists"},
		{"handle in use", CreateOptions{Sim: sim.addr(), PersistentHandle: testHandle}, "in use"},
		{"neither blob nor handle", CreateOptions{Sim: sim.addr()}, "one of the two"},
		{"both blob and handle", CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(dir, "x"), PersistentHandle: testHandle + 5}, "one of the two"},
		{"relative blob", CreateOptions{Sim: sim.addr(), BlobPath: "key.tss2"}, "not absolute"},
		{"not a persistent handle", CreateOptions{Sim: sim.addr(), PersistentHandle: 0x80000001}, "not a persistent handle"},
		{"device and sim", CreateOptions{Device: "/dev/tpmrm0", Sim: sim.addr(), BlobPath: filepath.Join(dir, "y")}, "not both"},
		{"bad sim", CreateOptions{Sim: "localhost", BlobPath: filepath.Join(dir, "y")}, "host:port"},
		{"empty auth file", CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(dir, "y"), AuthFile: writeFile(t, dir, "empty", "\n")}, "empty"},
		{"long auth value", CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(dir, "y"), AuthFile: writeFile(t, dir, "long", strings.Repeat("a", 33))}, "at most 32"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := CreateKey(context.Background(), c.opts)
			if err == nil || !strings.Contains(err.Error(), c.wantIn) {
				t.Errorf("CreateKey: got %v, want an error containing %q", err, c.wantIn)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "y")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed CreateKey left a file behind: %v", err)
	}
}

// TestAgentRestart: a blob key opened again (by a restarted agent, after a
// TPM reset) is the same key.
func TestAgentRestart(t *testing.T) {
	sim := startSimulator(t)
	dir := t.TempDir()
	uri, pub := createKey(t, CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(dir, "key.tss2"), AuthFile: writeFile(t, dir, "auth", testAuth)})
	k := openKey(t, uri)
	signVerify(t, k, pub, "before the restart")
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	sim.restart() // a reboot: the SRK is created again from the owner seed
	k2 := openKey(t, uri)
	if !pub.Equal(k2.Public()) {
		t.Fatal("the key opened again has another public key")
	}
	signVerify(t, k2, pub, "after the restart")
}

func TestPersistentHandle(t *testing.T) {
	sim := startSimulator(t)
	dir := t.TempDir()
	uri, pub := createKey(t, CreateOptions{Sim: sim.addr(), PersistentHandle: testHandle, AuthFile: writeFile(t, dir, "auth", testAuth)})
	k := openKey(t, uri)
	signVerify(t, k, pub, "persistent")
	_ = k.Close()
	sim.restart() // persistent keys live in NV
	k = openKey(t, uri)
	if !pub.Equal(k.Public()) {
		t.Fatal("the persistent key has another public key after a restart")
	}
	signVerify(t, k, pub, "persistent, after a restart")

	_, err := Open(context.Background(), "tpm:handle=0x81000020?sim="+sim.addr())
	if err == nil || !strings.Contains(err.Error(), "no key at persistent handle 0x81000020") {
		t.Errorf("Open of a free handle: got %v, want an error saying so", err)
	}
	if errors.Is(err, keys.ErrBackendUnavailable) {
		t.Errorf("a free handle is not a backend failure: %v", err)
	}
	// (TestPersistentSRK: a storage key at a handle is no signing key.)
}

func TestWrongAuth(t *testing.T) {
	sim := startSimulator(t)
	// Generous dictionary-attack settings, so that this test never locks
	// the simulator out (the default allows 3 failures).
	sim.setDictionaryAttack(32, 600, 600)
	dir := t.TempDir()
	right := writeFile(t, dir, "right", testAuth+"\n")
	wrong := writeFile(t, dir, "wrong", wrongAuth+"\n")
	blob := filepath.Join(dir, "key.tss2")
	uri, pub := createKey(t, CreateOptions{Sim: sim.addr(), BlobPath: blob, AuthFile: right})
	persistentURI, _ := createKey(t, CreateOptions{Sim: sim.addr(), PersistentHandle: testHandle, AuthFile: right})

	for _, c := range []struct{ name, uri string }{
		{"blob", "tpm:" + blob + "?sim=" + sim.addr() + "&auth-file=" + wrong},
		{"persistent", strings.Replace(persistentURI, right, wrong, 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := sim.lockoutCounter()
			k := openKey(t, c.uri)
			msg := []byte("wrong auth")
			// Concurrent signatures: the TPM sees one failed authorization.
			errs := make(chan error, 8)
			for range cap(errs) {
				go func() {
					_, err := keys.SignMessage(context.Background(), k, msg)
					errs <- err
				}()
			}
			var err error
			for range cap(errs) {
				if err = <-errs; !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("SignMessage with the wrong auth value: got %v, want ErrAuthFailed", err)
				}
			}
			if errors.Is(err, keys.ErrBackendUnavailable) {
				t.Errorf("a wrong auth value is not a backend failure: %v", err)
			}
			for _, secret := range []string{testAuth, wrongAuth} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains an auth value", err)
				}
			}
			if got := sim.lockoutCounter(); got != before+1 {
				t.Errorf("lockout counter %d after a failed authorization, want %d: the key is not DA-protected", got, before+1)
			}
			// The key does not try again: the counter stays.
			if _, err := keys.SignMessage(context.Background(), k, msg); !errors.Is(err, ErrAuthFailed) {
				t.Errorf("second SignMessage: got %v, want ErrAuthFailed", err)
			}
			if got := sim.lockoutCounter(); got != before+1 {
				t.Errorf("lockout counter %d after a second attempt, want %d (no second try)", got, before+1)
			}
		})
	}
	// The right auth value still works.
	signVerify(t, openKey(t, uri), pub, "right auth")

	for _, c := range []struct{ name, uri, wantIn string }{
		{"auth key without auth-file", "tpm:" + blob + "?sim=" + sim.addr(), "give auth-file"},
		{"missing auth file", "tpm:" + blob + "?sim=" + sim.addr() + "&auth-file=" + dir + "/nope", "auth file"},
		{"empty auth file", "tpm:" + blob + "?sim=" + sim.addr() + "&auth-file=" + writeFile(t, dir, "empty", ""), "empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(context.Background(), c.uri)
			if err == nil || !strings.Contains(err.Error(), c.wantIn) {
				t.Errorf("Open: got %v, want an error containing %q", err, c.wantIn)
			}
		})
	}
	noAuthURI, _ := createKey(t, CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(dir, "noauth.tss2")})
	if _, err := Open(context.Background(), noAuthURI+"&auth-file="+right); err == nil || !strings.Contains(err.Error(), "no auth value") {
		t.Errorf("Open of an emptyAuth key with an auth-file: got %v", err)
	}
}

// TestSimulatorKilled: when the TPM goes away, signing fails with
// ErrBackendUnavailable; when it comes back, the same keys sign again.
func TestSimulatorKilled(t *testing.T) {
	sim := startSimulator(t)
	dir := t.TempDir()
	authFile := writeFile(t, dir, "auth", testAuth)
	blobURI, blobPub := createKey(t, CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(dir, "key.tss2"), AuthFile: authFile})
	handleURI, handlePub := createKey(t, CreateOptions{Sim: sim.addr(), PersistentHandle: testHandle})
	blobKey, handleKey := openKey(t, blobURI), openKey(t, handleURI)
	signVerify(t, blobKey, blobPub, "before")
	signVerify(t, handleKey, handlePub, "before")

	sim.kill()
	for i := range 2 { // a broken connection, then a refused one
		for _, k := range []*Key{blobKey, handleKey} {
			start := time.Now()
			_, err := keys.SignMessage(context.Background(), k, []byte("while down"))
			if !errors.Is(err, keys.ErrBackendUnavailable) {
				t.Fatalf("attempt %d: SignMessage with the TPM gone: got %v, want ErrBackendUnavailable", i, err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("attempt %d: failing took %v", i, d)
			}
		}
	}

	sim.restart()
	signVerify(t, blobKey, blobPub, "after")
	signVerify(t, handleKey, handlePub, "after")
	if !blobPub.Equal(blobKey.Public()) || !handlePub.Equal(handleKey.Public()) {
		t.Error("a public key changed")
	}
}

func TestOpenUnavailable(t *testing.T) {
	dir := t.TempDir()
	sim := startSimulator(t)
	uri, _ := createKey(t, CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(dir, "key.tss2")})
	sim.kill()
	_, err := Open(context.Background(), uri)
	if !errors.Is(err, keys.ErrBackendUnavailable) {
		t.Errorf("Open with the TPM down: got %v, want ErrBackendUnavailable", err)
	}
	// A blob made on another TPM does not load: a configuration error.
	other := startSimulator(t)
	_, err = Open(context.Background(), strings.Replace(uri, sim.addr(), other.addr(), 1))
	if err == nil || errors.Is(err, keys.ErrBackendUnavailable) || !strings.Contains(err.Error(), "made on this TPM") {
		t.Errorf("Open of another TPM's blob: got %v", err)
	}
}

// stuckTPM holds every command until release is closed, like a TPM busy
// with a long operation.
type stuckTPM struct {
	transport.TPMCloser
	release chan struct{}
}

func (s stuckTPM) Send(cmd []byte) ([]byte, error) {
	<-s.release
	return s.TPMCloser.Send(cmd)
}

func TestDeadline(t *testing.T) {
	sim := startSimulator(t)
	uri, pub := createKey(t, CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(t.TempDir(), "key.tss2")})
	k := openKey(t, uri)
	digest := sha256.Sum256([]byte("deadline"))

	t.Run("queue busy", func(t *testing.T) {
		// Another operation holds the TPM.
		started, release := make(chan struct{}), make(chan struct{})
		go k.dev.run(context.Background(), noConnect, func() error {
			close(started)
			<-release
			return nil
		})
		<-started
		// Returning at all shows it did not wait for the queue: the
		// operation ahead holds the TPM until release is closed.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := k.SignContext(ctx, digest[:], crypto.SHA256)
		close(release)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SignContext while the queue is busy: got %v, want context.DeadlineExceeded", err)
		}
		signVerify(t, k, pub, "after the queue freed")
	})

	t.Run("slow TPM", func(t *testing.T) {
		setTPM := func(wrap func(transport.TPMCloser) transport.TPMCloser) {
			t.Helper()
			if err := k.dev.run(context.Background(), once, func() error {
				k.dev.tpm = wrap(k.dev.tpm)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		release := make(chan struct{})
		setTPM(func(t transport.TPMCloser) transport.TPMCloser { return stuckTPM{t, release} })
		defer setTPM(func(t transport.TPMCloser) transport.TPMCloser { return t.(stuckTPM).TPMCloser })
		// The TPM answers nothing until release: returning shows the
		// caller's deadline, not the TPM, ended the wait.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := k.SignContext(ctx, digest[:], crypto.SHA256)
		if !errors.Is(err, context.DeadlineExceeded) {
			close(release)
			t.Fatalf("SignContext on a stuck TPM: got %v, want context.DeadlineExceeded", err)
		}
		// The abandoned signature completes in the background once the TPM
		// answers; the next one queues behind it.
		close(release)
		signVerify(t, k, pub, "slow but in time")
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := k.SignContext(ctx, digest[:], crypto.SHA256); !errors.Is(err, context.Canceled) {
			t.Errorf("SignContext with a cancelled ctx: got %v", err)
		}
	})
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, content, wantIn string }{
		{"garbage", "not a key", "no \"TSS2 PRIVATE KEY\" PEM block"},
		{"other PEM", "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n", "want \"TSS2 PRIVATE KEY\""},
		{"bad ASN.1", "-----BEGIN TSS2 PRIVATE KEY-----\nMAA=\n-----END TSS2 PRIVATE KEY-----\n", "malformed TSS2 key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, c.name, c.content)
			_, err := Open(context.Background(), "tpm:"+p+"?sim=127.0.0.1:1")
			if err == nil || !strings.Contains(err.Error(), c.wantIn) {
				t.Errorf("Open: got %v, want an error containing %q", err, c.wantIn)
			}
		})
	}
	_, err := Open(context.Background(), "tpm:"+dir+"/nope.tss2")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing blob: got %v, want os.ErrNotExist", err)
	}
	if _, err := Open(context.Background(), "tpm:relative.tss2"); err == nil {
		t.Error("Open of a relative path succeeded")
	}
	var k Key
	_ = k.Close() // the zero Key closes
}

// TestRecoversBehindItsBack: the loaded key flushed by someone else (a
// simulator has no resource manager), then the TPM reset under an open
// connection (TPM_RC_INITIALIZE): each time the next signature reloads the
// key, or starts the TPM up again, and succeeds.
func TestRecoversBehindItsBack(t *testing.T) {
	sim := startSimulator(t)
	uri, pub := createKey(t, CreateOptions{Sim: sim.addr(), BlobPath: filepath.Join(t.TempDir(), "key.tss2")})
	k := openKey(t, uri)
	signVerify(t, k, pub, "first")

	if err := k.dev.run(context.Background(), noConnect, func() error {
		_, err := tpm2.FlushContext{FlushHandle: k.loaded}.Execute(k.dev.tpm)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	signVerify(t, k, pub, "after a flush behind its back")

	if err := initSim(ctrlAddress(sim.addr())); err != nil {
		t.Fatal(err)
	}
	signVerify(t, k, pub, "after a TPM reset")
}
