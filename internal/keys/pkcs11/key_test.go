//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
)

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name  string
		curve elliptic.Curve
		alg   string
	}{
		{"P-256", elliptic.P256(), keys.AlgECDSAP256},
		{"P-384", elliptic.P384(), keys.AlgECDSAP384},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newSoftHSM(t)
			h.initToken(t, "conformance")
			uri := h.generate(t, "conformance", "signing-"+c.name, c.curve)
			var o pkcs11.Opener
			keystest.Run(t, func(t *testing.T) keys.Key {
				k, err := o.Open(context.Background(), uri)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if alg, _, _ := keys.Algorithm(k.Public()); alg != c.alg {
					t.Errorf("algorithm %q, want %q", alg, c.alg)
				}
				return k
			})
		})
	}
}

// TestKeysOpener opens a pkcs11: key through keys.Opener, the way the
// agent does.
func TestKeysOpener(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "agent")
	uri := h.generate(t, "agent", "k", elliptic.P256())
	ctx := context.Background()

	if _, err := (&keys.Opener{}).Open(ctx, uri); !errors.Is(err, keys.ErrUnsupportedScheme) {
		t.Errorf("keys.Opener without a PKCS#11 backend: got %v, want ErrUnsupportedScheme", err)
	}
	var p pkcs11.Opener
	ko := &keys.Opener{Backends: map[string]keys.OpenFunc{"pkcs11": p.Open}}
	k, err := ko.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	msg := []byte("through keys.Opener")
	sig, err := keys.SignMessage(ctx, k, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystest.Verify(k.Public(), msg, sig); err != nil {
		t.Error(err)
	}
}

