package tpm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/stellaops/signer-agent/internal/keys"
)

// srkHandle is where the TCG provisioning guidance puts a persistent
// storage root key.
const srkHandle tpm2.TPMHandle = 0x81000001

// closeTimeout bounds the TPM work of Close (flushing what a key loaded).
const closeTimeout = 10 * time.Second

// A device is one TPM, a character device or a simulator, shared by every
// key open on it. One worker goroutine runs its operations (a few TPM
// commands each) one at a time, in arrival order; waiting for the worker
// honours the caller's ctx. Running them on one goroutine means the next
// operation starts as soon as the last one ends, without handing the TPM
// from goroutine to goroutine (which, on a busy node, waits for the Go
// scheduler while the TPM idles). A transport failure drops the
// connection, and the next operation reconnects: objects a key had loaded
// are then loaded again (their connection generation changed).
type device struct {
	id   string // "device /dev/tpmrm0" or "simulator host:port"
	path string // character device, or ""
	sim  string // simulator command address, or ""
	refs int    // keys using the device; guarded by pool.mu

	// ops hands operations to the worker; quit stops it (after the last
	// key released the device).
	ops   chan *deviceOp
	quit  chan struct{}
	start sync.Once

	// Owned by the worker.
	tpm        transport.TPMCloser // nil while disconnected
	gen        uint64              // connection generation, bumped by connect
	parents    map[parentID]*parentKey
	transients map[tpm2.TPMHandle]bool // transient objects and sessions we loaded
	stale      []tpm2.TPMHandle        // transients of a dropped simulator connection
}

// deviceOp is one operation for the worker.
type deviceOp struct {
	ctx  context.Context
	m    mode
	fn   func() error
	done chan error // buffered: the worker never waits for the caller
}

// parentID names a parent key: a persistent storage key, or the primary
// under TPM_RH_OWNER created from a template.
type parentID struct {
	handle tpm2.TPMHandle
	// engine selects, for TPM_RH_OWNER, the template tpm2-tss-engine and
	// the OpenSSL tpm2 provider use for key files whose parent is
	// 0x40000001: the ECC SRK template with an empty unique field (the TCG
	// template has 32 zero bytes each for x and y, so its key differs).
	engine bool
}

// parentKey is a loaded storage key: the parent of key blobs and the salt
// key of authorization sessions.
type parentKey struct {
	handle tpm2.TPMHandle
	name   tpm2.TPM2BName
	pub    tpm2.TPMTPublic
}

// pool shares devices between keys: one connection and one queue per TPM
// in the process, however many keys live on it.
var pool = struct {
	mu      sync.Mutex
	devices map[string]*device
}{devices: map[string]*device{}}

// acquire returns the device k names, creating it if no key uses it yet.
// Each acquire is paired with a release.
func acquire(k keyURI) *device {
	pool.mu.Lock()
	defer pool.mu.Unlock()
	id := k.deviceID()
	d := pool.devices[id]
	if d == nil {
		d = &device{id: id, path: k.device, sim: k.sim, ops: make(chan *deviceOp), quit: make(chan struct{})}
		pool.devices[id] = d
	}
	d.refs++
	return d
}

