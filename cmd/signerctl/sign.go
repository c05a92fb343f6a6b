package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/stellaops/signer-agent/proto"
)

const signHelp = `
Ask the agent to sign an in-toto Statement v1 and save the DSSE envelope and
the sigstore bundles it returns. ('signerctl sign export -h' signs a
directory as an export.)

Subjects, in command-line order (at least one):
  --subject name=NAME,sha256=HEX[,sha512=HEX]
      The value is split on ',' first, then each field on its first '=', so
      a name may contain '=', '@', ':' and '/' but not ','.
  --artifact FILE [--artifact-name NAME]
      FILE is hashed locally (SHA-256); the subject's name is the file's base
      name, or NAME when --artifact-name follows that --artifact.

Outputs:
  --out-envelope FILE   the standalone DSSE envelope (JSON)
  --out-bundle PATH     the sigstore bundle(s), byte for byte as the agent
                        returned them (canonical JSON, so the file's SHA-256
                        is the signature's bundleHash). With one signature,
                        PATH is written as given. With several (several
                        --key), one file per signature: PATH without a
                        ".json" suffix, plus "-KEYID.json" (for example
                        --out-bundle att.json --key a --key b writes
                        att-a.json and att-b.json).
  --json                print the whole sign response instead of a summary

Several statements at once (a batch, one call):
  Give --predicate and --type once per statement, up to 64: the i-th --type
  goes with the i-th --predicate. Every statement has the same subjects and
  --key; --policy-digest and --view go to the report statements
  (stella.ops/report@v1) only. --out-envelope and --out-bundle, when given,
  are given once per statement, the i-th for the i-th. The agent checks the
  token, proof, entitlement and release once, then each statement on its
  own: the ones it refuses are reported and the command exits 1, after
  saving the ones it signed. --json prints the whole batch response.
  For example, an image's SBOM, report and VEX:

    signerctl sign --subject name=registry.example/app,sha256=2d71… \
      --predicate sbom.json   --type stella.ops/sbom@v1   --out-bundle sbom.bundle.json \
      --predicate report.json --type stella.ops/report@v1 --out-bundle report.bundle.json \
      --predicate vex.json    --type stella.ops/vex@v1    --out-bundle vex.bundle.json \
      --policy-digest sha256:…

--credentials FILE reads the JSON object of 'signerctl dev token'
({opTok, dpopKey, poe, scannerImageDigest}); poe and scannerImageDigest fill
the request unless given by flag. Secrets from it are never printed.
`

