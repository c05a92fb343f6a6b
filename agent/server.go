package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/peercred"
	"github.com/stellaops/signer-agent/proto"
)

var selfUID = os.Getuid()

// route is one endpoint: its allowed method, its own gates and its handler
// (run after the common gates). Handlers audit what they allow; refuse
// audits every denial.
type route struct {
	method string
	gates  []gate
	handle func(w http.ResponseWriter, rc *requestContext)
}

func (a *Agent) newServer(cfg *config.Config, h http.Handler, name string) *http.Server {
	t := cfg.Transport
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeaderTimeout,
		ReadTimeout:       t.ReadTimeout,
		WriteTimeout:      t.WriteTimeout,
		IdleTimeout:       t.IdleTimeout,
		MaxHeaderBytes:    t.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(a.log.Named("http." + name)),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			cr, err := peercred.FromConn(c)
			if err != nil {
				return ctx // the peer gate denies requests without credentials
			}
			return peercred.WithCred(ctx, cr)
		},
	}
}

// apiHandler serves the api socket.
func (a *Agent) apiHandler() http.Handler {
	sign := route{method: http.MethodPost, handle: a.handleSign}
	sign.gates = a.signGates()
	routes := map[string]route{
		proto.PathSignDSSE:  sign,
		proto.PathKeys:      {method: http.MethodGet, handle: a.handleKeys},
		proto.PathReferrers: {method: http.MethodGet, handle: a.handleReferrers},
		proto.PathHealthz:   {method: http.MethodGet, handle: a.handleHealthz},
		proto.PathReadyz:    {method: http.MethodGet, handle: a.handleReadyz},
	}
	return a.dispatch(socketAPI, routes)
}

// tcpHandler serves the optional mTLS listener: the api routes, with the
// client certificate in place of peer credentials and certificate-bound
// tokens in place of DPoP.
func (a *Agent) tcpHandler() http.Handler {
	sign := route{method: http.MethodPost, handle: a.handleSign}
	sign.gates = []gate{
		{gateOpTok, a.optokGate},
		{gateMTLS, mtlsGate},
		{gateBody, bodyGate},
		{gateEntitlement, a.entitlementGate},
		{gateRelease, a.releaseGate},
		{gateQuota, a.quotaGate},
		{gatePolicy, a.policyGate},
	}
	routes := map[string]route{
		proto.PathSignDSSE: sign,
		proto.PathKeys:     {method: http.MethodGet, handle: a.handleKeys},
		proto.PathHealthz:  {method: http.MethodGet, handle: a.handleHealthz},
		proto.PathReadyz:   {method: http.MethodGet, handle: a.handleReadyz},
	}
	return a.dispatch(socketTCP, routes)
}

// adminHandler serves the admin socket.
func (a *Agent) adminHandler() http.Handler {
	routes := map[string]route{
		proto.PathAdminReload:      {method: http.MethodPost, handle: a.handleReload},
		proto.PathAdminBypass:      {method: http.MethodPost, handle: a.handleBypass},
		proto.PathAdminAudit:       {method: http.MethodGet, handle: a.handleAudit},
		proto.PathAdminAuditExport: {method: http.MethodPost, handle: a.handleAuditExport},
		proto.PathAdminKeys + "*":  {method: http.MethodPost, handle: a.handleKeyAdmin},
		proto.PathAdminMetrics: {method: http.MethodGet, handle: func(w http.ResponseWriter, rc *requestContext) {
			a.metrics.Handler().ServeHTTP(w, rc.r)
		}},
		proto.PathHealthz: {method: http.MethodGet, handle: a.handleHealthz},
		proto.PathReadyz:  {method: http.MethodGet, handle: a.handleReadyz},
	}
	return a.dispatch(socketAdmin, routes)
}

// signGates is the sign pipeline after transport and peer (SPEC §15):
// OpTok → DPoP → body → entitlement → release → quotas → policy. The
// entitlement, release and quota gates arrive with their issues.
func (a *Agent) signGates() []gate {
	return []gate{
		{gateOpTok, a.optokGate},
		{gateDPoP, a.dpopGate},
		{gateBody, bodyGate},
		{gateEntitlement, a.entitlementGate},
		{gateRelease, a.releaseGate},
		{gateQuota, a.quotaGate},
		{gatePolicy, a.policyGate},
	}
}

