package export

import (
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/proto"
)

// cpuTime is the user + system CPU time of who (RUSAGE_SELF or
// RUSAGE_CHILDREN): on a shared machine it says more than wall time.
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeBuild is the agent's share of an export request before
// signing: strict decode and validation of the body, then export.json and
// the provenance statement, for 1 000, 10 000 and 100 000 (the cap) files.
// cpu-ms/op is the process's CPU time per operation (GC included).
func BenchmarkDecodeBuild(b *testing.B) {
	for _, n := range []int{1000, 10_000, proto.MaxExportFiles} {
		r := request()
		r.Export.Files = make([]proto.ExportFile, n)
		for i := range r.Export.Files {
			r.Export.Files[i] = proto.ExportFile{Path: fmt.Sprintf("data/d%03d/file-%06d.json", i%997, i), Digest: proto.FileDigest{SHA256: hexA}, Size: int64(i)}
		}
		body, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			var out *Built
			cpu0 := cpuTime(syscall.RUSAGE_SELF)
			for b.Loop() {
				req, err := proto.DecodeExportRequest(body)
				if err != nil {
					b.Fatal(err)
				}
				if out, err = Build(req, "node-1"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuTime(syscall.RUSAGE_SELF)-cpu0).Seconds()*1000/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64(len(body))/(1<<20), "bodyMiB")
			b.ReportMetric(float64(len(out.Statement))/(1<<20), "statementMiB")
		})
	}
}
