package keyring

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	gokeyring "github.com/zalando/go-keyring"

	"github.com/oauthkit/oauthkit/tokencache"
)

// DefaultMaxValueSize is the default largest value stored in one keychain
// item. It is below the smallest platform limit (Windows Credential Manager
// takes 2560 bytes; the macOS security tool about 3000 bytes once it has
// base64-encoded the value), so the same items work everywhere.
const DefaultMaxValueSize = 2000

// minMaxValueSize keeps manifests (about 170 bytes) within one item.
const minMaxValueSize = 256

// Options configure a Cache. The zero value means all defaults.
type Options struct {
	// MaxValueSize is the largest value, in bytes, stored in one keychain
	// item; larger entries are compressed and split over several items.
	// Optional: 0 means DefaultMaxValueSize. At least 256.
	MaxValueSize int
	// LockDir is the directory of the lock files of Lock. Optional: empty
	// means tokencache.DefaultLockDir() (os.UserCacheDir()/oauthkit/locks).
	// It is created on first Lock.
	LockDir string
}

// backend is the keychain: go-keyring in production, a fake in tests.
// go-keyring's mock cannot serve the tests, since it replaces go-keyring's
// process-wide provider for good.
type backend interface {
	Set(service, user, value string) error
	Get(service, user string) (string, error)
	Delete(service, user string) error
}

type osKeychain struct{}

func (osKeychain) Set(service, user, value string) error {
	if err := checkKeychain(); err != nil {
		return err
	}
	return gokeyring.Set(service, user, value)
}

func (osKeychain) Get(service, user string) (string, error) {
	if err := checkKeychain(); err != nil {
		return "", err
	}
	return gokeyring.Get(service, user)
}

func (osKeychain) Delete(service, user string) error {
	if err := checkKeychain(); err != nil {
		return err
	}
	return gokeyring.Delete(service, user)
}

// Cache is a tokencache.Cache and tokencache.Locker that keeps entries in
// the OS keychain under one service name, with the cache key as the item's
// user (account) name. Entries larger than MaxValueSize are split over
// several items transparently (see the package documentation).
//
// A Cache is safe for concurrent use by multiple goroutines: it runs one
// keychain operation at a time. Load, Store and Delete honour their context
// even while the keychain blocks (for example on an unlock prompt); an
// operation abandoned that way may still complete in the background.
type Cache struct {
	service  string
	maxValue int
	lockDir  string
	kc       backend
	err      error // from New: returned by every method

	sem chan struct{} // holds a token while a keychain operation runs

	lmu    sync.Mutex // guards locker
	locker *tokencache.FileLocker
}

// New returns a Cache storing entries under the given keychain service
// name, with default Options. If service is empty, every method of the
// returned Cache fails.
func New(service string) *Cache {
	c, err := NewWithOptions(service, Options{})
	if err != nil {
		return &Cache{err: err}
	}
	return c
}

// NewWithOptions returns a Cache storing entries under the given keychain
// service name. It fails if service is empty or opts are invalid; it does
// not contact the keychain.
func NewWithOptions(service string, opts Options) (*Cache, error) {
	if service == "" {
		return nil, errors.New("tokencache/keyring: empty service name")
	}
	size := opts.MaxValueSize
	if size == 0 {
		size = DefaultMaxValueSize
	}
	if size < minMaxValueSize {
		return nil, fmt.Errorf("tokencache/keyring: MaxValueSize %d is below %d", size, minMaxValueSize)
	}
	return &Cache{
		service:  service,
		maxValue: size,
		lockDir:  opts.LockDir,
		kc:       osKeychain{},
		sem:      make(chan struct{}, 1),
	}, nil
}

// do runs op as the Cache's only keychain operation, returning early with
// ctx's error if ctx is done first.
func (c *Cache) do(ctx context.Context, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-c.sem }()
		done <- op()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Cache) check(op, key string) error {
	if c.err != nil {
		return c.err
	}
	if err := tokencache.ValidateKey(key); err != nil {
		return fmt.Errorf("tokencache/keyring: %s: %w", op, err)
	}
	return nil
}

