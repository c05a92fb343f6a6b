package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWalkTree(t *testing.T) {
	dir := exportTree(t)
	if err := os.Symlink("a", filepath.Join(dir, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "sbom", "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty-dir", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The root may be a symlink to the tree.
	link := filepath.Join(t.TempDir(), "root-link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	root, err := exportRoot(link)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := walkTree(context.Background(), root, map[string]bool{"sbom/app.cdx.json": true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range tr.files {
		names = append(names, f.rel)
	}
	want := "README.txt a-b a/b données/é.txt empty sbom/app-2.cdx.json"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("files %q, want %q (byte order, skip applied)", got, want)
	}
	var other []string
	for _, o := range tr.other {
		other = append(other, o.rel+"="+o.kind)
	}
	if got := strings.Join(other, " "); got != "dirlink=symlink sbom/fifo=named pipe" {
		t.Fatalf("other entries %q", got)
	}
	if tr.bytes != 83-25 {
		t.Fatalf("bytes %d", tr.bytes)
	}
}

func TestRelInRoot(t *testing.T) {
	dir := exportTree(t)
	root, _ := exportRoot(dir)
	for path, want := range map[string]string{
		filepath.Join(dir, "export.json"):           "export.json",
		filepath.Join(dir, "sbom", "x.json"):        "sbom/x.json",
		filepath.Join(dir, "sbom", "..", "y"):       "y",
		filepath.Join(filepath.Dir(dir), "outside"): "",
		dir:                              "",
		filepath.Join(dir, "nodir", "x"): "",
	} {
		if got := relInRoot(root, path); got != want {
			t.Errorf("relInRoot(%s) = %q, want %q", path, got, want)
		}
	}
}

func TestHashFiles(t *testing.T) {
	dir := t.TempDir()
	var files []treeFile
	var want []string
	for i := range 40 {
		// Sizes around the read buffer and zero.
		n := []int{0, 1, hashBufSize - 1, hashBufSize, hashBufSize + 1, 3*hashBufSize + 17}[i%6] + i
		content := bytes.Repeat([]byte{byte(i)}, n)
		p := writeFile(t, dir, fmt.Sprintf("f%02d", i), string(content))
		sum := sha256.Sum256(content)
		want = append(want, hex.EncodeToString(sum[:]))
		files = append(files, treeFile{rel: filepath.Base(p), abs: p, size: int64(n)})
	}
	var stderr bytes.Buffer
	p := newProgress("always", &stderr, "hashing", len(files), 0)
	got, err := hashFiles(context.Background(), files, 3, p)
	p.finish()
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if got[i].sha256 != want[i] || got[i].size != files[i].size {
			t.Fatalf("file %d: %+v, want %s size %d", i, got[i], want[i], files[i].size)
		}
	}
	if !strings.Contains(stderr.String(), "hashing 40/40 files") || !strings.HasSuffix(stderr.String(), "\n") {
		t.Fatalf("progress %q", stderr.String())
	}

	// A file gone since the walk: an error naming it, and all workers done.
	gone := append([]treeFile(nil), files...)
	gone[17].abs = filepath.Join(dir, "vanished")
	_, err = hashFiles(context.Background(), gone, 4, nil)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), files[17].rel) {
		t.Fatalf("got %v", err)
	}
	// A symlink swapped in since the walk is not followed.
	if err := os.Symlink(files[0].abs, filepath.Join(dir, "swapped")); err != nil {
		t.Fatal(err)
	}
	_, err = hashFiles(context.Background(), []treeFile{{rel: "swapped", abs: filepath.Join(dir, "swapped")}}, 1, nil)
	if !errors.Is(err, syscall.ELOOP) {
		t.Fatalf("symlink followed: %v", err)
	}
	// A cancelled context stops hashing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := hashFiles(ctx, files, 2, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestProgressModes(t *testing.T) {
	var buf bytes.Buffer
	if p := newProgress("never", &buf, "x", 1e6, 1<<40); p != nil {
		t.Fatal("never shows progress")
	}
	if p := newProgress("auto", &buf, "x", 1e6, 1<<40); p != nil {
		t.Fatal("auto shows progress off a terminal")
	}
	var nilp *progress
	nilp.add(1)
	nilp.fileDone()
	nilp.finish()
	if buf.Len() != 0 {
		t.Fatalf("wrote %q", buf.String())
	}
}

func TestQuotePath(t *testing.T) {
	for in, want := range map[string]string{
		"a/b.txt":   "a/b.txt",
		"données/é": "données/é",
		"a b":       "a b",
		"x\ny":      `"x\ny"`,
		"\x1b[2J":   `"\x1b[2J"`,
		`q"uote`:    `"q\"uote"`,
		"bad\xff":   `"bad\xff"`,
	} {
		if got := quotePath(in); got != want {
			t.Errorf("quotePath(%q) = %s, want %s", in, got, want)
		}
	}
}
