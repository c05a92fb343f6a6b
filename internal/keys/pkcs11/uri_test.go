package pkcs11_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
)

const (
	secretPIN  = "s3cr3t-P1N-4711"
	numericPIN = "804711"
)

func uintPtr(v uint) *uint { return &v }

func TestParseURI(t *testing.T) {
	for _, c := range []struct {
		name string
		uri  string
		want pkcs11.URI
		pin  bool // has a pin-value
	}{
		{"full",
			"pkcs11:token=signing;object=release-2025;id=%01%02?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/signer-agent/hsm.pin&max-sessions=4",
			pkcs11.URI{Token: "signing", Object: "release-2025", ID: []byte{1, 2},
				ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINSource: "file:/etc/signer-agent/hsm.pin", MaxSessions: 4}, false},
		{"scheme in capitals", "PKCS11:token=a;id=%ff", pkcs11.URI{Token: "a", ID: []byte{0xff}}, false},
		{"percent-decoding", "pkcs11:token=My%20Token;object=a%3Bb%2Fc%25",
			pkcs11.URI{Token: "My Token", Object: "a;b/c%"}, false},
		{"UTF-8 label", "pkcs11:object=cl%C3%A9", pkcs11.URI{Object: "clé"}, false},
		{"plus is a plus", "pkcs11:object=a+b", pkcs11.URI{Object: "a+b"}, false},
		{"equals sign in a value", "pkcs11:object=a=b", pkcs11.URI{Object: "a=b"}, false},
		{"slot-id in the path", "pkcs11:slot-id=744845061;object=k", pkcs11.URI{SlotID: uintPtr(744845061), Object: "k"}, false},
		{"slot-id in the query", "pkcs11:object=k?slot-id=0", pkcs11.URI{SlotID: uintPtr(0), Object: "k"}, false},
		{"token selectors", "pkcs11:manufacturer=SoftHSM%20project;model=SoftHSM%20v2;serial=7ff6a02eac656f05;type=private",
			pkcs11.URI{Manufacturer: "SoftHSM project", Model: "SoftHSM v2", Serial: "7ff6a02eac656f05", Type: "private"}, false},
		{"pin-value", "pkcs11:token=a?pin-value=" + secretPIN, pkcs11.URI{Token: "a"}, true},
		{"pin-source path", "pkcs11:token=a?pin-source=/run/pin", pkcs11.URI{Token: "a", PINSource: "/run/pin"}, false},
		{"pin-source file URL", "pkcs11:token=a?pin-source=file:///run/pin", pkcs11.URI{Token: "a", PINSource: "file:///run/pin"}, false},
		{"query only", "pkcs11:?module-path=/lib.so", pkcs11.URI{ModulePath: "/lib.so"}, false},
		{"empty", "pkcs11:", pkcs11.URI{}, false},
		{"empty query", "pkcs11:token=a?", pkcs11.URI{Token: "a"}, false},
		{"query characters", "pkcs11:token=a?module-path=/opt/a|b?c.so", pkcs11.URI{Token: "a", ModulePath: "/opt/a|b?c.so"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := pkcs11.ParseURI(c.uri)
			if err != nil {
				t.Fatal(err)
			}
			if u.HasPINValue() != c.pin {
				t.Errorf("HasPINValue() = %v, want %v", u.HasPINValue(), c.pin)
			}
			got := *u
			if c.pin { // the PIN is unexported: compare it through Encode
				if !strings.Contains(u.Encode(), "pin-value="+secretPIN) {
					t.Errorf("Encode() = %s: PIN lost", u.Encode())
				}
				got, _ = stripPIN(t, u)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %#v\nwant %#v", got, c.want)
			}
			again, err := pkcs11.ParseURI(u.Encode())
			if err != nil {
				t.Fatalf("Encode() = %s does not parse: %v", u.Encode(), err)
			}
			if !reflect.DeepEqual(again, u) {
				t.Errorf("Encode() = %s parses to %#v, want %#v", u.Encode(), again, u)
			}
			if strings.Contains(u.String(), secretPIN) || strings.Contains(fmtAll(u), secretPIN) {
				t.Errorf("String() = %s shows the PIN", u.String())
			}
		})
	}
}

