package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/stellaops/signer-agent/proto"
)

// The dashboard, the alert rules and the doc.go table must name metrics
// the registry has. These tests keep them in step with the code.

var observabilityDir = filepath.Join("..", "..", "packaging", "observability")

// families returns the registry's families after every method has run, so
// every vector has a child and is gathered.
func families(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	m := newTest(t)
	exercise(m)
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

var (
	promString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promIdent  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	// metricPrefixes are the families this registry exports.
	metricPrefixes = []string{"signer_", "go_", "process_", "promhttp_"}
)

// metricNames returns the metric names a PromQL expression uses (string
// literals removed, so label values do not count).
func metricNames(expr string) []string {
	var out []string
	for _, id := range promIdent.FindAllString(promString.ReplaceAllString(expr, `""`), -1) {
		for _, p := range metricPrefixes {
			if strings.HasPrefix(id, p) {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// known reports whether name is a family of fams, or a _bucket, _sum or
// _count series of a histogram (or _sum, _count of a summary) in it.
func known(fams map[string]*dto.MetricFamily, name string) bool {
	if _, ok := fams[name]; ok {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suf)
		if !ok {
			continue
		}
		mf, ok := fams[base]
		if !ok {
			continue
		}
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			return suf != "_bucket"
		}
	}
	return false
}

// serverErrorCodes is the regex alternation of every proto code with a
// 5xx status, sorted.
func serverErrorCodes() string {
	var codes []string
	for _, c := range proto.Codes() {
		if c.Status() >= 500 {
			codes = append(codes, string(c))
		}
	}
	sort.Strings(codes)
	return strings.Join(codes, "|")
}

// codeRegex finds code=~"…" matchers.
var codeRegex = regexp.MustCompile(`code=~"([^"]*)"`)

func checkCodeRegexes(t *testing.T, where, expr string) {
	t.Helper()
	want := serverErrorCodes()
	for _, m := range codeRegex.FindAllStringSubmatch(expr, -1) {
		if m[1] != want {
			t.Errorf("%s: code=~%q, want the 5xx codes %q", where, m[1], want)
		}
	}
}

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(observabilityDir, "signer-agent-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr       string         `json:"expr"`
				RefID      string         `json:"refId"`
				Datasource map[string]any `json:"datasource"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard without title, uid or panels")
	}

	fams := families(t)
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || tg.Datasource["uid"] != "${datasource}" {
				t.Errorf("panel %q: target %+v lacks expr, refId or the datasource variable", p.Title, tg)
			}
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q: %s ignores the instance variable", p.Title, tg.Expr)
			}
			checkCodeRegexes(t, p.Title, tg.Expr)
			for _, n := range metricNames(tg.Expr) {
				used[n] = true
				if !known(fams, n) {
					t.Errorf("panel %q uses %s, which the registry does not export", p.Title, n)
				}
			}
		}
	}
	for _, v := range dash.Templating.List {
		for _, n := range metricNames(v.Definition) {
			if !known(fams, n) {
				t.Errorf("variable %q uses %s, which the registry does not export", v.Name, n)
			}
		}
	}
	// What the dashboard is for (the list).
	for _, n := range []string{
		"signer_requests_total",                       // request and failure rate by code
		"signer_sign_duration_seconds_bucket",         // sign latency by key source
		"signer_poe_verdicts_total",                   // PoE verdicts by state
		"signer_quota_hits_total",                     // quota hits by tenant/plan
		"signer_key_signatures_total",                 // key usage
		"signer_key_age_seconds",                      // key age
		"signer_audit_append_duration_seconds_bucket", // audit append latency
		"signer_audit_failures_total",                 // audit failures
		"signer_quota_store_mode",                     // shared quota store mode (issue #17)
		"signer_quota_store_duration_seconds_bucket",  // store round trip
		"signer_quota_reservations_total",             // reservations by outcome
		"signer_quota_store_errors_total",             // store errors
	} {
		if !used[n] {
			t.Errorf("dashboard does not show %s", n)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			AlertName string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// readYAML decodes a file of observabilityDir into v; strict refuses
// fields v does not have.
func readYAML(t *testing.T, name string, strict bool, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(observabilityDir, name))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestAlertRules checks names and fields; promtool (check.sh) checks the
// PromQL and runs the unit tests.
func TestAlertRules(t *testing.T) {
	var rules ruleFile
	readYAML(t, "signer-agent-alerts.yml", true, &rules)
	fams := families(t)
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name", g.Name)
				continue
			}
			alerts = append(alerts, r.Alert)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a severity label and summary and description annotations", r.Alert)
			}
			names := metricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("%s: uses no signer metric", r.Alert)
			}
			for _, n := range names {
				if !known(fams, n) {
					t.Errorf("%s uses %s, which the registry does not export", r.Alert, n)
				}
			}
			checkCodeRegexes(t, r.Alert, r.Expr)
		}
	}
	// The alerts.
	for _, a := range []string{
		"SignerPoEOutage", "SignerKeyNearExpiry", "SignerKeyTooOld", "SignerQuotaBreach",
		"SignerSigningFailureSpike", "SignerAuditWriteFailures",
		"SignerQuotaStoreDown", "SignerQuotaServingLocalShare", // issue #17
	} {
		if !slices.Contains(alerts, a) {
			t.Errorf("no alert %s", a)
		}
	}

	// Every alert has a promtool test where it fires and one where it
	// does not.
	var tests ruleTests
	readYAML(t, "signer-agent-alerts_test.yml", false, &tests)
	if !slices.Equal(tests.RuleFiles, []string{"signer-agent-alerts.yml"}) {
		t.Errorf("rule_files %v", tests.RuleFiles)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.AlertName] = true
			} else {
				quiet[a.AlertName] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] || !quiet[a] {
			t.Errorf("%s: promtool tests fire=%v, not fire=%v; want both", a, fires[a], quiet[a])
		}
	}
}

// TestFailureSpikeCodes: the alert's 5xx list is every proto code with a
// 5xx status, so a new 5xx code cannot be missed.
func TestFailureSpikeCodes(t *testing.T) {
	var rules ruleFile
	readYAML(t, "signer-agent-alerts.yml", true, &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "SignerSigningFailureSpike" {
				if !codeRegex.MatchString(r.Expr) {
					t.Fatalf("SignerSigningFailureSpike has no code=~ matcher")
				}
				return // checkCodeRegexes in TestAlertRules compares it
			}
		}
	}
	t.Fatal("no SignerSigningFailureSpike")
}

// docRow matches a row of the metric table in doc.go.
var docRow = regexp.MustCompile("^// \\| `([a-z_]+)` \\| ([a-z]+) \\|([^|]*)\\|")

// TestDocTable: the doc.go table lists exactly the signer_* families, with
// their types and label names.
func TestDocTable(t *testing.T) {
	data, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	fams := families(t)
	for _, line := range strings.Split(string(data), "\n") {
		m := docRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, typ := m[1], m[2]
		var labels []string
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				labels = append(labels, l)
			}
		}
		sort.Strings(labels)
		documented[name] = true
		mf, ok := fams[name]
		if !ok {
			t.Errorf("doc.go documents %s, which the registry does not export", name)
			continue
		}
		if got := strings.ToLower(mf.GetType().String()); got != typ {
			t.Errorf("%s: documented as %s, is %s", name, typ, got)
		}
		var got []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			got = append(got, lp.GetName())
		}
		sort.Strings(got)
		if !slices.Equal(got, labels) {
			t.Errorf("%s: documented labels %v, has %v", name, labels, got)
		}
	}
	for name := range fams {
		if strings.HasPrefix(name, "signer_") && !documented[name] {
			t.Errorf("%s is not in the doc.go table", name)
		}
	}
	if len(documented) == 0 {
		t.Fatal("no table rows found in doc.go")
	}
}
