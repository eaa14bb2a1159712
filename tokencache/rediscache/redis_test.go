package rediscache

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestMicros(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "0"},
		{time.Unix(0, 0), "0"},
		{time.Unix(-5, 0), "0"},
		{time.Unix(1, 1500), "1000001"},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), "9007199254740991"},
	}
	for _, tt := range tests {
		if got := micros(tt.t); got != tt.want {
			t.Errorf("micros(%v) = %s, want %s", tt.t, got, tt.want)
		}
	}
}

func TestCallReturnsWhenContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	undone := make(chan int, 1)
	cancel()
	_, err := call(ctx, func() (int, error) { <-release; return 7, nil }, func(v int) { undone <- v })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	close(release)
	if v := <-undone; v != 7 {
		t.Errorf("abandoned got %d, want 7", v)
	}
}

// TestRoundTripNoAnswer: a round trip that outlives its bound fails with
// an error that is not the caller's context error.
func TestRoundTripNoAnswer(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	_, err := roundTrip(context.Background(), 10*time.Millisecond, func(ctx context.Context) (int, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return 0, ctx.Err()
	}, nil)
	var na errNoAnswer
	if !errors.As(err, &na) || errors.Is(err, context.DeadlineExceeded) || !unavailable(err) {
		t.Errorf("err = %v, want a no-answer error that is not DeadlineExceeded", err)
	}
}
