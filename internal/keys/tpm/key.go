package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/stellaops/signer-agent/internal/keys"
)

// DefaultSignTimeout bounds Sign, which has no ctx: the longest it waits for
// the TPM queue and the TPM. SignContext takes the caller's ctx instead.
const DefaultSignTimeout = 30 * time.Second

// maxAuthSize is the longest auth value: the size of the key's name
// algorithm digest (SHA-256).
const maxAuthSize = sha256.Size

// Key is a TPM key. It is a keys.Key and safe for concurrent use.
type Key struct {
	dev    *device
	name   string // blob path or "handle 0x…", for errors
	pub    *ecdsa.PublicKey
	blob   *keyFile       // nil for a persistent key
	parent parentID       // the blob's parent
	handle tpm2.TPMHandle // persistent handle, or 0

	mu      sync.Mutex
	closed  bool
	authErr error // the TPM's refusal of the auth value; see ErrAuthFailed

	// Owned by the device's worker.
	auth    []byte         // nil: empty auth value, password session
	gen     uint64         // connection generation the fields below belong to
	loaded  tpm2.TPMHandle // transient handle of the loaded blob, or 0
	objName tpm2.TPM2BName
	sess    tpm2.Session // salted HMAC session when auth is set, or nil
	ready   bool         // loaded (or read back) on connection gen
	freed   bool         // Close flushed the key; no more TPM work
}

// Open opens the key named by a tpm: URI. It reads the key blob and the
// auth file and loads the key (or reads back the persistent key's public
// area), so a blob from another TPM or a free handle fails here. TPM
// failures wrap keys.ErrBackendUnavailable.
func Open(ctx context.Context, uri string) (keys.Key, error) {
	u, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	k := &Key{name: u.name(), handle: u.handle}
	if u.authFile != "" {
		if k.auth, err = readAuth(u.authFile); err != nil {
			return nil, fmt.Errorf("tpm key %s: %w", k.name, err)
		}
	}
	if u.blobPath != "" {
		data, err := os.ReadFile(u.blobPath)
		if err != nil {
			clear(k.auth)
			return nil, fmt.Errorf("tpm key: %w", err)
		}
		if k.blob, err = parseKeyFile(data); err != nil {
			clear(k.auth)
			return nil, fmt.Errorf("tpm key %s: %w", k.name, err)
		}
		k.pub = k.blob.pub
		k.parent = parentID{handle: k.blob.parent}
		switch {
		case k.blob.emptyAuth && k.auth != nil:
			clear(k.auth)
			return nil, fmt.Errorf("tpm key %s: the key has no auth value (emptyAuth), but the URI gives an auth-file", k.name)
		case !k.blob.emptyAuth && k.auth == nil:
			return nil, fmt.Errorf("tpm key %s: the key has an auth value; give auth-file= in the URI", k.name)
		}
	}
	k.dev = acquire(u)
	err = k.dev.run(ctx, retry, k.prepare)
	if err != nil {
		_ = k.Close()
		return nil, fmt.Errorf("tpm key %s: open: %w", k.name, classify(err))
	}
	return k, nil
}

// readAuth reads an auth value file, dropping one trailing newline.
func readAuth(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	n := len(b)
	switch {
	case n >= 2 && b[n-2] == '\r' && b[n-1] == '\n':
		n -= 2
	case n >= 1 && b[n-1] == '\n':
		n--
	}
	auth := b[:n]
	switch {
	case len(auth) == 0:
		clear(b)
		return nil, fmt.Errorf("auth file %s is empty", path)
	case len(auth) > maxAuthSize:
		clear(b)
		return nil, fmt.Errorf("auth value in %s is %d bytes; a TPM allows at most %d", path, len(auth), maxAuthSize)
	}
	return auth, nil
}

// Public returns the public key, an *ecdsa.PublicKey on P-256. It stays
// available after Close.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Sign signs a SHA-256 digest (opts must name crypto.SHA256) and returns an
// ASN.1 DER ECDSA signature. rand is not used: the TPM makes the nonce. It
// waits at most DefaultSignTimeout; see SignContext.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultSignTimeout)
	defer cancel()
	return k.SignContext(ctx, digest, opts)
}

