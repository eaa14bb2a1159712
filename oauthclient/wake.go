package oauthclient

// This file keeps refresh timers honest across a machine's sleep. The
// runtime's timers run on the monotonic clock, which stops while a machine
// is suspended: a laptop that sleeps for two hours fires a 50-minute timer
// 50 minutes after it wakes, long after the token it guards expired, and
// meanwhile the hot path (which reads no clock while the timer is pending)
// would keep sending that token. Token lifetimes are wall-clock instants
// (tokenState strips the monotonic reading), so a watcher compares the
// two clocks while any refresh timer is armed and, when the wall clock ran
// ahead of the monotonic one (a resume, or the clock set forward), fires at
// once every armed timer whose refresh moment has passed by the wall clock.

import (
	"sync"
	"time"
)

// clockReading is one reading of both clocks: mono only measures time
// (it stops during a suspend), wall tells it.
type clockReading struct {
	mono time.Duration
	wall time.Time
}

var monoBase = time.Now()

// readClocks reads both clocks.
func readClocks() clockReading {
	now := time.Now()
	return clockReading{mono: now.Sub(monoBase), wall: now.Round(0)}
}

const (
	// watchEvery is how often the watcher compares the clocks: after a
	// resume, a token is sent at most this long past its refresh moment
	// before it is let go (and then a 401 is replayed with a new token).
	watchEvery = time.Second
	// jumpAtLeast is how far the wall clock must run ahead of the
	// monotonic one, between two readings, to count as a sleep.
	jumpAtLeast = 500 * time.Millisecond
)

// timerWatch is the set of armed refresh timers and the one watcher
// goroutine, which runs while the set is not empty.
type timerWatch struct {
	mu      sync.Mutex
	armed   map[*tokenState]func()
	running bool
	every   time.Duration
	read    func() clockReading // readClocks; tests simulate a suspend
}

var armedTimers = &timerWatch{armed: map[*tokenState]func(){}, every: watchEvery, read: readClocks}

// arm starts st's refresh timer, which calls fire at st.refreshAt, and
// watches it.
func (w *timerWatch) arm(st *tokenState, d time.Duration, fire func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st.timer = time.AfterFunc(d, fire)
	w.armed[st] = fire
	if !w.running {
		w.running = true
		go w.watch()
	}
}

// disarm stops st's timer, if any, and stops watching it.
func (w *timerWatch) disarm(st *tokenState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if st.timer != nil {
		st.timer.Stop()
		delete(w.armed, st)
	}
}

// watch reads the clocks every w.every until no timer is armed.
func (w *timerWatch) watch() {
	w.mu.Lock()
	tick := time.NewTicker(w.every)
	prev := w.read()
	w.mu.Unlock()
	defer tick.Stop()
	for range tick.C {
		var due []func()
		w.mu.Lock()
		now := w.read()
		ahead := now.wall.Sub(prev.wall) - (now.mono - prev.mono)
		prev = now
		if len(w.armed) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		if ahead >= jumpAtLeast {
			for st, fire := range w.armed {
				if !now.wall.Before(st.refreshAt) && st.timer.Stop() {
					delete(w.armed, st)
					due = append(due, fire)
				}
			}
		}
		w.mu.Unlock()
		for _, fire := range due {
			fire() // quick: a refresh is queued in the limiter, not run here
		}
	}
}
