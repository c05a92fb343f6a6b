package sigstack

import (
	"fmt"
	"os"
	"sync"
)

// TB is the part of testing.TB the stack uses, so that TestMain can own a
// stack shared by a package's tests (see MainTB).
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// MainTB is a TB for TestMain: Fatal panics with a failure (recovered by
// Main), Cleanup functions run at Close, in reverse order.
type MainTB struct {
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

type mainFailure struct{ msg string }

// Helper does nothing.
func (m *MainTB) Helper() {}

// Fatal fails the setup.
func (m *MainTB) Fatal(args ...any) { panic(mainFailure{fmt.Sprint(args...)}) }

// Fatalf fails the setup.
func (m *MainTB) Fatalf(format string, args ...any) {
	panic(mainFailure{fmt.Sprintf(format, args...)})
}

// Cleanup registers f for Close.
func (m *MainTB) Cleanup(f func()) {
	m.mu.Lock()
	m.cleanups = append(m.cleanups, f)
	m.mu.Unlock()
}

// TempDir makes a directory removed at Close.
func (m *MainTB) TempDir() string {
	d, err := os.MkdirTemp("", "sigstack")
	if err != nil {
		m.Fatal(err)
	}
	m.mu.Lock()
	m.dirs = append(m.dirs, d)
	m.mu.Unlock()
	return d
}

// Close runs the cleanups (last first) and removes the directories.
func (m *MainTB) Close() {
	m.mu.Lock()
	cs, ds := m.cleanups, m.dirs
	m.cleanups, m.dirs = nil, nil
	m.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	for _, d := range ds {
		_ = os.RemoveAll(d)
	}
}
