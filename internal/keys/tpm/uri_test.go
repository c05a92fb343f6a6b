package tpm

import (
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	for _, c := range []struct {
		name string
		uri  string
		want keyURI
	}{
		{"blob", "tpm:/etc/signer/key.tss2", keyURI{blobPath: "/etc/signer/key.tss2", device: DefaultDevice}},
		{"blob, empty authority", "tpm:///etc/signer/key.tss2", keyURI{blobPath: "/etc/signer/key.tss2", device: DefaultDevice}},
		{"blob, unclean path", "tpm:/etc/signer/../signer/./key.tss2", keyURI{blobPath: "/etc/signer/key.tss2", device: DefaultDevice}},
		{"blob, escaped", "tpm:/keys/a%20b%3Fc.tss2", keyURI{blobPath: "/keys/a b?c.tss2", device: DefaultDevice}},
		{"upper-case scheme", "TPM:/k.tss2", keyURI{blobPath: "/k.tss2", device: DefaultDevice}},
		{"handle", "tpm:handle=0x81000010", keyURI{handle: 0x81000010, device: DefaultDevice}},
		{"handle, upper-case hex", "tpm:handle=0x8100ABCD", keyURI{handle: 0x8100abcd, device: DefaultDevice}},
		{"handle, last", "tpm:handle=0x81ffffff", keyURI{handle: 0x81ffffff, device: DefaultDevice}},
		{"device", "tpm:/k.tss2?device=/dev/tpm0", keyURI{blobPath: "/k.tss2", device: "/dev/tpm0"}},
		{"default device", "tpm:/k.tss2?device=/dev/tpmrm0", keyURI{blobPath: "/k.tss2", device: DefaultDevice}},
		{"sim", "tpm:handle=0x81000010?sim=127.0.0.1:2321", keyURI{handle: 0x81000010, sim: "127.0.0.1:2321"}},
		{"sim, host name, zero-padded port", "tpm:/k.tss2?sim=localhost:02321", keyURI{blobPath: "/k.tss2", sim: "localhost:2321"}},
		{"sim, IPv6", "tpm:/k.tss2?sim=[::1]:2321", keyURI{blobPath: "/k.tss2", sim: "[::1]:2321"}},
		{"sim, highest port", "tpm:/k.tss2?sim=127.0.0.1:65534", keyURI{blobPath: "/k.tss2", sim: "127.0.0.1:65534"}},
		{"auth file", "tpm:/k.tss2?auth-file=/etc/signer/auth", keyURI{blobPath: "/k.tss2", device: DefaultDevice, authFile: "/etc/signer/auth"}},
		{"all", "tpm:/k.tss2?auth-file=/a&sim=127.0.0.1:2321", keyURI{blobPath: "/k.tss2", sim: "127.0.0.1:2321", authFile: "/a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseURI(c.uri)
			if err != nil {
				t.Fatalf("parseURI(%q): %v", c.uri, err)
			}
			if got != c.want {
				t.Fatalf("parseURI(%q) = %+v, want %+v", c.uri, got, c.want)
			}
			back, err := parseURI(got.String())
			if err != nil || back != got {
				t.Errorf("round trip through %q: %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestParseURIErrors(t *testing.T) {
	const secret = "s3cret-auth-value"
	for _, c := range []struct {
		name   string
		uri    string
		wantIn string
	}{
		{"other scheme", "file:/k.pem", "scheme"},
		{"malformed", "tpm:/k%zz", "malformed"},
		{"empty", "tpm:", "no key file or handle"},
		{"relative path", "tpm:keys/k.tss2", "relative path"},
		{"dot-relative path", "tpm:./k.tss2", "relative path"},
		{"host", "tpm://host/k.tss2", "host"},
		{"user", "tpm://user@/k.tss2", "host"},
		{"fragment", "tpm:/k.tss2#x", "fragment"},
		{"empty fragment", "tpm:/k.tss2#", "fragment"},
		{"handle without 0x", "tpm:handle=81000010", "0x prefix"},
		{"handle, decimal", "tpm:handle=2164260880", "0x prefix"},
		{"handle, empty", "tpm:handle=0x", "hexadecimal digits"},
		{"handle, too long", "tpm:handle=0x081000010", "hexadecimal digits"},
		{"handle, not hex", "tpm:handle=0x8100001g", "hexadecimal digits"},
		{"handle, sign", "tpm:handle=0x+8100001", "hexadecimal digits"},
		{"handle, transient", "tpm:handle=0x80000001", "not a persistent handle"},
		{"handle, owner hierarchy", "tpm:handle=0x40000001", "not a persistent handle"},
		{"handle, NV index", "tpm:handle=0x01000001", "not a persistent handle"},
		{"handle, short", "tpm:handle=0x1", "not a persistent handle"},
		{"handle with path", "tpm:handle=0x81000010/x", "hexadecimal digits"},
		{"handle, other key", "tpm:key=0x81000010", "unknown key form"},
		{"unknown parameter", "tpm:/k.tss2?pin=" + secret, "unknown query parameter"},
		{"auth value in URI", "tpm:/k.tss2?auth=" + secret, "unknown query parameter"},
		{"repeated parameter", "tpm:/k.tss2?device=/dev/tpm0&device=/dev/tpm0", "2 times"},
		{"semicolon", "tpm:/k.tss2?device=/dev/tpm0;sim=x", "malformed query"},
		{"empty device", "tpm:/k.tss2?device=", "empty"},
		{"relative device", "tpm:/k.tss2?device=tpm0", "absolute"},
		{"device and sim", "tpm:/k.tss2?device=/dev/tpm0&sim=127.0.0.1:2321", "not both"},
		{"sim without port", "tpm:/k.tss2?sim=127.0.0.1", "host:port"},
		{"sim without host", "tpm:/k.tss2?sim=:2321", "host"},
		{"sim port 0", "tpm:/k.tss2?sim=127.0.0.1:0", "1 to 65534"},
		{"sim port 65535", "tpm:/k.tss2?sim=127.0.0.1:65535", "1 to 65534"},
		{"sim port too big", "tpm:/k.tss2?sim=127.0.0.1:70000", "1 to 65534"},
		{"sim port name", "tpm:/k.tss2?sim=127.0.0.1:tpm", "1 to 65534"},
		{"sim port sign", "tpm:/k.tss2?sim=127.0.0.1:+2321", "1 to 65534"},
		{"relative auth file", "tpm:/k.tss2?auth-file=auth", "absolute"},
		{"empty auth file", "tpm:/k.tss2?auth-file=", "empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseURI(c.uri)
			if err == nil {
				t.Fatalf("parseURI(%q) succeeded", c.uri)
			}
			if !strings.Contains(err.Error(), c.wantIn) {
				t.Errorf("parseURI(%q): %v; want it to contain %q", c.uri, err, c.wantIn)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q repeats a query value", err)
			}
		})
	}
}

// FuzzParseURI: the parser never panics, and what it accepts it formats as
// a URI it reads back the same.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"tpm:/etc/signer/key.tss2",
		"tpm:///k.tss2?device=/dev/tpm0&auth-file=/a",
		"tpm:handle=0x81000010?sim=127.0.0.1:2321",
		"tpm:/a%20b?sim=[::1]:2321&auth-file=/x%26y",
		"tpm:handle=0x",
		"tpm://h/k",
		"tpm:/k#f",
		"tpm:/k?sim=a:65535",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		k, err := parseURI(uri)
		if err != nil {
			return
		}
		if (k.blobPath == "") == (k.handle == 0) || (k.device == "") == (k.sim == "") {
			t.Fatalf("parseURI(%q) = %+v: want exactly one key and one TPM", uri, k)
		}
		s := k.String()
		back, err := parseURI(s)
		if err != nil {
			t.Fatalf("parseURI(%q) = %+v formats as %q, which does not parse: %v", uri, k, s, err)
		}
		if back != k {
			t.Fatalf("parseURI(%q) = %+v formats as %q, which parses as %+v", uri, k, s, back)
		}
	})
}