// Load returns the entry stored under key, an error wrapping
// tokencache.ErrNotFound or tokencache.ErrCorrupt, or an *UnavailableError.
func (c *Cache) Load(ctx context.Context, key string) (*tokencache.Entry, error) {
	if err := c.check("load", key); err != nil {
		return nil, err
	}
	var e *tokencache.Entry
	err := c.do(ctx, func() error {
		var err error
		e, err = c.load(key)
		return err
	})
	if err != nil {
		if errors.Is(err, ctx.Err()) {
			return nil, fmt.Errorf("tokencache/keyring: load: %w", err)
		}
		return nil, err
	}
	return e, nil
}

func (c *Cache) load(key string) (*tokencache.Entry, error) {
	for attempt := 0; ; attempt++ {
		head, err := c.kc.Get(c.service, key)
		if err != nil {
			return nil, wrapErr("load", err)
		}
		if !strings.HasPrefix(head, manifestPrefix) {
			e, err := tokencache.Decode([]byte(head))
			if err != nil {
				return nil, fmt.Errorf("tokencache/keyring: load: %w", err)
			}
			return e, nil
		}
		m, err := parseManifest(head, c.maxValue)
		if err != nil {
			return nil, fmt.Errorf("tokencache/keyring: load: %w", err)
		}
		b, err := c.readChunks(key, m)
		var torn errTorn
		if errors.As(err, &torn) && attempt == 0 {
			continue // another process may be storing; read the new head
		}
		if err != nil {
			if errors.As(err, &torn) {
				err = fmt.Errorf("%w: %v", tokencache.ErrCorrupt, err)
			}
			return nil, fmt.Errorf("tokencache/keyring: load: %w", err)
		}
		e, err := tokencache.Decode(b)
		if err != nil {
			return nil, fmt.Errorf("tokencache/keyring: load: %w", err)
		}
		return e, nil
	}
}

func (c *Cache) readChunks(key string, m manifest) ([]byte, error) {
	chunks := make([]string, m.Chunks)
	for i := range chunks {
		v, err := c.kc.Get(c.service, chunkName(key, m.Slot, i+1))
		if errors.Is(err, gokeyring.ErrNotFound) {
			return nil, errTorn{fmt.Sprintf("chunk %d of %d missing", i+1, m.Chunks)}
		}
		if err != nil {
			return nil, wrapErr("load", err)
		}
		chunks[i] = v
	}
	return join(chunks, m)
}

// Store replaces the entry under key. A failed Store leaves the previous
// entry intact; it may leave unreferenced chunk items behind, which a later
// Store or Delete of the key removes.
func (c *Cache) Store(ctx context.Context, key string, e *tokencache.Entry) error {
	if err := c.check("store", key); err != nil {
		return err
	}
	b, err := tokencache.Encode(e)
	if err != nil {
		return fmt.Errorf("tokencache/keyring: store: %w", err)
	}
	err = c.do(ctx, func() error { return c.store(key, b) })
	if err != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("tokencache/keyring: store: %w", err)
	}
	return err
}

func (c *Cache) store(key string, b []byte) error {
	// The current head tells which chunk slot is in use.
	oldSlot, oldChunks, err := c.chunkSlot(key)
	if err != nil {
		return wrapErr("store", err)
	}

	if len(b) <= c.maxValue {
		if err := c.kc.Set(c.service, key, string(b)); err != nil {
			return wrapErr("store", err)
		}
		if oldSlot != "" {
			c.deleteSlot(key, oldSlot, oldChunks) // best effort
		}
		return nil
	}

	chunks, m, err := split(b, c.maxValue)
	if err != nil {
		return fmt.Errorf("tokencache/keyring: store: compress: %w", err)
	}
	m.Slot = otherSlot(oldSlot)
	for i, chunk := range chunks {
		if err := c.kc.Set(c.service, chunkName(key, m.Slot, i+1), chunk); err != nil {
			c.deleteRun(key, m.Slot, 1)
			return wrapErr("store", err)
		}
	}
	if err := c.kc.Set(c.service, key, m.head()); err != nil {
		c.deleteRun(key, m.Slot, 1)
		return wrapErr("store", err)
	}
	// Best effort: chunks beyond N left by an earlier failed Store, and the
	// previous entry's chunks.
	c.deleteRun(key, m.Slot, m.Chunks+1)
	if oldSlot != "" {
		c.deleteSlot(key, oldSlot, oldChunks)
	}
	return nil
}