// stripPIN returns u without its pin-value, by re-parsing its redacted
// form less the pin-value attribute.
func stripPIN(t *testing.T, u *pkcs11.URI) (pkcs11.URI, bool) {
	t.Helper()
	s := strings.NewReplacer("&pin-value=REDACTED", "", "?pin-value=REDACTED&", "?", "?pin-value=REDACTED", "").Replace(u.String())
	v, err := pkcs11.ParseURI(s)
	if err != nil {
		t.Fatal(err)
	}
	return *v, true
}

func TestEncode(t *testing.T) {
	u := pkcs11.URI{Token: "a b;c", Object: "x/y?z", ID: []byte("AB"), SlotID: uintPtr(3),
		ModulePath: "/opt/my lib.so", PINSource: "file:/run/p&q", MaxSessions: 2}
	const want = "pkcs11:token=a%20b%3Bc;slot-id=3;object=x%2Fy%3Fz;id=%41%42?module-path=/opt/my%20lib.so&pin-source=file:/run/p%26q&max-sessions=2"
	if got := u.Encode(); got != want {
		t.Errorf("Encode() =\n%s\nwant\n%s", got, want)
	}
	p, err := pkcs11.ParseURI("pkcs11:token=a?pin-value=" + secretPIN)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != "pkcs11:token=a?pin-value=REDACTED" {
		t.Errorf("String() = %s", got)
	}
}

