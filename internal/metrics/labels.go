package metrics

import (
	"strings"

	"github.com/stellaops/signer-agent/proto"
)

// routes are the paths exported as they are in the route label.
var routes = map[string]bool{
	proto.PathSignDSSE:     true,
	proto.PathSignExport:   true,
	proto.PathSignBatch:    true,
	proto.PathReferrers:    true,
	proto.PathKeys:         true,
	proto.PathHealthz:      true,
	proto.PathReadyz:       true,
	proto.PathAdminAudit:   true,
	proto.PathAdminReload:  true,
	proto.PathAdminBypass:  true,
	proto.PathAdminMetrics: true,
}

// keyActions are the admin key operations, /admin/v1/keys/{id}/<action>.
var keyActions = map[string]string{
	"rotate": proto.PathAdminKeys + "{id}/rotate",
	"revoke": proto.PathAdminKeys + "{id}/revoke",
	"unlock": proto.PathAdminKeys + "{id}/unlock",
}

// Route returns the route label for a request path: the path of a known
// endpoint, /admin/v1/keys/{id}/<action> for the admin key operations (the
// key id is not a label), and "other" for anything else, so unknown paths
// (404s, scans) cannot create series. It does not allocate.
func Route(path string) string {
	if routes[path] {
		return path
	}
	if rest, ok := strings.CutPrefix(path, proto.PathAdminKeys); ok {
		if i := strings.LastIndexByte(rest, '/'); i > 0 {
			if r, ok := keyActions[rest[i+1:]]; ok {
				return r
			}
		}
	}
	return Other
}

// errorCode returns the code label: "ok" for no code, the code when proto
// knows it, else "other".
func errorCode(code string) string {
	switch {
	case code == "" || code == CodeOK:
		return CodeOK
	case proto.Code(code).Known():
		return code
	default:
		return Other
	}
}
