package fido2

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/clocktest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
)

const testRP = "signer-agent.test"

func softAuth(t testing.TB, pin string) *SoftAuthenticator {
	t.Helper()
	a, err := NewSoftAuthenticator()
	if err != nil {
		t.Fatal(err)
	}
	a.PIN = pin
	return a
}

// enroll makes a wrapped key file with a.
func enroll(t testing.TB, a Authenticator, policy Policy, pin string) (string, crypto.PublicKey) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.fido2.json")
	pub, err := Enroll(a, path, testRP, policy, pin)
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	return path, pub
}

func openKey(t testing.TB, path string, opts Options) *Key {
	t.Helper()
	k, err := OpenFile(path, opts)
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func sign(k keys.Key) error {
	_, err := keys.SignMessage(context.Background(), k, []byte("msg"))
	return err
}

func TestConformance(t *testing.T) {
	a := softAuth(t, "1234")
	path, _ := enroll(t, a, DefaultPolicy, "1234")
	keystest.Run(t, func(t *testing.T) keys.Key {
		k, err := OpenFile(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Unlock(a, "1234"); err != nil {
			t.Fatal(err)
		}
		return k
	})
}

func TestEnrollFile(t *testing.T) {
	a := softAuth(t, "1234")
	path, pub := enroll(t, a, DefaultPolicy, "1234")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", st.Mode().Perm())
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 1 || f.RPID != testRP || f.Algorithm != keys.AlgECDSAP256 || f.Policy != DefaultPolicy || len(f.Wraps) != 1 {
		t.Errorf("unexpected file header: %+v", f)
	}
	if f.Wraps[0].Label != a.Name {
		t.Errorf("label %q, want %q", f.Wraps[0].Label, a.Name)
	}
	if bytes.Contains(mustRead(t, path), []byte("PRIVATE")) {
		t.Error("file contains a plaintext private key")
	}
	k := openKey(t, path, Options{})
	if !k.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Error("OpenFile public key differs from Enroll's")
	}
	// Enroll does not overwrite.
	if _, err := Enroll(a, path, testRP, DefaultPolicy, "1234"); err == nil {
		t.Error("Enroll over an existing file succeeded")
	}
	if _, err := Enroll(a, filepath.Join(t.TempDir(), "k"), testRP, DefaultPolicy, ""); !errors.Is(err, ErrPINRequired) {
		t.Errorf("Enroll without the PIN the policy requires: %v", err)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLockedUntilUnlock(t *testing.T) {
	a := softAuth(t, "")
	path, pub := enroll(t, a, Policy{UP: true}, "")
	k := openKey(t, path, Options{})
	if !k.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("Public differs while locked")
	}
	err := sign(k)
	if !errors.Is(err, keys.ErrBackendUnavailable) || !errors.Is(err, ErrLocked) {
		t.Fatalf("Sign while locked: %v, want ErrBackendUnavailable and ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "signerctl keys unlock") {
		t.Errorf("locked error does not say how to unlock: %v", err)
	}
	if err := k.Unlock(a, ""); err != nil {
		t.Fatal(err)
	}
	if err := sign(k); err != nil {
		t.Fatal(err)
	}
	k.Lock()
	if err := sign(k); !errors.Is(err, ErrLocked) {
		t.Fatalf("Sign after Lock: %v", err)
	}
	if err := k.Unlock(a, ""); err != nil {
		t.Fatalf("Unlock after Lock: %v", err)
	}
	if err := sign(k); err != nil {
		t.Fatal(err)
	}
}

// secretsOf returns encodings of the key material an error must never
// carry.
func secretsOf(t *testing.T, k *Key, a *SoftAuthenticator) [][]byte {
	t.Helper()
	if err := k.Unlock(a, a.PIN); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	d := k.priv.D.Bytes()
	k.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	k.Lock()
	var out [][]byte
	for _, b := range [][]byte{der, d, a.secret[:]} {
		out = append(out, b, []byte(base64.StdEncoding.EncodeToString(b)), []byte(strings.ToLower(string(b))))
	}
	return out
}

func TestUnlockFailures(t *testing.T) {
	a := softAuth(t, "1234")
	path, _ := enroll(t, a, DefaultPolicy, "1234")
	k := openKey(t, path, Options{})
	secrets := secretsOf(t, k, a)

	other := softAuth(t, "1234")
	absent := softAuth(t, "1234")
	absent.secret = a.secret // the right device, but nobody touches it
	absent.Present = false
	for _, tc := range []struct {
		name string
		auth Authenticator
		pin  string
		want error
	}{
		{"wrong authenticator", other, "1234", ErrNoCredential},
		{"wrong PIN", a, "0000", ErrPINInvalid},
		{"no PIN", a, "", ErrPINRequired},
		{"user absent", absent, "1234", ErrUserPresence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := k.Unlock(tc.auth, tc.pin)
			if !errors.Is(err, ErrUnlock) || !errors.Is(err, tc.want) {
				t.Fatalf("Unlock: %v, want ErrUnlock and %v", err, tc.want)
			}
			if k.Unlocked() {
				t.Fatal("key unlocked after a failed Unlock")
			}
			if err := sign(k); !errors.Is(err, keys.ErrBackendUnavailable) {
				t.Fatalf("Sign after failed Unlock: %v", err)
			}
			msg := []byte(err.Error())
			for _, s := range secrets {
				if len(s) > 0 && bytes.Contains(msg, s) {
					t.Fatalf("error carries key material: %q", msg)
				}
			}
			if strings.Contains(err.Error(), "1234") || (tc.pin != "" && strings.Contains(err.Error(), tc.pin)) {
				t.Fatalf("error carries a PIN: %v", err)
			}
		})
	}
}

func TestUVWithoutPIN(t *testing.T) {
	// A policy without PIN or UV: the PIN is not needed to unlock.
	a := softAuth(t, "1234")
	path, _ := enroll(t, a, Policy{UP: true}, "1234")
	k := openKey(t, path, Options{})
	if err := k.Unlock(a, ""); err != nil {
		t.Fatalf("Unlock of a UP-only key without PIN: %v", err)
	}
	// UV required but the authenticator has no PIN (the soft one has no
	// other way to verify the user).
	noPIN := softAuth(t, "")
	if _, err := Enroll(noPIN, filepath.Join(t.TempDir(), "k"), testRP, Policy{UP: true, UV: true}, ""); !errors.Is(err, ErrUserVerification) {
		t.Errorf("Enroll requiring UV on an authenticator without PIN: %v", err)
	}
}

func TestSeveralAuthenticators(t *testing.T) {
	primary := softAuth(t, "1234")
	backup := softAuth(t, "1234")
	third := softAuth(t, "9999")
	path, pub := enroll(t, primary, DefaultPolicy, "1234")
	if err := AddAuthenticator(path, primary, backup, "1234"); err != nil {
		t.Fatalf("AddAuthenticator: %v", err)
	}
	if err := AddAuthenticatorPINs(path, backup, "1234", third, "9999"); err != nil {
		t.Fatalf("AddAuthenticatorPINs: %v", err)
	}
	if err := AddAuthenticator(path, softAuth(t, "1234"), third, "9999"); !errors.Is(err, ErrUnlock) {
		t.Errorf("AddAuthenticator with an unknown existing authenticator: %v", err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Wraps) != 3 {
		t.Fatalf("%d wraps, want 3", len(f.Wraps))
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("file mode after AddAuthenticator %v", st.Mode().Perm())
	}
	for _, tc := range []struct {
		name string
		a    *SoftAuthenticator
	}{{"primary", primary}, {"backup", backup}, {"third", third}} {
		k := openKey(t, path, Options{})
		if err := k.Unlock(tc.a, tc.a.PIN); err != nil {
			t.Fatalf("%s: Unlock: %v", tc.name, err)
		}
		if !k.Public().(*ecdsa.PublicKey).Equal(pub) {
			t.Fatalf("%s: public key differs", tc.name)
		}
		msg := []byte("several")
		sig, err := keys.SignMessage(context.Background(), k, msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := keystest.Verify(pub, msg, sig); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
}

func TestTTL(t *testing.T) {
	a := softAuth(t, "")
	path, _ := enroll(t, a, Policy{UP: true}, "")
	clock := clocktest.New(time.Unix(1_700_000_000, 0))
	k := openKey(t, path, Options{TTL: 10 * time.Minute, Now: clock.Now})
	if err := k.Unlock(a, ""); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	d := k.priv.D
	k.mu.Unlock()
	clock.Advance(9 * time.Minute)
	if err := sign(k); err != nil {
		t.Fatalf("Sign before the TTL: %v", err)
	}
	clock.Advance(time.Minute)
	err := sign(k)
	if !errors.Is(err, keys.ErrBackendUnavailable) || !errors.Is(err, ErrLocked) {
		t.Fatalf("Sign after the TTL: %v", err)
	}
	assertZero(t, d)
	// Unlock restarts the TTL.
	if err := k.Unlock(a, ""); err != nil {
		t.Fatal(err)
	}
	if err := sign(k); err != nil {
		t.Fatal(err)
	}
}

func TestTTLTimer(t *testing.T) {
	// With the wall clock, the timer zeroes an idle key.
	a := softAuth(t, "")
	path, _ := enroll(t, a, Policy{UP: true}, "")
	k := openKey(t, path, Options{TTL: 20 * time.Millisecond})
	if err := k.Unlock(a, ""); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	d := k.priv.D
	k.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		k.mu.Lock()
		locked := k.priv == nil
		k.mu.Unlock()
		if locked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key still unlocked long after its TTL")
		}
		time.Sleep(5 * time.Millisecond)
	}
	assertZero(t, d)
}

func TestSignatureBudget(t *testing.T) {
	a := softAuth(t, "")
	path, _ := enroll(t, a, Policy{UP: true}, "")
	k := openKey(t, path, Options{MaxSignatures: 3})
	if err := k.Unlock(a, ""); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	d := k.priv.D
	k.mu.Unlock()
	for i := range 3 {
		if err := sign(k); err != nil {
			t.Fatalf("signature %d: %v", i, err)
		}
	}
	assertZero(t, d)
	if err := sign(k); !errors.Is(err, keys.ErrBackendUnavailable) || !errors.Is(err, ErrLocked) {
		t.Fatalf("Sign past the budget: %v", err)
	}
	// Refused requests do not spend the budget.
	if err := k.Unlock(a, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Sign(nil, make([]byte, 48), crypto.SHA384); err == nil {
		t.Fatal("SHA-384 digest signed")
	}
	for i := range 3 {
		if err := sign(k); err != nil {
			t.Fatalf("after re-unlock, signature %d: %v", i, err)
		}
	}
}

func assertZero(t *testing.T, d interface{ Sign() int }) {
	t.Helper()
	if d.Sign() != 0 {
		t.Fatal("private scalar not zeroed")
	}
}

func TestCloseZeroes(t *testing.T) {
	a := softAuth(t, "")
	path, pub := enroll(t, a, Policy{UP: true}, "")
	k := openKey(t, path, Options{})
	if err := k.Unlock(a, ""); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	d := k.priv.D
	words := d.Bits()
	words = words[:cap(words)]
	k.mu.Unlock()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if d.Sign() != 0 {
		t.Fatal("D not zero after Close")
	}
	for _, w := range words {
		if w != 0 {
			t.Fatal("D's words not overwritten after Close")
		}
	}
	if err := k.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := sign(k); !errors.Is(err, keys.ErrClosed) {
		t.Fatalf("Sign after Close: %v", err)
	}
	if err := k.Unlock(a, ""); !errors.Is(err, keys.ErrClosed) {
		t.Fatalf("Unlock after Close: %v", err)
	}
	if !k.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("Public after Close")
	}
}

func TestTamperedFile(t *testing.T) {
	a := softAuth(t, "1234")
	path, _ := enroll(t, a, DefaultPolicy, "1234")
	orig, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := enroll(t, softAuth(t, ""), Policy{UP: true}, "")
	other, err := ReadFile(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(f *File)
	}{
		{"ciphertext", func(f *File) { f.Wraps[0].Ciphertext[5] ^= 1 }},
		{"nonce", func(f *File) { f.Wraps[0].Nonce[0] ^= 1 }},
		{"salt", func(f *File) { f.Wraps[0].Salt[0] ^= 1 }},
		{"rpId", func(f *File) { f.RPID = "evil.example" }},
		{"publicKey", func(f *File) { f.PublicKey = other.PublicKey }},
		{"policy", func(f *File) { f.Policy.UP = false }},
		{"credentialId", func(f *File) { f.Wraps[0].CredentialID = other.Wraps[0].CredentialID }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := cloneFile(t, orig)
			tc.mutate(f)
			p := filepath.Join(t.TempDir(), "tampered.json")
			if err := writeFile(p, f, false); err != nil {
				t.Fatal(err)
			}
			k := openKey(t, p, Options{})
			if err := k.Unlock(a, "1234"); !errors.Is(err, ErrUnlock) {
				t.Fatalf("Unlock of a file with a modified %s: %v", tc.name, err)
			}
			if err := sign(k); !errors.Is(err, ErrLocked) {
				t.Fatalf("Sign: %v", err)
			}
		})
	}
	// A wrap whose plaintext is another key (correctly encrypted, under
	// the right authenticator) is refused: the file's public key decides.
	t.Run("swapped key", func(t *testing.T) {
		f := cloneFile(t, orig)
		wrongPriv, _ := enroll(t, a, DefaultPolicy, "1234")
		wf, _ := ReadFile(wrongPriv)
		f.Wraps = wf.Wraps // wraps bound to another public key's AAD
		p := filepath.Join(t.TempDir(), "swapped.json")
		if err := writeFile(p, f, false); err != nil {
			t.Fatal(err)
		}
		k := openKey(t, p, Options{})
		if err := k.Unlock(a, "1234"); !errors.Is(err, ErrUnlock) {
			t.Fatalf("Unlock: %v", err)
		}
	})
}

func cloneFile(t *testing.T, f *File) *File {
	t.Helper()
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestParseFileRejects(t *testing.T) {
	a := softAuth(t, "")
	path, _ := enroll(t, a, Policy{UP: true}, "")
	good := mustRead(t, path)
	if _, err := ParseFile(good); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"empty":          "",
		"not json":       "hello",
		"version 2":      strings.Replace(string(good), `"version": 1`, `"version": 2`, 1),
		"unknown field":  strings.Replace(string(good), `"version": 1`, `"version": 1, "extra": true`, 1),
		"other alg":      strings.Replace(string(good), keys.AlgECDSAP256, keys.AlgEd25519, 1),
		"trailing data":  string(good) + "{}",
		"no wraps":       `{"version":1,"rpId":"x","algorithm":"ecdsa-p256-sha256","publicKey":"","policy":{},"wraps":[]}`,
		"empty rpId":     strings.Replace(string(good), `"rpId": "`+testRP+`"`, `"rpId": ""`, 1),
		"bad public key": strings.Replace(string(good), `"publicKey": "`, `"publicKey": "AAAA`, 1),
	} {
		if _, err := ParseFile([]byte(data)); !errors.Is(err, ErrInvalidFile) {
			t.Errorf("%s: ParseFile: %v, want ErrInvalidFile", name, err)
		}
	}
}

func TestOpenFileOptions(t *testing.T) {
	a := softAuth(t, "")
	path, _ := enroll(t, a, Policy{UP: true}, "")
	if _, err := OpenFile(path, Options{TTL: -1}); err == nil {
		t.Error("negative TTL accepted")
	}
	if _, err := OpenFile(path, Options{MaxSignatures: -1}); err == nil {
		t.Error("negative MaxSignatures accepted")
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing"), Options{}); err == nil {
		t.Error("missing file opened")
	}
}

func TestDeviceStubOrReal(t *testing.T) {
	if Available() {
		t.Skip("built with the fido2 tag; see TestRealDevice")
	}
	_, err := OpenDevice("")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "built without the fido2 tag") {
		t.Fatalf("OpenDevice without the fido2 tag: %v", err)
	}
}

func TestSoftAuthenticatorBinding(t *testing.T) {
	a := softAuth(t, "")
	cred, err := a.MakeCredential(testRP, []byte("user"), "", false)
	if err != nil {
		t.Fatal(err)
	}
	salt := bytes.Repeat([]byte{7}, 32)
	s1, err := a.HMACSecret(testRP, cred, salt, "", true, false)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := a.HMACSecret(testRP, cred, salt, "", true, false)
	if !bytes.Equal(s1, s2) || len(s1) != 32 {
		t.Fatal("hmac-secret not deterministic or not 32 bytes")
	}
	if s3, _ := a.HMACSecret(testRP, cred, bytes.Repeat([]byte{8}, 32), "", true, false); bytes.Equal(s1, s3) {
		t.Fatal("hmac-secret ignores the salt")
	}
	if _, err := a.HMACSecret("other.example", cred, salt, "", true, false); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("other rpID: %v", err)
	}
	bad := append([]byte{}, cred...)
	bad[0] ^= 1
	if _, err := a.HMACSecret(testRP, bad, salt, "", true, false); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("modified credential id: %v", err)
	}
}
