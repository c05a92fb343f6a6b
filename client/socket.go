package client

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/stellaops/signer-agent/proto"
)

// resolveSocket returns the filesystem path of the api socket: from socket
// (the Client.Socket field) when set, else from SIGNER_AGENT_SOCKET, else
// proto.DefaultSocket. An invalid value is an error, never a silent fallback
// to the default: a typo must not send requests to another agent.
func resolveSocket(socket string) (string, error) {
	return resolveSocketFrom(socket, "Client.Socket", proto.EnvSocket, proto.DefaultSocket)
}

// resolveSocketFrom resolves a socket from a field (named field in errors),
// else the environment variable env, else def.
func resolveSocketFrom(socket, field, env, def string) (string, error) {
	if socket != "" {
		p, err := parseSocket(socket)
		if err != nil {
			return "", fmt.Errorf("signer-agent: %s: %w", field, err)
		}
		return p, nil
	}
	if v := os.Getenv(env); v != "" {
		p, err := parseSocket(v)
		if err != nil {
			return "", fmt.Errorf("signer-agent: %s: %w", env, err)
		}
		return p, nil
	}
	return def, nil
}

// parseSocket accepts a unix URI ("unix:///run/signer-agent/api.sock",
// "unix:/run/…", "unix://localhost/run/…") or a plain path. Plain paths are
// used as given, so relative paths and Linux abstract sockets ("@name") work
// for programs that set Client.Socket explicitly.
func parseSocket(s string) (string, error) {
	if len(s) >= 5 && strings.EqualFold(s[:5], "unix:") {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("invalid unix URI %q: %w", s, err)
		}
		switch {
		case u.Opaque != "":
			return "", fmt.Errorf("invalid unix URI %q: want unix:///absolute/path", s)
		case u.Host != "" && u.Host != "localhost":
			return "", fmt.Errorf("invalid unix URI %q: host %q not allowed (want unix:///absolute/path)", s, u.Host)
		case u.User != nil, u.RawQuery != "", u.Fragment != "":
			return "", fmt.Errorf("invalid unix URI %q: user info, query and fragment are not allowed", s)
		case !strings.HasPrefix(u.Path, "/"):
			return "", fmt.Errorf("invalid unix URI %q: path must be absolute", s)
		}
		return u.Path, nil
	}
	if strings.Contains(s, "://") {
		return "", fmt.Errorf("unsupported socket address %q: want unix:///absolute/path or a path", s)
	}
	return s, nil
}