// cmdSign is `signerctl sign`.
func (a *app) cmdSign(ctx context.Context, args []string) error {
	fs := a.flagSet("sign", "sign (--predicate FILE --type TYPE)... (--subject SPEC | --artifact FILE [--artifact-name NAME])... [flags]", signHelp)
	var (
		subjects                 subjectArgs
		keyIDs, views            stringList
		predicates, types        stringList
		outEnvelopes, outBundles stringList
		scanner                  = fs.String("scanner-digest", "", "scanner image `DIGEST` sha256:HEX (scannerImageDigest)")
		policyDigest             = fs.String("policy-digest", "", "`DIGEST` sha256:HEX of the policy the report was evaluated under")
		credsPath                = fs.String("credentials", "", "credentials JSON `FILE` (signerctl dev token)")
		asJSON                   = fs.Bool("json", false, "print the full sign response as JSON")
	)
	fs.Var(&predicates, "predicate", "predicate JSON object `FILE` (- for stdin); repeat, with --type, to sign several statements in one batch")
	fs.Var(&types, "type", "predicate `TYPE`, e.g. stella.ops/sbom@v1 (one per --predicate, in the same order)")
	fs.Var(&outEnvelopes, "out-envelope", "write the DSSE envelope JSON to `FILE` (one per --predicate in a batch)")
	fs.Var(&outBundles, "out-bundle", "write the sigstore bundle(s) to `PATH` (see above; one per --predicate in a batch)")
	fs.Func("subject", "`SPEC` name=NAME,sha256=HEX[,sha512=HEX] of a subject (repeatable)", subjects.subjectFlag())
	fs.Func("artifact", "artifact `FILE` to hash as a subject (repeatable)", subjects.artifactFlag())
	fs.Func("artifact-name", "subject `NAME` for the preceding --artifact", subjects.artifactNameFlag())
	fs.Var(&views, "view", "policy `VIEW` (repeatable; needs --policy-digest)")
	fs.Var(&keyIDs, "key", "signing key `ID` (repeatable: one signature per key; default: the tenant's default key)")
	a.socketFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	switch {
	case len(predicates) == 0:
		return usagef("--predicate is required")
	case len(types) == 0:
		return usagef("--type is required")
	case len(types) != len(predicates):
		return usagef("%d --predicate and %d --type: give one --type per --predicate (the i-th goes with the i-th)", len(predicates), len(types))
	case len(predicates) > proto.MaxBatchItems:
		return usagef("%d statements: at most %d in one batch", len(predicates), proto.MaxBatchItems)
	case len(subjects.list) == 0:
		return usagef("at least one --subject or --artifact is required")
	case len(views) > 0 && *policyDigest == "":
		return usagef("--view needs --policy-digest")
	}
	for _, o := range []struct {
		name string
		l    stringList
	}{{"--out-envelope", outEnvelopes}, {"--out-bundle", outBundles}} {
		if len(o.l) > 0 && len(o.l) != len(predicates) {
			return usagef("%s given %d times for %d statements: give it once per --predicate, or not at all", o.name, len(o.l), len(predicates))
		}
	}
	stdin := 0
	for _, p := range predicates {
		if p == "-" {
			stdin++
		}
	}
	if stdin > 1 {
		return usagef("only one --predicate may be - (stdin)")
	}
	if *scanner != "" {
		if err := proto.ValidateDigestString(*scanner); err != nil {
			return usagef("--scanner-digest: %v", err)
		}
	}
	if *policyDigest != "" {
		if err := proto.ValidateDigestString(*policyDigest); err != nil {
			return usagef("--policy-digest: %v", err)
		}
	}
	subjectList, err := subjects.resolve()
	if err != nil {
		return err
	}
	var policy *proto.Policy
	if *policyDigest != "" {
		policy = &proto.Policy{Digest: *policyDigest, ViewSet: views}
	}
	reqs := make([]proto.SignRequest, len(predicates))
	for i := range reqs {
		req := &reqs[i]
		req.PredicateType, req.ScannerImageDigest, req.Subject = types[i], *scanner, subjectList
		if req.Predicate, err = readPredicate(predicates[i]); err != nil {
			return err
		}
		// One statement: the policy is its own. Several: the reports'.
		if policy != nil && (len(reqs) == 1 || req.PredicateType == proto.ReportPredicateShort) {
			req.Policy = policy
		}
		if len(keyIDs) > 0 {
			req.Options = &proto.SignOptions{KeyIDs: keyIDs}
		}
	}
	creds, err := a.loadCredentials(*credsPath)
	if err != nil {
		return err
	}
	c := a.client()
	creds.Apply(c)
	if len(reqs) > 1 {
		if policy != nil && !slices.ContainsFunc(reqs, func(r proto.SignRequest) bool { return r.Policy != nil }) {
			return usagef("--policy-digest: no statement of the batch is a report (%s)", proto.ReportPredicateShort)
		}
		return a.signBatch(ctx, c, creds, reqs, outEnvelopes, outBundles, *asJSON)
	}
	req := &reqs[0]
	applyCredentials(creds, req)
	// Check the request before it leaves, for a clear local error.
	if err := req.Validate(); err != nil {
		return err
	}
	resp, err := c.SignDSSE(ctx, req)
	if err != nil {
		return err
	}
	written, err := saveSigned(resp, first(outEnvelopes), first(outBundles))
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(a.stdout, resp)
	}
	printSignSummary(a.stdout, resp, written)
	if len(outEnvelopes) == 0 && len(outBundles) == 0 {
		fmt.Fprintln(a.stderr, "signerctl: note: no --out-envelope, --out-bundle or --json: the signature was not saved")
	}
	return nil
}

// first is l's only element, or "".
func first(l stringList) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

// saveSigned writes a signed answer's envelope and bundles where asked
// ("" skips) and returns the summary lines naming the files.
func saveSigned(resp *proto.SignResponse, outEnvelope, outBundle string) ([]string, error) {
	var written []string
	if outEnvelope != "" {
		b, err := json.Marshal(resp.Envelope)
		if err != nil {
			return nil, fmt.Errorf("encode envelope: %w", err)
		}
		if err := os.WriteFile(outEnvelope, append(b, '\n'), 0o644); err != nil {
			return nil, fmt.Errorf("write envelope: %w", err)
		}
		written = append(written, "envelope:      "+outEnvelope)
	}
	if outBundle != "" {
		paths, err := writeBundles(outBundle, resp)
		if err != nil {
			return nil, err
		}
		for i, p := range paths {
			written = append(written, fmt.Sprintf("bundle:        %s (key %s)", p, keyIDAt(resp, i)))
		}
	}
	return written, nil
}

