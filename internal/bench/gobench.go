package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// HotPathPackages are the packages whose Go benchmarks `make bench` runs:
// the code on every request's path.
var HotPathPackages = []string{"./session", "./httpapi", "./internal/authorizer", "./internal/api", "./internal/login"}

// GoBenchRow is one line of `go test -bench -benchmem` output.
type GoBenchRow struct {
	Package     string  `json:"package"`
	Name        string  `json:"name"` // without the Benchmark prefix and the -GOMAXPROCS suffix
	Iterations  int64   `json:"iterations"`
	NsPerOp     float64 `json:"ns_per_op"`
	BytesPerOp  float64 `json:"bytes_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op(?:\s+([\d.]+) B/op)?(?:\s+([\d.]+) allocs/op)?`)

// ParseGoBench parses `go test -bench` output (several packages allowed).
func ParseGoBench(r io.Reader) ([]GoBenchRow, error) {
	var rows []GoBenchRow
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		row := GoBenchRow{Package: pkg, Name: m[1]}
		row.Iterations, _ = strconv.ParseInt(m[2], 10, 64)
		row.NsPerOp, _ = strconv.ParseFloat(m[3], 64)
		if m[4] != "" {
			row.BytesPerOp, _ = strconv.ParseFloat(m[4], 64)
		}
		if m[5] != "" {
			row.AllocsPerOp, _ = strconv.ParseFloat(m[5], 64)
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// runGoBench runs `go test -run '^$' -bench . -benchmem` on pkgs in root,
// copying the raw output to show, and parses it. benchtime "" keeps Go's
// default (1s per benchmark).
func runGoBench(ctx context.Context, goCmd, root string, pkgs []string, benchtime string, show io.Writer) ([]GoBenchRow, error) {
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-count", "1"}
	if benchtime != "" {
		args = append(args, "-benchtime", benchtime)
	}
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	var buf bytes.Buffer
	w := io.Writer(&buf)
	if show != nil {
		w = io.MultiWriter(&buf, show)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("bench: %s %s: %w\n%s", goCmd, strings.Join(args, " "), err, truncate(buf.String(), 4000))
	}
	return ParseGoBench(&buf)
}
