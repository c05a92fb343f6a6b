package agent

import (
	"context"
	"sync"
	"time"
)

// task is one subsystem of a running agent (a server, a watcher, a
// periodic loop): it runs until ctx ends and then returns. An error ends
// the agent.
type task func(ctx context.Context) error

// runTasks runs the tasks together until ctx ends or one of them fails;
// then it cancels the others and returns, only after every task has
// returned, the first error (nil when ctx simply ended).
func runTasks(ctx context.Context, tasks ...task) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t(ctx); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		}()
	}
	wg.Wait()
	return first
}

// every calls fn every d until ctx ends (the first call after d).
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// loop makes a task of a periodic function.
func loop(d time.Duration, fn func(ctx context.Context)) task {
	return func(ctx context.Context) error {
		every(ctx, d, func() { fn(ctx) })
		return nil
	}
}
