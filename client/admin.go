package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/stellaops/signer-agent/proto"
)

// maxAuditLine caps one record of an audit stream.
const maxAuditLine = 1 << 20

// Admin talks to a signer-agent's admin socket (SPEC §4): reload, key
// rotation, revocation and unlock, the emergency entitlement bypass, audit
// queries and export. Access is decided by the caller's peer credentials
// (SO_PEERCRED): no token is sent.
//
// The zero value is ready to use: it finds the socket from
// SIGNER_AGENT_ADMIN_SOCKET, else proto.DefaultAdminSocket. An Admin is
// safe for concurrent use; set its fields before first use.
type Admin struct {
	// Socket is the admin socket (a unix URI or a path). Empty means
	// SIGNER_AGENT_ADMIN_SOCKET, else proto.DefaultAdminSocket.
	Socket string
	// Dial, if set, opens connections instead of dialling Socket.
	Dial func(ctx context.Context) (net.Conn, error)
	// Timeout bounds each call (0: DefaultTimeout; negative: only the
	// context).
	Timeout time.Duration

	once sync.Once
	c    *Client
	err  error
}

func (a *Admin) client() (*Client, error) {
	a.once.Do(func() {
		c := &Client{Dial: a.Dial, Timeout: a.Timeout}
		if a.Dial == nil {
			path, err := resolveSocketFrom(a.Socket, "Admin.Socket", proto.EnvAdminSocket, proto.DefaultAdminSocket)
			if err != nil {
				a.err = err
				return
			}
			c.Socket = path
		}
		a.c = c
	})
	return a.c, a.err
}

// post sends in as JSON to path and decodes the 2xx answer into out.
func (a *Admin) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("signer-agent: POST %s: encode request: %w", path, err)
	}
	return a.postRaw(ctx, path, body, out)
}

func (a *Admin) postRaw(ctx context.Context, path string, body []byte, out any) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodPost, path, body, MaxResponseBytes, out)
}

// Reload makes the agent load its configuration again (POST
// /admin/v1/reload). A refused configuration is an *Error (invalid_request)
// and the previous one stays in force.
func (a *Admin) Reload(ctx context.Context) (*proto.ReloadResponse, error) {
	var out proto.ReloadResponse
	if err := a.post(ctx, proto.PathAdminReload, struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeKey revokes key id (POST /admin/v1/keys/{id}/revoke); it holds
// for the very next request.
func (a *Admin) RevokeKey(ctx context.Context, id, reason string) (*proto.RevokeResponse, error) {
	var out proto.RevokeResponse
	if err := a.post(ctx, proto.AdminKeyPath(id, "revoke"), proto.RevokeRequest{Reason: reason}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateKey rotates key id onto a new key (POST
// /admin/v1/keys/{id}/rotate).
func (a *Admin) RotateKey(ctx context.Context, id string, req proto.RotateRequest) (*proto.RotateResponse, error) {
	var out proto.RotateResponse
	if err := a.post(ctx, proto.AdminKeyPath(id, "rotate"), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UnlockKey unlocks a key that needs a person (FIDO2) with an optional
// PIN (POST /admin/v1/keys/{id}/unlock). The request body holding the PIN
// is wiped once sent; the caller wipes pin.
func (a *Admin) UnlockKey(ctx context.Context, id string, pin []byte) (*proto.UnlockResponse, error) {
	if !utf8.Valid(pin) {
		return nil, errors.New("signer-agent: UnlockKey: the PIN is not valid UTF-8")
	}
	body := []byte(`{}`)
	if len(pin) > 0 {
		body = append(appendJSONString(append(make([]byte, 0, len(pin)+16), `{"pin":`...), pin), '}')
	}
	defer clear(body)
	var out proto.UnlockResponse
	if err := a.postRaw(ctx, proto.AdminKeyPath(id, "unlock"), body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Bypass enables (For > 0, with a Reason) or ends (For "0s") the
// emergency entitlement bypass (POST /admin/v1/entitlement/bypass).
func (a *Admin) Bypass(ctx context.Context, req proto.BypassRequest) (*proto.BypassResponse, error) {
	var out proto.BypassResponse
	if err := a.post(ctx, proto.PathAdminBypass, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditExport copies closed audit segments into a directory on the agent's
// host (POST /admin/v1/audit/export).
func (a *Admin) AuditExport(ctx context.Context, req proto.AuditExportRequest) (*proto.AuditExportResponse, error) {
	var out proto.AuditExportResponse
	if err := a.post(ctx, proto.PathAdminAuditExport, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Audit streams the audit records matching q to fn, oldest first (GET
// /admin/v1/audit). It stops at the first error fn returns.
func (a *Admin) Audit(ctx context.Context, q proto.AuditQuery, fn func(proto.AuditRecord) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	path := proto.PathAdminAudit
	if v := q.Values().Encode(); v != "" {
		path += "?" + v
	}
	return c.exchange(ctx, http.MethodGet, path, nil, func(resp *http.Response) error {
		if !ok(resp) {
			return readError(resp)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), maxAuditLine)
		for sc.Scan() {
			var r proto.AuditRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				return fmt.Errorf("signer-agent: audit stream: %w", err)
			}
			if err := fn(r); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("signer-agent: audit stream: %w", err)
		}
		return nil
	})
}

// Metrics returns the agent's Prometheus metrics in text format (GET
// /metrics on the admin socket).
func (a *Admin) Metrics(ctx context.Context) ([]byte, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	var out []byte
	err = c.exchange(ctx, http.MethodGet, proto.PathAdminMetrics, nil, func(resp *http.Response) error {
		if !ok(resp) {
			return readError(resp)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
		out = b
		return err
	})
	return out, err
}

// Health checks the agent's liveness on the admin socket.
func (a *Admin) Health(ctx context.Context) (*proto.Health, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	return c.Health(ctx)
}

// Ready checks the agent's readiness on the admin socket (see
// Client.Ready).
func (a *Admin) Ready(ctx context.Context) (*proto.Health, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	return c.Ready(ctx)
}

// CloseIdleConnections closes connections kept open for reuse.
func (a *Admin) CloseIdleConnections() {
	if c, err := a.client(); err == nil {
		c.CloseIdleConnections()
	}
}

// appendJSONString appends s (valid UTF-8) as a JSON string literal.
func appendJSONString(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
