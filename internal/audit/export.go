package audit

import (
	"github.com/stellaops/signer-agent/proto"

	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/stellaops/signer-agent/internal/fsutil"
)

// ErrCorrupt is returned by Export for a segment whose records do not
// verify; run Verify for the details.
var ErrCorrupt = errors.New("audit segment corrupt")

// Manifest describes the segments of one export.
type Manifest = proto.AuditManifest

// SegmentInfo describes one closed segment.
type SegmentInfo = proto.AuditSegment

// Export copies the closed segments not yet exported whose records all
// have seq <= upTo (every closed segment when upTo is 0) into the
// directory dst, with a manifest (manifest-FIRST-LAST.json, segment
// numbers), fsyncs them, and marks them exported so retention may delete
// them. Call Rotate first to include the records of the active segment.
func (l *Log) Export(ctx context.Context, dst string, upTo uint64) (*Manifest, error) {
	l.maint.Lock()
	defer l.maint.Unlock()
	segs, m, err := l.plan(upTo)
	if err != nil || len(segs) == 0 {
		return m, err
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	for i, s := range segs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("audit export: %w", err)
		}
		if err := copySegment(s.path, filepath.Join(dst, s.name), m.Segments[i].SHA256); err != nil {
			return nil, err
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	name := fmt.Sprintf("manifest-%06d-%06d.json", segs[0].num, segs[len(segs)-1].num)
	if err := writeFileSync(filepath.Join(dst, name), append(b, '\n')); err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	if err := l.mark(m); err != nil {
		return nil, err
	}
	l.kickPrune()
	return m, nil
}

// ExportTo writes the segments Export would copy to w as a tar archive
// (the segment files, then manifest.json) and returns the manifest. It
// does not mark them exported: call MarkExported once the receiver has
// stored them.
func (l *Log) ExportTo(ctx context.Context, w io.Writer, upTo uint64) (*Manifest, error) {
	l.maint.Lock()
	defer l.maint.Unlock()
	segs, m, err := l.plan(upTo)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(w)
	for i, s := range segs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("audit export: %w", err)
		}
		if err := tarSegment(tw, s, m.Segments[i]); err != nil {
			return nil, err
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	b = append(b, '\n')
	hdr := &tar.Header{Name: "manifest.json", Mode: 0o600, Size: int64(len(b)), ModTime: m.CreatedAt, Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	if _, err := tw.Write(b); err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("audit export: %w", err)
	}
	return m, nil
}

// MarkExported records the segments of m as exported (ExportTo's second
// step) and lets retention run.
func (l *Log) MarkExported(m *Manifest) error {
	l.maint.Lock()
	err := l.mark(m)
	l.maint.Unlock()
	if err == nil {
		l.kickPrune()
	}
	return err
}

func (l *Log) mark(m *Manifest) error {
	st, err := readState(l.dir)
	if err != nil {
		return err
	}
	now := l.cfg.Now()
	for _, s := range m.Segments {
		if _, err := os.Stat(filepath.Join(l.dir, s.Name)); err != nil {
			return fmt.Errorf("audit export: %w", err)
		}
		if e := st.exported(s.Name); e != nil {
			e.SegmentInfo, e.ExportedAt = s, now
			continue
		}
		st.Exported = append(st.Exported, exportedSegment{SegmentInfo: s, ExportedAt: now})
	}
	return writeState(l.dir, st)
}

// plan lists the closed, unexported segments up to upTo, verifying each.
func (l *Log) plan(upTo uint64) ([]segment, *Manifest, error) {
	m := &Manifest{Version: 1, CreatedAt: l.cfg.Now().UTC(), Segments: []SegmentInfo{}}
	st, err := readState(l.dir)
	if err != nil {
		return nil, nil, err
	}
	segs, err := listSegments(l.dir)
	if err != nil {
		return nil, nil, err
	}
	active := int(l.activeNum.Load())
	var out []segment
	for i, s := range segs {
		if s.num >= active {
			break
		}
		if st.exported(s.name) != nil {
			continue
		}
		info, err := segmentInfo(segs, i)
		if err != nil {
			return nil, nil, err
		}
		if upTo > 0 && info.LastSeq > upTo {
			break
		}
		out = append(out, s)
		m.Segments = append(m.Segments, info)
	}
	return out, m, nil
}

// segmentInfo verifies segs[i] on its own (every record's hash and the
// links inside it, up to a declared abandoned tail) and describes it.
func segmentInfo(segs []segment, i int) (SegmentInfo, error) {
	s := segs[i]
	info := SegmentInfo{Name: s.name}
	limit := int64(-1)
	if cut := declaredCut(segs, i); cut != nil {
		limit = cut.Offset
	}
	res, err := scanSegment(s.path, limit, nil)
	if err != nil {
		return info, err
	}
	if res.badLine != 0 {
		return info, fmt.Errorf("%w: %s line %d: %v", ErrCorrupt, s.name, res.badLine, res.badErr)
	}
	if limit >= 0 && res.size != limit {
		return info, fmt.Errorf("%w: %s is shorter than its declared end", ErrCorrupt, s.name)
	}
	info.Records = res.records
	if res.records > 0 {
		info.FirstSeq, info.PrevHash = res.first.Seq, res.first.PrevHash
		info.LastSeq, info.LastHash = res.last.Seq, res.last.Hash
	}
	info.Bytes, info.SHA256, err = fileHash(s.path)
	return info, err
}

func fileHash(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fmt.Errorf("audit segment: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("audit segment: %w", err)
	}
	return n, hashPrefix + hex.EncodeToString(h.Sum(nil)), nil
}

// copySegment copies src to dst durably (fsutil.WriteAtomic) and checks
// the copy against want; on a mismatch dst is not written.
func copySegment(src, dst, want string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	defer in.Close()
	err = fsutil.WriteAtomic(dst, 0o600, func(out io.Writer) error {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
			return err
		}
		if hashPrefix+hex.EncodeToString(h.Sum(nil)) != want {
			return fmt.Errorf("%w: %s changed while exporting", ErrCorrupt, filepath.Base(src))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	return nil
}

func tarSegment(tw *tar.Writer, s segment, info SegmentInfo) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if fi.Size() != info.Bytes {
		return fmt.Errorf("%w: %s changed while exporting", ErrCorrupt, s.name)
	}
	hdr := &tar.Header{Name: s.name, Mode: 0o600, Size: info.Bytes, ModTime: fi.ModTime(), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if _, err := io.CopyN(tw, f, info.Bytes); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	return nil
}
