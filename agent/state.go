package agent

import (
	"context"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/idempotency"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/fido2"
	"github.com/stellaops/signer-agent/internal/metrics"
	"github.com/stellaops/signer-agent/internal/quota"
)

// Version is set at build time (-ldflags "-X …agent.Version=…").
var Version = "dev"

// Options configure New.
type Options struct {
	// ConfigPath is the YAML file to load (and reload).
	ConfigPath string
	Logger     *zap.Logger
	// Auditor overrides the audit log opened from the config (tests:
	// *audit.Memory).
	Auditor AuditLog
	// Opener opens key URIs (nil: one with DefaultBackends).
	Opener *keys.Opener
	// Notify sends sd_notify states (nil: systemd's NOTIFY_SOCKET, if set).
	Notify func(state string)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// FIDO2 returns the authenticator that unlocks fido2: keys (nil: the
	// device of SIGNER_AGENT_FIDO2_DEVICE, needing the fido2 build tag).
	FIDO2 func() (fido2.Authenticator, error)
	// KeyRetryInterval is how often the backends of pending keys are tried
	// again (0: DefaultKeyRetryInterval).
	KeyRetryInterval time.Duration
	// ReloadSignals, when set, makes Run reload on every value received
	// (the daemon passes SIGHUP here).
	ReloadSignals <-chan os.Signal
	// AfterCommit, when set, is called with the request path once a
	// signed answer's audit records are durable, just before the answer
	// is written. It is a fault hook: only cmd/signer-agent built with
	// the faultinject tag sets it (to die there, for the crash tests);
	// production builds leave it nil.
	AfterCommit func(route string)
}

// DefaultKeyRetryInterval is how often a pending key's backend is tried
// again: a key whose token, TPM or KMS did not answer when the
// configuration was loaded (see openKeys).
const DefaultKeyRetryInterval = 10 * time.Second

// keyOpenTimeout bounds one try at opening a pending key.
const keyOpenTimeout = 30 * time.Second

// Listeners are the sockets Run serves. Admin and TCP may be nil; TCP is a
// plain TCP listener that Run wraps in mTLS.
type Listeners struct {
	API   net.Listener
	Admin net.Listener
	TCP   net.Listener
}

// Agent is the signing daemon. Its methods are spread over the package's
// files by layer (see docs/architecture.md): agent.go (New, Run, Reload)
// calls down into the routes, the handlers, the gate pipeline and the
// snapshot, never the other way round.
type Agent struct {
	log     *zap.Logger
	path    string
	auditor AuditLog
	journal *audit.JournalForwarder // nil unless audit.journal is on
	opener  *keys.Opener
	notify  func(string)
	now     func() time.Time
	fido2   func() (fido2.Authenticator, error)
	// keyRetry is how often pending keys are tried again.
	keyRetry time.Duration
	// reloadSignals triggers reloads while Run runs (may be nil).
	reloadSignals <-chan os.Signal
	// reload is Reload, handed to the lower layers (admin handlers,
	// watchers) that need to trigger one.
	reload func(context.Context) error

	// denials bounds each peer's denial records; budget is the in-flight
	// body memory budget. Both are set at start (limits:).
	denials *denialLimiter
	budget  *bodyBudget

	nonceKey []byte // DPoP nonce HMAC key: one per process, kept across reloads
	quota    quota.Admitter
	// idem keeps the answers of requests with an Idempotency-Key (SPEC
	// §4.6); read at start, like the quota settings.
	idem *idempotency.Store
	// afterCommit is Options.AfterCommit (nil in production).
	afterCommit func(route string)
	metrics     *metrics.Metrics

	snap atomic.Pointer[snapshot]
	// retired closes the keys of replaced snapshots once they are idle.
	retired retirer
	// reloadMu serialises reloads and shutdown; closing is set (under it)
	// when Run begins to stop, after which reloads are refused.
	reloadMu sync.Mutex
	closing  bool
	// keyAdminMu serialises admin key changes (revoke, rotate) from their
	// write through the reload that applies them (and its undo).
	keyAdminMu sync.Mutex
	status     atomic.Value // string: last STATUS= text
}
