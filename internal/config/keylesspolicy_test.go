package config

import (
	"strings"
	"testing"
)

func TestKeylessPolicy(t *testing.T) {
	c, err := Parse([]byte(minimal), "/etc/sa", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Tenant("t").KeylessPolicy(); got != KeylessOff {
		t.Fatalf("default policy %q, want off", got)
	}
	if got := (*Tenant)(nil).KeylessPolicy(); got != KeylessOff {
		t.Fatalf("nil tenant policy %q", got)
	}
	for _, pol := range []string{KeylessOff, KeylessAllowed, KeylessRequired} {
		doc := strings.Replace(minimal, "    defaultKey: k\n", "    defaultKey: k\n    keyless: "+pol+"\n", 1) + keylessOK
		c, err := Parse([]byte(doc), "/etc/sa", "")
		if err != nil {
			t.Fatalf("%s: %v", pol, err)
		}
		if got := c.Tenant("t").KeylessPolicy(); got != pol {
			t.Fatalf("policy %q, want %q", got, pol)
		}
	}
}

func TestKeylessPolicyRejects(t *testing.T) {
	withPolicy := func(pol string) string {
		return strings.Replace(minimal, "    defaultKey: k\n", "    defaultKey: k\n    keyless: "+pol+"\n", 1)
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown policy", withPolicy("sometimes") + keylessOK, "tenants[0].keyless: want off, allowed or required"},
		{"allowed without keyless configured", withPolicy("allowed"), "tenants[0].keyless: \"allowed\" needs keyless signing configured"},
		{"required without keyless configured", withPolicy("required"), "tenants[0].keyless: \"required\" needs keyless signing configured"},
		{"a key named keyless", strings.Replace(minimal, "  - id: k\n", "  - id: keyless\n", 1), `keys[0].id: "keyless" is reserved`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "/etc/sa", "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestKeylessWatchedFiles(t *testing.T) {
	doc := minimal[:len(minimal)-1] + "\n    certificateChainFile: /etc/sa/k.chain.pem\n" + `
keyless:
  fulcioURL: https://fulcio.example
  tsaURL: https://tsa.example/api/v1/timestamp
  identity:
    clientCredentials: {tokenURL: https://authority.example/token, clientID: node-1, clientSecretFile: keyless.secret}
`
	c, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c.applyDefaults("/etc/sa")
	got := strings.Join(c.WatchedFiles(), " ")
	for _, want := range []string{"/etc/sa/k.chain.pem", "/etc/sa/keyless.secret"} {
		if !strings.Contains(got, want) {
			t.Errorf("watched files %s lack %s", got, want)
		}
	}
}
