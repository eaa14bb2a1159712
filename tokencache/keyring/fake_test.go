package keyring

import (
	"strings"
	"sync"

	gokeyring "github.com/zalando/go-keyring"
)

// fakeKeychain is an in-memory keychain that, like the real ones, refuses
// values over a size limit. failSet, if set, decides per item whether Set
// fails.
type fakeKeychain struct {
	mu      sync.Mutex // guards items, failSet, block, onGet
	items   map[string]string
	limit   int
	failSet func(user string) error
	block   chan struct{} // if non-nil, Get waits for it to close
	onGet   func()        // if non-nil, called when Get is entered
}

func newFake(limit int) *fakeKeychain {
	return &fakeKeychain{items: make(map[string]string), limit: limit}
}

func (f *fakeKeychain) Set(service, user, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSet != nil {
		if err := f.failSet(user); err != nil {
			return err
		}
	}
	if len(value) > f.limit {
		return gokeyring.ErrSetDataTooBig
	}
	f.items[service+"\x00"+user] = value
	return nil
}

func (f *fakeKeychain) Get(service, user string) (string, error) {
	f.mu.Lock()
	block, onGet := f.block, f.onGet
	f.mu.Unlock()
	if onGet != nil {
		onGet()
	}
	if block != nil {
		<-block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.items[service+"\x00"+user]
	if !ok {
		return "", gokeyring.ErrNotFound
	}
	return v, nil
}

func (f *fakeKeychain) Delete(service, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := service + "\x00" + user
	if _, ok := f.items[k]; !ok {
		return gokeyring.ErrNotFound
	}
	delete(f.items, k)
	return nil
}

// users lists the items of service, sorted.
func (f *fakeKeychain) users(service string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.items {
		if s, u, _ := strings.Cut(k, "\x00"); s == service {
			out = append(out, u)
		}
	}
	return out
}