// SignContext is Sign with a ctx: when ctx ends before the TPM answers (the
// queue is busy or the TPM is slow) it returns ctx's error at once, and
// the TPM's answer, if it comes, is dropped.
func (k *Key) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.mu.Lock()
	closed, authErr := k.closed, k.authErr
	k.mu.Unlock()
	if closed {
		return nil, keys.ErrClosed
	}
	if opts == nil {
		return nil, fmt.Errorf("sign with %s: no signer options", keys.AlgECDSAP256)
	}
	if h := opts.HashFunc(); h != crypto.SHA256 {
		return nil, fmt.Errorf("sign with %s: digest hash %v does not match the key's algorithm", keys.AlgECDSAP256, hashName(h))
	}
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("sign with %s: digest is %d bytes, want %d", keys.AlgECDSAP256, len(digest), sha256.Size)
	}
	if authErr != nil {
		return nil, fmt.Errorf("tpm key %s: sign: %w", k.name, classify(authErr))
	}
	// The operation may outlive this call (see device.run); it gets its own
	// copy of the digest.
	d := append([]byte(nil), digest...)
	var raw *tpm2.TPMTSignature
	err := k.dev.run(ctx, retry, func() (err error) {
		raw, err = k.sign(d)
		return err
	})
	if errors.Is(err, keys.ErrClosed) {
		return nil, keys.ErrClosed
	}
	if err != nil {
		return nil, fmt.Errorf("tpm key %s: sign: %w", k.name, classify(err))
	}
	// Encoding and checking the signature need no TPM: they run here, not
	// on the device's worker, which can start the next command meanwhile.
	sig, err := k.derSignature(d, raw)
	if err != nil {
		return nil, fmt.Errorf("tpm key %s: sign: %w", k.name, err)
	}
	return sig, nil
}

func hashName(h crypto.Hash) string {
	if h == 0 {
		return "none"
	}
	return h.String()
}

// Close flushes what the key loaded and releases the TPM connection when
// no other key uses it. It is idempotent; Sign after Close fails with
// keys.ErrClosed.
func (k *Key) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	k.mu.Unlock()
	if k.dev == nil { // Open failed before choosing the device
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = k.dev.run(ctx, noConnect, func() error {
		if k.dev.tpm != nil && k.gen == k.dev.gen {
			k.dropSession()
			k.dropLoaded()
		}
		clear(k.auth)
		k.auth = nil
		k.freed = true
		return nil
	})
	k.dev.release()
	return nil
}

// prepare makes the key usable on the current connection: it loads the
// blob under its parent, or reads back the persistent key's public area
// (and checks it is still the key Open found). Runs on the device's worker.
func (k *Key) prepare() error {
	d := k.dev
	if k.freed {
		return keys.ErrClosed
	}
	if k.gen != d.gen {
		// A new connection: what was loaded through the old one is gone
		// (or flushed by connect).
		k.gen, k.loaded, k.sess, k.ready = d.gen, 0, nil, false
	}
	if k.ready {
		return nil
	}
	if k.blob != nil {
		rsp, err := k.load(k.parent)
		if errors.Is(err, tpm2.TPMRCIntegrity) && k.parent == (parentID{handle: tpm2.TPMRHOwner}) {
			// Perhaps a key file of tpm2-tss-engine or the OpenSSL tpm2
			// provider, made under their primary.
			engine := parentID{handle: tpm2.TPMRHOwner, engine: true}
			rsp2, err2 := k.load(engine)
			switch {
			case err2 == nil:
				d.dropParent(k.parent)
				rsp, err, k.parent = rsp2, nil, engine
			case isTransport(err2):
				return err2
			default:
				d.dropParent(engine)
			}
		}
		if err != nil {
			return err
		}
		d.track(rsp.ObjectHandle)
		k.loaded, k.objName = rsp.ObjectHandle, rsp.Name
	} else {
		pub, name, err := d.readPublic(k.handle)
		if err != nil {
			if errors.Is(err, tpm2.TPMRCHandle) {
				return fmt.Errorf("no key at persistent handle 0x%08x: %w", uint32(k.handle), err)
			}
			return fmt.Errorf("read persistent key: %w", err)
		}
		key, err := signingPublicKey(pub)
		if err != nil {
			return err
		}
		if k.pub == nil {
			k.pub = key
		} else if !k.pub.Equal(key) {
			return fmt.Errorf("the key at persistent handle 0x%08x changed since the key was opened", uint32(k.handle))
		}
		k.objName = name
	}
	k.ready = true
	return nil
}

// load loads the blob under the parent id. Runs on the device's worker.
func (k *Key) load(id parentID) (*tpm2.LoadResponse, error) {
	p, err := k.dev.parent(id)
	if err != nil {
		return nil, err
	}
	rsp, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    k.blob.private,
		InPublic:     k.blob.public,
	}.Execute(k.dev.tpm)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCIntegrity) {
			return nil, fmt.Errorf("load key blob: %w (was the blob made on this TPM, under this parent?)", err)
		}
		return nil, fmt.Errorf("load key blob: %w", err)
	}
	return rsp, nil
}

