package agent

import (
	"net/http"
	"sort"

	"github.com/stellaops/signer-agent/proto"
)

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
