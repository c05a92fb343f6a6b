package config

import (
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/stellaops/signer-agent/proto"
)

// Listen names the two Unix sockets the agent binds when it is not socket
// activated.
type Listen struct {
	API   Socket `yaml:"api,omitempty"`
	Admin Socket `yaml:"admin,omitempty"`
	// TCP is the optional mTLS listener for callers on other hosts (off
	// when Address is empty). Tokens used on it must be bound to the
	// client certificate (cnf.x5t#S256); DPoP does not apply there.
	TCP TCP `yaml:"tcp,omitempty"`
}

// TCP configures the mTLS listener.
type TCP struct {
	Address      string `yaml:"address,omitempty"`      // host:port; empty: off
	CertFile     string `yaml:"certFile,omitempty"`     // server certificate chain (PEM)
	KeyFile      string `yaml:"keyFile,omitempty"`      // server private key (PEM)
	ClientCAFile string `yaml:"clientCAFile,omitempty"` // roots client certificates must chain to
}

// Enabled reports whether the TCP listener is configured.
func (t TCP) Enabled() bool { return t.Address != "" }

// Socket is a Unix socket path with its file mode and group.
type Socket struct {
	Path  string `yaml:"path,omitempty"`
	Mode  string `yaml:"mode,omitempty"`  // octal, e.g. "0660"
	Group string `yaml:"group,omitempty"` // group name or numeric gid; empty: unchanged
}

// FileMode parses Mode.
func (s Socket) FileMode() os.FileMode {
	m, _ := strconv.ParseUint(s.Mode, 8, 32)
	return os.FileMode(m)
}

// maxSocketPath is the longest socket path accepted (the smallest
// sun_path among the systems the agent runs on, less its NUL).
const maxSocketPath = 104

func (l *Listen) applyDefaults(base string) {
	if l.API.Path == "" {
		l.API.Path = proto.DefaultSocket
	}
	l.API.Path = resolve(base, l.API.Path)
	if l.API.Mode == "" {
		l.API.Mode = "0660"
	}
	if l.Admin.Path == "" {
		l.Admin.Path = proto.DefaultAdminSocket
	}
	l.Admin.Path = resolve(base, l.Admin.Path)
	if l.Admin.Mode == "" {
		l.Admin.Mode = "0600"
	}
	l.TCP.CertFile = resolve(base, l.TCP.CertFile)
	l.TCP.KeyFile = resolve(base, l.TCP.KeyFile)
	l.TCP.ClientCAFile = resolve(base, l.TCP.ClientCAFile)
}

func (l *Listen) validate(p *problems) {
	l.API.validate(p, "listen.api")
	l.Admin.validate(p, "listen.admin")
	if t := l.TCP; t.Enabled() {
		if _, _, err := net.SplitHostPort(t.Address); err != nil {
			p.add("listen.tcp.address", "want host:port")
		}
		if t.CertFile == "" || t.KeyFile == "" || t.ClientCAFile == "" {
			p.add("listen.tcp", "certFile, keyFile and clientCAFile are required (mTLS only)")
		}
	}
	if l.API.Path == l.Admin.Path {
		p.add("listen", "api and admin sockets must differ")
	}
}

func (s *Socket) validate(p *problems, key string) {
	if !filepath.IsAbs(s.Path) {
		p.add(key+".path", "must be absolute")
	}
	if len(s.Path) > maxSocketPath {
		p.add(key+".path", "longer than %d bytes (Unix socket limit)", maxSocketPath)
	}
	m, err := strconv.ParseUint(s.Mode, 8, 32)
	if err != nil || m > 0o777 {
		p.add(key+".mode", "want an octal file mode such as 0660")
	} else if m&0o007 != 0 {
		p.add(key+".mode", "must not grant access to others")
	}
}