// session returns the authorization session for the key: a password
// session with the empty auth value, or (with an auth value) a salted
// HMAC session kept for reuse that encrypts the command parameters.
func (k *Key) session() (tpm2.Session, error) {
	if k.auth == nil {
		return tpm2.PasswordAuth(nil), nil
	}
	if k.sess != nil {
		return k.sess, nil
	}
	d := k.dev
	var salt *parentKey
	var err error
	if k.blob != nil {
		salt, err = d.parent(k.parent)
	} else {
		_, salt, err = d.defaultParent()
	}
	if err != nil {
		return nil, err
	}
	s, _, err := tpm2.HMACSession(d.tpm, tpm2.TPMAlgSHA256, 16,
		tpm2.Auth(k.auth),
		tpm2.Salted(salt.handle, salt.pub),
		tpm2.AESEncryption(128, tpm2.EncryptIn))
	if err != nil {
		return nil, fmt.Errorf("start salted session: %w", err)
	}
	d.track(s.Handle())
	k.sess = s
	return s, nil
}

// sign signs digest on the TPM, loading the key again once if the TPM
// lost it. Runs on the device's worker.
func (k *Key) sign(digest []byte) (*tpm2.TPMTSignature, error) {
	// Signatures queued behind the one the TPM refused do not try again.
	k.mu.Lock()
	authErr := k.authErr
	k.mu.Unlock()
	if authErr != nil {
		return nil, authErr
	}
	for attempt := 0; ; attempt++ {
		sig, err := k.trySign(digest)
		if err == nil {
			return sig, nil
		}
		if isTransport(err) || errors.Is(err, keys.ErrClosed) {
			return nil, err
		}
		if errors.Is(err, tpm2.TPMRCAuthFail) || errors.Is(err, tpm2.TPMRCBadAuth) {
			k.mu.Lock()
			k.authErr = err
			k.mu.Unlock()
		}
		// After a failure the session's nonces are in doubt: start afresh.
		k.dropSession()
		if attempt == 0 && isStaleHandle(err) {
			k.dropLoaded()
			k.dev.forgetParents()
			continue
		}
		return nil, err
	}
}

func (k *Key) trySign(digest []byte) (*tpm2.TPMTSignature, error) {
	if err := k.prepare(); err != nil {
		return nil, err
	}
	sess, err := k.session()
	if err != nil {
		return nil, err
	}
	h := k.handle
	if k.blob != nil {
		h = k.loaded
	}
	rsp, err := tpm2.Sign{
		KeyHandle: tpm2.AuthHandle{Handle: h, Name: k.objName, Auth: sess},
		Digest:    tpm2.TPM2BDigest{Buffer: digest},
		InScheme: tpm2.TPMTSigScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
		},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(k.dev.tpm)
	if err != nil {
		return nil, err
	}
	return &rsp.Signature, nil
}

// dropSession flushes the key's HMAC session. Runs on the device's worker.
func (k *Key) dropSession() {
	if k.sess != nil {
		k.dev.flush(k.sess.Handle())
		k.sess = nil
	}
}

// dropLoaded flushes the loaded blob. Runs on the device's worker.
func (k *Key) dropLoaded() {
	if k.loaded != 0 {
		k.dev.flush(k.loaded)
		k.loaded = 0
	}
	k.ready = false
}

// derSignature converts a TPM ECDSA signature to ASN.1 DER and checks it
// against the public key, so that a key swapped at a persistent handle, or
// a faulty TPM, cannot produce a signature the key's verifiers reject.
func (k *Key) derSignature(digest []byte, sig *tpm2.TPMTSignature) ([]byte, error) {
	if sig.SigAlg != tpm2.TPMAlgECDSA {
		return nil, fmt.Errorf("TPM returned a signature of algorithm %#x, want ECDSA", uint16(sig.SigAlg))
	}
	ecc, err := sig.Signature.ECDSA()
	if err != nil {
		return nil, fmt.Errorf("TPM signature: %w", err)
	}
	if ecc.Hash != tpm2.TPMAlgSHA256 {
		return nil, fmt.Errorf("TPM signature hash %#x, want SHA-256", uint16(ecc.Hash))
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(ecc.SignatureR.Buffer),
		new(big.Int).SetBytes(ecc.SignatureS.Buffer),
	})
	if err != nil {
		return nil, fmt.Errorf("encode TPM signature: %w", err)
	}
	if !ecdsa.VerifyASN1(k.pub, digest, der) {
		return nil, errors.New("TPM signature does not verify with the key's public key")
	}
	return der, nil
}