// readPredicate reads the predicate file and checks that it is one JSON
// object whose numbers survive canonicalisation.
func readPredicate(path string) (json.RawMessage, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("predicate: %w", err)
	}
	if err := proto.CheckJSONObject(b); err != nil {
		return nil, fmt.Errorf("predicate %s: %w", path, err)
	}
	return b, nil
}

// bundlePaths names the bundle files for --out-bundle PATH: PATH itself for
// one bundle, else PATH minus ".json" plus "-KEYID.json" per signature (key
// ids are reduced to [A-Za-z0-9._-]; a repeated name gets "-N" added).
func bundlePaths(path string, keyIDs []string) []string {
	if len(keyIDs) == 1 {
		return []string{path}
	}
	base := strings.TrimSuffix(path, ".json")
	used := map[string]bool{}
	out := make([]string, len(keyIDs))
	for i, id := range keyIDs {
		p := base + "-" + safeName(id) + ".json"
		for n := 2; used[p]; n++ {
			p = fmt.Sprintf("%s-%s-%d.json", base, safeName(id), n)
		}
		used[p] = true
		out[i] = p
	}
	return out
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func safeName(id string) string {
	s := unsafeName.ReplaceAllString(id, "_")
	if s == "" || s == "." || s == ".." {
		s = "key"
	}
	return s
}

// writeBundles writes each bundle exactly as received.
func writeBundles(path string, resp *proto.SignResponse) ([]string, error) {
	if len(resp.Bundles) == 0 {
		return nil, fmt.Errorf("the agent returned no bundle")
	}
	ids := make([]string, len(resp.Bundles))
	for i := range ids {
		ids[i] = keyIDAt(resp, i)
	}
	paths := bundlePaths(path, ids)
	for i, p := range paths {
		if err := os.WriteFile(p, resp.Bundles[i], 0o644); err != nil {
			return nil, fmt.Errorf("write bundle: %w", err)
		}
	}
	return paths, nil
}

// keyIDAt is the key id of the i-th signature (bundles, envelope
// signatures and signing identities share one order).
func keyIDAt(resp *proto.SignResponse, i int) string {
	if i < len(resp.SigningIdentity) && resp.SigningIdentity[i].KeyID != "" {
		return resp.SigningIdentity[i].KeyID
	}
	if i < len(resp.Envelope.Signatures) && resp.Envelope.Signatures[i].KeyID != "" {
		return resp.Envelope.Signatures[i].KeyID
	}
	return fmt.Sprintf("sig%d", i+1)
}

func printSignSummary(w io.Writer, resp *proto.SignResponse, written []string) {
	printSummary(w, resp, nil, written)
}

// summaryField is one "name: value" line of a sign summary.
type summaryField struct{ name, value string }

// printSummary writes a sign answer's summary, values aligned: the request
// and audit ids, the fields given, the digests, one line per signature,
// the quota, then the files written.
func printSummary(w io.Writer, resp *proto.SignResponse, extra []summaryField, written []string) {
	fs := []summaryField{{"requestId", resp.RequestID}}
	if resp.AuditID != "" {
		fs = append(fs, summaryField{"auditId", resp.AuditID})
	}
	fs = append(fs, extra...)
	fs = append(fs, summaryField{"payloadDigest", resp.PayloadDigest}, summaryField{"bundleHash", resp.BundleHash})
	for _, si := range resp.SigningIdentity {
		fs = append(fs, summaryField{"signature", fmt.Sprintf("key %s (%s, %s, %s)", si.KeyID, si.Mode, si.KeySource, si.Algorithm)})
	}
	if q := resp.Quota; q != nil {
		fs = append(fs, summaryField{"quota", fmt.Sprintf("plan %s, %d left today", q.Plan, q.RemainingToday)})
	}
	width := 0
	for _, f := range fs {
		width = max(width, len(f.name)+1)
	}
	for _, f := range fs {
		fmt.Fprintf(w, "%-*s %s\n", width, f.name+":", f.value)
	}
	for _, l := range written {
		fmt.Fprintln(w, l)
	}
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
