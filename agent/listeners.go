package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/stellaops/signer-agent/internal/config"
)

// File descriptor names of the socket units (FileDescriptorName=).
const (
	FDNameAPI   = "api"
	FDNameAdmin = "admin"
	// FDNameTCP is an optional activated TCP socket for the mTLS listener.
	FDNameTCP = "tcp"
)

// ErrAgentRunning is returned when another agent answers on a socket path.
var ErrAgentRunning = errors.New("another signer-agent is answering on the socket")

// OpenListeners returns the api and admin listeners: from systemd socket
// activation when LISTEN_FDS names them, otherwise bound on the configured
// paths. Activation with unnamed or unexpected descriptors is refused rather
// than guessed at.
func OpenListeners(cfg *config.Config) (Listeners, bool, error) {
	named, err := activation.ListenersWithNames()
	if err != nil {
		return Listeners{}, false, fmt.Errorf("socket activation: %w", err)
	}
	if len(named) > 0 {
		ls := Listeners{}
		for name, list := range named {
			if len(list) != 1 {
				return Listeners{}, true, fmt.Errorf("socket activation: %d descriptors named %q, want 1", len(list), name)
			}
			switch name {
			case FDNameAPI:
				ls.API = list[0]
			case FDNameAdmin:
				ls.Admin = list[0]
			case FDNameTCP:
				ls.TCP = list[0]
			default:
				return Listeners{}, true, fmt.Errorf("socket activation: unexpected descriptor name %q (want %q, %q or %q)", name, FDNameAPI, FDNameAdmin, FDNameTCP)
			}
		}
		if ls.API == nil {
			return Listeners{}, true, fmt.Errorf("socket activation: no descriptor named %q", FDNameAPI)
		}
		if ls.TCP == nil && cfg.Listen.TCP.Enabled() {
			if ls.TCP, err = net.Listen("tcp", cfg.Listen.TCP.Address); err != nil {
				return Listeners{}, true, fmt.Errorf("listen.tcp: %w", err)
			}
		}
		return ls, true, nil
	}
	api, err := BindUnix(cfg.Listen.API)
	if err != nil {
		return Listeners{}, false, err
	}
	admin, err := BindUnix(cfg.Listen.Admin)
	if err != nil {
		_ = api.Close()
		return Listeners{}, false, err
	}
	ls := Listeners{API: api, Admin: admin}
	if cfg.Listen.TCP.Enabled() {
		if ls.TCP, err = net.Listen("tcp", cfg.Listen.TCP.Address); err != nil {
			_ = api.Close()
			_ = admin.Close()
			return Listeners{}, false, fmt.Errorf("listen.tcp: %w", err)
		}
	}
	return ls, false, nil
}

// BindUnix listens on a Unix socket path. If the path exists and an agent
// answers there, it refuses; a stale socket file is removed only after a
// dial fails. The socket gets the configured mode and group.
func BindUnix(s config.Socket) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(s.Path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; refusing to replace it", s.Path)
		}
		c, err := net.DialTimeout("unix", s.Path, time.Second)
		if err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("%s: %w", s.Path, ErrAgentRunning)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("probe %s: %w", s.Path, err)
		}
		if err := os.Remove(s.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove stale socket %s: %w", s.Path, err)
		}
	}
	// Bind under a tight umask so the socket is never briefly world-usable.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", s.Path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", s.Path, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(true)
	if s.Group != "" {
		gid, err := lookupGroup(s.Group)
		if err != nil {
			_ = l.Close()
			return nil, err
		}
		if err := os.Chown(s.Path, -1, gid); err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("chown %s: %w", s.Path, err)
		}
	}
	if err := os.Chmod(s.Path, s.FileMode()); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("chmod %s: %w", s.Path, err)
	}
	return l, nil
}

func lookupGroup(g string) (int, error) {
	if n, err := strconv.Atoi(g); err == nil {
		return n, nil
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("socket group %q: %w", g, err)
	}
	return strconv.Atoi(gr.Gid)
}