// release drops a reference; the last one flushes what the device loaded
// and closes its connection.
func (d *device) release() {
	pool.mu.Lock()
	d.refs--
	last := d.refs == 0
	if last {
		delete(pool.devices, d.id)
	}
	pool.mu.Unlock()
	if !last {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = d.run(ctx, noConnect, func() error {
		if d.tpm != nil {
			for h := range d.transients {
				d.flush(h)
			}
			d.disconnect()
		}
		return nil
	})
	close(d.quit)
}

// mode says how an operation uses the connection.
type mode int

const (
	// once runs the operation once; a transport failure is its result.
	once mode = iota
	// retry runs an idempotent operation (loading, signing) again on a
	// fresh connection when the one it found had broken in the meantime
	// (say the simulator restarted): the TPM coming back is then seen by
	// the first operation after it, not the second.
	retry
	// noConnect runs the operation without connecting (Close's cleanup).
	noConnect
)

// run runs op on the worker, with the device connected and to itself. It
// returns ctx's error as soon as ctx ends, whether op is still waiting for
// the worker or already running; a running op completes in the background
// and keeps the device until it does, so the TPM never sees two
// interleaved commands. An op whose ctx ended before the worker reached it
// is not run.
func (d *device) run(ctx context.Context, m mode, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.start.Do(func() { go d.work() })
	o := &deviceOp{ctx: ctx, m: m, fn: op, done: make(chan error, 1)}
	select {
	case d.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-d.quit:
		return keys.ErrClosed
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// work is the device's worker goroutine.
func (d *device) work() {
	for {
		select {
		case o := <-d.ops:
			if err := o.ctx.Err(); err != nil {
				o.done <- err
				continue
			}
			o.done <- d.locked(o.m, o.fn)
		case <-d.quit:
			return
		}
	}
}

// locked runs op on the worker.
func (d *device) locked(m mode, op func() error) error {
	fresh := false
	if m != noConnect && d.tpm == nil {
		if err := d.connect(); err != nil {
			return err
		}
		fresh = true
	}
	err := op()
	if d.tpm != nil && d.lost(err) {
		d.disconnect()
		if m == retry && !fresh {
			if err := d.connect(); err != nil {
				return err
			}
			if err = op(); d.tpm != nil && d.lost(err) {
				d.disconnect()
			}
			return err
		}
	}
	return err
}

// lost reports whether err says the connection, or the TPM state behind
// it, is gone, so that the device must start over.
func (d *device) lost(err error) bool {
	return isTransport(err) || errors.Is(err, tpm2.TPMRCInitialize)
}

// connect opens the transport, makes sure the TPM is started and, for a
// simulator, flushes what a dropped connection left loaded.
func (d *device) connect() error {
	var (
		t   transport.TPMCloser
		err error
	)
	if d.sim != "" {
		t, err = dialSim(d.sim)
	} else {
		t, err = openDevice(d.path)
	}
	if err != nil {
		return err
	}
	if err := startup(t, d.sim); err != nil {
		_ = t.Close()
		return err
	}
	d.tpm = t
	d.gen++
	d.parents = map[parentID]*parentKey{}
	d.transients = map[tpm2.TPMHandle]bool{}
	// A simulator keeps transient objects across connections (a device's
	// resource manager flushes them when the file closes). Errors are
	// expected when the simulator restarted in between.
	for _, h := range d.stale {
		if _, err := (tpm2.FlushContext{FlushHandle: h}).Execute(t); err != nil {
			var te *transportError
			if errors.As(err, &te) {
				d.disconnect()
				return err
			}
		}
	}
	d.stale = nil
	return nil
}

// disconnect closes the transport. Handles loaded through it are invalid
// from now on (the generation changes at the next connect).
func (d *device) disconnect() {
	if d.sim != "" {
		for h := range d.transients {
			d.stale = append(d.stale, h)
		}
	}
	d.transients = nil
	d.parents = nil
	_ = d.tpm.Close()
	d.tpm = nil
}

// startup checks that the TPM answers and is started: an swtpm started
// without not-need-init is initialized through its control channel, and a
// TPM that was not started gets TPM2_Startup(CLEAR).
func startup(t transport.TPM, sim string) error {
	probe := tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(tpm2.TPMPTManufacturer), PropertyCount: 1}
	initialized := false
	for range 3 {
		_, err := probe.Execute(t)
		var rc tpm2.TPMRC
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &rc):
			return err
		case rc == tpm2.TPMRCFailure && sim != "" && !initialized:
			initialized = true
			if err := initSim(ctrlAddress(sim)); err != nil {
				return err
			}
		case rc == tpm2.TPMRCInitialize:
			if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(t); err != nil {
				return fmt.Errorf("TPM2_Startup: %w", err)
			}
		default:
			return fmt.Errorf("TPM does not answer: %w", err)
		}
	}
	return errors.New("TPM does not start")
}

// track records a transient handle (object or session) loaded through the
// current connection.
func (d *device) track(h tpm2.TPMHandle) { d.transients[h] = true }

