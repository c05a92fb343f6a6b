package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/fido2"
	"github.com/stellaops/signer-agent/internal/keystate"
	"github.com/stellaops/signer-agent/proto"
)

// adminKey returns the key named by the request path, or refuses.
func (a *Agent) adminKey(w http.ResponseWriter, rc *requestContext, action string) (*keyEntry, bool) {
	id := rc.r.PathValue("id")
	k, ok := rc.snap.keys[id]
	if !ok {
		a.refuse(rc.r.Context(), w, rc, gateAdmin, deny(proto.CodeNotFound, "unknown key id", action+" unknown key "+id))
		return nil, false
	}
	return k, true
}

// handleRevoke serves POST /admin/v1/keys/{id}/revoke: audited, then
// written durably to the revocation list and applied by a reload before
// the answer, so the next request cannot use the key.
func (a *Agent) handleRevoke(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	k, ok := a.adminKey(w, rc, "revoke")
	if !ok {
		return
	}
	var body proto.RevokeRequest
	if err := decodeAdminBody(rc.r, &body, true); err != nil || len(body.Reason) < 3 {
		a.refuse(ctx, w, rc, gateAdmin, deny(proto.CodeInvalidRequest, `want {"reason": "…"}`, "revoke without reason"))
		return
	}
	id := k.cfg.ID
	// The revocation is audited before it is written; a failed write
	// after that is reported and leaves the key as it was.
	rc.rec.KeyIDs = []string{id}
	if !a.auditAdmin(w, rc, "key-revoke", "revoked: "+body.Reason, "the revocation could not be audited and was not made") {
		return
	}
	a.keyAdminMu.Lock()
	defer a.keyAdminMu.Unlock()
	if err := keystate.Revoke(a.Config().RevocationList, id, body.Reason, a.now()); err != nil {
		a.log.Error("revoke", zap.String("key", id), zap.Error(err))
		writeProblem(w, proto.NewProblem(proto.CodeInternalError, "revocation list could not be written", rc.id))
		return
	}
	if err := a.reload(ctx); err != nil {
		a.log.Error("reload after revocation", zap.Error(err))
		writeProblem(w, proto.NewProblem(proto.CodeInternalError, "revocation written but the reload failed; see the log", rc.id))
		return
	}
	writeJSON(w, http.StatusOK, proto.RevokeResponse{ID: id, Status: proto.KeyStatusRevoked})
}

// handleRotate serves POST /admin/v1/keys/{id}/rotate: the new key
// becomes active (and the default where the old one was), the old one
// verify-only. The admin key lock is held from the write of the rotation
// through the reload that applies it and, if the new key cannot sign, the
// undo of exactly this rotation: another admin's rotation is never undone.
func (a *Agent) handleRotate(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	old, ok := a.adminKey(w, rc, "rotate")
	if !ok {
		return
	}
	var body proto.RotateRequest
	if err := decodeAdminBody(rc.r, &body, false); err != nil || body.NewID == "" {
		a.refuse(ctx, w, rc, gateAdmin, deny(proto.CodeInvalidRequest, `want {"newId": "…", "uri": "…" (optional for file keys)}`, "bad rotate request"))
		return
	}
	if _, exists := rc.snap.keys[body.NewID]; exists {
		a.refuse(ctx, w, rc, gateAdmin, deny(proto.CodeInvalidRequest, "newId is already a key id", "rotate onto existing key "+body.NewID))
		return
	}
	if old.cfg.Status != proto.KeyStatusActive {
		a.refuse(ctx, w, rc, gateAdmin, deny(proto.CodeKeyUnavailable, "only an active key can be rotated", "rotate "+old.cfg.Status+" key "+old.cfg.ID))
		return
	}
	rc.rec.KeyIDs = []string{old.cfg.ID, body.NewID}
	if !a.auditAdmin(w, rc, "key-rotate", fmt.Sprintf("rotate %q to %q", old.cfg.ID, body.NewID), "the rotation could not be audited and was not made") {
		return
	}
	a.keyAdminMu.Lock()
	defer a.keyAdminMu.Unlock()
	if err := a.recordRotation(old, body.NewID, body.URI); err != nil {
		writeProblem(w, proto.NewProblem(proto.CodeInvalidRequest, "rotation refused: "+oneLine(err.Error()), rc.id))
		return
	}
	if err := a.reload(ctx); err != nil {
		a.undoRotation(ctx, body.NewID)
		writeProblem(w, proto.NewProblem(proto.CodeInvalidRequest, "the new key could not be used; rotation undone: "+oneLine(err.Error()), rc.id))
		return
	}
	nk := a.snap.Load().keys[body.NewID]
	if nk == nil || nk.pending != nil {
		// Rotating onto a key nothing can sign with would leave the
		// tenants without their default key.
		why := "the new key is not in the configuration"
		if nk != nil {
			why = nk.pending.Error()
		}
		a.undoRotation(ctx, body.NewID)
		writeProblem(w, proto.NewProblem(proto.CodeSigningBackendUnavailable, "the new key's backend does not answer; rotation undone: "+oneLine(why), rc.id))
		return
	}
	writeJSON(w, http.StatusOK, proto.RotateResponse{Old: old.cfg.ID, OldStatus: proto.KeyStatusVerifyOnly, New: nk.info(a.snap.Load().defaultFor)})
}

