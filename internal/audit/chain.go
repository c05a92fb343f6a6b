package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
)

// GenesisHash is the PrevHash of the first record of a log (seq 1).
//
// # Record format and hash preimage
//
// A segment is a sequence of lines, each a JSON object terminated by one
// '\n' (0x0A). A line L (without its '\n') always has the form
//
//	L = B[:len(B)-1] || `,"hash":"` || H || `"}`
//
// where B is a JSON object that ends with '}' and holds every member of the
// record except "hash" (it includes "seq" and "prevHash"), and
//
//	H = "sha256:" || lowercase-hex( SHA-256( P || B ) )
//
// with P the record's "prevHash" value as its 71 ASCII bytes
// ("sha256:" and 64 lowercase hex digits) and B the exact bytes on disk. So
// a verifier needs no JSON canonicalisation: it cuts the fixed-length
// 82-byte suffix `,"hash":"sha256:<64 hex>"}` off L, appends '}' to get B,
// and hashes P followed by B.
//
// The chain holds when, for every record in order, "seq" is one more than
// the previous record's (1 for the first record of a log), "prevHash" equals
// the previous record's H (GenesisHash for seq 1), and H is as above. The
// first record of segment N+1 chains to the last record of segment N.
const GenesisHash = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

const (
	hashPrefix = "sha256:"
	// hashMember is what precedes H at the end of a line.
	hashMember = `,"hash":"`
	// suffixLen is len(`,"hash":"sha256:` + 64 hex + `"}`).
	suffixLen = len(hashMember) + len(hashPrefix) + 64 + 2
)

// chainHash returns H for a record body B whose prevHash is prev.
func chainHash(prev string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(body)
	var sum [sha256.Size]byte
	return hashPrefix + hex.EncodeToString(h.Sum(sum[:0]))
}

// appendLine appends to dst the line (with its '\n') for body B, which must
// be a JSON object holding prevHash prev, and returns it with H.
func appendLine(dst []byte, prev string, body []byte) ([]byte, string) {
	h := chainHash(prev, body)
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, hashMember...)
	dst = append(dst, h...)
	dst = append(dst, '"', '}', '\n')
	return dst, h
}

// appendBody appends to dst the body B of a record: the pre-encoded record
// pre (json.Marshal of a Record with Seq, PrevHash, Recovered and Hash
// empty) with "seq" and "prevHash" spliced in front. The result is what
// json.Marshal gives for the record with Seq and PrevHash set.
func appendBody(dst []byte, seq uint64, prev string, pre []byte) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prevHash":"`...)
	dst = append(dst, prev...)
	dst = append(dst, '"')
	if len(pre) > 2 {
		dst = append(dst, ',')
	}
	return append(dst, pre[1:]...)
}

// head is the part of a line the chain needs.
type head struct {
	Seq       uint64     `json:"seq"`
	PrevHash  string     `json:"prevHash"`
	Hash      string     `json:"hash"`
	Recovered []Recovery `json:"recovered"`
}

// Line errors, reported by Verify with the line.
var (
	errUnparsable = errors.New("not a JSON record")
	errNoHash     = errors.New("no trailing hash member")
	errBadHash    = errors.New("hash does not match the record")
)

// checkLine parses one line (without '\n') and checks its own hash: H must
// be the SHA-256 of its prevHash and body. It does not look at the chain.
func checkLine(line []byte) (head, error) {
	var h head
	if len(line) < suffixLen+2 || line[0] != '{' {
		return h, errNoHash
	}
	cut := len(line) - suffixLen
	suf := line[cut:]
	if !bytes.HasPrefix(suf, []byte(hashMember+hashPrefix)) || !bytes.HasSuffix(suf, []byte(`"}`)) {
		return h, errNoHash
	}
	if err := json.Unmarshal(line, &h); err != nil {
		return h, errUnparsable
	}
	if h.Hash != string(suf[len(hashMember):len(suf)-2]) || !validHash(h.Hash) || !validHash(h.PrevHash) || h.Seq == 0 {
		return h, errUnparsable
	}
	body := make([]byte, 0, cut+1)
	body = append(append(body, line[:cut]...), '}')
	if chainHash(h.PrevHash, body) != h.Hash {
		return h, errBadHash
	}
	return h, nil
}

// validHash reports whether s is "sha256:" and 64 lowercase hex digits.
func validHash(s string) bool {
	if len(s) != len(hashPrefix)+64 || s[:len(hashPrefix)] != hashPrefix {
		return false
	}
	for _, c := range []byte(s[len(hashPrefix):]) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
