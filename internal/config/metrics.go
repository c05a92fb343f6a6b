package config

import "net"

// DefaultMetricsListen is metrics.listen's default: loopback only.
const DefaultMetricsListen = "127.0.0.1:9464"

// Metrics configures the Prometheus listener. The admin socket always
// serves /metrics too.
type Metrics struct {
	// Listen is host:port for GET /metrics (default 127.0.0.1:9464);
	// "off" disables the TCP listener.
	Listen string `yaml:"listen,omitempty"`
}

// Enabled reports whether the metrics TCP listener is on.
func (m Metrics) Enabled() bool { return m.Listen != "off" }

func (m *Metrics) applyDefaults() {
	setDefault(&m.Listen, DefaultMetricsListen)
}

func (m *Metrics) validate(p *problems) {
	if m.Enabled() {
		if _, _, err := net.SplitHostPort(m.Listen); err != nil {
			p.add("metrics.listen", "want host:port or off")
		}
	}
}
