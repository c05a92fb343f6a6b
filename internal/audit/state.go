package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateFile is DIR/state.json: which segments were exported and where the
// chain resumes after retention deleted the oldest segments. It is
// replaced atomically (write, fsync, rename, fsync the directory).
const stateFile = "state.json"

type state struct {
	Version int `json:"version"`
	// Exported lists the segments Export shipped that are still present.
	Exported []exportedSegment `json:"exported,omitempty"`
	// Pruned is set once retention has deleted segments.
	Pruned *PruneAnchor `json:"pruned,omitempty"`
}

// exportedSegment is a segment's manifest entry plus when it was marked
// exported.
type exportedSegment struct {
	SegmentInfo
	ExportedAt time.Time `json:"exportedAt"`
}

// PruneAnchor is where the chain resumes after retention: the newest
// deleted segment, and the seq and prevHash the first remaining record
// must have.
type PruneAnchor struct {
	Through  string `json:"through"`
	NextSeq  uint64 `json:"nextSeq"`
	PrevHash string `json:"prevHash"`
}

func readState(dir string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return state{Version: 1}, nil
	}
	if err != nil {
		return st, fmt.Errorf("audit state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("audit state %s: %w", filepath.Join(dir, stateFile), err)
	}
	if st.Pruned != nil {
		if _, ok := parseSegmentName(st.Pruned.Through); !ok || st.Pruned.NextSeq == 0 || !validHash(st.Pruned.PrevHash) {
			return st, fmt.Errorf("audit state %s: bad prune anchor", filepath.Join(dir, stateFile))
		}
	}
	return st, nil
}

func writeState(dir string, st state) error {
	st.Version = 1
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, stateFile), append(b, '\n')); err != nil {
		return fmt.Errorf("audit state: %w", err)
	}
	return nil
}

func (st *state) exported(name string) *exportedSegment {
	for i := range st.Exported {
		if st.Exported[i].Name == name {
			return &st.Exported[i]
		}
	}
	return nil
}