// TestOpenErrors opens keys that cannot be: each error must be clear,
// branchable where callers branch, and free of the PIN.
func TestOpenErrors(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "errors")
	uri := h.generate(t, "errors", "k", elliptic.P256())
	// SPEC §8 allows ECDSA P-256/P-384 and Ed25519 signing keys; an RSA
	// key on the token is refused at Open, not at the first signature.
	generateRSA(t, "errors", "rsa")
	dir := t.TempDir()
	notLib := filepath.Join(dir, "not-a-module.so")
	writeFile(t, notLib, "\x7fELF? no")
	const wrongPIN = "9999-wrong-pin"
	wrongFile := h.pinFile(t, "wrong.pin", wrongPIN)
	emptyFile := filepath.Join(dir, "empty.pin")
	writeFile(t, emptyFile, "\n")
	twoLines := filepath.Join(dir, "two.pin")
	writeFile(t, twoLines, userPIN+"\n"+userPIN+"\n")
	crlf := filepath.Join(dir, "crlf.pin")
	writeFile(t, crlf, userPIN+"\r\n")
	base, _, _ := strings.Cut(uri, "?")
	query := func(q string) string { return base + "?" + q }
	good := "module-path=" + softhsmModule + "&pin-source=file:" + h.pinFile(t, "good.pin", userPIN)

	for _, c := range []struct {
		name   string
		uri    string
		wantIs []error
		wantIn string
	}{
		{"wrong PIN file", query("module-path=" + softhsmModule + "&pin-source=file:" + wrongFile),
			[]error{pkcs11.ErrPINIncorrect}, "CKR_PIN_INCORRECT"},
		{"wrong pin-value", query("module-path=" + softhsmModule + "&pin-value=" + wrongPIN),
			[]error{pkcs11.ErrPINIncorrect}, "PIN"},
		{"missing token", strings.Replace(uri, "token=errors", "token=absent", 1),
			[]error{pkcs11.ErrTokenNotFound, keys.ErrBackendUnavailable}, `token="absent"`},
		{"missing key", "pkcs11:token=errors;object=absent?" + good,
			[]error{pkcs11.ErrKeyNotFound}, "no private key"},
		{"RSA key", "pkcs11:token=errors;object=rsa?" + good,
			[]error{keys.ErrUnsupportedKey}, "not an EC key"},
		{"wrong id", "pkcs11:token=errors;object=k;id=%FF?" + good,
			[]error{pkcs11.ErrKeyNotFound}, "no private key"},
		{"relative module path", query("module-path=lib/softhsm2.so&pin-source=file:" + wrongFile),
			[]error{pkcs11.ErrInvalidURI}, "absolute"},
		{"module path is a directory", query("module-path=/usr/lib&pin-source=file:" + wrongFile),
			nil, "not a regular file"},
		{"module path missing", query("module-path=" + filepath.Join(dir, "nope.so") + "&pin-source=file:" + wrongFile),
			nil, "does not exist"},
		{"module path not a library", query("module-path=" + notLib + "&pin-source=file:" + wrongFile),
			nil, "cannot load"},
		{"PIN file missing", query("module-path=" + softhsmModule + "&pin-source=file:" + filepath.Join(dir, "nope.pin")),
			nil, "no such file"},
		{"PIN file empty", query("module-path=" + softhsmModule + "&pin-source=file:" + emptyFile),
			nil, "empty"},
		{"PIN file two lines", query("module-path=" + softhsmModule + "&pin-source=file:" + twoLines),
			nil, "more than one line"},
		{"no PIN", query("module-path=" + softhsmModule),
			[]error{pkcs11.ErrKeyNotFound}, "PIN"},
		{"no module path", query("pin-source=file:" + wrongFile),
			[]error{pkcs11.ErrInvalidURI}, "module-path"},
		{"no token", "pkcs11:object=k?" + good, []error{pkcs11.ErrInvalidURI}, "token"},
		{"no object", "pkcs11:token=errors?" + good, []error{pkcs11.ErrInvalidURI}, "object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var o pkcs11.Opener
			k, err := o.Open(context.Background(), c.uri)
			if err == nil {
				k.Close()
				t.Fatal("Open succeeded")
			}
			for _, want := range c.wantIs {
				if !errors.Is(err, want) {
					t.Errorf("error %q does not wrap %q", err, want)
				}
			}
			if !strings.Contains(err.Error(), c.wantIn) {
				t.Errorf("error %q does not mention %q", err, c.wantIn)
			}
			for _, pin := range []string{userPIN, wrongPIN, soPIN} {
				if strings.Contains(err.Error(), pin) {
					t.Errorf("error %q contains a PIN", err)
				}
			}
			if moduleInitialized(t) {
				t.Error("a failed Open left the module initialised")
			}
		})
	}

	// A PIN file with CRLF works.
	var o pkcs11.Opener
	k := openKey(t, &o, query("module-path="+softhsmModule+"&pin-source=file:"+crlf))
	if _, err := keys.SignMessage(context.Background(), k, []byte("crlf")); err != nil {
		t.Error(err)
	}
}