// recordRotation records a rotation of key old to newID (keyAdminMu
// held); when uri is empty and the old key is a file key, a new key of the
// same algorithm is generated in the state directory.
func (a *Agent) recordRotation(old *keyEntry, newID, uri string) error {
	cfg := a.Config()
	if _, ok := a.snap.Load().keys[newID]; ok {
		return fmt.Errorf("key %q already exists", newID)
	}
	r := keystate.Rotation{From: old.cfg.ID, To: newID, URI: uri, At: a.now().UTC().Truncate(time.Second)}
	if uri == "" {
		if old.source != "file" {
			return fmt.Errorf("give the new key's uri: %s keys are created with signerctl keys create", old.source)
		}
		p := filepath.Join(cfg.StateDir, "keys", newID+".pem")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		k, err := keys.CreateFileKey(p, old.algorithm)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists", p)
		}
		if err != nil {
			return err
		}
		_ = k.Close()
		r.URI, r.Generated = "file:"+p, p
	}
	if err := keystate.AddRotation(cfg.StateDir, r); err != nil {
		if r.Generated != "" {
			_ = os.Remove(r.Generated)
		}
		return err
	}
	return nil
}

// undoRotation removes the rotation onto newID (and the key file it
// generated) and reloads the configuration without it (keyAdminMu held).
func (a *Agent) undoRotation(ctx context.Context, newID string) {
	if err := keystate.UndoRotation(a.Config().StateDir, newID); err != nil {
		a.log.Error("undo key rotation", zap.String("key", newID), zap.Error(err))
	}
	if err := a.reload(ctx); err != nil {
		a.log.Error("reload after undoing a key rotation", zap.String("key", newID), zap.Error(err))
	}
}

// unlocker is a key that must be unlocked by a person (FIDO2). The PIN it
// is given must not be kept past the call: the agent wipes it.
type unlocker interface {
	Unlock(auth fido2.Authenticator, pin string) error
}

// handleUnlock serves POST /admin/v1/keys/{id}/unlock {"pin": "…"}: one
// assertion on the authenticator unwraps the key for its TTL or signature
// budget. The PIN is decoded into bytes the agent owns and wipes once the
// unlock returns; it is never logged or audited.
func (a *Agent) handleUnlock(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	k, ok := a.adminKey(w, rc, "unlock")
	if !ok {
		return
	}
	u, ok := k.key.(unlocker)
	if !ok {
		a.refuse(ctx, w, rc, gateAdmin, deny(proto.CodeInvalidRequest, "this key needs no unlock", "unlock of a "+k.source+" key"))
		return
	}
	var body proto.UnlockRequest
	defer body.Zero()
	if err := decodeAdminBody(rc.r, &body, true); err != nil {
		a.refuse(ctx, w, rc, gateAdmin, deny(proto.CodeInvalidRequest, `want {"pin": "…"} or an empty body`, "bad unlock request"))
		return
	}
	auth, err := a.fido2()
	if err == nil {
		err = u.Unlock(auth, secretView(body.PIN))
	}
	body.Zero()
	rc.rec.KeyIDs = []string{k.cfg.ID}
	if err != nil {
		a.refuse(ctx, w, rc, gateAdmin, deny(proto.CodeKeyUnavailable, "unlock failed", "unlock "+k.cfg.ID+": "+err.Error()))
		return
	}
	if !a.auditAdmin(w, rc, "key-unlock", "unlocked "+k.cfg.ID, "unlocked, but the unlock could not be audited") {
		return
	}
	writeJSON(w, http.StatusOK, proto.UnlockResponse{ID: k.cfg.ID, Unlocked: true})
}

// secretView is a string over b's bytes, without a copy: wiping b wipes
// it. Only for a callee that does not keep the string.
func secretView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
