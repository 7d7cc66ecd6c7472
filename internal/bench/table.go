package bench

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Table is one section of the human-readable report: a title, a
// markdown-style table and notes below it.
type Table struct {
	Title  string
	Header []string
	Rows   [][]string
	Notes  []string
}

// Write renders t as a markdown table with aligned columns (numbers, i.e.
// cells starting with a digit, are right-aligned). A table without rows
// prints "(not measured)".
func (t Table) Write(w io.Writer) error {
	var b strings.Builder
	if t.Title != "" {
		fmt.Fprintf(&b, "## %s\n\n", t.Title)
	}
	if len(t.Rows) == 0 {
		b.WriteString("(not measured)\n")
	} else {
		width := make([]int, len(t.Header))
		for i, h := range t.Header {
			width[i] = utf8.RuneCountInString(h)
		}
		for _, r := range t.Rows {
			for i := range min(len(r), len(width)) {
				width[i] = max(width[i], utf8.RuneCountInString(r[i]))
			}
		}
		line := func(cells []string) {
			b.WriteString("|")
			for i := range width {
				c := ""
				if i < len(cells) {
					c = cells[i]
				}
				pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
				if numeric(c) {
					fmt.Fprintf(&b, " %s%s |", pad, c)
				} else {
					fmt.Fprintf(&b, " %s%s |", c, pad)
				}
			}
			b.WriteString("\n")
		}
		line(t.Header)
		b.WriteString("|")
		for i := range width {
			b.WriteString(strings.Repeat("-", width[i]+2) + "|")
		}
		b.WriteString("\n")
		for _, r := range t.Rows {
			line(r)
		}
	}
	for _, n := range t.Notes {
		fmt.Fprintf(&b, "%s\n", n)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func numeric(s string) bool {
	return s != "" && (s[0] >= '0' && s[0] <= '9' || len(s) > 1 && s[0] == '-' && s[1] >= '0' && s[1] <= '9')
}

// fmtMs formats milliseconds with a precision that suits the magnitude.
func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

// fmtNs formats nanoseconds as ns or µs.
func fmtNs(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1f µs", v/1000)
	}
	if v >= 1000 {
		return fmt.Sprintf("%.2f µs", v/1000)
	}
	return fmt.Sprintf("%.0f ns", v)
}

func fmtMiB(b int64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

func fmtRatio(r float64) string { return fmt.Sprintf("%.3f×", r) }

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}
