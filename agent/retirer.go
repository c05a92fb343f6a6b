package agent

import (
	"context"
	"sync"
)

// retirer closes the keys of snapshots replaced by a reload, once the last
// request holding each has released it. Its run is one of the agent's
// tasks; Run drains what is left after every task has returned (no reload
// can start by then).
type retirer struct {
	mu    sync.Mutex
	queue []retiredSnapshot
	wake  chan struct{}
	once  sync.Once
}

type retiredSnapshot struct{ old, next *snapshot }

func (r *retirer) init() { r.once.Do(func() { r.wake = make(chan struct{}, 1) }) }

// add queues old (replaced by next) for closing.
func (r *retirer) add(old, next *snapshot) {
	r.init()
	r.mu.Lock()
	r.queue = append(r.queue, retiredSnapshot{old, next})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run closes queued snapshots in order as they become idle, until ctx
// ends.
func (r *retirer) run(ctx context.Context) error {
	r.init()
	for {
		if !r.closeQueued(ctx) {
			return nil
		}
		select {
		case <-r.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// drain closes every queued snapshot, waiting for each to become idle.
func (r *retirer) drain() { r.closeQueued(context.Background()) }

// closeQueued takes the queue and closes each snapshot once idle; it
// stops early (false, requeueing the rest) when ctx ends first.
func (r *retirer) closeQueued(ctx context.Context) bool {
	r.mu.Lock()
	q := r.queue
	r.queue = nil
	r.mu.Unlock()
	for i, x := range q {
		select {
		case <-x.old.done:
			x.old.closeKeys(x.next)
		case <-ctx.Done():
			r.mu.Lock()
			r.queue = append(q[i:], r.queue...)
			r.mu.Unlock()
			return false
		}
	}
	return true
}
