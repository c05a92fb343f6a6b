package quota

import (
	"strings"
	"testing"
)

// FuzzParseAddr: the quota.redis.addr parser never panics; what it accepts
// is a Unix socket with an absolute path or a host:port with a valid port.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:6379", "redis.internal:6379", "[::1]:6379", "unix:///run/redis/redis.sock",
		"unix://run/redis.sock", "unix:///", "redis", ":6379", "host:0", "host:65536", "host:-1",
		"unix:///a?b", "rediss://host:6379", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		network, a, err := ParseAddr(addr)
		if err != nil {
			return
		}
		switch network {
		case "unix":
			if !strings.HasPrefix(a, "/") || "unix://"+a != addr {
				t.Fatalf("%q → unix %q", addr, a)
			}
		case "tcp":
			if a != addr || checkHostPort(a) != nil {
				t.Fatalf("%q → tcp %q", addr, a)
			}
		default:
			t.Fatalf("%q → network %q", addr, network)
		}
	})
}

// FuzzTenantKeys: tenant ids map one-to-one onto key names, and every key
// of a tenant carries the same hash tag (one Cluster slot) with no brace
// inside it.
func FuzzTenantKeys(f *testing.F) {
	for _, s := range [][2]string{
		{"tenant-a", "tenant-b"}, {"a}:day", "a"}, {"{x}", "%7Bx%7D"}, {"é", "%C3%A9"}, {"", "%"},
		{"a b", "a%20b"}, {"x\x00", "x"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, kb := keysFor("p:", a), keysFor("p:", b)
		if (ka == kb) != (a == b) {
			t.Fatalf("tenants %q and %q: keys %v and %v", a, b, ka, kb)
		}
		for _, k := range []string{ka.rate, ka.day, ka.leases} {
			lb, rb := strings.IndexByte(k, '{'), strings.IndexByte(k, '}')
			if lb < 0 || rb < lb || k[lb+1:rb] != escapeTenant(a) || strings.Count(k, "{") != 1 || strings.Count(k, "}") != 1 {
				t.Fatalf("key %q of tenant %q: bad hash tag", k, a)
			}
		}
	})
}

// FuzzReserveReply: a reply the script could never give (wrong shape,
// negative or unknown values) is an error, never a ticket.
func FuzzReserveReply(f *testing.F) {
	f.Add(int64(1), int64(3), int64(0), int64(0), int64(20000), int64(7), 6)
	f.Add(int64(0), int64(0), int64(86400000), int64(1), int64(20000), int64(40), 6)
	f.Add(int64(-1), int64(0), int64(0), int64(9), int64(0), int64(0), 5)
	f.Fuzz(func(t *testing.T, g, rem, retry, reason, day, detail int64, n int) {
		n = n % 10
		vals := []any{g, rem, retry, reason, day, detail}
		if n >= 0 && n < len(vals) {
			vals = vals[:n]
		}
		r, err := parseReserveReply(vals)
		if err != nil {
			return
		}
		if len(vals) != 6 || r.granted < 0 || r.retry < 0 || r.reason < reasonNone || r.reason > reasonConcurrency {
			t.Fatalf("accepted %v as %+v", vals, r)
		}
	})
}
