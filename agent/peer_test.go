package agent_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

const peerChildEnv = "SIGNER_AGENT_TEST_PEER_CHILD"

// TestMain lets the test binary act as a caller running as another user.
func TestMain(m *testing.M) {
	if sock := os.Getenv(peerChildEnv); sock != "" {
		req, _ := http.NewRequest(http.MethodGet, "http://signer-agent"+proto.PathKeys, nil)
		resp, err := harness.HTTPClient(sock).Do(req)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(0)
		}
		b, _ := io.ReadAll(resp.Body)
		p, _ := proto.DecodeProblem(b)
		code := ""
		if p != nil {
			code = string(p.Code)
		}
		fmt.Println(resp.StatusCode, code)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestPeerAllowlistOtherUsers runs callers as other uids with supplementary
// groups (SO_PEERGROUPS) against gid and uid rules.
func TestPeerAllowlistOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: needs root to run callers as other users (CI runs as root)")
	}
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		c.Listen.API.Group = "5001"
		c.Peers.Allow = &config.PeerAllow{UIDs: []uint32{4300}, GIDs: []uint32{5001}}
	}})
	if err := os.Chmod(h.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	// A copy of this test binary that other users may execute.
	bindir, err := os.MkdirTemp("", "sapeer")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(bindir)
	os.Chmod(bindir, 0o755)
	self, _ := os.Executable()
	exe := filepath.Join(bindir, "child")
	b, _ := os.ReadFile(self)
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		uid    uint32
		gid    uint32
		groups []uint32
		want   string
	}{
		{"supplementary group allowed", 4200, 4200, []uint32{5001}, "200"},
		{"primary group allowed", 4201, 5001, nil, "200"},
		{"uid allowed", 4300, 4300, []uint32{5001}, "200"},
		{"one of several groups allowed", 4202, 4202, []uint32{5003, 5001}, "200"},
	}
	// Now allow only gid 5002: a member of 5001 can still open the socket
	// (file permissions) but the peer gate refuses it.
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := runAs(t, exe, h.APISock, c.uid, c.gid, c.groups); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	harness.EditConfig(t, h.Config, func(c *config.Config) { c.Peers.Allow.GIDs = []uint32{5002} })
	if err := h.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A refused peer is closed at accept (SPEC §3): it reads EOF, and the
	// refusal is audited with its credentials.
	before := len(h.Audit.Records())
	if got := runAs(t, exe, h.APISock, 4200, 4200, []uint32{5001}); !strings.HasPrefix(got, "error ") {
		t.Fatalf("got %q, want the connection closed (EOF, reset or broken pipe)", got)
	}
	recs := decisions(h.Audit.Records()[before:])
	if len(recs) != 1 || recs[0].Code != string(proto.CodePeerNotAllowed) || recs[0].Peer == nil || recs[0].Peer.UID != 4200 {
		t.Fatalf("audit: %+v", recs)
	}
}

func runAs(t *testing.T, exe, sock string, uid, gid uint32, groups []uint32) string {
	t.Helper()
	cmd := exec.Command(exe)
	cmd.Env = []string{peerChildEnv + "=" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
