package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-tpm/tpm2"

	"github.com/stellaops/signer-agent/internal/fsutil"
)

// CreateOptions says where CreateKey makes a key and how it is protected.
type CreateOptions struct {
	// Device is the TPM character device, an absolute path. Empty means
	// DefaultDevice, unless Sim is set.
	Device string
	// Sim is the host:port of an swtpm simulator's command port (its
	// control channel is on the next port). Exclusive with Device.
	Sim string
	// BlobPath is where the key blob (a TSS2 PEM key file) is written: an
	// absolute path to a file that does not exist yet. Exclusive with
	// PersistentHandle.
	BlobPath string
	// PersistentHandle is the free persistent handle (0x81000000 to
	// 0x81ffffff) the key is made persistent at, under the owner hierarchy
	// (whose auth value must be empty).
	PersistentHandle uint32
	// AuthFile is an absolute path to the key's auth value (one trailing
	// newline is dropped; at most 32 bytes). With one the key is subject
	// to dictionary-attack protection; empty makes a key with no auth value.
	AuthFile string
}

// CreateKey makes an ECDSA P-256 signing key (scheme ECDSA with SHA-256) in
// the TPM under the storage root key and stores it as a key blob or at a
// persistent handle. It returns the key's URI, for the agent's
// configuration, and its public key. The auth value reaches the TPM
// encrypted, through a session salted with the SRK.
func CreateKey(ctx context.Context, opts CreateOptions) (uri string, pub crypto.PublicKey, err error) {
	u, err := opts.keyURI()
	if err != nil {
		return "", nil, fmt.Errorf("tpm create key: %w", err)
	}
	var auth []byte
	if u.authFile != "" {
		if auth, err = readAuth(u.authFile); err != nil {
			return "", nil, fmt.Errorf("tpm create key: %w", err)
		}
		defer clear(auth)
	}
	if u.blobPath != "" {
		if _, err := os.Lstat(u.blobPath); err == nil {
			return "", nil, fmt.Errorf("tpm create key: %s already exists", u.blobPath)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("tpm create key: %w", err)
		}
	}
	d := acquire(u)
	defer d.release()
	var (
		kf       *keyFile
		ecdsaPub *ecdsa.PublicKey
	)
	// The operation may outlive this call (see device.run), so it owns a
	// copy of the auth value, and it checks ctx before persisting a key.
	opAuth := bytes.Clone(auth)
	err = d.run(ctx, once, func() error {
		defer clear(opAuth)
		var err error
		kf, ecdsaPub, err = create(ctx, d, u, opAuth)
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("tpm create key %s: %w", u.name(), classify(err))
	}
	if kf != nil {
		if err := writeKeyFile(u.blobPath, kf); err != nil {
			return "", nil, fmt.Errorf("tpm create key: %w", err)
		}
	}
	return u.String(), ecdsaPub, nil
}

// keyURI checks the options and returns the URI of the key they describe.
func (o CreateOptions) keyURI() (keyURI, error) {
	u := keyURI{handle: tpm2.TPMHandle(o.PersistentHandle)}
	switch {
	case (o.BlobPath == "") == (o.PersistentHandle == 0):
		return keyURI{}, errors.New("give a blob path or a persistent handle, one of the two")
	case o.BlobPath != "" && !filepath.IsAbs(o.BlobPath):
		return keyURI{}, fmt.Errorf("blob path %q is not absolute", o.BlobPath)
	case o.PersistentHandle != 0 && !isPersistent(u.handle):
		return keyURI{}, fmt.Errorf("handle 0x%08x is not a persistent handle (0x81000000 to 0x81ffffff)", o.PersistentHandle)
	case o.Device != "" && o.Sim != "":
		return keyURI{}, errors.New("give a device or a simulator, not both")
	case o.Device != "" && !filepath.IsAbs(o.Device):
		return keyURI{}, fmt.Errorf("device %q is not an absolute path", o.Device)
	case o.AuthFile != "" && !filepath.IsAbs(o.AuthFile):
		return keyURI{}, fmt.Errorf("auth file %q is not an absolute path", o.AuthFile)
	}
	if o.BlobPath != "" {
		u.blobPath = filepath.Clean(o.BlobPath)
	}
	if o.AuthFile != "" {
		u.authFile = filepath.Clean(o.AuthFile)
	}
	switch {
	case o.Sim != "":
		sim, err := parseSimAddress(o.Sim)
		if err != nil {
			return keyURI{}, err
		}
		u.sim = sim
	case o.Device != "":
		u.device = filepath.Clean(o.Device)
	default:
		u.device = DefaultDevice
	}
	// The URI must read back as the same key.
	if back, err := parseURI(u.String()); err != nil || back != u {
		return keyURI{}, fmt.Errorf("the key cannot be named by a tpm: URI (%v)", err)
	}
	return u, nil
}

// signingTemplate is the public template of the keys CreateKey makes: an
// unrestricted ECC P-256 signing key bound to this TPM and parent, whose
// scheme is ECDSA with SHA-256. Keys with an auth value are subject to
// dictionary-attack protection.
func signingTemplate(withAuth bool) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:            true,
			FixedParent:         true,
			SensitiveDataOrigin: true,
			UserWithAuth:        true,
			NoDA:                !withAuth,
			SignEncrypt:         true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
	}
}

