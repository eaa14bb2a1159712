package tokencache

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Memory is a Cache and Locker that keeps entries in process memory. It is
// the cache to use when tokens need not outlive the process, and a reference
// implementation for tests.
//
// Store and Load copy entries (including nested maps and slices in Extra), so
// callers can neither change a stored entry nor see later changes to one.
// Lock serialises holders of one key within the process only.
//
// A Memory is safe for concurrent use by multiple goroutines. The zero value
// is not usable; call NewMemory.
type Memory struct {
	mu      sync.RWMutex // guards entries
	entries map[string]*Entry

	locks keyLocks
}

// NewMemory returns an empty in-memory cache.
func NewMemory() *Memory {
	return &Memory{entries: make(map[string]*Entry)}
}

// Load returns a copy of the entry stored under key, or an error wrapping
// ErrNotFound.
func (m *Memory) Load(ctx context.Context, key string) (*Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tokencache: load: %w", err)
	}
	m.mu.RLock()
	e, ok := m.entries[key]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("tokencache: load: %w", ErrNotFound)
	}
	return e.Clone(), nil
}

// Store saves a copy of e under key.
func (m *Memory) Store(ctx context.Context, key string, e *Entry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tokencache: store: %w", err)
	}
	if e == nil {
		return errors.New("tokencache: store: nil entry")
	}
	c := e.Clone()
	m.mu.Lock()
	m.entries[key] = c
	m.mu.Unlock()
	return nil
}

// Delete removes the entry under key, if any.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tokencache: delete: %w", err)
	}
	m.mu.Lock()
	delete(m.entries, key)
	m.mu.Unlock()
	return nil
}

// Lock takes the in-process lock for key, waiting until it is free or ctx is
// done. The returned unlock function may be called more than once.
func (m *Memory) Lock(ctx context.Context, key string) (func() error, error) {
	release, err := m.locks.lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("tokencache: lock: %w", err)
	}
	var once sync.Once
	return func() error {
		once.Do(release)
		return nil
	}, nil
}

// keyLocks is a set of per-key mutexes whose Lock can be abandoned when a
// context is done. Each mutex is a channel with a buffer of one: holding the
// lock means having sent into it. Unused mutexes are removed from the map.
// The zero value is ready to use; it is safe for concurrent use.
type keyLocks struct {
	mu sync.Mutex // guards m
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{}
	refs int // holders and waiters; guarded by keyLocks.mu
}

// lock waits for the mutex of key. It returns a release function that must
// be called exactly once, or ctx's error.
func (k *keyLocks) lock(ctx context.Context, key string) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyLock)
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()

	select {
	case l.ch <- struct{}{}:
		return func() {
			<-l.ch
			k.drop(key, l)
		}, nil
	case <-ctx.Done():
		k.drop(key, l)
		return nil, ctx.Err()
	}
}

func (k *keyLocks) drop(key string, l *keyLock) {
	k.mu.Lock()
	l.refs--
	if l.refs == 0 {
		delete(k.m, key)
	}
	k.mu.Unlock()
}
