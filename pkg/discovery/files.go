package discovery

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-logr/logr"

	"github.com/irsa-webhook/irsa-webhook/internal/boundedfile"
)

// maxKeyFileBytes bounds what is read from one key file.
const maxKeyFileBytes = 1 << 20

// FileSource reads keys from PEM files: all keys of all files, in flag
// order, served side by side (old and new during a rotation).
type FileSource struct {
	Paths []string
	// Interval is how often the files are re-read even without a change
	// notification (a safety net for file systems that send none).
	Interval  time.Duration
	Publisher *Publisher
}

// loadAttempts bounds the loads Load tries while the files keep changing.
const loadAttempts = 3

// Load reads and parses every file, as one snapshot. An error names the
// file that failed, never its contents.
//
// A mounted Secret or ConfigMap swaps all its files at once (a rename of
// its ..data symlink); a load that straddled the swap read some files
// before it and some after, and served a mix of keys that was never on
// disk. So each file is read through the path it resolves to, and the
// load is done again if any resolves elsewhere once the reads are done.
func (s *FileSource) Load() ([]jose.JSONWebKey, error) {
	for range loadAttempts {
		before := resolve(s.Paths)
		keys, err := s.load(before)
		if slices.Equal(before, resolve(s.Paths)) {
			return keys, err
		}
	}
	return nil, fmt.Errorf("key files %v changed during each of %d loads", s.Paths, loadAttempts)
}

// resolve is each path with its symlinks followed, or the path itself when
// that fails (reading it then reports why).
func resolve(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			r = p
		}
		out[i] = r
	}
	return out
}

// load reads s.Paths[i] from resolved[i].
func (s *FileSource) load(resolved []string) ([]jose.JSONWebKey, error) {
	var keys []jose.JSONWebKey
	for i, path := range s.Paths {
		data, err := boundedfile.Read(resolved[i], maxKeyFileBytes)
		if err != nil {
			return nil, fmt.Errorf("read key file %s: %w", path, err)
		}
		pubs, err := ParseKeys(data)
		if err != nil {
			return nil, fmt.Errorf("parse key file %s: %w", path, err)
		}
		for _, pub := range pubs {
			k, err := JWK(pub)
			if err != nil {
				return nil, fmt.Errorf("key file %s: %w", path, err)
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// Refresh loads the files and publishes their keys.
func (s *FileSource) Refresh(ctx context.Context) error {
	keys, err := s.Load()
	return s.Publisher.Refresh(ctx, "key-file", "files", keys, err)
}

// Run loads the files, failing if they cannot be loaded now, then reloads
// them whenever their directories change (which also catches the symlink
// swap of a mounted Secret or ConfigMap) and every Interval, until ctx
// ends. A reload that fails keeps the last good keys served.
func (s *FileSource) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	// Watch before the first load: a change between the load and the
	// watch would otherwise go unseen until the next poll, an Interval
	// later (a rotation right at start-up served the old keys for that
	// long).
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		log.Error(err, "cannot watch key files; polling only", "interval", s.Interval)
	} else {
		defer watcher.Close()
		dirs := map[string]bool{}
		for _, p := range s.Paths {
			dir := filepath.Dir(p)
			if dirs[dir] {
				continue
			}
			dirs[dir] = true
			if err := watcher.Add(dir); err != nil {
				log.Error(err, "cannot watch key file directory; polling only", "dir", dir, "interval", s.Interval)
			}
		}
	}
	if err := s.Refresh(ctx); err != nil {
		return err
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if watcher != nil {
		events, errs = watcher.Events, watcher.Errors
	}
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			log.Error(err, "key file watch error")
			continue
		case <-tick.C:
		}
		if err := s.Refresh(ctx); err != nil {
			log.Error(err, "reload key files failed; serving the last good keys")
		}
	}
}