func TestParseURIErrors(t *testing.T) {
	for _, c := range []struct {
		name, uri, wantIn string
	}{
		{"other scheme", "file:/key.pem", "want a pkcs11: URI"},
		{"no scheme", "token=a", "want a pkcs11: URI"},
		{"fragment", "pkcs11:token=a#frag", "fragments"},
		{"unknown path attribute", "pkcs11:token=a;colour=blue", `unknown path attribute "colour"`},
		{"unknown query attribute", "pkcs11:token=a?colour=blue", `unknown query attribute "colour"`},
		{"vendor attribute", "pkcs11:x-vendor=1", `unknown path attribute "x-vendor"`},
		{"module-name", "pkcs11:token=a?module-name=softhsm2", "module-path"},
		{"library attribute", "pkcs11:library-manufacturer=x", "unknown path attribute"},
		{"attribute case", "pkcs11:Token=a", "unknown path attribute (unnamed)"},
		{"path attribute in query", "pkcs11:?token=a", "token belongs in the path"},
		{"query attribute in path", "pkcs11:module-path=%2Flib.so", "module-path belongs in the query"},
		{"repeated", "pkcs11:token=a;token=b", "token given twice"},
		{"slot-id twice", "pkcs11:slot-id=1?slot-id=1", "slot-id given twice"},
		{"no equals", "pkcs11:token", "a path attribute has no '='"},
		{"empty attribute", "pkcs11:token=a;;object=b", "empty path attribute"},
		{"trailing semicolon", "pkcs11:token=a;", "empty path attribute"},
		{"empty query attribute", "pkcs11:token=a?&module-path=/x", "empty query attribute"},
		{"empty value", "pkcs11:token=", "token has an empty value"},
		{"empty id", "pkcs11:id=", "id has an empty value"},
		{"truncated escape", "pkcs11:id=%0", "truncated percent-encoding"},
		{"bad escape", "pkcs11:id=%zz", "malformed percent-encoding"},
		{"space", "pkcs11:object=a b", "must be percent-encoded"},
		{"slash in path", "pkcs11:object=a/b", `'/' must be percent-encoded`},
		{"slash in token", "pkcs11:object=a%3Fb;token=x/y", `'/' must be percent-encoded`},
		{"question mark ends the path", "pkcs11:object=a?b", "a query attribute has no '='"},
		{"ampersand in query value", "pkcs11:?pin-source=/a&b", "a query attribute has no '='"},
		{"non-ASCII", "pkcs11:object=clé", "non-ASCII"},
		{"control character", "pkcs11:object=a\x01", "control"},
		{"invalid UTF-8", "pkcs11:object=%C3", "not valid UTF-8"},
		{"NUL", "pkcs11:object=a%00", "NUL"},
		{"token label too long", "pkcs11:token=" + strings.Repeat("t", 33), "at most 32"},
		{"serial too long", "pkcs11:serial=" + strings.Repeat("1", 17), "at most 16"},
		{"trailing space in label", "pkcs11:token=a%20", "ends in a space"},
		{"type public", "pkcs11:type=public", "type must be private"},
		{"slot-id not a number", "pkcs11:slot-id=one", "slot-id: not a decimal number"},
		{"slot-id negative", "pkcs11:slot-id=-1", "not a decimal number"},
		{"slot-id too big", "pkcs11:slot-id=18446744073709551616", "out of range"},
		{"relative module-path", "pkcs11:?module-path=lib/softhsm2.so", "module-path must be an absolute path"},
		{"relative pin-source", "pkcs11:?pin-source=file:pin.txt", "pin-source"},
		{"pin-source host", "pkcs11:?pin-source=file://host/pin", "host is not allowed"},
		{"pin-source program", "pkcs11:?pin-source=|/bin/cat", "pin-source"},
		{"max-sessions zero", "pkcs11:?max-sessions=0", "max-sessions must be a number from 1 to 256"},
		{"max-sessions too big", "pkcs11:?max-sessions=257", "max-sessions must be a number"},
		{"max-sessions not a number", "pkcs11:?max-sessions=8x", "max-sessions must be a number"},
		{"pin-source and pin-value", "pkcs11:?pin-source=/p&pin-value=" + secretPIN, "not both"},
		// The PIN must not leak from errors about it or near it.
		{"malformed pin-value", "pkcs11:?pin-value=" + secretPIN + "%zz", "pin-value: malformed value"},
		{"pin-value with a space", "pkcs11:?pin-value=" + secretPIN + "%20x x", "pin-value: malformed value"},
		{"pin-value twice", "pkcs11:?pin-value=" + secretPIN + "&pin-value=" + secretPIN, "pin-value given twice"},
		{"PIN as an attribute name", "pkcs11:?" + secretPIN + "=1", "unknown query attribute (unnamed)"},
		{"PIN without a name", "pkcs11:token=a;" + secretPIN, "has no '='"},
		{"numeric PIN without a name", "pkcs11:token=a?module-path=/x&" + numericPIN, "has no '='"},
		{"numeric PIN as a name", "pkcs11:token=a?" + numericPIN + "=1", "unknown query attribute (unnamed)"},
		{"pin-value with NUL", "pkcs11:?pin-value=" + secretPIN + "%00", "pin-value contains a NUL byte"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := pkcs11.ParseURI(c.uri)
			if err == nil {
				t.Fatalf("parsed as %s", u)
			}
			if !errors.Is(err, pkcs11.ErrInvalidURI) {
				t.Errorf("error %q does not wrap ErrInvalidURI", err)
			}
			if !strings.Contains(err.Error(), c.wantIn) {
				t.Errorf("error %q does not mention %q", err, c.wantIn)
			}
			if strings.Contains(err.Error(), secretPIN) || strings.Contains(err.Error(), "P1N") || strings.Contains(err.Error(), numericPIN) {
				t.Errorf("error %q contains the PIN", err)
			}
		})
	}
}

// fmtAll formats u every way a log line might.
func fmtAll(u *pkcs11.URI) string {
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		out = append(out, fmt.Sprintf(verb, u), fmt.Sprintf(verb, *u))
	}
	return strings.Join(out, " ")
}
