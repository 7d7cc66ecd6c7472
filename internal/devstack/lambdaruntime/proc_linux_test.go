//go:build linux

package lambdaruntime

import (
	"os"
	"testing"
)

func TestParseHWM(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{"typical", "Name:\tbootstrap\nVmPeak:\t  1250000 kB\nVmHWM:\t    12345 kB\nVmRSS:\t    11000 kB\n", 12345 * 1024},
		{"last line without newline", "Name:\tx\nVmHWM:\t7 kB", 7 * 1024},
		{"missing (zombie)", "Name:\tx\nState:\tZ (zombie)\n", 0},
		{"empty value", "Name:\tx\nVmHWM:\n", 0},
		{"garbage", "Name:\tx\nVmHWM:\tlots kB\n", 0},
		{"not at line start", "Name:\tVmHWM:\t9 kB\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseHWM([]byte(tt.in)); got != tt.want {
				t.Errorf("parseHWM = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestProcStatusReadsUntilClosed(t *testing.T) {
	s := openProcStatus(os.Getpid())
	first := s.hwm()
	if first <= 0 {
		t.Fatalf("hwm of this process = %d, want > 0", first)
	}
	if again := s.hwm(); again < first {
		t.Errorf("second read %d < first %d: VmHWM never decreases", again, first)
	}
	s.close()
	s.close() // idempotent
	if got := s.hwm(); got != 0 {
		t.Errorf("hwm after close = %d, want 0", got)
	}
	if got := openProcStatus(0).hwm(); got != 0 {
		t.Errorf("hwm of pid 0 = %d, want 0", got)
	}
}
