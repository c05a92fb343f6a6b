package pkcs11_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
)

// FuzzParseURI feeds the parser mutations of real pkcs11: URIs (what
// GenerateKey, ListTokens, p11tool and p11-kit write). It must never
// panic; an error must wrap ErrInvalidURI and never contain the PIN; a
// parsed URI must survive Encode and ParseURI unchanged, and String must
// hide its PIN.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"pkcs11:token=signing;object=release-2025;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/signer-agent/hsm.pin",
		"pkcs11:token=conformance;object=signing-P-256;id=%52%7B%3F%B9%8B%D3%94%A3?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/tmp/x/user.pin&max-sessions=4",
		"pkcs11:token=alpha;serial=1b8ab5f9a1cbd4a3?module-path=/usr/lib/softhsm/libsofthsm2.so",
		"pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=7ff6a02eac656f05;token=tok;id=%63%DA;object=k;type=private",
		"pkcs11:slot-id=744845061;object=k?pin-value=1234",
		"pkcs11:object=k?slot-id=0&module-path=/opt/a|b?c.so",
		"pkcs11:token=My%20Token;object=a%3Bb%2Fc%25+d=e",
		"pkcs11:?pin-source=file:///run/pin&max-sessions=256",
		"pkcs11:",
		"pkcs11:token=a;;object=b",
		"pkcs11:id=%zz",
		"pkcs11:object=cl%C3%A9",
		"PKCS11:token=a#x",
		"file:/key.pem",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkParse(t, s)
		sep := "?"
		if strings.Contains(s, "?") {
			sep = "&"
		}
		checkParse(t, s+sep+"pin-value="+fuzzPIN)
	})
}

const fuzzPIN = "Fz-PIN-93c1"

func checkParse(t *testing.T, s string) {
	u, err := pkcs11.ParseURI(s)
	if err != nil {
		if !errors.Is(err, pkcs11.ErrInvalidURI) {
			t.Fatalf("ParseURI(%q): error %q does not wrap ErrInvalidURI", s, err)
		}
		if strings.Contains(err.Error(), fuzzPIN) {
			t.Fatalf("ParseURI(%q): error %q contains the PIN", s, err)
		}
		return
	}
	enc := u.Encode()
	v, err := pkcs11.ParseURI(enc)
	if err != nil {
		t.Fatalf("ParseURI(%q) = %#v; its encoding %q does not parse: %v", s, u, enc, err)
	}
	if !reflect.DeepEqual(u, v) {
		t.Fatalf("ParseURI(%q) = %#v; encoded as %q it parses to %#v", s, u, enc, v)
	}
	if again := v.Encode(); again != enc {
		t.Fatalf("encoding is not stable: %q, then %q", enc, again)
	}
	if strings.Contains(fmtAll(u), fuzzPIN) {
		t.Fatalf("formatting %q shows the PIN", s)
	}
	if u.HasPINValue() != strings.Contains(u.String(), "pin-value=REDACTED") {
		t.Fatalf("String() = %q does not redact the pin-value", u.String())
	}
}
