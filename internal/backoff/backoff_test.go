package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPolicy(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		n    int
		want time.Duration
	}{
		{"first", Policy{Base: 100 * time.Millisecond, Cap: 200 * time.Millisecond}, 1, 100 * time.Millisecond},
		{"second", Policy{Base: 100 * time.Millisecond, Cap: 200 * time.Millisecond}, 2, 200 * time.Millisecond},
		{"capped", Policy{Base: 100 * time.Millisecond, Cap: 200 * time.Millisecond}, 9, 200 * time.Millisecond},
		{"zero n is first", Policy{Base: 20 * time.Millisecond}, 0, 20 * time.Millisecond},
		{"uncapped doubles", Policy{Base: 20 * time.Millisecond}, 4, 160 * time.Millisecond},
		{"uncapped huge n does not overflow", Policy{Base: time.Second}, 200, time.Duration(1<<62) / 2 / time.Second * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.p.Max(tt.n)
			if tt.name == "uncapped huge n does not overflow" {
				if got <= 0 {
					t.Fatalf("Max(%d) = %v, overflowed", tt.n, got)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("Max(%d) = %v, want %v", tt.n, got, tt.want)
			}
			for range 200 {
				if d := tt.p.Delay(tt.n); d < 0 || d > tt.want {
					t.Fatalf("Delay(%d) = %v, want within [0, %v]", tt.n, d, tt.want)
				}
			}
		})
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatalf("Sleep(0) = %v", err)
	}
	if err := (Policy{Base: time.Millisecond}).Wait(context.Background(), 1); err != nil {
		t.Fatalf("Wait = %v", err)
	}
}
