package quota

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// Environment of the lease-holder subprocess (see TestLeaseOfKilledAgent).
const (
	holderAddr   = "QUOTA_TEST_HOLDER_ADDR"
	holderPrefix = "QUOTA_TEST_HOLDER_PREFIX"
	holderSlots  = "QUOTA_TEST_HOLDER_SLOTS"
	holderTTL    = "QUOTA_TEST_HOLDER_TTL"
)

func TestMain(m *testing.M) {
	// go-redis logs dial failures on its own; the outage tests cause many.
	SetClientLogger(nil)
	if addr := os.Getenv(holderAddr); addr != "" {
		os.Exit(holdLeases(addr))
	}
	os.Exit(m.Run())
}

// holdLeases is the test binary run as an "agent" that takes concurrency
// slots and never gives them back; the test kills it with SIGKILL.
func holdLeases(addr string) int {
	slots, _ := strconv.Atoi(os.Getenv(holderSlots))
	ttl, _ := time.ParseDuration(os.Getenv(holderTTL))
	s, err := OpenRedis(context.Background(), StoreConfig{
		Redis:    RedisConfig{Addr: addr, KeyPrefix: os.Getenv(holderPrefix)},
		LeaseTTL: ttl,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p := Plan{Name: "p", Concurrency: slots}
	for i := 0; i < slots; i++ {
		if _, err := s.AdmitN(context.Background(), "tenant", p, 1, 1); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
	}
	fmt.Println("holding")
	time.Sleep(time.Hour) // until killed
	return 0
}
