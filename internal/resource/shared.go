package resource

import "sync"

// Reads is what the reads of one plan share: some kinds ask AWS the same
// question (the task definition's Read and the service's both describe the
// ECS service, to know which revision runs; the Cloud Map namespace and
// its service both look the namespace up by name), and a plan runs every
// Read at once, so the answer is asked for once and given to both. It
// holds answers only, never errors (a throttled read is retried anew), and
// lives for one plan: an apply's steps read afresh (Ctx.Reads is nil).
type Reads struct {
	mu    sync.Mutex
	calls map[string]*sharedRead
}

type sharedRead struct {
	done chan struct{}
	v    any
	err  error
}

// NewReads returns the shared reads of one plan.
func NewReads() *Reads { return &Reads{calls: map[string]*sharedRead{}} }

// Shared returns what f answers for key, asking f once for all the reads of
// x's plan that ask for key at the same time or later (f's error is given
// to those waiting, and forgotten); without shared reads, it is f().
func Shared[T, C any](x *Context[C], key string, f func() (T, error)) (T, error) {
	r := x.erased.Reads
	if r == nil {
		return f()
	}
	r.mu.Lock()
	c, ok := r.calls[key]
	if !ok {
		c = &sharedRead{done: make(chan struct{})}
		r.calls[key] = c
	}
	r.mu.Unlock()
	if ok {
		<-c.done
		if c.err == nil {
			return c.v.(T), nil
		}
		var zero T
		return zero, c.err
	}
	v, err := f()
	c.v, c.err = v, err
	if err != nil {
		r.mu.Lock()
		delete(r.calls, key)
		r.mu.Unlock()
	}
	close(c.done)
	return v, err
}
