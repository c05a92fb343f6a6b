package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.yaml.in/yaml/v3"

	"github.com/stellaops/signer-agent/internal/keys/fido2"
	"github.com/stellaops/signer-agent/proto"
)

// revocationList is the watched file of revoked key ids.
type revocationList struct {
	Revoked []revokedKey `yaml:"revoked"`
}

type revokedKey struct {
	ID     string    `yaml:"id"`
	Reason string    `yaml:"reason,omitempty"`
	At     time.Time `yaml:"at,omitempty"`
}

// loadRevocations reads the revocation list; a missing file is an empty
// list, a malformed one an error (the reload is refused, the running
// configuration stays).
func loadRevocations(path string) (map[string]revokedKey, error) {
	out := map[string]revokedKey{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("revocation list: %w", err)
	}
	var rl revocationList
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rl); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("revocation list %s: %w", path, err)
	}
	for i, r := range rl.Revoked {
		if r.ID == "" {
			return nil, fmt.Errorf("revocation list %s: revoked[%d].id: required", path, i)
		}
		out[r.ID] = r
	}
	return out, nil
}

// applyRevocations marks listed keys revoked in a freshly opened key set.
func applyRevocations(ks map[string]*keyEntry, rev map[string]revokedKey) {
	for id, r := range rev {
		if k, ok := ks[id]; ok {
			k.cfg.Status = proto.KeyStatusRevoked
			k.revoked = &r
		}
	}
}

// revokeKey appends a key to the revocation list (atomic rename) and
// reloads, so the revocation holds for the next request.
func (a *Agent) revokeKey(id, reason string) error {
	a.keyAdminMu.Lock()
	defer a.keyAdminMu.Unlock()
	path := a.Config().RevocationList
	rev, err := loadRevocations(path)
	if err != nil {
		return err
	}
	var rl revocationList
	for _, r := range rev {
		rl.Revoked = append(rl.Revoked, r)
	}
	if _, ok := rev[id]; !ok {
		rl.Revoked = append(rl.Revoked, revokedKey{ID: id, Reason: reason, At: a.now().UTC().Truncate(time.Second)})
	}
	b, err := yaml.Marshal(&rl)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append([]byte("# Revoked signing keys (signer-agent). Edits take effect at once.\n"), b...), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// handleKeyAdmin serves POST /admin/v1/keys/{id}/revoke.
func (a *Agent) handleKeyAdmin(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	rest := strings.TrimPrefix(rc.r.URL.Path, proto.PathAdminKeys)
	id, action, ok := strings.Cut(rest, "/")
	if !ok || id == "" || strings.Contains(action, "/") {
		a.refuse(ctx, w, rc, gateRoute, deny(proto.CodeNotFound, "no such endpoint", "bad key admin path"))
		return
	}
	old, ok := rc.snap.keys[id]
	if action != "revoke" && action != "rotate" && action != "unlock" {
		a.refuse(ctx, w, rc, gateRoute, deny(proto.CodeNotFound, "supported: revoke, rotate, unlock", "key action "+action+" not available"))
		return
	}
	if !ok {
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeNotFound, "unknown key id", action+" unknown key "+id))
		return
	}
	switch action {
	case "rotate":
		a.handleRotate(w, rc, old)
		return
	case "unlock":
		a.handleUnlock(w, rc, old)
		return
	}
	var body struct {
		Reason string `json:"reason"`
	}
	if err := decodeAdminBody(rc.r, &body, true); err != nil || len(body.Reason) < 3 {
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeInvalidRequest, `want {"reason": "…"}`, "revoke without reason"))
		return
	}
	// The revocation is audited before it is written; a failed write
	// after that is reported and leaves the key as it was.
	rc.rec.KeyIDs = []string{id}
	if !a.auditAdmin(w, rc, "key-revoke", "revoked: "+body.Reason, "the revocation could not be audited and was not made") {
		return
	}
	if err := a.revokeKey(id, body.Reason); err != nil {
		a.log.Error("revoke", zap.String("key", id), zap.Error(err))
		writeProblem(w, proto.NewProblem(proto.CodeInternalError, "revocation list could not be written", rc.id))
		return
	}
	if err := a.Reload(ctx); err != nil {
		a.log.Error("reload after revocation", zap.Error(err))
		writeProblem(w, proto.NewProblem(proto.CodeInternalError, "revocation written but the reload failed; see the log", rc.id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "status": proto.KeyStatusRevoked})
}

