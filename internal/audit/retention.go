package audit

import (
	"fmt"
	"os"
	"slices"
)

// Prune deletes the oldest closed segments that LogConfig.Retention lets
// go and returns their names. It never deletes the active segment, the
// newest segment holding a record, or (unless DeleteUnexported) a segment
// Export has not shipped, and it stops at the first segment it keeps, so
// the remaining segments still form one chain. Before deleting, it records
// in the state file where the chain resumes, so Verify can check the first
// remaining record.
//
// The Log prunes after Open, after each rotation and after Export; the
// agent may call Prune on a timer for MaxAge to apply to an idle log.
func (l *Log) Prune() ([]string, error) {
	l.maint.Lock()
	defer l.maint.Unlock()
	r := l.cfg.Retention
	if r.MaxAge <= 0 && r.MaxBytes <= 0 {
		return nil, nil
	}
	st, err := readState(l.dir)
	if err != nil {
		return nil, err
	}
	segs, err := listSegments(l.dir)
	if err != nil {
		return nil, err
	}
	protect := int(l.activeNum.Load())
	if n := int(l.lastRecNum.Load()); n > 0 && n < protect {
		protect = n
	}
	infos := make([]os.FileInfo, len(segs))
	var total int64
	for i, s := range segs {
		fi, err := os.Stat(s.path)
		if err != nil {
			return nil, fmt.Errorf("audit retention: %w", err)
		}
		infos[i] = fi
		total += fi.Size()
	}
	now := l.cfg.Now()
	var (
		del    []segment
		anchor *PruneAnchor
	)
	for i, s := range segs {
		if s.num >= protect {
			break
		}
		old := r.MaxAge > 0 && now.Sub(infos[i].ModTime()) > r.MaxAge
		big := r.MaxBytes > 0 && total > r.MaxBytes
		if !old && !big {
			break
		}
		if st.exported(s.name) == nil && !r.DeleteUnexported {
			break
		}
		a, ok := resumeAfter(segs, i)
		if !ok {
			l.obs.Event(Event{Kind: EventPruneFailed, Segment: s.name, Detail: "no readable record after it to anchor the chain"})
			break
		}
		del, anchor = append(del, s), a
		total -= infos[i].Size()
	}
	if len(del) == 0 {
		return nil, nil
	}
	st.Pruned = anchor
	st.Exported = slices.DeleteFunc(st.Exported, func(e exportedSegment) bool {
		n, _ := parseSegmentName(e.Name)
		return n <= del[len(del)-1].num
	})
	if err := writeState(l.dir, st); err != nil {
		return nil, err
	}
	var names []string
	for _, s := range del {
		if err := os.Remove(s.path); err != nil {
			// Open finishes the job: the anchor is already recorded.
			return names, fmt.Errorf("audit retention: %w", err)
		}
		names = append(names, s.name)
		l.st.pruned.Add(1)
		l.obs.Event(Event{Kind: EventPruned, Segment: s.name})
	}
	if err := syncDir(l.dir); err != nil {
		return names, fmt.Errorf("audit retention: %w", err)
	}
	return names, nil
}

// resumeAfter returns the prune anchor for deleting segs[:i+1]: the seq
// and prevHash of the first record after segs[i].
func resumeAfter(segs []segment, i int) (*PruneAnchor, bool) {
	for j := i + 1; j < len(segs); j++ {
		h, ok, err := readFirst(segs[j].path)
		if err != nil {
			return nil, false
		}
		if ok {
			return &PruneAnchor{Through: segs[i].name, NextSeq: h.Seq, PrevHash: h.PrevHash}, true
		}
	}
	return nil, false
}

// kickPrune asks the maintenance goroutine to prune.
func (l *Log) kickPrune() {
	select {
	case l.pruneCh <- struct{}{}:
	default:
	}
}

// maintain runs retention off the writer's path.
func (l *Log) maintain() {
	defer close(l.maintDone)
	for {
		select {
		case <-l.stop:
			return
		case <-l.pruneCh:
			if _, err := l.Prune(); err != nil {
				l.obs.Event(Event{Kind: EventPruneFailed, Err: err})
			}
		}
	}
}
