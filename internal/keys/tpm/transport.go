package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// Transport limits.
const (
	// dialTimeout bounds connecting to a simulator.
	dialTimeout = 5 * time.Second
	// ioTimeout bounds one command/response exchange with a simulator: a
	// wedged simulator becomes a transport failure (and a reconnect) rather
	// than a connection held forever. Callers do not wait that long; their
	// ctx ends the wait (see device.run).
	ioTimeout = 30 * time.Second
	// maxResponse caps a TPM response (real TPMs answer within 4 KiB).
	maxResponse = 64 << 10
)

// transportError is a failure to exchange bytes with the TPM, as opposed to
// an error code the TPM returned. The device drops its connection on one,
// and the next operation reconnects.
type transportError struct {
	op  string
	err error
}

func (e *transportError) Error() string { return e.op + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// openDevice opens a TPM character device (go-tpm's linuxtpm transport,
// which also retries commands the TPM answers with TPM_RC_RETRY).
func openDevice(path string) (transport.TPMCloser, error) {
	t, err := linuxtpm.Open(path)
	if err != nil {
		return nil, &transportError{op: "open TPM device " + path, err: err}
	}
	return deviceTransport{t}, nil
}

// deviceTransport marks the errors of a device transport as transport
// failures.
type deviceTransport struct{ t transport.TPMCloser }

func (d deviceTransport) Send(cmd []byte) ([]byte, error) {
	rsp, err := d.t.Send(cmd)
	if err != nil {
		return nil, &transportError{op: "TPM device", err: err}
	}
	return rsp, nil
}

func (d deviceTransport) Close() error { return d.t.Close() }

// simTransport speaks swtpm's native TCP protocol: raw TPM command bytes on
// the command port, the response read back by its header's size. (go-tpm's
// tcp transport speaks the Microsoft simulator's framing, reads a response
// with a single Read and sets no deadlines.)
type simTransport struct {
	addr string
	conn net.Conn
}

func dialSim(addr string) (*simTransport, error) {
	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return nil, &transportError{op: "connect to TPM simulator", err: err}
	}
	return &simTransport{addr: addr, conn: conn}, nil
}

// Send implements transport.TPM. Like go-tpm's device transport it sends a
// command again while the TPM answers TPM_RC_RETRY (it does so, for one,
// for the first use of a DA-protected key after an unorderly shutdown),
// waiting 1, 2, 4, … ms, up to about 2 s in all.
func (s *simTransport) Send(cmd []byte) ([]byte, error) {
	wait := time.Millisecond
	for {
		rsp, err := s.exchange(cmd)
		if err != nil || binary.BigEndian.Uint32(rsp[6:10]) != uint32(tpm2.TPMRCRetry) || wait > time.Second {
			return rsp, err
		}
		time.Sleep(wait)
		wait *= 2
	}
}

// exchange sends one command and reads its response. The response is read
// into one buffer (swtpm writes it at once, so one read usually gets it
// all) and its header's size says when it is complete.
func (s *simTransport) exchange(cmd []byte) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return nil, &transportError{op: "TPM simulator " + s.addr, err: err}
	}
	if err := s.conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return fail(err)
	}
	if _, err := s.conn.Write(cmd); err != nil {
		return fail(err)
	}
	const hdrLen = 10 // tag, size, response code
	closed := func(err error) ([]byte, error) {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("connection closed")
		}
		return fail(err)
	}
	buf := make([]byte, 4096)
	n, err := io.ReadAtLeast(s.conn, buf, hdrLen)
	if err != nil {
		return closed(err)
	}
	size := int(binary.BigEndian.Uint32(buf[2:6]))
	if size < hdrLen || size > maxResponse {
		return fail(fmt.Errorf("response size %d out of range", size))
	}
	if n > size {
		return fail(fmt.Errorf("%d bytes after the %d-byte response", n-size, size))
	}
	if size > len(buf) {
		buf = append(buf, make([]byte, size-len(buf))...)
	}
	if _, err := io.ReadFull(s.conn, buf[n:size]); err != nil {
		return closed(err)
	}
	return buf[:size], nil
}

// Close implements transport.TPMCloser.
func (s *simTransport) Close() error { return s.conn.Close() }

// swtpm control channel commands (swtpm's tpm_ioctl.h).
const (
	swtpmCmdInit = 2 // CMD_INIT: initialize the TPM (as at power-on)
)

// initSim initializes a simulator through its control channel, for an
// swtpm started without --flags not-need-init. TPM2_Startup follows.
func initSim(ctrl string) error {
	conn, err := net.DialTimeout("tcp", ctrl, dialTimeout)
	if err != nil {
		return &transportError{op: "connect to TPM simulator control channel", err: err}
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return &transportError{op: "TPM simulator control channel", err: err}
	}
	// Command code, then the init flags (0: keep volatile state).
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:], swtpmCmdInit)
	if _, err := conn.Write(req[:]); err != nil {
		return &transportError{op: "TPM simulator control channel", err: err}
	}
	var res [4]byte
	if _, err := io.ReadFull(conn, res[:]); err != nil {
		return &transportError{op: "TPM simulator control channel", err: err}
	}
	if rc := binary.BigEndian.Uint32(res[:]); rc != 0 {
		return fmt.Errorf("TPM simulator control channel: CMD_INIT failed with 0x%x", rc)
	}
	return nil
}