// flush unloads a tracked handle, best effort: a failure leaves at worst a
// loaded object the resource manager or the next reset removes.
func (d *device) flush(h tpm2.TPMHandle) {
	if h == 0 || !d.transients[h] {
		return
	}
	delete(d.transients, h)
	_, _ = (tpm2.FlushContext{FlushHandle: h}).Execute(d.tpm)
}

// forgetParents flushes the cached parents, which are loaded again when
// next needed.
func (d *device) forgetParents() {
	for id := range d.parents {
		d.dropParent(id)
	}
}

// dropParent flushes a cached parent (a no-op for a persistent one).
// Nothing holds on to a parent between operations, so this is safe.
func (d *device) dropParent(id parentID) {
	if p := d.parents[id]; p != nil {
		d.flush(p.handle)
		delete(d.parents, id)
	}
}

// parent returns the storage key a key blob names as its parent:
// TPM_RH_OWNER for the ECC SRK created as a primary from a template (the
// same key each time: the owner seed and the template determine it), or
// the persistent handle of a storage key.
func (d *device) parent(id parentID) (*parentKey, error) {
	if p := d.parents[id]; p != nil {
		return p, nil
	}
	var p *parentKey
	switch {
	case id.handle == tpm2.TPMRHOwner:
		template := tpm2.ECCSRKTemplate
		if id.engine {
			template.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{})
		}
		rsp, err := tpm2.CreatePrimary{
			PrimaryHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
			InPublic:      tpm2.New2B(template),
		}.Execute(d.tpm)
		if err != nil {
			return nil, fmt.Errorf("create the storage root key (ECC SRK template) under the owner hierarchy: %w", err)
		}
		d.track(rsp.ObjectHandle)
		pub, err := rsp.OutPublic.Contents()
		if err != nil {
			d.flush(rsp.ObjectHandle)
			return nil, fmt.Errorf("storage root key: %w", err)
		}
		p = &parentKey{handle: rsp.ObjectHandle, name: rsp.Name, pub: *pub}
	case isPersistent(id.handle) && !id.engine:
		pub, name, err := d.readPublic(id.handle)
		if err != nil {
			return nil, fmt.Errorf("parent key 0x%08x: %w", uint32(id.handle), err)
		}
		if !isStorageKey(pub) {
			return nil, fmt.Errorf("parent key 0x%08x is not a storage key (restricted decrypt ECC or RSA)", uint32(id.handle))
		}
		p = &parentKey{handle: id.handle, name: name, pub: *pub}
	default:
		return nil, fmt.Errorf("parent 0x%08x is neither the owner hierarchy nor a persistent handle", uint32(id.handle))
	}
	d.parents[id] = p
	return p, nil
}

// defaultParent is the SRK new keys are created under and sessions are
// salted with: a storage key persisted at the handle the provisioning
// guidance gives it, if there is one, or else the primary from the TCG
// ECC SRK template. Its handle is what a key blob records as its parent.
func (d *device) defaultParent() (parentID, *parentKey, error) {
	id := parentID{handle: srkHandle}
	if p, err := d.parent(id); err == nil {
		return id, p, nil
	} else if isTransport(err) {
		return parentID{}, nil, err
	}
	id = parentID{handle: tpm2.TPMRHOwner}
	p, err := d.parent(id)
	return id, p, err
}

// readPublic reads the public area of a persistent object. A free handle
// fails with an error matching tpm2.TPMRCHandle.
func (d *device) readPublic(h tpm2.TPMHandle) (*tpm2.TPMTPublic, tpm2.TPM2BName, error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(d.tpm)
	if err != nil {
		return nil, tpm2.TPM2BName{}, err
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, tpm2.TPM2BName{}, err
	}
	return pub, rsp.Name, nil
}

// isStorageKey reports whether pub can parent keys and salt sessions.
func isStorageKey(pub *tpm2.TPMTPublic) bool {
	a := pub.ObjectAttributes
	return (pub.Type == tpm2.TPMAlgECC || pub.Type == tpm2.TPMAlgRSA) &&
		a.Restricted && a.Decrypt && !a.SignEncrypt
}

// isTransport reports whether err is a transport failure.
func isTransport(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}
