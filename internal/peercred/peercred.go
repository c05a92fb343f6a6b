// Package peercred reads the credentials of the process at the other end of
// a Unix socket (SO_PEERCRED) so the agent can decide who may call it.
package peercred

import (
	"github.com/stellaops/signer-agent/proto"

	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Cred is the peer's identity (see proto.PeerCred).
type Cred = proto.PeerCred

// ErrNotUnix is returned for connections that carry no peer credentials
// (TCP, pipes in tests).
var ErrNotUnix = errors.New("connection is not a Unix socket")

// FromConn reads SO_PEERCRED from a Unix socket connection.
func FromConn(c net.Conn) (*Cred, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return nil, ErrNotUnix
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	var ucred *unix.Ucred
	var groups []uint32
	var serr error
	if err := raw.Control(func(fd uintptr) {
		ucred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if serr == nil {
			groups, serr = peerGroups(int(fd))
		}
	}); err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("peer credentials: %w", serr)
	}
	cr := &Cred{UID: ucred.Uid, GID: ucred.Gid, PID: ucred.Pid, Groups: groups}
	if ucred.Pid > 0 {
		if exe, err := os.Readlink("/proc/" + strconv.Itoa(int(ucred.Pid)) + "/exe"); err == nil {
			cr.Exe = exe
		}
	}
	return cr, nil
}

type ctxKey struct{}

// WithCred attaches a peer's credentials to a context (http.Server.ConnContext).
func WithCred(ctx context.Context, c *Cred) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the credentials attached by WithCred, or nil.
func FromContext(ctx context.Context) *Cred {
	c, _ := ctx.Value(ctxKey{}).(*Cred)
	return c
}

// peerGroups reads SO_PEERGROUPS: the supplementary groups of the peer at
// connect time (Linux ≥ 4.13), as an array of gid_t.
func peerGroups(fd int) ([]uint32, error) {
	n := 32
	for {
		buf := make([]uint32, n)
		size := uint32(n * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch errno {
		case 0:
			return buf[:size/4], nil
		case unix.ERANGE:
			if int(size/4) <= n || n >= 1<<16 {
				return nil, fmt.Errorf("SO_PEERGROUPS: %w", errno)
			}
			n = int(size / 4)
		default:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", errno)
		}
	}
}
