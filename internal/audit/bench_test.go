package audit

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
)

// benchParallel runs b.N appends from 16 goroutines.
func benchParallel(b *testing.B, a Auditor) {
	const workers = 16
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		n := b.N / workers
		if w < b.N%workers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := a.Append(context.Background(), rec(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
}

// BenchmarkAppendParallel16 is the durable log: every Append waits for
// its group commit's fdatasync. Compare with BenchmarkMemoryAppend for the
// cost of durability; fsyncs/op shows how well commits are grouped.
func BenchmarkAppendParallel16(b *testing.B) {
	l, err := Open(LogConfig{Dir: filepath.Join(b.TempDir(), "audit")})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	benchParallel(b, l)
	s := l.Stats()
	b.ReportMetric(float64(s.Fsyncs)/float64(b.N), "fsyncs/op")
	if s.Batches > 0 {
		b.ReportMetric(float64(s.Appends)/float64(s.Batches), "records/commit")
	}
}

// BenchmarkAppendSerial is one caller at a time: one fdatasync per record.
func BenchmarkAppendSerial(b *testing.B) {
	l, err := Open(LogConfig{Dir: filepath.Join(b.TempDir(), "audit")})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := l.Append(context.Background(), rec(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryAppend(b *testing.B) {
	benchParallel(b, &Memory{})
}

func BenchmarkVerify(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "audit")
	l, err := Open(LogConfig{Dir: dir, SegmentBytes: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10000; i += 1000 {
		appendN(b, l, i, 1000)
	}
	l.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if rep, err := Verify(dir); err != nil || !rep.OK {
			b.Fatal(err, rep)
		}
	}
	b.ReportMetric(10000, "records/verify")
}