// dispatch runs the common gates (transport, peer) for every request,
// routes it, checks the method, then runs the route's gates and handler.
func (a *Agent) dispatch(sock socketKind, routes map[string]route) http.Handler {
	common := []gate{
		{gateTransport, transportGate},
		{gatePeer, a.peerGate},
	}
	if sock == socketTCP {
		common[1] = gate{gatePeer, tcpPeerGate}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		snap := a.acquire()
		defer snap.release()
		rc := &requestContext{
			id:     requestID(r),
			route:  r.URL.Path,
			socket: sock,
			start:  a.now(),
			r:      r,
			peer:   peercred.FromContext(r.Context()),
			snap:   snap,
		}
		rc.traceID = traceID(r.Header.Get(proto.HeaderTraceparent))
		if rc.traceID != "" {
			// Propagate the caller's W3C trace context on the answer.
			w.Header().Set(proto.HeaderTraceparent, r.Header.Get(proto.HeaderTraceparent))
		}
		rc.rec = audit.Record{RequestID: rc.id, TraceID: rc.traceID, Route: rc.route, Peer: rc.peer}
		w.Header().Set(proto.HeaderRequestID, rc.id)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if sock == socketAPI && snap.auth != nil {
			// Every api response carries the current DPoP nonce.
			w.Header().Set(proto.HeaderDPoPNonce, snap.auth.Nonce())
		}

		ctx := r.Context()
		defer func() {
			if rc.ticket != nil {
				rc.ticket.Release() // no-op once committed
			}
			dec := rc.rec.Decision
			if dec == "" {
				dec = audit.Allow
			}
			a.metrics.Request(rc.route, dec, rc.rec.Code, a.now().Sub(rc.start))
		}()
		if g, d := a.runGates(ctx, rc, common); d != nil {
			a.refuse(ctx, w, rc, g, d)
			return
		}
		rt, ok := routes[r.URL.Path]
		if !ok && strings.HasPrefix(r.URL.Path, proto.PathAdminKeys) {
			rt, ok = routes[proto.PathAdminKeys+"*"]
		}
		if !ok {
			a.refuse(ctx, w, rc, gateRoute, deny(proto.CodeNotFound, "no such endpoint", "unknown path"))
			return
		}
		if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set(proto.HeaderAllow, rt.method)
			a.refuse(ctx, w, rc, gateRoute, deny(proto.CodeMethodNotAllowed, "use "+rt.method, "method "+r.Method))
			return
		}
		if g, d := a.runGates(ctx, rc, rt.gates); d != nil {
			a.refuse(ctx, w, rc, g, d)
			return
		}
		rt.handle(w, rc)
	})
}

// refuse audits a denial and writes its problem document. If the denial
// cannot be audited, the caller still gets the denial (nothing was signed)
// and the failure is logged.
func (a *Agent) refuse(ctx context.Context, w http.ResponseWriter, rc *requestContext, gateName string, d *Denial) {
	rc.rec.Decision = audit.Deny
	rc.rec.Code = string(d.Code)
	rc.rec.Gate = gateName
	rc.rec.Reason = d.Reason
	rc.rec.Time = a.now().UTC()
	rc.rec.LatencyMS = msSince(a.now, rc.start)
	if err := a.auditor.Append(ctx, &rc.rec); err != nil {
		a.log.Error("audit append failed for denial", zap.String("requestId", rc.id), zap.Error(err))
	}
	a.log.Info("request denied",
		zap.String("requestId", rc.id), zap.String("traceId", rc.traceID), zap.String("tenant", rc.tenant),
		zap.String("route", rc.route), zap.String("decision", audit.Deny), zap.String("gate", gateName),
		zap.String("code", string(d.Code)), zap.String("reason", d.Reason), zap.Float64("latencyMs", rc.rec.LatencyMS))
	for k, vs := range d.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if d.RetryAfter > 0 {
		w.Header().Set(proto.HeaderRetryAfter, retryAfterSeconds(d.RetryAfter))
	}
	writeProblem(w, proto.NewProblem(d.Code, d.Detail, rc.id))
}

func writeProblem(w http.ResponseWriter, p *proto.Problem) {
	w.Header().Set("Content-Type", proto.MediaTypeProblem)
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, proto.NewProblem(proto.CodeInternalError, "", w.Header().Get(proto.HeaderRequestID)))
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", proto.MediaTypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return itoa(s)
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func msSince(now func() time.Time, t time.Time) float64 {
	return float64(now().Sub(t).Microseconds()) / 1000
}

