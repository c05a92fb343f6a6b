package agent

import (
	"context"
	"fmt"
	"os"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
)

var selfUID = os.Getuid()

// peerGate checks the SO_PEERCRED identity against the socket's allowlist.
func (a *Agent) peerGate(_ context.Context, rc *requestContext) *Denial {
	if rc.peer == nil {
		return deny(proto.CodePeerNotAllowed, "caller identity unknown", "no peer credentials on connection")
	}
	allow := a.peerAllow(rc.snap.cfg, rc.socket)
	if !allow.Allows(rc.peer.UID, rc.peer.GID, rc.peer.Groups) {
		return deny(proto.CodePeerNotAllowed, "caller is not allowed on this socket",
			fmt.Sprintf("uid %d gid %d groups %v pid %d not in %s allowlist", rc.peer.UID, rc.peer.GID, rc.peer.Groups, rc.peer.PID, rc.socket))
	}
	return nil
}

// defaultPeers allows root and the agent's own uid.
func (a *Agent) peerAllow(cfg *config.Config, s socketKind) *config.PeerAllow {
	p := cfg.Peers.Allow
	if s == socketAdmin {
		p = cfg.Peers.Admin
	}
	if p != nil {
		return p
	}
	return &config.PeerAllow{UIDs: []uint32{0, uint32(selfUID)}}
}

// tcpPeerGate requires a verified client certificate on the TCP listener.
func tcpPeerGate(_ context.Context, rc *requestContext) *Denial {
	st := rc.r.TLS
	if st == nil || len(st.VerifiedChains) == 0 || len(st.PeerCertificates) == 0 {
		return deny(proto.CodePeerNotAllowed, "a verified client certificate is required", "no verified client certificate")
	}
	rc.clientCert = st.PeerCertificates[0]
	return nil
}
