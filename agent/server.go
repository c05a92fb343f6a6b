package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"path"
	"strings"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/peercred"
	"github.com/stellaops/signer-agent/proto"
)

func (a *Agent) newServer(cfg *config.Config, h http.Handler, name string, cl *connLimits) *http.Server {
	t := cfg.Transport
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeaderTimeout,
		ReadTimeout:       t.ReadTimeout,
		WriteTimeout:      t.WriteTimeout,
		IdleTimeout:       t.IdleTimeout,
		MaxHeaderBytes:    t.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(a.log.Named("http." + name)),
		ConnState:         cl.connState,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			// The credentials were read at accept (connLimits).
			if lc, ok := c.(*limitedConn); ok && lc.cred != nil {
				return peercred.WithCred(ctx, lc.cred)
			}
			return ctx // the peer gate denies requests without credentials
		},
	}
}

// rcKey carries a request's requestContext from the socket handler to its
// route.
type rcKey struct{}

func requestContextOf(r *http.Request) *requestContext {
	return r.Context().Value(rcKey{}).(*requestContext)
}

// socketHandler runs the socket's common gates (transport, peer) for every
// request, then hands it to the socket's routes. The request holds the
// current snapshot until it is answered.
func (a *Agent) socketHandler(sock socketKind, mux *http.ServeMux) http.Handler {
	common := a.commonGates(sock)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		snap := a.acquire()
		if snap == nil {
			// Run has stopped serving: only a request racing the drain
			// gets here.
			w.Header().Set(proto.HeaderRetryAfter, "1")
			writeProblem(w, proto.NewProblem(proto.CodeAgentBusy, "the agent is shutting down", ""))
			return
		}
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
			for _, f := range rc.onDone {
				f()
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
		if p := r.URL.Path; p == "" || p[0] != '/' || path.Clean(p) != p {
			// ServeMux would answer an unclean path with a redirect.
			a.refuse(ctx, w, rc, gateRoute, deny(proto.CodeNotFound, "no such endpoint", "unclean path"))
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(ctx, rcKey{}, rc)))
	})
}

// serverTLS is the listener's tls.Config: each handshake takes the TLS
// material of the current snapshot, so reloads rotate certificates and
// roots without a restart.
func (a *Agent) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s := a.snap.Load()
			if s.tls == nil {
				return nil, errors.New("tcp listener disabled by configuration")
			}
			return s.tls, nil
		},
	}
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
