package quota

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// reserveScript checks and reserves, atomically and in one round trip,
// everything one admission takes from a tenant's plan. Time is the
// server's (TIME), so the nodes' clocks do not matter and the UTC day is
// one for the whole fleet.
//
// KEYS: rate, day, leases (tenantKeys, one hash slot).
// ARGV: n, emission interval in µs (0: no rate limit), burst, concurrency
// (0: none), artifacts per day (0: none), lease TTL in ms, lease id.
//
// The daily check comes first, then the rate (GCRA: a reservation of k
// fits when tat + k·interval − burst·interval ≤ now), then concurrency.
// Fewer than n may be granted when the daily allowance or the bucket
// holds fewer; the reply says which limit cut it. Expired leases (a
// crashed agent's) are purged before they are counted. Signatures are
// counted at reservation; a failed sign gives its count back through
// settleScript.
//
// Reply: {granted, remaining (-1: no daily limit), retry after in ms,
// reason (0 none, 1 daily, 2 rate, 3 concurrency), UTC day number,
// detail (daily: count; concurrency: leases in flight)}. granted 0 is a
// refusal.
const reserveLua = `
local n = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local conc = tonumber(ARGV[4])
local perDay = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local t = redis.call('TIME')
local secs = tonumber(t[1])
local now = secs * 1000000 + tonumber(t[2])
local nowms = math.floor(now / 1000)
local day = math.floor(secs / 86400)
local midnight = (day + 1) * 86400000
local d = redis.call('HMGET', KEYS[2], 'd', 'n')
local used = 0
if tonumber(d[1]) == day then used = tonumber(d[2]) or 0 end
local k = n
local reason = 0
local retry = 0
if perDay > 0 then
  local left = perDay - used
  if left <= 0 then return {0, 0, midnight - nowms, 1, day, used} end
  if left < k then k = left; reason = 1; retry = midnight - nowms end
end
local tat = now
if interval > 0 then
  tat = tonumber(redis.call('GET', KEYS[1])) or now
  if tat < now then tat = now end
  local avail = math.floor((now - tat) / interval) + burst
  if avail < 1 then
    return {0, 0, math.ceil((tat + (1 - burst) * interval - now) / 1000), 2, day, 0}
  end
  if avail < k then k = avail; reason = 2; retry = math.ceil(interval / 1000) end
end
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', nowms)
  local inflight = redis.call('ZCARD', KEYS[3])
  if inflight >= conc then return {0, 0, 1000, 3, day, inflight} end
  redis.call('ZADD', KEYS[3], nowms + ttl, ARGV[7])
  redis.call('PEXPIRE', KEYS[3], ttl)
end
if interval > 0 then
  local newtat = tat + k * interval
  redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', math.ceil((newtat - now) / 1000) + 1)
end
if tonumber(d[1]) == day then
  redis.call('HSET', KEYS[2], 'n', used + k)
else
  redis.call('HSET', KEYS[2], 'd', day, 'n', used + k)
  redis.call('PEXPIREAT', KEYS[2], midnight + 3600000)
end
local remaining = -1
if perDay > 0 then remaining = perDay - used - k end
return {k, remaining, retry, reason, day, used + k}
`

// settleLua ends a reservation: it removes the lease (if any) and adds
// delta to the day's count when the server's UTC day is still the one
// given (a refund is negative; the artifacts a node signed from its local
// share during an outage are added back positive). A refund never takes
// the count below zero, and nothing is carried across midnight.
//
// KEYS: day, leases. ARGV: UTC day number, delta, lease id ("" for none).
const settleLua = `
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
local delta = tonumber(ARGV[2])
if delta == 0 then return 0 end
local t = redis.call('TIME')
local day = math.floor(tonumber(t[1]) / 86400)
if tonumber(ARGV[1]) ~= day then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'd')) ~= day then
  if delta < 0 then return 0 end
  redis.call('HSET', KEYS[1], 'd', day, 'n', 0)
  redis.call('PEXPIREAT', KEYS[1], (day + 1) * 86400000 + 3600000)
end
if redis.call('HINCRBY', KEYS[1], 'n', delta) < 0 then redis.call('HSET', KEYS[1], 'n', 0) end
return 1
`

var (
	reserveScript = redis.NewScript(reserveLua)
	settleScript  = redis.NewScript(settleLua)
)

// Reasons in the reserve reply.
const (
	reasonNone = iota
	reasonDaily
	reasonRate
	reasonConcurrency
)

// reserveReply is reserveScript's answer.
type reserveReply struct {
	granted, remaining int64
	retry              time.Duration
	reason             int64
	day                int64
	detail             int64
}

func parseReserveReply(v any) (reserveReply, error) {
	a, ok := v.([]any)
	if !ok || len(a) != 6 {
		return reserveReply{}, fmt.Errorf("quota store: unexpected reservation reply %T", v)
	}
	var n [6]int64
	for i, x := range a {
		xi, ok := x.(int64)
		if !ok {
			return reserveReply{}, fmt.Errorf("quota store: unexpected reservation reply element %T", x)
		}
		n[i] = xi
	}
	r := reserveReply{granted: n[0], remaining: n[1], retry: time.Duration(n[2]) * time.Millisecond, reason: n[3], day: n[4], detail: n[5]}
	if r.granted < 0 || r.reason < reasonNone || r.reason > reasonConcurrency || r.retry < 0 {
		return reserveReply{}, fmt.Errorf("quota store: reservation reply out of range %v", n)
	}
	return r, nil
}
