// Command kitgen is the offline kit's build helper, run by
// packaging/dist/dist.sh (`go run ./packaging/kitgen`):
//
//	kitgen provenance --out FILE --version V --repo URI --commit SHA
//	       --command CMD --epoch E --builder-id ID
//	       [--builder-version K=V]... [--param K=V]... [--dep NAME=URI[@sha256:HEX]]...
//	    writes the SLSA v1 provenance predicate (internal/kit.ProvenanceJSON)
//	kitgen checksums --out FILE --kit NAME --version V --commit SHA
//	    writes the predicate of the statement over SHA256SUMS
//	kitgen sums DIR
//	    writes DIR/SHA256SUMS over every file in DIR
//	kitgen tar --top NAME --epoch E DIR OUT
//	    packs DIR as OUT (gzip-compressed tar, reproducible)
//
// The signatures themselves are made by the agent (signerctl sign), not here.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/internal/fsutil"
	"github.com/stellaops/signer-agent/internal/kit"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kitgen:", err)
		os.Exit(1)
	}
}

type kvFlag map[string]string

func (m kvFlag) String() string { return fmt.Sprint(map[string]string(m)) }
func (m kvFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	m[k] = val
	return nil
}

type depFlag []kit.Dependency

func (d *depFlag) String() string { return fmt.Sprint(*d) }
func (d *depFlag) Set(v string) error {
	name, uri, ok := strings.Cut(v, "=")
	if !ok || name == "" || uri == "" {
		return fmt.Errorf("want NAME=URI[@sha256:HEX], got %q", v)
	}
	dep := kit.Dependency{Name: name, URI: uri}
	if i := strings.LastIndex(uri, "@sha256:"); i >= 0 {
		dep.URI, dep.SHA256 = uri[:i], uri[i+len("@sha256:"):]
	}
	*d = append(*d, dep)
	return nil
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: kitgen provenance|checksums|sums|tar ...")
	}
	switch args[0] {
	case "provenance":
		return provenance(args[1:])
	case "checksums":
		return checksums(args[1:])
	case "sums":
		if len(args) != 2 {
			return errors.New("usage: kitgen sums DIR")
		}
		return kit.WriteSums(args[1])
	case "tar":
		return tarKit(args[1:])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func provenance(args []string) error {
	fs := flag.NewFlagSet("provenance", flag.ContinueOnError)
	var b kit.Build
	out := fs.String("out", "", "output `FILE`")
	fs.StringVar(&b.Version, "version", "", "version")
	fs.StringVar(&b.SourceRepo, "repo", "", "source repository URI")
	fs.StringVar(&b.SourceCommit, "commit", "", "source commit")
	fs.StringVar(&b.Command, "command", "", "build command")
	fs.Int64Var(&b.SourceDateEpoch, "epoch", -1, "SOURCE_DATE_EPOCH")
	fs.StringVar(&b.BuilderID, "builder-id", "", "builder id")
	bv, params := kvFlag{}, kvFlag{}
	var deps depFlag
	fs.Var(bv, "builder-version", "builder tool `K=V` (repeatable)")
	fs.Var(params, "param", "internal parameter `K=V` (repeatable)")
	fs.Var(&deps, "dep", "resolved dependency `NAME=URI[@sha256:HEX]` (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || b.SourceDateEpoch < 0 {
		return errors.New("provenance: --out and --epoch are required")
	}
	b.BuilderVersion, b.Parameters, b.Dependencies = bv, params, deps
	pred, err := kit.ProvenanceJSON(b)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(pred, '\n'), 0o644)
}

func checksums(args []string) error {
	fs := flag.NewFlagSet("checksums", flag.ContinueOnError)
	var c kit.Checksums
	out := fs.String("out", "", "output `FILE`")
	fs.StringVar(&c.Kit, "kit", "", "kit name")
	fs.StringVar(&c.Version, "version", "", "version")
	fs.StringVar(&c.SourceCommit, "commit", "", "source commit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || c.Kit == "" || c.Version == "" || c.SourceCommit == "" {
		return errors.New("checksums: --out, --kit, --version and --commit are required")
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

func tarKit(args []string) error {
	fs := flag.NewFlagSet("tar", flag.ContinueOnError)
	top := fs.String("top", "", "top directory name inside the tarball")
	epoch := fs.Int64("epoch", -1, "SOURCE_DATE_EPOCH")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 || *top == "" || *epoch < 0 {
		return errors.New("usage: kitgen tar --top NAME --epoch E DIR OUT")
	}
	dir, out := fs.Arg(0), fs.Arg(1)
	return fsutil.WriteAtomic(out, 0o644, func(w io.Writer) error {
		return kit.WriteTarGz(w, dir, *top, time.Unix(*epoch, 0))
	})
}