// TestTokenLost loses the token under an open key in the ways a process
// can: the module finalised behind the key's back, the token directory
// taken away and brought back, the token replaced by another with a key
// under the same label. Each Sign fails cleanly with
// keys.ErrBackendUnavailable, and signing resumes once the token is back.
func TestTokenLost(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "lost")
	uri := h.generate(t, "lost", "k", elliptic.P256())
	var o pkcs11.Opener
	k := openKey(t, &o, uri)
	ctx := context.Background()
	sign := func() error {
		msg := []byte("token lost")
		sig, err := keys.SignMessage(ctx, k, msg)
		if err == nil {
			if verr := keystest.Verify(k.Public(), msg, sig); verr != nil {
				t.Fatalf("signature after recovery: %v", verr)
			}
		}
		return err
	}
	mustSign := func(when string) {
		t.Helper()
		if err := sign(); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
	}
	mustFail := func(when string, wantIn ...string) {
		t.Helper()
		err := sign()
		t.Logf("%s: %v", when, err)
		if !errors.Is(err, keys.ErrBackendUnavailable) {
			t.Fatalf("%s: got %v, want an error wrapping ErrBackendUnavailable", when, err)
		}
		for _, w := range wantIn {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", when, err, w)
			}
		}
		if strings.Contains(err.Error(), userPIN) {
			t.Errorf("%s: error %q contains the PIN", when, err)
		}
	}
	mustSign("before")

	t.Run("finalised behind the key's back", func(t *testing.T) {
		finalizeBehindBack(t)
		mustFail("after C_Finalize", "CKR_CRYPTOKI_NOT_INITIALIZED", `token="lost"`)
		mustSign("the call after") // re-initialises, logs in, finds the key
		if st := k.Stats(); st.Reconnects != 1 {
			t.Errorf("stats %+v: want one reconnection", st)
		}
	})

	away := h.tokens + ".away"
	t.Run("token directory removed", func(t *testing.T) {
		if err := os.Rename(h.tokens, away); err != nil {
			t.Fatal(err)
		}
		mustFail("token gone")
		// Reconnections fail too, cleanly, from many goroutines at once.
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					if err := sign(); !errors.Is(err, keys.ErrBackendUnavailable) {
						t.Errorf("while the token is gone: got %v, want ErrBackendUnavailable", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		mustFail("reconnect while gone", "reconnect", "token not found")

		// Back again. SoftHSM2 reads its token directory only in
		// C_Initialize, so "plugging the token back in" means a new
		// initialisation: the key finds the module finalised, and the
		// call after reconnects.
		if err := os.Rename(away, h.tokens); err != nil {
			t.Fatal(err)
		}
		finalizeBehindBack(t)
		mustFail("module finalised", "CKR_CRYPTOKI_NOT_INITIALIZED")
		mustSign("token back")
	})

	t.Run("token replaced", func(t *testing.T) {
		// Another token with the same label, and a new key with the same
		// label and id: the key must refuse to sign with it.
		if err := os.Rename(h.tokens, away); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(h.tokens, 0o700); err != nil {
			t.Fatal(err)
		}
		h.initToken(t, "lost")
		finalizeBehindBack(t)
		u, err := pkcs11.ParseURI(uri)
		if err != nil {
			t.Fatal(err)
		}
		sameID := fmt.Sprintf("pkcs11:id=%s?module-path=%s&pin-source=file:%s",
			escapeAll(u.ID), softhsmModule, h.pinFile(t, "user.pin", userPIN))
		if _, _, err := pkcs11.GenerateKey(ctx, sameID, "lost", "k", elliptic.P256()); err != nil {
			t.Fatal(err)
		}
		mustFail("module finalised", "CKR_CRYPTOKI_NOT_INITIALIZED")
		mustFail("another key", "public key changed")
		mustFail("still another key", "public key changed")

		// The real token comes back.
		if err := os.RemoveAll(h.tokens); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(away, h.tokens); err != nil {
			t.Fatal(err)
		}
		finalizeBehindBack(t)
		mustFail("module finalised again", "CKR_CRYPTOKI_NOT_INITIALIZED")
		mustSign("real token back")
	})
}

func escapeAll(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, "%%%02X", c)
	}
	return s.String()
}

// TestWrongPINIsFinal changes the token's PIN under an open key: once a
// reconnection finds the PIN refused, the key stops trying (a wrong PIN
// retried can lock a token).
func TestWrongPINIsFinal(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "pin")
	uri := h.generate(t, "pin", "k", elliptic.P256())
	var o pkcs11.Opener
	k := openKey(t, &o, uri)
	ctx := context.Background()

	// Change the user PIN through the module, then lose the login.
	raw := p11.New(softhsmModule)
	defer raw.Destroy()
	if err := raw.Initialize(); err == nil || !strings.Contains(err.Error(), "ALREADY_INITIALIZED") {
		t.Fatalf("C_Initialize: got %v, want CKR_CRYPTOKI_ALREADY_INITIALIZED", err)
	}
	slots, err := raw.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := raw.OpenSession(slots[0], p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.SetPIN(s, userPIN, "5555-new-pin"); err != nil {
		t.Fatal(err)
	}
	if err := raw.CloseSession(s); err != nil {
		t.Fatal(err)
	}
	finalizeBehindBack(t)

	_, err = keys.SignMessage(ctx, k, []byte("x")) // finds the module finalised
	if !errors.Is(err, keys.ErrBackendUnavailable) {
		t.Fatalf("got %v, want ErrBackendUnavailable", err)
	}
	logins := k.Stats().Logins
	for i := range 3 {
		_, err := keys.SignMessage(ctx, k, []byte("x"))
		if !errors.Is(err, pkcs11.ErrPINIncorrect) || !errors.Is(err, keys.ErrBackendUnavailable) {
			t.Fatalf("sign %d: got %v, want ErrPINIncorrect and ErrBackendUnavailable", i, err)
		}
	}
	if got := k.Stats().Logins - logins; got != 1 {
		t.Errorf("%d logins after the PIN changed, want 1", got)
	}
}

