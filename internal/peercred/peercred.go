// Package peercred reads the credentials of the process at the other end of
// a Unix socket (SO_PEERCRED) so the agent can decide who may call it.
package peercred

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Cred is a peer's identity as the kernel saw it at connect time.
type Cred struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	PID int32  `json:"pid"`
	// Exe is the peer's executable path, best effort (empty when /proc is
	// hidden or the process has gone).
	Exe string `json:"exe,omitempty"`
}

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
	var serr error
	if err := raw.Control(func(fd uintptr) {
		ucred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("peer credentials: %w", err)
	}
	if serr != nil {
		return nil, fmt.Errorf("peer credentials: %w", serr)
	}
	cr := &Cred{UID: ucred.Uid, GID: ucred.Gid, PID: ucred.Pid}
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
