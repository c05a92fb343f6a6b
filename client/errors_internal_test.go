package client

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "30", 30 * time.Second},
		{"spaces", " 5 ", 5 * time.Second},
		{"zero", "0", 0},
		{"negative", "-3", 0},
		{"huge", "99999999999999999", time.Duration(int64(1<<63-1)/int64(time.Second)) * time.Second},
		{"date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"past date", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"fraction", "1.5", 0},
		{"garbage", "later", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSocket(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "unix:///run/signer-agent/api.sock", want: "/run/signer-agent/api.sock"},
		{in: "UNIX:///run/a.sock", want: "/run/a.sock"},
		{in: "unix:/run/a.sock", want: "/run/a.sock"},
		{in: "unix://localhost/run/a.sock", want: "/run/a.sock"},
		{in: "unix:///run/with%20space.sock", want: "/run/with space.sock"},
		{in: "/run/a.sock", want: "/run/a.sock"},
		{in: "rel/a.sock", want: "rel/a.sock"},
		{in: "@abstract", want: "@abstract"},
		{in: "unix://host/run/a.sock", wantErr: true},
		{in: "unix:rel.sock", wantErr: true},
		{in: "unix://", wantErr: true},
		{in: "unix:///a.sock#frag", wantErr: true},
		{in: "unix://user@/a.sock", wantErr: true},
		{in: "http://signer-agent/", wantErr: true},
		{in: "unix:///%zz", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseSocket(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSocket(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
