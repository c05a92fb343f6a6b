package quota

import (
	"strings"
)

// DefaultKeyPrefix is quota.redis.keyPrefix when none is configured.
const DefaultKeyPrefix = "signer:quota:"

// tenantKeys are a tenant's three keys in the shared store. All carry the
// same hash tag, {<escaped tenant>}, so in Redis Cluster they live in one
// slot and one script can touch them together:
//
//	<prefix>{<tenant>}:rate    string: the GCRA theoretical arrival time, µs since the epoch
//	<prefix>{<tenant>}:day     hash: d = UTC day number (days since the epoch), n = artifacts counted that day
//	<prefix>{<tenant>}:leases  sorted set: lease ids of requests in flight, scored by expiry (ms)
type tenantKeys struct {
	rate, day, leases string
}

func keysFor(prefix, tenant string) tenantKeys {
	base := prefix + "{" + escapeTenant(tenant) + "}:"
	return tenantKeys{rate: base + "rate", day: base + "day", leases: base + "leases"}
}

// escapeTenant makes a tenant id safe inside a key and its hash tag: bytes
// other than ASCII letters, digits and . _ - are written %XX (upper-case
// hex). The mapping is one-to-one, so two tenants never share a key, and
// the result never holds '{' or '}', so the hash tag is the whole id.
func escapeTenant(tenant string) string {
	safe := true
	for i := 0; i < len(tenant); i++ {
		if !keySafe(tenant[i]) {
			safe = false
			break
		}
	}
	if safe {
		return tenant
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(tenant) * 3)
	for i := 0; i < len(tenant); i++ {
		c := tenant[i]
		if keySafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func keySafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}
