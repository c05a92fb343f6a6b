package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/stellaops/signer-agent/internal/fsutil"
)

// fileURI is a parsed file: key URI.
type fileURI struct {
	path         string
	passwordFile string // absolute path, or ""
	passwordEnv  string // variable name, or ""
}

// parseFileURI accepts file:/abs/path.pem and file:///abs/path.pem with at
// most one of password-file=/abs/path and password-env=NAME.
func parseFileURI(uri string) (fileURI, error) {
	// Errors name the path, never the whole URI: a misplaced password
	// could sit in its query.
	u, err := parseURI(uri)
	if err != nil {
		return fileURI{}, fmt.Errorf("file key URI: %w", err)
	}
	switch {
	case u.Opaque != "":
		return fileURI{}, fmt.Errorf("file key URI: relative path %q; use file:/absolute/path.pem", u.Opaque)
	case u.Host != "" || u.User != nil:
		return fileURI{}, errors.New("file key URI: a host is not allowed; use file:/absolute/path.pem or file:///absolute/path.pem")
	case u.Path == "":
		return fileURI{}, errors.New("file key URI: no path")
	case !filepath.IsAbs(u.Path):
		return fileURI{}, fmt.Errorf("file key URI: relative path %q; use file:/absolute/path.pem", u.Path)
	case u.Fragment != "":
		return fileURI{}, fmt.Errorf("file key URI %s: fragments are not allowed", u.Path)
	}
	q, err := SingleValuedQuery(u.RawQuery, "password-file", "password-env")
	if err != nil {
		return fileURI{}, fmt.Errorf("file key URI %s: %w", u.Path, err)
	}
	f := fileURI{path: filepath.Clean(u.Path)}
	pwFile, hasFile := q["password-file"]
	pwEnv, hasEnv := q["password-env"]
	switch {
	case hasFile && hasEnv:
		return fileURI{}, fmt.Errorf("file key URI %s: give password-file or password-env, not both", u.Path)
	case hasFile:
		if !filepath.IsAbs(pwFile) {
			return fileURI{}, fmt.Errorf("file key URI %s: password-file must be an absolute path", u.Path)
		}
		f.passwordFile = filepath.Clean(pwFile)
	case hasEnv:
		if pwEnv == "" {
			return fileURI{}, fmt.Errorf("file key URI %s: password-env needs a variable name", u.Path)
		}
		f.passwordEnv = pwEnv
	}
	return f, nil
}

// openFile opens a file: key.
func (o *Opener) openFile(uri string) (Key, error) {
	f, err := parseFileURI(uri)
	if err != nil {
		return nil, err
	}
	password, err := o.password(f)
	if err != nil {
		return nil, fmt.Errorf("file key %s: %w", f.path, err)
	}
	defer clear(password)
	data, err := o.readFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("file key: %w", err)
	}
	defer clear(data)
	priv, err := ParsePrivateKeyPEM(data, password)
	if err != nil {
		return nil, fmt.Errorf("file key %s: %w", f.path, err)
	}
	key, err := newSoftKey(priv)
	if err != nil {
		return nil, fmt.Errorf("file key %s: %w", f.path, err)
	}
	return key, nil
}

// password returns the key's password: nil when the URI names no source,
// otherwise a non-nil (possibly empty) slice the caller clears. A password
// file loses one trailing newline ("\n" or "\r\n").
func (o *Opener) password(f fileURI) ([]byte, error) {
	switch {
	case f.passwordFile != "":
		b, err := o.readFile(f.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		if b == nil {
			b = []byte{}
		}
		if bytes.HasSuffix(b, []byte("\r\n")) {
			return b[:len(b)-2], nil
		}
		return bytes.TrimSuffix(b, []byte("\n")), nil
	case f.passwordEnv != "":
		v := o.getenv(f.passwordEnv)
		if v == "" {
			return nil, fmt.Errorf("password-env: environment variable %s is unset or empty", f.passwordEnv)
		}
		return []byte(v), nil
	}
	return nil, nil
}

// GenerateFileKey creates a new key for alg (AlgECDSAP256, AlgECDSAP384 or
// AlgEd25519; "" means AlgECDSAP256), writes it unencrypted as a PKCS#8
// "PRIVATE KEY" PEM at path with mode 0600, and returns it. The write is
// atomic and durable (fsutil.WriteFileAtomic), so path either keeps its old
// content or holds the whole new key; an existing file is replaced (use
// CreateFileKey where that must never happen). Callers write the public key
// themselves (MarshalPublicKeyPEM).
func GenerateFileKey(path string, alg string) (Key, error) {
	return generateFileKey(path, alg, fsutil.WriteFileAtomic)
}

// CreateFileKey is GenerateFileKey for a path that must not exist yet: it
// never replaces a file. When path exists it fails with an error matching
// fs.ErrExist and generates nothing durable (key rotation, dev set-up).
func CreateFileKey(path string, alg string) (Key, error) {
	return generateFileKey(path, alg, fsutil.CreateFileAtomic)
}

func generateFileKey(path, alg string, write func(string, []byte, fs.FileMode) error) (Key, error) {
	priv, err := generatePrivateKey(alg)
	if err != nil {
		return nil, err
	}
	data, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	if err := write(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	return newSoftKey(priv)
}
