package sigstack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// envNetNS marks a test binary already re-executed in its own network
// namespace.
const envNetNS = "SIGNER_AGENT_SIGSTACK_NETNS"

// Main runs a package's tests (call it from TestMain) where a sigstore
// stack may start: as root, the test binary re-executes itself under
// `unshare --net` with the loopback interface up, so its timestamp
// authority owns the namespace's :2112 and nothing but loopback is
// reachable; otherwise it takes an exclusive lock that every such test
// binary on the machine takes, so their stacks run one at a time.
//
// setup, when not nil, runs before the tests with a MainTB whose cleanups
// run after them: start the package's shared stack there.
func Main(m *testing.M, setup func(tb TB)) {
	if os.Getenv(envNetNS) != "1" && os.Geteuid() == 0 {
		os.Exit(reexecInNetNS())
	}
	if os.Getenv(envNetNS) != "1" {
		unlock, err := lockMachine()
		if err != nil {
			fmt.Fprintf(os.Stderr, "sigstack: %v\n", err)
			os.Exit(1)
		}
		defer unlock()
	}
	os.Exit(runMain(m, setup))
}

func runMain(m *testing.M, setup func(tb TB)) (code int) {
	tb := &MainTB{}
	defer tb.Close()
	if setup != nil && !listing() {
		failed := func() (msg string) {
			defer func() {
				if r := recover(); r != nil {
					f, ok := r.(mainFailure)
					if !ok {
						panic(r)
					}
					msg = f.msg
				}
			}()
			setup(tb)
			return ""
		}()
		if failed != "" {
			fmt.Fprintf(os.Stderr, "FAIL: sigstore stack: %s\n", failed)
			return 1
		}
	}
	return m.Run()
}

// listing reports a test binary run only to list its tests (make fuzz
// does that for every package): no stack is needed.
func listing() bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.list") {
			return true
		}
	}
	return false
}

func reexecInNetNS() int {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigstack: unshare not found (apt-get install util-linux)")
		return 1
	}
	if _, err := exec.LookPath("ip"); err != nil {
		fmt.Fprintln(os.Stderr, "sigstack: ip not found (apt-get install iproute2)")
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sigstack: %v\n", err)
		return 1
	}
	args := append([]string{"--net", "--", "/bin/sh", "-c", `ip link set lo up && exec "$0" "$@"`, self}, os.Args[1:]...)
	cmd := exec.Command(unshare, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envNetNS+"=1")
	dieWithParent(cmd) // kept across unshare's and sh's exec of the test binary
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "sigstack: run tests in a network namespace: %v\n", err)
		return 1
	}
	return 0
}

// lockMachine takes the machine-wide lock of test binaries that start a
// timestamp authority in the shared network namespace.
func lockMachine() (func(), error) {
	path := filepath.Join(os.TempDir(), "signer-agent-sigstack.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
