package kms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync/atomic"
	"time"

	sigkms "github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/kms/aws"
	"github.com/sigstore/sigstore/pkg/signature/kms/azure"
	"github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	"github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/stellaops/signer-agent/internal/keys"
)

// DefaultSignTimeout bounds Sign, which has no ctx: the longest it waits
// for the service. SignContext takes the caller's ctx instead.
const DefaultSignTimeout = 30 * time.Second

// provider describes one URI scheme. Importing the provider's package also
// registers it with sigstore's kms.Get.
type provider struct {
	// validRef checks the whole URI against the provider's syntax.
	validRef func(ref string) error
	// p384 reports whether the service signs a SHA-256 digest with a P-384
	// key (Vault does; the cloud services insist on SHA-384).
	p384 bool
}

// providers maps a URI scheme to its provider. Tests add fake ones.
var providers = map[string]provider{
	"awskms":     {validRef: aws.ValidReference},
	"gcpkms":     {validRef: gcp.ValidReference},
	"azurekms":   {validRef: azure.ValidReference},
	"hashivault": {validRef: hashivault.ValidReference, p384: true},
}

// Key is a key held by a KMS. It is a keys.Key and a keys.ContextSigner,
// and safe for concurrent use.
type Key struct {
	uri    string
	sv     sigkms.SignerVerifier
	pub    *ecdsa.PublicKey
	closed atomic.Bool
}

var (
	_ keys.Key           = (*Key)(nil)
	_ keys.ContextSigner = (*Key)(nil)
)

// Open opens the key named by an awskms://, gcpkms://, azurekms:// or
// hashivault:// URI and fetches its public key. A URI of another scheme
// fails with keys.ErrUnsupportedScheme, a key the agent cannot sign with
// with keys.ErrUnsupportedKey, and a failure of the service with
// keys.ErrBackendUnavailable.
func Open(ctx context.Context, uri string) (keys.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	scheme := keys.Scheme(uri)
	p, ok := providers[scheme]
	if !ok {
		return nil, fmt.Errorf("%w: %q (want awskms, gcpkms, azurekms or hashivault)", keys.ErrUnsupportedScheme, scheme)
	}
	// The provider's own check: kms.Get would otherwise hand a URI no
	// provider claims (a capitalised scheme, say) to a plugin program.
	if err := p.validRef(uri); err != nil {
		return nil, fmt.Errorf("kms key URI: %w", err)
	}
	sv, err := call(ctx, func() (sigkms.SignerVerifier, error) {
		return sigkms.Get(ctx, uri, crypto.SHA256)
	})
	if err != nil {
		return nil, backendError(ctx, uri, "open", err)
	}
	pub, err := call(ctx, func() (crypto.PublicKey, error) {
		return sv.PublicKey(options.WithContext(ctx))
	})
	if err != nil {
		return nil, backendError(ctx, uri, "public key", err)
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("kms key %s: %w: %T (want an ECDSA P-256 key)", uri, keys.ErrUnsupportedKey, pub)
	}
	switch {
	case ec.Curve == elliptic.P256():
	case ec.Curve == elliptic.P384() && p.p384:
	case ec.Curve == elliptic.P384():
		return nil, fmt.Errorf("kms key %s: %w: %s signs P-384 keys only with SHA-384 and the agent signs with SHA-256 (use a P-256 key)", uri, keys.ErrUnsupportedKey, scheme)
	default:
		return nil, fmt.Errorf("kms key %s: %w: ECDSA curve %s", uri, keys.ErrUnsupportedKey, ec.Curve.Params().Name)
	}
	return &Key{uri: uri, sv: sv, pub: ec}, nil
}

// Public returns the key's public key, as fetched by Open.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Sign signs a SHA-256 digest (opts must name crypto.SHA256) and returns an
// ASN.1 DER ECDSA signature. rand is not used: the service makes the nonce.
// It waits at most DefaultSignTimeout; see SignContext.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultSignTimeout)
	defer cancel()
	sig, err := k.SignContext(ctx, digest, opts)
	if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, keys.ErrBackendUnavailable) {
		// No caller is waiting on a deadline of its own: a service that
		// does not answer in time is unavailable.
		err = fmt.Errorf("%w: %w", keys.ErrBackendUnavailable, err)
	}
	return sig, err
}

// SignContext is Sign with a ctx, passed to the service's client. When ctx
// ends before the service answers it returns ctx's error at once (a
// provider that ignores ctx, such as Vault's, finishes in the background
// and its answer is dropped).
func (k *Key) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if k.closed.Load() {
		return nil, keys.ErrClosed
	}
	alg, _, _ := keys.Algorithm(k.pub)
	if opts == nil {
		return nil, fmt.Errorf("sign with %s: no signer options", alg)
	}
	if h := opts.HashFunc(); h != crypto.SHA256 {
		return nil, fmt.Errorf("sign with %s: digest hash %v does not match the key's algorithm", alg, hashName(h))
	}
	if len(digest) != sha256.Size {
		return nil, fmt.Errorf("sign with %s: digest is %d bytes, want %d", alg, len(digest), sha256.Size)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The call may outlive this one; it gets its own copy of the digest.
	d := append([]byte(nil), digest...)
	sig, err := call(ctx, func() ([]byte, error) {
		return k.sv.SignMessage(nil,
			options.WithContext(ctx),
			options.WithDigest(d),
			options.WithCryptoSignerOpts(crypto.SHA256))
	})
	if err != nil {
		return nil, backendError(ctx, k.uri, "sign", err)
	}
	if !ecdsa.VerifyASN1(k.pub, d, sig) {
		// A rotated or replaced key, or a garbled answer: either way not a
		// signature anyone can verify with Public().
		return nil, fmt.Errorf("kms key %s: sign: %w: the signature returned does not verify with the key's public key (key rotated or replaced?)", k.uri, keys.ErrBackendUnavailable)
	}
	return sig, nil
}

// Close marks the key closed; later signatures fail with keys.ErrClosed.
// The providers hold no connection that needs closing. It is idempotent.
func (k *Key) Close() error {
	k.closed.Store(true)
	return nil
}

// String names the key by its URI.
func (k *Key) String() string { return "kms key " + k.uri }

// call runs f, returning early with ctx's error when ctx ends first: not
// every provider honours ctx.
func call[T any](ctx context.Context, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// backendError wraps a provider failure in keys.ErrBackendUnavailable. When
// ctx has ended, the failure is the caller's deadline or cancellation, and
// the error wraps ctx's error instead.
func backendError(ctx context.Context, uri, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(err, ctxErr) {
			return fmt.Errorf("kms key %s: %s: %w", uri, op, err)
		}
		return fmt.Errorf("kms key %s: %s: %w (%w)", uri, op, ctxErr, err)
	}
	return fmt.Errorf("kms key %s: %s: %w: %w", uri, op, keys.ErrBackendUnavailable, err)
}

func hashName(h crypto.Hash) string {
	if h == 0 {
		return "none (unhashed message)"
	}
	return h.String()
}

// Schemes returns the URI schemes Open accepts, sorted.
func Schemes() []string {
	out := make([]string, 0, len(providers))
	for s := range providers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
