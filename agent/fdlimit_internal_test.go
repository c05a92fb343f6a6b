package agent

import (
	"testing"

	"github.com/stellaops/signer-agent/internal/config"
)

func TestFitConnCaps(t *testing.T) {
	def := config.Resources{MaxConnections: 1024, MaxConnectionsPerPeer: 256, AdminMaxConnections: 32}
	cases := []struct {
		name             string
		nofile           uint64
		listeners        int
		wantMax, wantPer int
		lowered          bool
	}{
		{"systemd LimitNOFILE=65536", 65536, 1, 1024, 256, false},
		{"exactly enough", 1024 + 32 + fdReserve, 1, 1024, 256, false},
		{"one short", 1024 + 32 + fdReserve - 1, 1, 1024 - 1, 256, true},
		{"ulimit -n 1024", 1024, 1, 1024 - 32 - fdReserve, 256, true},
		{"ulimit -n 1024 with the TCP listener", 1024, 2, (1024 - 32 - fdReserve) / 2, 256, true},
		{"small: per-peer follows", 512, 1, 512 - 32 - fdReserve, 512 - 32 - fdReserve, true},
		{"tiny: still one connection", 100, 1, 1, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, lowered := fitConnCaps(def, c.nofile, c.listeners)
			if got.MaxConnections != c.wantMax || got.MaxConnectionsPerPeer != c.wantPer || lowered != c.lowered {
				t.Fatalf("got max %d per-peer %d lowered %v; want %d %d %v",
					got.MaxConnections, got.MaxConnectionsPerPeer, lowered, c.wantMax, c.wantPer, c.lowered)
			}
			if got.AdminMaxConnections != def.AdminMaxConnections {
				t.Fatal("the admin socket's cap changed")
			}
			if lowered && uint64(c.listeners*got.MaxConnections+got.AdminMaxConnections+fdReserve) > c.nofile && got.MaxConnections > 1 {
				t.Fatalf("caps %d×%d + %d + %d still exceed nofile %d", c.listeners, got.MaxConnections, got.AdminMaxConnections, fdReserve, c.nofile)
			}
		})
	}
}