// TestParallelSessions signs from many goroutines: the key must use
// several sessions, never more than max-sessions, and log in once.
func TestParallelSessions(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "parallel")
	uri := h.generate(t, "parallel", "k", elliptic.P256())
	var o pkcs11.Opener
	k := openKey(t, &o, uri+"&max-sessions=4")
	const goroutines, each = 16, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				msg := fmt.Appendf(nil, "%d/%d", g, i)
				sig, err := keys.SignMessage(context.Background(), k, msg)
				if err != nil {
					t.Error(err)
					return
				}
				if err := keystest.Verify(k.Public(), msg, sig); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := k.Stats()
	t.Logf("stats: %+v", st)
	switch {
	case st.Signatures != goroutines*each:
		t.Errorf("%d signatures counted, want %d", st.Signatures, goroutines*each)
	case st.PeakInUse < 2:
		t.Errorf("at most %d session in use at once: signing did not run in parallel", st.PeakInUse)
	case st.PeakInUse > 4 || st.OpenSessions > 4 || st.SessionsOpened > 4:
		t.Errorf("more sessions than max-sessions=4: %+v", st)
	case st.Logins != 1:
		t.Errorf("%d logins, want 1", st.Logins)
	case st.InUse != 0:
		t.Errorf("%d sessions still lent", st.InUse)
	}
}

