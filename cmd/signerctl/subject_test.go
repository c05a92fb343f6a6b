package main

import (
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/proto"
)

const (
	hex256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hex512 = hex256 + hex256
)

func TestParseSubject(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    proto.Subject
		wantErr string
	}{
		"name and sha256": {
			in:   "name=app.tar,sha256=" + hex256,
			want: proto.Subject{Name: "app.tar", Digest: map[string]string{"sha256": hex256}},
		},
		"image reference with @ and :": {
			in:   "name=registry.example/app@sha256:" + hex256 + ",sha256=" + hex256,
			want: proto.Subject{Name: "registry.example/app@sha256:" + hex256, Digest: map[string]string{"sha256": hex256}},
		},
		"name containing =": {
			in:   "name=a=b==c,sha256=" + hex256,
			want: proto.Subject{Name: "a=b==c", Digest: map[string]string{"sha256": hex256}},
		},
		"both digests, any order": {
			in:   "sha512=" + hex512 + ",sha256=" + hex256 + ",name=x",
			want: proto.Subject{Name: "x", Digest: map[string]string{"sha256": hex256, "sha512": hex512}},
		},
		"sha512 only": {
			in:   "name=x,sha512=" + hex512,
			want: proto.Subject{Name: "x", Digest: map[string]string{"sha512": hex512}},
		},
		"upper-case hex folded": {
			in:   "name=x,sha256=" + strings.ToUpper(hex256),
			want: proto.Subject{Name: "x", Digest: map[string]string{"sha256": hex256}},
		},
		"missing name":          {in: "sha256=" + hex256, wantErr: "name= is required"},
		"empty name":            {in: "name=,sha256=" + hex256, wantErr: "empty name"},
		"missing digest":        {in: "name=x", wantErr: "sha256= or sha512= is required"},
		"short digest":          {in: "name=x,sha256=abcd", wantErr: "want 64 hex characters"},
		"non-hex digest":        {in: "name=x,sha256=" + strings.Repeat("g", 64), wantErr: "not lowercase hex"},
		"digest with prefix":    {in: "name=x,sha256=sha256:" + hex256, wantErr: "sha256"},
		"unknown field":         {in: "name=x,md5=abc", wantErr: `unknown field "md5"`},
		"space after comma":     {in: "name=x, sha256=" + hex256, wantErr: `unknown field " sha256"`},
		"field without =":       {in: "name=x,sha256", wantErr: "not key=value"},
		"duplicate name":        {in: "name=x,name=y,sha256=" + hex256, wantErr: "name given twice"},
		"duplicate digest":      {in: "name=x,sha256=" + hex256 + ",sha256=" + hex256, wantErr: "sha256 given twice"},
		"comma in name refused": {in: "name=a,b,sha256=" + hex256, wantErr: "not key=value"},
		"empty":                 {in: "", wantErr: "not key=value"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseSubject(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestSubjectArgs checks that --subject and --artifact keep command-line
// order and that --artifact-name names the --artifact before it.
func TestSubjectArgs(t *testing.T) {
	dir := t.TempDir()
	a := writeFile(t, dir, "a.txt", "hello\n")
	b := writeFile(t, dir, "b.bin", "")
	parse := func(args ...string) (*subjectArgs, error) {
		var s subjectArgs
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Func("subject", "", s.subjectFlag())
		fs.Func("artifact", "", s.artifactFlag())
		fs.Func("artifact-name", "", s.artifactNameFlag())
		return &s, fs.Parse(args)
	}

	s, err := parse("--artifact", a, "--artifact-name", "registry.example/a@sha256:x",
		"--subject", "name=mid,sha256="+hex256, "--artifact", b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := []proto.Subject{
		{Name: "registry.example/a@sha256:x", Digest: map[string]string{"sha256": "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"}},
		{Name: "mid", Digest: map[string]string{"sha256": hex256}},
		{Name: "b.bin", Digest: map[string]string{"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("subjects\n got %+v\nwant %+v", got, want)
	}

	for name, args := range map[string][]string{
		"name first":             {"--artifact-name", "x", "--artifact", a},
		"name after subject":     {"--artifact", a, "--subject", "name=s,sha256=" + hex256, "--artifact-name", "x"},
		"name twice":             {"--artifact", a, "--artifact-name", "x", "--artifact-name", "y"},
		"empty artifact-name":    {"--artifact", a, "--artifact-name", ""},
		"empty artifact":         {"--artifact", ""},
		"bad subject":            {"--subject", "name=x"},
		"artifact-name no match": {"--artifact-name", "x"},
	} {
		if _, err := parse(args...); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}

	s, err = parse("--artifact", dir+"/missing")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.resolve(); err == nil {
		t.Error("missing artifact resolved without error")
	}
}

func TestBundlePaths(t *testing.T) {
	tests := map[string]struct {
		path string
		ids  []string
		want []string
	}{
		"one bundle is written as given": {"out/b.json", []string{"dev"}, []string{"out/b.json"}},
		"one bundle without suffix":      {"att", []string{"dev"}, []string{"att"}},
		"several: suffix replaced":       {"out/att.json", []string{"a", "b"}, []string{"out/att-a.json", "out/att-b.json"}},
		"several without .json":          {"att", []string{"a", "b"}, []string{"att-a.json", "att-b.json"}},
		"unsafe key ids":                 {"att.json", []string{"t/1", "..", "k 2"}, []string{"att-t_1.json", "att-key.json", "att-k_2.json"}},
		"colliding names":                {"att.json", []string{"a/b", "a_b"}, []string{"att-a_b.json", "att-a_b-2.json"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := bundlePaths(tc.path, tc.ids); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	pred := writeFile(t, t.TempDir(), "p.json", `{"a":1}`)
	for name, args := range map[string][]string{
		"no command":          {},
		"unknown command":     {"frobnicate"},
		"unknown global flag": {"--nope", "health"},
		"unknown flag":        {"health", "--nope"},
		"positional argument": {"health", "extra"},
		"sign without type":   {"sign", "--predicate", pred, "--artifact", pred},
		"sign without subj":   {"sign", "--predicate", pred, "--type", "t"},
		"sign without pred":   {"sign", "--type", "t", "--artifact", pred},
		"view without policy": {"sign", "--predicate", pred, "--type", "t", "--artifact", pred, "--view", "v"},
		"bad scanner digest":  {"sign", "--predicate", pred, "--type", "t", "--artifact", pred, "--scanner-digest", "sha256:xyz"},
		"keys no subcommand":  {"keys"},
		"keys rotate":         {"keys", "rotate"},
		"bench bad conc":      {"bench", "--concurrency", "0"},
		"bench noop+inproc":   {"bench", "--noop", "--inprocess", "--key-file", pred},
		"bench inproc no key": {"bench", "--inprocess"},
		"bench key-file only": {"bench", "--key-file", pred},
		"verify nothing":      {"verify"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, args...)
			r.wantCode(t, exitUsage)
			if r.stdout != "" {
				t.Errorf("usage error wrote to stdout: %q", r.stdout)
			}
			if len(args) == 0 { // bare signerctl prints the usage
				return
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "signerctl") {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"sign", "-h"}, {"verify", "--help"}, {"bench", "-h"}, {"keys", "-h"}, {"keys", "list", "-h"}, {"health", "-h"}} {
		r := runCtl(t, args...)
		r.wantCode(t, exitOK)
		if !strings.Contains(r.stdout, "Usage: signerctl") {
			t.Errorf("%v: no usage on stdout: %q", args, r.stdout)
		}
	}
	r := runCtl(t, "version")
	r.wantCode(t, exitOK)
	if !strings.HasPrefix(r.stdout, "signerctl ") {
		t.Errorf("version: %q", r.stdout)
	}
}
