package peercred

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestFromConn(t *testing.T) {
	dir, err := os.MkdirTemp("", "pc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := net.Dial("unix", filepath.Join(dir, "s"))
		if err == nil {
			defer c.Close()
			buf := make([]byte, 1)
			_, _ = c.Read(buf)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cr, err := FromConn(c)
	if err != nil {
		t.Fatal(err)
	}
	if cr.UID != uint32(os.Getuid()) || cr.GID != uint32(os.Getgid()) || cr.PID != int32(os.Getpid()) {
		t.Fatalf("got %+v, want uid %d gid %d pid %d", cr, os.Getuid(), os.Getgid(), os.Getpid())
	}
	want, _ := os.Getgroups()
	if len(cr.Groups) != len(want) {
		t.Fatalf("groups %v, want %v", cr.Groups, want)
	}
	if cr.Exe == "" {
		t.Fatal("exe not resolved")
	}
}

func TestFromConnNotUnix(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := FromConn(a); err != ErrNotUnix {
		t.Fatalf("got %v", err)
	}
}
