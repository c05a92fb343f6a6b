package dist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestKubernetesManifests keeps packaging/kubernetes honest in plain
// `go test`: the ConfigMap's config loads with the agent's own loader, the
// DaemonSet runs non-root with the socket directory on a hostPath and
// probes through signerctl health, and the scanner pod mounts that
// directory with the signer-clients gid the config admits.
func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join(harness.RepoRoot(), "packaging", "kubernetes")
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	readYAML(t, filepath.Join(dir, "configmap.yaml"), &cm)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(cfgPath); err != nil {
		t.Fatalf("the ConfigMap's config.yaml does not load: %v", err)
	}
	for _, k := range []string{"jwks.json", "licensing-public.pem", "release-2026.pub", "allowlist.yaml"} {
		if cm.Data[k] == "" {
			t.Errorf("ConfigMap lacks %s", k)
		}
	}

	ds := readFile(t, filepath.Join(dir, "daemonset.yaml"))
	for _, want := range []string{
		"kind: DaemonSet", "runAsNonRoot: true", "runAsUser: 65532", "readOnlyRootFilesystem: true",
		"path: /run/signer-agent", "mountPath: /run/signer-agent", "path: /var/lib/signer-agent",
		`command: ["/usr/bin/signerctl", "health"]`, `command: ["/usr/bin/signerctl", "health", "--ready"]`,
		"secretName: signer-agent-keys", "name: signer-agent\n", "drop: [\"ALL\"]",
	} {
		if !strings.Contains(ds, want) {
			t.Errorf("daemonset.yaml lacks %q", want)
		}
	}
	pod := readFile(t, filepath.Join(dir, "scanner-pod.yaml"))
	for _, want := range []string{"kind: Pod", "runAsGroup: 65533", "path: /run/signer-agent", "unix:///run/signer-agent/api.sock"} {
		if !strings.Contains(pod, want) {
			t.Errorf("scanner-pod.yaml lacks %q", want)
		}
	}
	if !strings.Contains(cm.Data["config.yaml"], "gids: [65533]") || !strings.Contains(cm.Data["config.yaml"], `group: "65533"`) {
		t.Error("the config does not admit the scanner pods' gid 65533 on the api socket")
	}
	// Every manifest is well-formed YAML (several documents allowed).
	for _, f := range []string{"namespace.yaml", "daemonset.yaml", "scanner-pod.yaml"} {
		dec := yaml.NewDecoder(strings.NewReader(readFile(t, filepath.Join(dir, f))))
		for {
			var v any
			if err := dec.Decode(&v); err != nil {
				if err.Error() != "EOF" {
					t.Errorf("%s: %v", f, err)
				}
				break
			}
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readYAML(t *testing.T, p string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(readFile(t, p)), v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}