// create makes the key in the TPM. For a blob it returns the key file to
// write; for a persistent key it persists it. Runs on the device's worker.
func create(ctx context.Context, d *device, u keyURI, auth []byte) (*keyFile, *ecdsa.PublicKey, error) {
	parentHandle, p, err := d.defaultParent()
	if err != nil {
		return nil, nil, err
	}
	if u.handle != 0 {
		_, _, err := d.readPublic(u.handle)
		switch {
		case err == nil:
			return nil, nil, fmt.Errorf("persistent handle 0x%08x is in use", uint32(u.handle))
		case !errors.Is(err, tpm2.TPMRCHandle):
			return nil, nil, fmt.Errorf("check persistent handle: %w", err)
		}
	}
	parentAuth := tpm2.Session(tpm2.PasswordAuth(nil))
	if auth != nil {
		// A one-shot session salted with the SRK; the new key's auth value
		// (the first command parameter) travels AES-CFB encrypted.
		parentAuth = tpm2.HMAC(tpm2.TPMAlgSHA256, 16,
			tpm2.Salted(p.handle, p.pub),
			tpm2.AESEncryption(128, tpm2.EncryptIn))
	}
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: parentAuth},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: auth},
		}},
		InPublic: tpm2.New2B(signingTemplate(auth != nil)),
	}.Execute(d.tpm)
	if err != nil {
		return nil, nil, fmt.Errorf("create key: %w", err)
	}
	pt, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, nil, fmt.Errorf("created key: %w", err)
	}
	pub, err := signingPublicKey(pt)
	if err != nil {
		return nil, nil, fmt.Errorf("created key: %w", err)
	}
	if u.handle == 0 {
		return &keyFile{emptyAuth: auth == nil, parent: parentHandle.handle, public: rsp.OutPublic, private: rsp.OutPrivate, pub: pub}, pub, nil
	}
	loaded, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: p.handle, Name: p.name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    rsp.OutPrivate,
		InPublic:     rsp.OutPublic,
	}.Execute(d.tpm)
	if err != nil {
		return nil, nil, fmt.Errorf("load the new key: %w", err)
	}
	d.track(loaded.ObjectHandle)
	defer d.flush(loaded.ObjectHandle)
	if err := ctx.Err(); err != nil {
		return nil, nil, err // the caller is gone: persist nothing
	}
	if _, err := (tpm2.EvictControl{
		Auth:             tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		ObjectHandle:     tpm2.NamedHandle{Handle: loaded.ObjectHandle, Name: loaded.Name},
		PersistentHandle: u.handle,
	}).Execute(d.tpm); err != nil {
		return nil, nil, fmt.Errorf("persist the key at 0x%08x: %w", uint32(u.handle), err)
	}
	return nil, pub, nil
}

// writeKeyFile writes a key blob to a new file, mode 0600, atomically and
// durably; an existing file is never replaced (fs.ErrExist).
func writeKeyFile(path string, kf *keyFile) error {
	data, err := marshalKeyFile(kf)
	if err != nil {
		return err
	}
	return fsutil.CreateFileAtomic(path, data, 0o600)
}
