package tpm

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2"

	"github.com/stellaops/signer-agent/internal/keys"
)

// DefaultDevice is the TPM a URI without device= or sim= names: the
// kernel's resource manager, which lets processes share the TPM and flushes
// what a process leaves loaded when it exits.
const DefaultDevice = "/dev/tpmrm0"

// Persistent object handles (TPM 2.0 Part 2, handle type TPM_HT_PERSISTENT).
const (
	firstPersistent tpm2.TPMHandle = 0x81000000
	lastPersistent  tpm2.TPMHandle = 0x81FFFFFF
)

func isPersistent(h tpm2.TPMHandle) bool { return h >= firstPersistent && h <= lastPersistent }

// keyURI is a parsed tpm: key URI. Exactly one of blobPath and handle is
// set, and exactly one of device and sim.
type keyURI struct {
	blobPath string         // absolute, clean path of a TSS2 PEM key file
	handle   tpm2.TPMHandle // persistent handle of the key
	device   string         // absolute, clean path of a TPM character device
	sim      string         // swtpm command address host:port (ctrl channel on port+1)
	authFile string         // absolute, clean path of the auth value file, or ""
}

// parseURI parses a tpm: key URI:
//
//	tpm:/abs/key.blob  or  tpm:///abs/key.blob  or  tpm:handle=0x81000010
//
// with an optional query of at most one each of device=/abs/dev (default
// DefaultDevice) or sim=host:port, and auth-file=/abs/path. Errors never
// repeat the whole URI.
func parseURI(uri string) (keyURI, error) {
	u, err := url.Parse(uri)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return keyURI{}, fmt.Errorf("tpm key URI: malformed: %w", err)
	}
	if u.Scheme != "tpm" {
		return keyURI{}, fmt.Errorf("tpm key URI: scheme %q, want tpm", u.Scheme)
	}
	var k keyURI
	name := "" // what errors call the key
	switch {
	case u.Opaque != "":
		h, err := parseHandle(u.Opaque)
		if err != nil {
			return keyURI{}, fmt.Errorf("tpm key URI: %w", err)
		}
		k.handle = h
		name = fmt.Sprintf("handle=0x%08x", uint32(h))
	case u.Host != "" || u.User != nil:
		return keyURI{}, errors.New("tpm key URI: a host is not allowed; use tpm:/absolute/key.blob or tpm:handle=0x81xxxxxx")
	case u.Path == "":
		return keyURI{}, errors.New("tpm key URI: no key file or handle; use tpm:/absolute/key.blob or tpm:handle=0x81xxxxxx")
	case !filepath.IsAbs(u.Path):
		// url.Parse keeps a path after "tpm:" opaque unless it starts with
		// "/", so this is only reached through odd escapes.
		return keyURI{}, fmt.Errorf("tpm key URI: relative path %q; use tpm:/absolute/key.blob", u.Path)
	default:
		k.blobPath = filepath.Clean(u.Path)
		name = k.blobPath
	}
	if u.Fragment != "" || strings.Contains(uri, "#") {
		return keyURI{}, fmt.Errorf("tpm key URI %s: fragments are not allowed", name)
	}
	q, err := singleValuedQuery(u.RawQuery, "device", "sim", "auth-file")
	if err != nil {
		return keyURI{}, fmt.Errorf("tpm key URI %s: %w", name, err)
	}
	dev, hasDev := q["device"]
	sim, hasSim := q["sim"]
	switch {
	case hasDev && hasSim:
		return keyURI{}, fmt.Errorf("tpm key URI %s: give device or sim, not both", name)
	case hasSim:
		if k.sim, err = parseSimAddress(sim); err != nil {
			return keyURI{}, fmt.Errorf("tpm key URI %s: %w", name, err)
		}
	case hasDev:
		if !filepath.IsAbs(dev) {
			return keyURI{}, fmt.Errorf("tpm key URI %s: device must be an absolute path (like %s)", name, DefaultDevice)
		}
		k.device = filepath.Clean(dev)
	default:
		k.device = DefaultDevice
	}
	if af, ok := q["auth-file"]; ok {
		if !filepath.IsAbs(af) {
			return keyURI{}, fmt.Errorf("tpm key URI %s: auth-file must be an absolute path", name)
		}
		k.authFile = filepath.Clean(af)
	}
	return k, nil
}

