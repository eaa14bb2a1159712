package redistest

import "testing"

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	s.Kill()
	if err := ping(s.Addr); err == nil {
		t.Fatal("PING succeeded after Kill")
	}
	s.Kill() // killing a stopped server does nothing
	s.Restart()
	if err := ping(s.Addr); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}

func TestStartSentinel(t *testing.T) {
	master := Start(t)
	sentinel := StartSentinel(t, master, "m")
	if err := ping(sentinel.Addr); err != nil {
		t.Fatalf("PING sentinel: %v", err)
	}
}