// requestID takes a caller's X-Request-Id when it is short and plain, else
// makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get(proto.HeaderRequestID); id != "" && len(id) <= 128 && plainID(id) {
		return id
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func plainID(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// traceID extracts the trace id of a W3C traceparent header.
func traceID(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 {
		return ""
	}
	if _, err := hex.DecodeString(parts[1]); err != nil {
		return ""
	}
	return parts[1]
}

func (a *Agent) handleKeys(w http.ResponseWriter, rc *requestContext) {
	out := proto.KeysResponse{Keys: []proto.KeyInfo{}}
	for _, k := range rc.snap.keys {
		if k.pending != nil {
			continue // its public key is not known until its backend answers; readyz names it
		}
		out.Keys = append(out.Keys, k.info(rc.snap.defaultFor))
	}
	sort.Slice(out.Keys, func(i, j int) bool { return out.Keys[i].ID < out.Keys[j].ID })
	writeJSON(w, http.StatusOK, out)
}

func (a *Agent) handleHealthz(w http.ResponseWriter, rc *requestContext) {
	writeJSON(w, http.StatusOK, proto.Health{Status: "ok", Version: Version})
}

// handleReadyz reports ready when the configuration is loaded and every
// active key answers with a public key.
func (a *Agent) handleReadyz(w http.ResponseWriter, rc *requestContext) {
	h := a.readiness(rc.snap)
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

// readiness checks what signing needs: an active key, the Authority's keys,
// a writable audit log; it notes an active entitlement bypass.
func (a *Agent) readiness(snap *snapshot) proto.Health {
	h := proto.Health{Status: "ok", Version: Version, Checks: map[string]string{"config": "ok"}}
	down := func(check, why string) {
		h.Checks[check] = why
		h.Status = "unavailable"
	}
	active := 0
	for id, k := range snap.keys {
		if k.cfg.Status != proto.KeyStatusActive {
			continue
		}
		active++
		if k.pending != nil {
			down("key:"+id, "backend unavailable, retrying: "+oneLine(k.pending.Error()))
			continue
		}
		if l, ok := k.key.(interface{ Unlocked() bool }); ok && !l.Unlocked() {
			down("key:"+id, "locked (POST /admin/v1/keys/"+id+"/unlock)")
		}
	}
	if active == 0 {
		down("keys", "no active key")
	} else {
		h.Checks["keys"] = "ok"
	}
	if snap.auth != nil {
		st := snap.auth.Status()
		switch {
		case st.Published == 0:
			down("authority", "no usable JWKS key")
		case st.LastError != nil:
			// Still serving from the cached key set.
			h.Checks["authority"] = "ok (last refresh failed; serving cached keys)"
		default:
			h.Checks["authority"] = "ok"
		}
	}
	if l, ok := a.auditor.(*audit.Log); ok {
		if l.Stats().Unavailable {
			down("audit", "not writable (signing refused until it recovers)")
		} else {
			h.Checks["audit"] = "ok"
		}
	}
	if snap.ent != nil {
		if b := snap.ent.ActiveBypass(); b != nil {
			h.Checks["entitlement"] = "bypass active until " + b.Until.UTC().Format(time.RFC3339)
		} else {
			h.Checks["entitlement"] = "ok"
		}
	}
	return h
}

// statusLoop mirrors readiness in systemd's STATUS= and the signer_ready
// gauge, every 10 s, when it changes.
func (a *Agent) statusLoop(ctx context.Context) {
	last := ""
	every(ctx, 10*time.Second, func() {
		snap := a.acquire()
		h := a.readiness(snap)
		snap.release()
		line := "ready"
		if h.Status != "ok" {
			var bad []string
			for k, v := range h.Checks {
				if !strings.HasPrefix(v, "ok") {
					bad = append(bad, k+": "+v)
				}
			}
			sort.Strings(bad)
			line = "NOT READY: " + strings.Join(bad, "; ")
		}
		a.metrics.SetReady(h.Status == "ok")
		if line != last {
			a.notify("STATUS=" + oneLine(line+"; "+a.statusText()))
			last = line
		}
	})
}

// auditAdmin appends the allow record of an admin change. On failure it
// answers audit_unavailable (saying what was not done) and returns false:
// the change must not take effect unaudited.
func (a *Agent) auditAdmin(w http.ResponseWriter, rc *requestContext, change, reason, notDone string) bool {
	rc.rec.Admin, rc.rec.Reason = change, reason
	rc.rec.Decision, rc.rec.Gate, rc.rec.Time = audit.Allow, "admin", a.now().UTC()
	rc.rec.LatencyMS = msSince(a.now, rc.start)
	if err := a.auditor.Append(rc.r.Context(), &rc.rec); err != nil {
		a.log.Error("audit append failed for admin change", zap.String("requestId", rc.id), zap.String("change", change), zap.Error(err))
		writeProblem(w, proto.NewProblem(proto.CodeAuditUnavailable, notDone, rc.id))
		return false
	}
	return true
}

// handleReload is POST /admin/v1/reload.
func (a *Agent) handleReload(w http.ResponseWriter, rc *requestContext) {
	err := a.Reload(rc.r.Context())
	rc.rec.Admin = "reload"
	if err != nil {
		a.refuse(rc.r.Context(), w, rc, "admin", deny(proto.CodeInvalidRequest, "new configuration refused; the previous one stays in force", err.Error()))
		return
	}
	if !a.auditAdmin(w, rc, "reload", "", "reload applied but could not be audited") {
		return
	}
	writeJSON(w, http.StatusOK, proto.Health{Status: "ok", Version: Version, Checks: map[string]string{"config": a.Config().Path()}})
}
