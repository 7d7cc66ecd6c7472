package stack

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const (
	defaultWatchInterval = 300 * time.Millisecond
	// debounce is how long the sources must stay unchanged before a
	// rebuild, so a save of several files (or a branch switch) builds once.
	debounce = 300 * time.Millisecond
)

// fileStamp is what the watcher compares: a changed size or mtime is a change.
type fileStamp struct {
	size int64
	mod  time.Time
}

// watched reports whether a path (relative to the root) can change a
// function binary: non-test Go files, go.mod, go.sum, the Makefile and
// template.yaml (which is not re-read: a change is reported).
func watched(rel string, d fs.DirEntry) bool {
	name := d.Name()
	switch {
	case rel == "go.mod", rel == "go.sum", rel == "Makefile", rel == "template.yaml":
		return true
	case strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go"):
		return true
	}
	return false
}

// skipDir lists directories that never hold function sources.
func skipDir(rel, name string) bool {
	if rel == "." {
		return false
	}
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "node_modules" {
		return true
	}
	switch rel {
	case "build", "tools", "bench", "client":
		return true
	}
	return false
}

// snapshot stamps every watched file under root.
func snapshot(root string) map[string]fileStamp {
	out := map[string]fileStamp{}
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished while walking: the next poll sees it
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if skipDir(filepath.ToSlash(rel), d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !watched(filepath.ToSlash(rel), d) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		out[filepath.ToSlash(rel)] = fileStamp{size: info.Size(), mod: info.ModTime()}
		return nil
	})
	return out
}

func changedFiles(prev, cur map[string]fileStamp) []string {
	var out []string
	for p, st := range cur {
		if old, ok := prev[p]; !ok || old != st {
			out = append(out, p)
		}
	}
	for p := range prev {
		if _, ok := cur[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// watch polls the sources and rebuilds after a change has settled.
func (s *Stack) watch(ctx context.Context) {
	interval := s.opts.WatchInterval
	if interval <= 0 {
		interval = defaultWatchInterval
	}
	prev := snapshot(s.root)
	s.log.Info("watching Go sources for changes", "root", s.root, "files", len(prev))
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var pending []string
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		cur := snapshot(s.root)
		changed := changedFiles(prev, cur)
		prev = cur
		if len(changed) > 0 {
			for _, p := range changed {
				if p == "template.yaml" {
					s.log.Warn("template.yaml changed: routes, tables and environment are read at start; restart make dev to apply")
					continue
				}
				pending = append(pending, p)
			}
			last = time.Now()
			continue
		}
		if len(pending) == 0 || time.Since(last) < debounce {
			continue
		}
		files := pending
		pending = nil
		s.rebuild(ctx, files)
	}
}

func (s *Stack) rebuild(ctx context.Context, files []string) {
	shown := files
	if len(shown) > 5 {
		shown = append(shown[:5:5], fmt.Sprintf("... (%d files)", len(files)))
	}
	s.log.Info("sources changed, rebuilding", "files", shown)
	t0 := time.Now()
	reports, err := s.Rebuild(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		s.log.Error("rebuild failed; the previous binaries keep running", "err", err)
		fmt.Fprintf(s.opts.LogOut, "\n%v\n\n", err)
		return
	}
	n := 0
	for _, r := range reports {
		if r.Changed {
			n++
			s.log.Info(fmt.Sprintf("rebuilt %s in %d ms", r.Function, r.Duration.Milliseconds()),
				"function", r.Function, "ms", r.Duration.Milliseconds())
		}
	}
	if n == 0 {
		s.log.Info("rebuilt, no function binary changed", "ms", time.Since(t0).Milliseconds())
	} else {
		s.log.Info("reloaded changed functions", "functions", n, "ms", time.Since(t0).Milliseconds())
	}
}
