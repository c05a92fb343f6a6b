package config

// Peers is the SO_PEERCRED allowlist of the api socket: a caller is allowed
// when its uid is in UIDs, or its primary gid or one of its supplementary
// groups (SO_PEERGROUPS) is in GIDs. With Allow unset the agent's own uid and
// root are allowed; an explicitly empty list allows nobody. Any uid or gid
// is valid, so the section has no defaults and nothing to validate.
type Peers struct {
	Allow *PeerAllow `yaml:"allow,omitempty"`
	// Admin is the allowlist of the admin socket (default: root and the
	// agent's own uid).
	Admin *PeerAllow `yaml:"admin,omitempty"`
}

// PeerAllow lists allowed uids and gids.
type PeerAllow struct {
	UIDs []uint32 `yaml:"uids,omitempty"`
	GIDs []uint32 `yaml:"gids,omitempty"`
}

// Allows reports whether a peer with uid, primary gid and supplementary
// groups is allowed.
func (p *PeerAllow) Allows(uid, gid uint32, groups []uint32) bool {
	for _, u := range p.UIDs {
		if u == uid {
			return true
		}
	}
	for _, g := range p.GIDs {
		if g == gid {
			return true
		}
		for _, sg := range groups {
			if g == sg {
				return true
			}
		}
	}
	return false
}
