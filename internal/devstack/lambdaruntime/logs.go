package lambdaruntime

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"
)

// logLineMax is the longest chunk forwarded as one line; longer lines are
// split, as CloudWatch splits oversized events.
const logLineMax = 64 << 10

// writeLog writes one complete line (ending in '\n') to the pool's log
// output with a single Write call, so lines from concurrent instances never
// interleave.
func (p *Pool) writeLog(line []byte) {
	if p.out == io.Discard {
		return
	}
	p.logMu.Lock()
	_, _ = p.out.Write(line)
	p.logMu.Unlock()
}

func (p *Pool) logf(format string, args ...any) {
	if p.out == io.Discard {
		return // not even formatted: START/END/REPORT cost on every invocation
	}
	p.writeLog([]byte(fmt.Sprintf(format, args...) + "\n"))
}

// forward copies the child's output to the log output line by line,
// unchanged (the functions write JSON slog lines; CloudWatch stores them as
// they are). It returns at EOF, i.e. when every process holding the pipe has
// exited.
func (p *Pool) forward(r *os.File, done func()) {
	defer done()
	br := bufio.NewReaderSize(r, logLineMax)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				// Partial line (EOF or over-long): copy, never append into
				// the reader's buffer.
				line = append(append(make([]byte, 0, len(line)+1), line...), '\n')
			}
			p.writeLog(line)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return
		}
	}
}

// reportLine formats Lambda's REPORT line.
func (p *Pool) reportLine(id string, d, init time.Duration, cold bool, rss int64, status, errType string) string {
	var b strings.Builder
	billed := d
	if cold {
		billed += init // custom runtimes (provided.*) are billed for init
	}
	fmt.Fprintf(&b, "REPORT RequestId: %s\tDuration: %s ms\tBilled Duration: %d ms\tMemory Size: %d MB\tMax Memory Used: %d MB",
		id, msString(d), int64(math.Ceil(float64(billed)/float64(time.Millisecond))), p.cfg.MemoryMB, mb(rss))
	if cold {
		fmt.Fprintf(&b, "\tInit Duration: %s ms", msString(init))
	}
	if status != "" {
		fmt.Fprintf(&b, "\tStatus: %s", status)
		if errType != "" {
			fmt.Fprintf(&b, "\tError Type: %s", errType)
		}
	}
	return b.String()
}

func msString(d time.Duration) string {
	return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond))
}

// mb rounds bytes up to whole MiB, as the REPORT line shows them.
func mb(b int64) int64 {
	const m = 1 << 20
	return (b + m - 1) / m
}

// PrefixWriter returns a writer that prefixes every line written to w with
// prefix, e.g. "[LoginFunction] ". Give one to each Pool when several
// functions share a terminal; leave the output unprefixed to keep each line
// valid JSON (as in CloudWatch, where each function has its own log group).
// It is safe for concurrent use if w is.
func PrefixWriter(w io.Writer, prefix string) io.Writer {
	return &prefixWriter{w: w, prefix: prefix, atStart: true}
}

type prefixWriter struct {
	mu      sync.Mutex
	w       io.Writer
	prefix  string
	atStart bool
}

func (pw *prefixWriter) Write(b []byte) (int, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	var out []byte
	for _, c := range b {
		if pw.atStart {
			out = append(out, pw.prefix...)
			pw.atStart = false
		}
		out = append(out, c)
		if c == '\n' {
			pw.atStart = true
		}
	}
	if _, err := pw.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
