package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/proto"
)

// TestSignSeveralStatements: `signerctl sign` with three --predicate/--type
// pairs signs an image's SBOM, report and VEX in one batch against an
// in-process agent; each bundle verifies; the policy goes into the report
// only.
func TestSignSeveralStatements(t *testing.T) {
	dir := startDevAgent(t, nil)
	sock := filepath.Join(dir, "api.sock")
	work := t.TempDir()
	art := writeFile(t, work, "image.digest", "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")
	doc := "sha256:" + strings.Repeat("cd", 32)
	preds := map[string]string{
		"stella.ops/sbom@v1":   `{"format":"cyclonedx-1.6","digest":"` + doc + `","componentCount":412}`,
		"stella.ops/report@v1": `{"format":"stella-report-1","digest":"` + doc + `","verdict":"pass"}`,
		"stella.ops/vex@v1":    `{"format":"openvex-0.2.0","digest":"` + doc + `","statementCount":3}`,
	}
	types := []string{"stella.ops/sbom@v1", "stella.ops/report@v1", "stella.ops/vex@v1"}
	args := []string{"--socket", sock, "sign", "--artifact", art, "--policy-digest", doc, "--view", "prod"}
	for i, typ := range types {
		args = append(args, "--predicate", writeFile(t, work, "p"+strconv.Itoa(i)+".json", preds[typ]), "--type", typ,
			"--out-bundle", filepath.Join(work, "b"+strconv.Itoa(i)+".json"), "--out-envelope", filepath.Join(work, "e"+strconv.Itoa(i)+".json"))
	}
	r := runCtl(t, args...)
	r.wantCode(t, exitOK)
	if strings.Count(r.stdout, "auditId:") != 3 || !strings.Contains(r.stdout, "[3] stella.ops/vex@v1") {
		t.Fatalf("summary:\n%s", r.stdout)
	}
	pub := writeFile(t, work, "dev.pub", mustRead(t, filepath.Join(dir, "keys", "dev.pub")))
	for i, typ := range types {
		bundle := filepath.Join(work, "b"+strconv.Itoa(i)+".json")
		runCtl(t, "verify", "--bundle", bundle, "--key", pub, "--artifact", art, "--type", typ).wantCode(t, exitOK)
		var env proto.Envelope
		if err := json.Unmarshal([]byte(mustRead(t, filepath.Join(work, "e"+strconv.Itoa(i)+".json"))), &env); err != nil {
			t.Fatal(err)
		}
		hasPolicy := strings.Contains(string(env.Payload), `"policy":{"digest":"`+doc+`"`)
		if hasPolicy != (typ == "stella.ops/report@v1") {
			t.Fatalf("%s: policy in the statement %v:\n%s", typ, hasPolicy, env.Payload)
		}
	}

	// One statement refused: the others are saved, the command fails.
	out := filepath.Join(work, "mixed")
	r = runCtl(t, "--socket", sock, "sign", "--artifact", art,
		"--predicate", filepath.Join(work, "p0.json"), "--type", "stella.ops/sbom@v1", "--out-bundle", out+"0.json",
		"--predicate", filepath.Join(work, "p0.json"), "--type", "example.com/unlisted@v1", "--out-bundle", out+"1.json")
	r.wantCode(t, exitFailure)
	if !strings.Contains(r.stderr, "refused 1 of 2") || !strings.Contains(r.stderr, "predicate_not_allowed") {
		t.Fatalf("stderr: %s", r.stderr)
	}
	if _, err := os.Stat(out + "0.json"); err != nil {
		t.Fatal("the signed statement was not saved")
	}
	if _, err := os.Stat(out + "1.json"); err == nil {
		t.Fatal("a refused statement was saved")
	}

	// --json prints the batch response.
	r = runCtl(t, "--socket", sock, "sign", "--artifact", art, "--json",
		"--predicate", filepath.Join(work, "p0.json"), "--type", "stella.ops/sbom@v1",
		"--predicate", filepath.Join(work, "p2.json"), "--type", "stella.ops/vex@v1")
	r.wantCode(t, exitOK)
	var br proto.BatchResponse
	if err := json.Unmarshal([]byte(r.stdout), &br); err != nil || br.Check(2) != nil || !br.Results[1].OK() {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if _, err := base64.StdEncoding.DecodeString(base64.StdEncoding.EncodeToString(br.Results[0].Envelope.Payload)); err != nil {
		t.Fatal(err)
	}
}

// TestSignSeveralStatementsUsage: mismatched pairs and outputs are usage
// errors, found before anything is sent.
func TestSignSeveralStatementsUsage(t *testing.T) {
	work := t.TempDir()
	art := writeFile(t, work, "a", "x")
	p := writeFile(t, work, "p.json", `{"k":1}`)
	many := []string{}
	for range 65 {
		many = append(many, "--predicate", p, "--type", "t@v1")
	}
	for name, c := range map[string]struct {
		args []string
		msg  string
	}{
		"two predicates, one type": {[]string{"--predicate", p, "--predicate", p, "--type", "a@v1"}, "one --type per --predicate"},
		"one predicate, two types": {[]string{"--predicate", p, "--type", "a@v1", "--type", "b@v1"}, "one --type per --predicate"},
		"outputs for one of two":   {[]string{"--predicate", p, "--type", "a@v1", "--predicate", p, "--type", "b@v1", "--out-bundle", "x.json"}, "--out-bundle given 1 times for 2"},
		"two envelopes for one":    {[]string{"--predicate", p, "--type", "a@v1", "--out-envelope", "x", "--out-envelope", "y"}, "--out-envelope given 2 times for 1"},
		"65 statements":            {many, "at most 64"},
		"stdin twice":              {[]string{"--predicate", "-", "--type", "a@v1", "--predicate", "-", "--type", "b@v1"}, "only one --predicate may be -"},
		"policy without a report":  {[]string{"--predicate", p, "--type", "a@v1", "--predicate", p, "--type", "b@v1", "--policy-digest", "sha256:" + strings.Repeat("0", 64)}, "no statement of the batch is a report"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, append([]string{"--socket", filepath.Join(work, "none.sock"), "sign", "--artifact", art}, c.args...)...)
			r.wantCode(t, exitUsage)
			if !strings.Contains(r.stderr, c.msg) {
				t.Fatalf("stderr %q lacks %q", r.stderr, c.msg)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
