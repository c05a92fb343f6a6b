package export

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stellaops/signer-agent/proto"
)

// BenchmarkDecodeBuild is the agent's share of an export request before
// signing: strict decode and validation of the body, then export.json and
// the provenance statement, for 1 000, 10 000 and 100 000 (the cap) files.
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
			for b.Loop() {
				req, err := proto.DecodeExportRequest(body)
				if err != nil {
					b.Fatal(err)
				}
				if out, err = Build(req, "node-1"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(body))/(1<<20), "bodyMiB")
			b.ReportMetric(float64(len(out.Statement))/(1<<20), "statementMiB")
		})
	}
}
