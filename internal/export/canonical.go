package export

import (
	"strconv"

	"github.com/stellaops/signer-agent/internal/attest"
)

// The manifest and the statement are written directly in RFC 8785 form:
// their shapes are fixed, every member name is ASCII (so UTF-16 order is
// byte order) and every number an integer below 2^53. Going through
// encoding/json and then jcs parsed and re-wrote every byte twice, which
// was most of the agent's work for a large export (docs/perf.md §9).
// TestCanonicalMatchesJCS and FuzzCanonicalMatchesJCS check the bytes
// against that library path, which stays the reference.

// appendString appends s as an RFC 8785 string (attest's writer).
func appendString(b []byte, s string) []byte { return attest.AppendString(b, s) }

// appendDigests appends a digest set as a canonical object. Digests were
// validated (algorithm names and lowercase hex), so they are valid UTF-8.
func appendDigests(b []byte, d map[string]string) []byte {
	out, err := attest.AppendStringMap(b, d)
	if err != nil {
		panic("export: unvalidated digest set: " + err.Error())
	}
	return out
}

func appendSHA256(b []byte, hex string) []byte {
	b = append(b, `{"sha256":`...)
	b = appendString(b, hex)
	return append(b, '}')
}

// appendManifest writes a Manifest in RFC 8785 form.
func appendManifest(b []byte, m *Manifest) []byte {
	b = append(b, `{"_type":`...)
	b = appendString(b, m.Type)
	b = append(b, `,"createdAt":`...)
	b = appendString(b, m.CreatedAt)
	b = append(b, `,"files":[`...)
	for i := range m.Files {
		f := &m.Files[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"digest":`...)
		b = appendSHA256(b, f.Digest.SHA256)
		if f.MediaType != "" {
			b = append(b, `,"mediaType":`...)
			b = appendString(b, f.MediaType)
		}
		b = append(b, `,"path":`...)
		b = appendString(b, f.Path)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, f.Size, 10)
		b = append(b, '}')
	}
	b = append(b, `],"id":`...)
	b = appendString(b, m.ID)
	if len(m.Materials) > 0 {
		b = append(b, `,"materials":[`...)
		for i, mat := range m.Materials {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"digest":`...)
			b = appendDigests(b, mat.Digest)
			b = append(b, `,"uri":`...)
			b = appendString(b, mat.URI)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"profile":`...)
	b = appendString(b, m.Profile)
	return append(b, '}')
}

// appendStatement writes a Statement in RFC 8785 form.
func appendStatement(b []byte, s *Statement) []byte {
	bd := &s.Predicate.BuildDefinition
	b = append(b, `{"_type":`...)
	b = appendString(b, s.Type)
	b = append(b, `,"predicate":{"buildDefinition":{"buildType":`...)
	b = appendString(b, bd.BuildType)
	b = append(b, `,"externalParameters":{"id":`...)
	b = appendString(b, bd.ExternalParameters.ID)
	b = append(b, `,"profile":`...)
	b = appendString(b, bd.ExternalParameters.Profile)
	b = append(b, '}')
	if len(bd.ResolvedDependencies) > 0 {
		b = append(b, `,"resolvedDependencies":[`...)
		for i, d := range bd.ResolvedDependencies {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"digest":`...)
			b = appendDigests(b, d.Digest)
			if d.Name != "" {
				b = append(b, `,"name":`...)
				b = appendString(b, d.Name)
			}
			if d.URI != "" {
				b = append(b, `,"uri":`...)
				b = appendString(b, d.URI)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `},"runDetails":{"builder":{"id":`...)
	b = appendString(b, s.Predicate.RunDetails.Builder.ID)
	b = append(b, `}}},"predicateType":`...)
	b = appendString(b, s.PredicateType)
	b = append(b, `,"subject":[`...)
	for i, sub := range s.Subject {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"digest":`...)
		b = appendDigests(b, sub.Digest)
		b = append(b, `,"name":`...)
		b = appendString(b, sub.Name)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