// parseHandle parses the opaque part handle=0x81xxxxxx.
func parseHandle(s string) (tpm2.TPMHandle, error) {
	hex, ok := strings.CutPrefix(s, "handle=0x")
	if !ok {
		if strings.HasPrefix(s, "handle=") {
			return 0, errors.New("handle must be hexadecimal with a 0x prefix, like handle=0x81000010")
		}
		return 0, fmt.Errorf("relative path or unknown key form %q; use tpm:/absolute/key.blob or tpm:handle=0x81xxxxxx", s)
	}
	if hex == "" || len(hex) > 8 || strings.Trim(hex, "0123456789abcdefABCDEF") != "" {
		return 0, errors.New("handle must be 1 to 8 hexadecimal digits after 0x, like handle=0x81000010")
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return 0, errors.New("handle must be 1 to 8 hexadecimal digits after 0x, like handle=0x81000010")
	}
	h := tpm2.TPMHandle(v)
	if !isPersistent(h) {
		return 0, fmt.Errorf("handle 0x%08x is not a persistent handle (0x81000000 to 0x81ffffff)", v)
	}
	return h, nil
}

// parseSimAddress checks a simulator address host:port and returns it in
// canonical form. The control channel is on port+1, so port is at most
// 65534.
func parseSimAddress(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", errors.New("sim must be host:port of the simulator's command port, like sim=127.0.0.1:2321")
	}
	if host == "" || strings.ContainsAny(host, " /?#@") {
		return "", errors.New("sim needs a host name or address, like sim=127.0.0.1:2321")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || p > 65534 || strings.Trim(port, "0123456789") != "" {
		return "", errors.New("sim port must be a number from 1 to 65534 (the control channel is on port+1)")
	}
	return net.JoinHostPort(host, strconv.FormatUint(p, 10)), nil
}

// ctrlAddress is the swtpm control channel of a simulator address.
func ctrlAddress(sim string) string {
	host, port, _ := net.SplitHostPort(sim)
	p, _ := strconv.Atoi(port)
	return net.JoinHostPort(host, strconv.Itoa(p+1))
}

// singleValuedQuery is keys.SingleValuedQuery, refusing empty values too.
func singleValuedQuery(raw string, allowed ...string) (map[string]string, error) {
	q, err := keys.SingleValuedQuery(raw, allowed...)
	if err != nil {
		return nil, err
	}
	for name, v := range q {
		if v == "" {
			return nil, fmt.Errorf("query parameter %q is empty", name)
		}
	}
	return q, nil
}

// String formats k as a URI that parseURI reads back to k. The device is
// left out when it is DefaultDevice.
func (k keyURI) String() string {
	var b strings.Builder
	if k.handle != 0 {
		fmt.Fprintf(&b, "tpm:handle=0x%08x", uint32(k.handle))
	} else {
		b.WriteString((&url.URL{Scheme: "tpm", Path: k.blobPath, OmitHost: true}).String())
	}
	sep := "?"
	param := func(name, value string) {
		b.WriteString(sep + name + "=" + queryEscape(value))
		sep = "&"
	}
	if k.sim != "" {
		param("sim", k.sim)
	} else if k.device != DefaultDevice {
		param("device", k.device)
	}
	if k.authFile != "" {
		param("auth-file", k.authFile)
	}
	return b.String()
}

// queryEscape escapes a query value but keeps "/" and ":" (both allowed in
// a query) so that paths and addresses stay readable.
func queryEscape(s string) string {
	return strings.NewReplacer("%2F", "/", "%3A", ":").Replace(url.QueryEscape(s))
}

// name is how errors and key metadata refer to the key: its file or handle.
func (k keyURI) name() string {
	if k.handle != 0 {
		return fmt.Sprintf("handle 0x%08x", uint32(k.handle))
	}
	return k.blobPath
}

// deviceID names the TPM the key lives on; keys with the same deviceID
// share one connection and command queue.
func (k keyURI) deviceID() string {
	if k.sim != "" {
		return "simulator " + k.sim
	}
	return "device " + k.device
}
