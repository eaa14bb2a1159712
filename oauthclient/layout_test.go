package oauthclient

import (
	"testing"
	"unsafe"
)

// The hot path's fields share one cache line only if the structs keep the
// sizes whose allocation size classes start objects on 64-byte boundaries.
func TestHotStructsAlignToCacheLines(t *testing.T) {
	if s := unsafe.Sizeof(tokenState{}); s != 192 {
		t.Errorf("tokenState is %d bytes, want 192 (adjust its padding)", s)
	}
	if s := unsafe.Sizeof(Transport{}); s != 128 {
		t.Errorf("Transport is %d bytes, want 128 (adjust its padding)", s)
	}
	if o := unsafe.Offsetof(tokenState{}.holders) + unsafe.Sizeof(tokenState{}.holders); o > 64 {
		t.Errorf("tokenState's hot fields end at byte %d, past the first cache line", o)
	}
	if o := unsafe.Offsetof(Transport{}.Base) + unsafe.Sizeof(Transport{}.Base); o > 64 {
		t.Errorf("Transport's hot fields end at byte %d, past the first cache line", o)
	}
}
