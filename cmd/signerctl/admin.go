package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// adminRequest sends one request to the admin socket. A non-2xx answer is
// returned as an error (*client.Error for a problem document, like the
// api's); on success the caller reads and closes the body.
func (a *app) adminRequest(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	sock := strings.TrimPrefix(a.adminSocket, "unix://")
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+proto.Host+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", proto.MediaTypeJSON)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", sock, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if p, perr := proto.DecodeProblem(b); perr == nil {
			return nil, &client.Error{Status: p.Status, Code: p.Code, Detail: p.Detail, RequestID: p.RequestID}
		}
		return nil, fmt.Errorf("admin %s: HTTP %d", path, resp.StatusCode)
	}
	return resp, nil
}

// adminPost sends a JSON body to an admin endpoint and decodes the answer
// into out.
func (a *app) adminPost(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := a.adminRequest(ctx, http.MethodPost, path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// cmdEntitlementBypass is `signerctl entitlement bypass`.
func (a *app) cmdEntitlementBypass(ctx context.Context, args []string) error {
	fs := a.flagSet("entitlement bypass", "entitlement bypass --reason TEXT --for DURATION | --off", bypassHelp)
	reason := fs.String("reason", "", "why (recorded in the audit log)")
	dur := fs.Duration("for", 0, "how long, at most 24h")
	off := fs.Bool("off", false, "end the bypass now")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *off == (*dur > 0) {
		return usagef("give either --for DURATION (with --reason) or --off")
	}
	if !*off && strings.TrimSpace(*reason) == "" {
		return usagef("--reason is required")
	}
	var out map[string]any
	if err := a.adminPost(ctx, proto.PathAdminBypass, map[string]string{"reason": *reason, "for": dur.String()}, &out); err != nil {
		return err
	}
	if *off {
		fmt.Fprintln(a.stdout, "entitlement bypass: off")
	} else {
		fmt.Fprintf(a.stdout, "entitlement bypass: on until %v (%s)\n", out["until"], *reason)
	}
	return nil
}

const bypassHelp = `Enable or end the agent's emergency entitlement bypass (admin socket).
While it lasts, sign requests skip the Proof-of-Entitlement check and are
audited with poeState "bypass"; the toggle itself is audited first.`
