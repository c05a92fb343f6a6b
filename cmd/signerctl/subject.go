package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

// parseSubject parses the value of --subject:
//
//	name=NAME,sha256=HEX[,sha512=HEX]
//
// The value is split on ',' first, then each part on its first '=': a name
// may contain '=', '@', ':' and '/' (name=registry.example/app@sha256:ab…)
// but not ','. Fields may come in any order, each at most once; name and at
// least one digest are required. Digests are hex of the right length;
// upper-case hex is folded to lower case.
func parseSubject(s string) (proto.Subject, error) {
	sub := proto.Subject{Digest: map[string]string{}}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return proto.Subject{}, fmt.Errorf("field %q is not key=value", part)
		}
		if seen[key] {
			return proto.Subject{}, fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		switch key {
		case "name":
			if val == "" {
				return proto.Subject{}, errors.New("empty name")
			}
			sub.Name = val
		case "sha256", "sha512":
			val = strings.ToLower(val)
			if err := proto.ValidateDigest(key, val); err != nil {
				return proto.Subject{}, fmt.Errorf("%s: %w", key, err)
			}
			sub.Digest[key] = val
		default:
			return proto.Subject{}, fmt.Errorf("unknown field %q (want name, sha256, sha512)", key)
		}
	}
	if sub.Name == "" {
		return proto.Subject{}, errors.New("name= is required")
	}
	if len(sub.Digest) == 0 {
		return proto.Subject{}, errors.New("sha256= or sha512= is required")
	}
	return sub, nil
}

// subjectArg is one --subject or --artifact, in command-line order.
type subjectArg struct {
	subject *proto.Subject // --subject
	file    string         // --artifact
	name    string         // --artifact-name for that artifact
}

// subjectArgs collects --subject, --artifact and --artifact-name in order,
// so the statement's subjects follow the command line.
type subjectArgs struct{ list []subjectArg }

func (s *subjectArgs) subjectFlag() func(string) error {
	return func(v string) error {
		sub, err := parseSubject(v)
		if err != nil {
			return err
		}
		s.list = append(s.list, subjectArg{subject: &sub})
		return nil
	}
}

func (s *subjectArgs) artifactFlag() func(string) error {
	return func(v string) error {
		if v == "" {
			return errors.New("empty file name")
		}
		s.list = append(s.list, subjectArg{file: v})
		return nil
	}
}

// artifactNameFlag names the --artifact given just before it.
func (s *subjectArgs) artifactNameFlag() func(string) error {
	return func(v string) error {
		n := len(s.list)
		if n == 0 || s.list[n-1].file == "" {
			return errors.New("must follow the --artifact it names")
		}
		if s.list[n-1].name != "" {
			return errors.New("given twice for one --artifact")
		}
		if v == "" {
			return errors.New("empty name")
		}
		s.list[n-1].name = v
		return nil
	}
}

// resolve hashes the artifacts (SHA-256, name = --artifact-name or the
// file's base name) and returns the subjects in order.
func (s *subjectArgs) resolve() ([]proto.Subject, error) {
	out := make([]proto.Subject, 0, len(s.list))
	for _, a := range s.list {
		if a.subject != nil {
			out = append(out, *a.subject)
			continue
		}
		d, err := hashFile(a.file)
		if err != nil {
			return nil, err
		}
		name := a.name
		if name == "" {
			name = filepath.Base(a.file)
		}
		out = append(out, proto.Subject{Name: name, Digest: map[string]string{"sha256": d}})
	}
	return out, nil
}

// hashFile returns the lowercase hex SHA-256 of a file.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	defer f.Close()
	d, err := attest.ArtifactDigest(f)
	if err != nil {
		return "", fmt.Errorf("artifact %s: %w", path, err)
	}
	return d, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*l = append(*l, v)
	return nil
}

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}