// chunkSlot returns the slot and chunk count of the entry under key, or ""
// if it is missing or not chunked.
func (c *Cache) chunkSlot(key string) (slot string, chunks int, err error) {
	head, err := c.kc.Get(c.service, key)
	if errors.Is(err, gokeyring.ErrNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	m, err := parseManifest(head, c.maxValue)
	if err != nil {
		return "", 0, nil
	}
	return m.Slot, m.Chunks, nil
}

// deleteSlot deletes the chunks 1…known of slot, tolerating gaps, and then
// any that follow.
func (c *Cache) deleteSlot(key, slot string, known int) error {
	for i := 1; i <= known; i++ {
		err := c.kc.Delete(c.service, chunkName(key, slot, i))
		if err != nil && !errors.Is(err, gokeyring.ErrNotFound) {
			return wrapErr("delete", err)
		}
	}
	return c.deleteRun(key, slot, known+1)
}

// deleteRun deletes the chunks of slot from index from on, up to the first
// one missing.
func (c *Cache) deleteRun(key, slot string, from int) error {
	for i := from; i <= maxChunks(c.maxValue); i++ {
		err := c.kc.Delete(c.service, chunkName(key, slot, i))
		if errors.Is(err, gokeyring.ErrNotFound) {
			return nil
		}
		if err != nil {
			return wrapErr("delete", err)
		}
	}
	return nil
}

// Delete removes the entry under key and all its chunk items. Deleting a
// missing entry is not an error.
func (c *Cache) Delete(ctx context.Context, key string) error {
	if err := c.check("delete", key); err != nil {
		return err
	}
	err := c.do(ctx, func() error {
		slot, chunks, err := c.chunkSlot(key)
		if err != nil {
			return wrapErr("delete", err)
		}
		// The head goes first, so readers never see a head without chunks.
		if err := c.kc.Delete(c.service, key); err != nil && !errors.Is(err, gokeyring.ErrNotFound) {
			return wrapErr("delete", err)
		}
		for _, s := range []string{"a", "b"} {
			known := 0
			if s == slot {
				known = chunks
			}
			if err := c.deleteSlot(key, s, known); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("tokencache/keyring: delete: %w", err)
	}
	return err
}

// Lock takes the machine-wide lock for key with a lock file in
// Options.LockDir (see tokencache.FileLocker). The keychain has no locks of
// its own.
func (c *Cache) Lock(ctx context.Context, key string) (func() error, error) {
	if err := c.check("lock", key); err != nil {
		return nil, err
	}
	l, err := c.fileLocker()
	if err != nil {
		return nil, err
	}
	return l.Lock(ctx, key)
}

func (c *Cache) fileLocker() (*tokencache.FileLocker, error) {
	c.lmu.Lock()
	defer c.lmu.Unlock()
	if c.locker != nil {
		return c.locker, nil
	}
	dir := c.lockDir
	if dir == "" {
		var err error
		if dir, err = tokencache.DefaultLockDir(); err != nil {
			return nil, fmt.Errorf("tokencache/keyring: lock directory: %w", err)
		}
	}
	l, err := tokencache.NewFileLocker(dir)
	if err != nil {
		return nil, fmt.Errorf("tokencache/keyring: %w", err)
	}
	c.locker = l
	return l, nil
}
