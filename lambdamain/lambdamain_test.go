package lambdamain

import (
	"testing"
)

func TestProcs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		current int
		want    int
		change  bool
	}{
		{"128 MB on 2 CPUs", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}, 2, 1, true},
		{"1769 MB is one vCPU", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}, 2, 1, true},
		{"1770 MB is two", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1770"}, 2, 2, false},
		{"4096 MB on 6 CPUs", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "4096"}, 6, 3, true},
		{"10240 MB on 6 CPUs", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}, 6, 6, false},
		{"already 1", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}, 1, 1, false},
		{"explicit GOMAXPROCS wins", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "GOMAXPROCS": "2"}, 2, 2, false},
		{"not in Lambda", map[string]string{}, 2, 2, false},
		{"garbage", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, 2, 2, false},
		{"zero", map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "0"}, 2, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, change := procs(func(k string) string { return tc.env[k] }, tc.current)
			if got != tc.want || change != tc.change {
				t.Errorf("Procs = %d, %v; want %d, %v", got, change, tc.want, tc.change)
			}
		})
	}
}
