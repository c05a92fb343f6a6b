package agent

import (
	"net/http"
	"strings"

	"github.com/stellaops/signer-agent/proto"
)

// route is one endpoint's own gates (run after the socket's common gates)
// and its handler. Handlers audit what they allow; refuse audits every
// denial.
type route struct {
	gates  []gate
	handle func(w http.ResponseWriter, rc *requestContext)
}

// routes builds a socket's mux. Each pattern is "METHOD /path" (a GET
// route answers HEAD too); the same path with another method is 405 with
// Allow, any other path 404 — both as problem documents.
type routes struct {
	a     *Agent
	mux   *http.ServeMux
	allow map[string][]string // path -> methods
}

func (a *Agent) newRoutes() *routes {
	rs := &routes{a: a, mux: http.NewServeMux(), allow: map[string][]string{}}
	rs.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		rc := requestContextOf(r)
		a.refuse(r.Context(), w, rc, gateRoute, deny(proto.CodeNotFound, "no such endpoint", "unknown path"))
	})
	return rs
}

// add registers pattern ("POST /path") with its gates and handler.
func (rs *routes) add(pattern string, rt route) {
	method, path, _ := strings.Cut(pattern, " ")
	a := rs.a
	rs.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rc := requestContextOf(r)
		rc.r = r // carries the path values
		if g, d := a.runGates(r.Context(), rc, rt.gates); d != nil {
			a.refuse(r.Context(), w, rc, g, d)
			return
		}
		if rc.replay != nil {
			a.writeReplay(w, rc) // a retry under an Idempotency-Key
			return
		}
		rt.handle(w, rc)
	})
	if _, seen := rs.allow[path]; !seen {
		rs.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			rc := requestContextOf(r)
			allowed := strings.Join(rs.allow[path], ", ")
			w.Header().Set(proto.HeaderAllow, allowed)
			a.refuse(r.Context(), w, rc, gateRoute, deny(proto.CodeMethodNotAllowed, "use "+allowed, "method "+r.Method))
		})
	}
	rs.allow[path] = append(rs.allow[path], method)
}

// apiHandler serves the api socket (SPEC §4): signing and the public
// read-only endpoints.
func (a *Agent) apiHandler() http.Handler {
	rs := a.newRoutes()
	rs.add("POST "+proto.PathSignDSSE, route{gates: a.signGates(socketAPI), handle: a.handleSign})
	rs.add("POST "+proto.PathSignBatch, route{gates: a.batchGates(socketAPI), handle: a.handleBatch})
	rs.add("POST "+proto.PathSignExport, route{gates: a.exportGates(socketAPI), handle: a.handleSignExport})
	rs.add("GET "+proto.PathKeys, route{handle: a.handleKeys})
	rs.add("GET "+proto.PathReferrers, route{handle: a.handleReferrers})
	rs.add("GET "+proto.PathHealthz, route{handle: a.handleHealthz})
	rs.add("GET "+proto.PathReadyz, route{handle: a.handleReadyz})
	return a.socketHandler(socketAPI, rs.mux)
}

// tcpHandler serves the optional mTLS listener: the api routes, with the
// client certificate in place of peer credentials and certificate-bound
// tokens in place of DPoP.
func (a *Agent) tcpHandler() http.Handler {
	rs := a.newRoutes()
	rs.add("POST "+proto.PathSignDSSE, route{gates: a.signGates(socketTCP), handle: a.handleSign})
	rs.add("POST "+proto.PathSignBatch, route{gates: a.batchGates(socketTCP), handle: a.handleBatch})
	rs.add("POST "+proto.PathSignExport, route{gates: a.exportGates(socketTCP), handle: a.handleSignExport})
	rs.add("GET "+proto.PathKeys, route{handle: a.handleKeys})
	rs.add("GET "+proto.PathHealthz, route{handle: a.handleHealthz})
	rs.add("GET "+proto.PathReadyz, route{handle: a.handleReadyz})
	return a.socketHandler(socketTCP, rs.mux)
}

// adminHandler serves the admin socket (SPEC §4): reload, key changes,
// audit queries and export, the entitlement bypass, metrics.
func (a *Agent) adminHandler() http.Handler {
	rs := a.newRoutes()
	rs.add("POST "+proto.PathAdminReload, route{handle: a.handleReload})
	rs.add("POST "+proto.PathAdminBypass, route{handle: a.handleBypass})
	rs.add("GET "+proto.PathAdminAudit, route{handle: a.handleAudit})
	rs.add("POST "+proto.PathAdminAuditExport, route{handle: a.handleAuditExport})
	rs.add("POST "+proto.PathAdminKeyRevoke, route{handle: a.handleRevoke})
	rs.add("POST "+proto.PathAdminKeyRotate, route{handle: a.handleRotate})
	rs.add("POST "+proto.PathAdminKeyUnlock, route{handle: a.handleUnlock})
	rs.mux.HandleFunc(proto.PathAdminKeys+"{id}/{action}", func(w http.ResponseWriter, r *http.Request) {
		rc := requestContextOf(r)
		a.refuse(r.Context(), w, rc, gateRoute, deny(proto.CodeNotFound, "supported: revoke, rotate, unlock", "key action "+r.PathValue("action")+" not available"))
	})
	rs.add("GET "+proto.PathAdminMetrics, route{handle: func(w http.ResponseWriter, rc *requestContext) {
		a.metrics.Handler().ServeHTTP(w, rc.r)
	}})
	rs.add("GET "+proto.PathHealthz, route{handle: a.handleHealthz})
	rs.add("GET "+proto.PathReadyz, route{handle: a.handleReadyz})
	return a.socketHandler(socketAdmin, rs.mux)
}
