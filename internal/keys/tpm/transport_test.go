package tpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
)

// response builds a TPM response of n bytes in all (header included).
func response(n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint16(b[0:], 0x8001)
	binary.BigEndian.PutUint32(b[2:], uint32(n))
	for i := 10; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

// scriptedSim accepts one connection, reads one command and answers with
// the given writes (as separate TCP writes), then closes.
func scriptedSim(t *testing.T, writes ...[]byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil {
			return
		}
		for _, w := range writes {
			if _, err := c.Write(w); err != nil {
				return
			}
		}
	}()
	return l.Addr().String()
}

func TestSimTransportFraming(t *testing.T) {
	big := response(6000) // more than the first read's buffer
	cases := []struct {
		name   string
		writes [][]byte
		want   []byte
		err    string
	}{
		{"one write", [][]byte{response(80)}, response(80), ""},
		{"header split", [][]byte{response(80)[:4], response(80)[4:]}, response(80), ""},
		{"body split", [][]byte{response(80)[:10], response(80)[10:50], response(80)[50:]}, response(80), ""},
		{"header only", [][]byte{response(10)}, response(10), ""},
		{"large response", [][]byte{big[:3000], big[3000:]}, big, ""},
		{"size below header", [][]byte{func() []byte { b := response(10); binary.BigEndian.PutUint32(b[2:], 4); return b }()}, nil, "out of range"},
		{"size over limit", [][]byte{func() []byte { b := response(10); binary.BigEndian.PutUint32(b[2:], maxResponse+1); return b }()}, nil, "out of range"},
		{"trailing bytes", [][]byte{append(response(20), 0xff, 0xff)}, nil, "after the 20-byte response"},
		{"closed mid-header", [][]byte{response(80)[:6]}, nil, "connection closed"},
		{"closed mid-body", [][]byte{response(80)[:40]}, nil, "connection closed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := dialSim(scriptedSim(t, c.writes...))
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			got, err := tr.exchange([]byte("command"))
			if c.err != "" {
				var te *transportError
				if err == nil || !strings.Contains(err.Error(), c.err) || !errors.As(err, &te) {
					t.Fatalf("exchange: %v, want a transport error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("response of %d bytes, want %d", len(got), len(c.want))
			}
		})
	}
}