// TestSignContext: a Sign whose context has ended does not run.
func TestSignContext(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "ctx")
	var o pkcs11.Opener
	k := openKey(t, &o, h.generate(t, "ctx", "k", elliptic.P256()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	digest := make([]byte, 32)
	if _, err := k.SignContext(ctx, digest, crypto.SHA256); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if _, err := k.SignContext(context.Background(), digest, crypto.SHA256); err != nil {
		t.Error(err)
	}
}

// TestModuleRegistry: keys of one Opener share one initialisation of the
// module; the last Close finalises it; Close during signing is safe.
func TestModuleRegistry(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "one")
	h.initToken(t, "two")
	uri1 := h.generate(t, "one", "k", elliptic.P256())
	uri2 := h.generate(t, "two", "k", elliptic.P384())
	if moduleInitialized(t) {
		t.Fatal("module initialised before any key is open")
	}
	var o pkcs11.Opener
	ctx := context.Background()
	k1, err := o.OpenKey(ctx, uri1)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := o.OpenKey(ctx, uri2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.ListTokens(softhsmModule); err != nil { // shares the module too
		t.Fatal(err)
	}
	var wg, signing sync.WaitGroup
	for range 8 {
		wg.Add(1)
		signing.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for {
				_, err := keys.SignMessage(ctx, k1, []byte("until closed"))
				if first {
					signing.Done()
					first = false
				}
				if errors.Is(err, keys.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("sign while closing: %v", err)
					return
				}
			}
		}()
	}
	signing.Wait() // every signer has signed once and goes on: close under load
	if err := k1.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := keys.SignMessage(ctx, k2, []byte("still open")); err != nil {
		t.Fatalf("the other key after the first closed: %v", err)
	}
	if !moduleInitialized(t) {
		t.Fatal("module finalised while a key is still open")
	}
	if err := k2.Close(); err != nil {
		t.Fatal(err)
	}
	if moduleInitialized(t) {
		t.Error("module still initialised after the last key closed")
	}
	if err := k2.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCertificateFallback: a key whose public key object is gone is read
// from its certificate; a certificate of another key is refused.
func TestCertificateFallback(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "cert")
	uri := h.generate(t, "cert", "k", elliptic.P384())
	u, err := pkcs11.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	var o pkcs11.Opener
	ctx := context.Background()
	k := openKey(t, &o, uri)
	want := k.Public().(*ecdsa.PublicKey)
	own := selfSigned(t, want, k)
	other, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	foreign := selfSigned(t, &other.PublicKey, other)

	// Replace the public key object by a certificate (the key's session
	// keeps the token logged in for this raw session).
	raw := p11.New(softhsmModule)
	defer raw.Destroy()
	_ = raw.Initialize() // already initialised by the key
	slots, err := raw.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := raw.OpenSession(slots[0], p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.CloseSession(s)
	find := func(class uint) []p11.ObjectHandle {
		t.Helper()
		if err := raw.FindObjectsInit(s, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, class), p11.NewAttribute(p11.CKA_ID, u.ID)}); err != nil {
			t.Fatal(err)
		}
		hs, _, err := raw.FindObjects(s, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := raw.FindObjectsFinal(s); err != nil {
			t.Fatal(err)
		}
		return hs
	}
	for _, obj := range find(p11.CKO_PUBLIC_KEY) {
		if err := raw.DestroyObject(s, obj); err != nil {
			t.Fatal(err)
		}
	}
	putCert := func(der []byte) {
		t.Helper()
		for _, obj := range find(p11.CKO_CERTIFICATE) {
			if err := raw.DestroyObject(s, obj); err != nil {
				t.Fatal(err)
			}
		}
		_, err := raw.CreateObject(s, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE),
			p11.NewAttribute(p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_ID, u.ID),
			p11.NewAttribute(p11.CKA_LABEL, "k"),
			p11.NewAttribute(p11.CKA_SUBJECT, []byte{0x30, 0}),
			p11.NewAttribute(p11.CKA_VALUE, der),
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	putCert(own)
	k2 := openKey(t, &o, uri)
	if !want.Equal(k2.Public()) {
		t.Error("public key from the certificate differs from the public key object's")
	}
	if _, err := keys.SignMessage(ctx, k2, []byte("cert")); err != nil {
		t.Error(err)
	}

	putCert(foreign)
	if k3, err := o.Open(ctx, uri); err == nil {
		k3.Close()
		t.Error("opened a key whose certificate holds another public key")
	} else if !strings.Contains(err.Error(), "does not match the private key") {
		t.Errorf("error %q does not say the public key does not match", err)
	}
}

func selfSigned(t *testing.T, pub *ecdsa.PublicKey, signer crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(1),
		Subject:            pkix.Name{CommonName: "pkcs11 test"},
		NotBefore:          time.Now().Add(-time.Hour),
		NotAfter:           time.Now().Add(time.Hour),
		SignatureAlgorithm: x509.ECDSAWithSHA256, // what the key signs
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestOpenAfterFinalize: a key opened after the module was finalised
// behind the Opener's back (while another key held it) re-initialises it.
func TestOpenAfterFinalize(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken(t, "again")
	uri := h.generate(t, "again", "k", elliptic.P256())
	var o pkcs11.Opener
	first := openKey(t, &o, uri)
	finalizeBehindBack(t)
	second := openKey(t, &o, uri)
	ctx := context.Background()
	if _, err := keys.SignMessage(ctx, second, []byte("second")); err != nil {
		t.Fatal(err)
	}
	// The first key's sessions died with the finalisation: one failure,
	// then it reconnects.
	if _, err := keys.SignMessage(ctx, first, []byte("first")); !errors.Is(err, keys.ErrBackendUnavailable) {
		t.Fatalf("first key: got %v, want ErrBackendUnavailable", err)
	}
	if _, err := keys.SignMessage(ctx, first, []byte("first")); err != nil {
		t.Fatal(err)
	}
}
