package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// listenMetrics opens the metrics listener (loopback by default). A
// failure is logged, not fatal: metrics are not worth refusing to sign.
func (a *Agent) listenMetrics(addr string) net.Listener {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		a.log.Error("metrics listener", zap.String("listen", addr), zap.Error(err))
		return nil
	}
	a.log.Info("metrics listening", zap.String("addr", l.Addr().String()))
	return l
}

// serveMetrics is the task that serves GET /metrics on l until ctx ends.
func (a *Agent) serveMetrics(l net.Listener) task {
	return func(ctx context.Context) error {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics.Handler())
		s := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
		return serveUntil(ctx, s, l, time.Second)
	}
}

// serveUntil serves l until ctx ends, then shuts the server down, waiting
// at most drain for in-flight requests before closing their connections,
// and returns once Serve has returned. A serving error is returned at
// once.
func serveUntil(ctx context.Context, s *http.Server, l net.Listener, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	var err error
	if err = s.Shutdown(dctx); err != nil {
		_ = s.Close()
	}
	<-errc
	return err
}
