package proto

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAuditQueryRoundTrip(t *testing.T) {
	q := AuditQuery{
		Since: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC),
		Tenant: "t", Decision: DecisionDeny, Code: "quota_exhausted", AfterSeq: 42, Limit: 7,
	}
	got, err := ParseAuditQuery(q.Values())
	if err != nil {
		t.Fatal(err)
	}
	if got != q {
		t.Fatalf("round trip: %+v != %+v", got, q)
	}
	def, err := ParseAuditQuery(url.Values{})
	if err != nil || def.Limit != DefaultAuditQueryLimit {
		t.Fatalf("defaults: %+v %v", def, err)
	}
}

func TestParseAuditQueryRefuses(t *testing.T) {
	for name, v := range map[string]url.Values{
		"since not RFC 3339": {"since": {"yesterday"}},
		"until not RFC 3339": {"until": {"2026-12-01"}},
		"limit zero":         {"limit": {"0"}},
		"limit too large":    {"limit": {"100001"}},
		"limit not a number": {"limit": {"ten"}},
		"afterSeq negative":  {"afterSeq": {"-1"}},
	} {
		_, err := ParseAuditQuery(v)
		if !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
		key := strings.SplitN(name, " ", 2)[0]
		if err != nil && !strings.Contains(err.Error(), key) {
			t.Errorf("%s: error %q does not name %s", name, err, key)
		}
	}
}

func TestSecret(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{`"1234"`, "1234", true},
		{`"a\"b\\c\/d\n"`, "a\"b\\c/d\n", true},
		{`"\u00e9\ud83d\ude00"`, "é😀", true},
		{`"\ud800"`, "", false},
		{`"\udc00x"`, "", false},
		{`"\x"`, "", false},
		{`"tab	in"`, "", false},
		{`1234`, "", false},
		{`null`, "", true},
	} {
		var u UnlockRequest
		err := DecodeStrict([]byte(`{"pin":`+tc.in+`}`), &u)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.in, err)
			continue
		}
		if tc.ok && string(u.PIN) != tc.want {
			t.Errorf("%s: %q, want %q", tc.in, u.PIN, tc.want)
		}
		b := u.PIN
		u.Zero()
		for _, c := range b {
			if c != 0 {
				t.Errorf("%s: not wiped", tc.in)
			}
		}
	}
	out, _ := json.Marshal(UnlockRequest{PIN: Secret("1234")})
	if strings.Contains(string(out), "1234") || Secret("1234").String() != "[redacted]" {
		t.Fatalf("a Secret reveals itself: %s", out)
	}
}