// handleRotate serves POST /admin/v1/keys/{id}/rotate {"newId", "uri"}:
// the new key becomes active (and the default where the old one was), the
// old one verify-only.
func (a *Agent) handleRotate(w http.ResponseWriter, rc *requestContext, old *keyEntry) {
	ctx := rc.r.Context()
	var body struct {
		NewID string `json:"newId"`
		URI   string `json:"uri"`
	}
	if err := decodeAdminBody(rc.r, &body, false); err != nil || body.NewID == "" {
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeInvalidRequest, `want {"newId": "…", "uri": "…" (optional for file keys)}`, "bad rotate request"))
		return
	}
	if _, exists := rc.snap.keys[body.NewID]; exists {
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeInvalidRequest, "newId is already a key id", "rotate onto existing key "+body.NewID))
		return
	}
	if old.cfg.Status != proto.KeyStatusActive {
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeKeyUnavailable, "only an active key can be rotated", "rotate "+old.cfg.Status+" key "+old.cfg.ID))
		return
	}
	rc.rec.KeyIDs = []string{old.cfg.ID, body.NewID}
	if !a.auditAdmin(w, rc, "key-rotate", fmt.Sprintf("rotate %q to %q", old.cfg.ID, body.NewID), "the rotation could not be audited and was not made") {
		return
	}
	if _, err := a.rotateKey(old, body.NewID, body.URI); err != nil {
		writeProblem(w, proto.NewProblem(proto.CodeInvalidRequest, "rotation refused: "+oneLine(err.Error()), rc.id))
		return
	}
	if err := a.Reload(ctx); err != nil {
		a.undoRotation()
		_ = a.Reload(ctx)
		writeProblem(w, proto.NewProblem(proto.CodeInvalidRequest, "the new key could not be used; rotation undone: "+oneLine(err.Error()), rc.id))
		return
	}
	nk := a.snap.Load().keys[body.NewID]
	if nk.pending != nil {
		// Rotating onto a key nothing can sign with would leave the
		// tenants without their default key.
		a.undoRotation()
		_ = a.Reload(ctx)
		writeProblem(w, proto.NewProblem(proto.CodeSigningBackendUnavailable, "the new key's backend does not answer; rotation undone: "+oneLine(nk.pending.Error()), rc.id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"old": old.cfg.ID, "oldStatus": proto.KeyStatusVerifyOnly, "new": nk.info(a.snap.Load().defaultFor)})
}

// unlocker is a key that must be unlocked by a person (FIDO2).
type unlocker interface {
	Unlock(auth fido2.Authenticator, pin string) error
}

// handleUnlock serves POST /admin/v1/keys/{id}/unlock {"pin": "…"}: one
// assertion on the authenticator unwraps the key for its TTL or signature
// budget. The PIN is never logged or audited.
func (a *Agent) handleUnlock(w http.ResponseWriter, rc *requestContext, k *keyEntry) {
	ctx := rc.r.Context()
	u, ok := k.key.(unlocker)
	if !ok {
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeInvalidRequest, "this key needs no unlock", "unlock of a "+k.source+" key"))
		return
	}
	var body struct {
		PIN string `json:"pin"`
	}
	if err := decodeAdminBody(rc.r, &body, true); err != nil {
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeInvalidRequest, `want {"pin": "…"} or an empty body`, "bad unlock request"))
		return
	}
	auth, err := a.fido2()
	if err == nil {
		err = u.Unlock(auth, body.PIN)
	}
	clear([]byte(body.PIN))
	rc.rec.KeyIDs = []string{k.cfg.ID}
	if err != nil {
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeKeyUnavailable, "unlock failed", "unlock "+k.cfg.ID+": "+err.Error()))
		return
	}
	if !a.auditAdmin(w, rc, "key-unlock", "unlocked "+k.cfg.ID, "unlocked, but the unlock could not be audited") {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": k.cfg.ID, "unlocked": true})
}
