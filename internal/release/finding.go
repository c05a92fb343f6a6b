package release

import (
	"fmt"
	"strings"
)

// finding is what one signature (a cosign layer or a bundle) established.
// Exactly one of verified, conflict and problem describes it.
type finding struct {
	where   string // e.g. "referrer sha256:…", "tag sha256-….sig", "offline sha256-….sig"
	kind    string // "cosign signature" or "sigstore bundle"
	source  string // Source* constant the finding came from
	keyHint string // key that verified it, if any

	verified bool   // verified by a trusted key, for this digest
	conflict string // verified by a trusted key, but names something else
	problem  string // why it does not count
	version  string // version claimed in the signed payload, if any
}

// maxListed caps how many findings a Reason spells out.
const maxListed = 4

// decide picks the first verified finding. Any conflict makes the result
// ambiguous (nil, reason); with neither, reason lists the problems, or is
// none when there were no findings at all.
func decide(fs []finding, none string) (*finding, string) {
	var conflicts, problems []string
	var ok *finding
	for i := range fs {
		f := &fs[i]
		switch {
		case f.conflict != "":
			conflicts = append(conflicts, fmt.Sprintf("%s: %s %s", f.where, f.kind, f.conflict))
		case f.verified:
			if ok == nil {
				ok = f
			}
		default:
			problems = append(problems, fmt.Sprintf("%s: %s %s", f.where, f.kind, f.problem))
		}
	}
	switch {
	case len(conflicts) > 0:
		return nil, "ambiguous release signatures: " + list(conflicts)
	case ok != nil:
		return ok, ""
	case len(problems) > 0:
		return nil, "no signature verified with a trusted release key: " + list(problems)
	}
	return nil, none
}

func list(items []string) string {
	if len(items) <= maxListed {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:maxListed], "; "), len(items)-maxListed)
}
