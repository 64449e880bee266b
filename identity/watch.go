package identity

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxLinkHops bounds how far watchDirs follows a chain of symlinks.
const maxLinkHops = 8

// Watch reloads the material whenever the files change, until ctx ends;
// it then returns nil. It returns an error only if watching cannot start.
// Run it in a goroutine of its own; it blocks.
//
// It watches the directories holding the files rather than the files, so
// that the ways certificates are really replaced are all seen: an atomic
// rename over the old file (cert-manager, `meridian tls`), a Kubernetes
// secret volume swapping its ..data symlink, and links pointing elsewhere
// (certbot's live/ -> archive/), whose directories are watched too. Events
// are debounced (Config.WatchDebounce) so a certificate and its key written
// one after the other load as a pair, and a reload that finds the bytes
// unchanged does nothing. A failed reload is logged and retried with
// backoff until one succeeds (a key may arrive after its certificate); the
// previous material serves meanwhile.
func (s *Source) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch TLS files: %w", err)
	}
	defer w.Close()
	primary, linked := s.watchDirs()
	for _, dir := range primary {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watch TLS files: directory %s: %w", dir, err)
		}
	}
	for _, dir := range linked {
		if err := w.Add(dir); err != nil {
			// A link target may be gone already; the primary directory
			// still sees the link itself change.
			s.log.Debug("not watching symlink target directory", slog.String("dir", dir), slog.Any("err", err))
		}
	}

	// Check once straight away: a change between NewSource and now would
	// otherwise wait for the next event.
	timer := time.NewTimer(s.cfg.WatchDebounce)
	defer timer.Stop()
	retry := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			s.log.Debug("TLS file event", slog.String("name", ev.Name), slog.String("op", ev.Op.String()))
			timer.Reset(s.cfg.WatchDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// Typically an event queue overflow: events were lost, so look
			// at the files anyway.
			s.log.Warn("watching TLS files", slog.Any("err", err))
			timer.Reset(s.cfg.WatchDebounce)
		case <-timer.C:
			if _, err := s.reloadIfChanged(); err != nil {
				retry = min(max(2*retry, s.cfg.WatchDebounce, 100*time.Millisecond), s.cfg.MaxRetryInterval)
				s.log.Warn("TLS reload failed; still serving the previous material", slog.Any("err", err), slog.Duration("retry_in", retry))
				timer.Reset(retry)
				continue
			}
			retry = 0
		}
	}
}

// watchDirs returns the directories of the configured files (primary) and
// of every symlink they lead through (linked), each once.
func (s *Source) watchDirs() (primary, linked []string) {
	seen := map[string]bool{}
	for _, f := range []string{s.cfg.CertFile, s.cfg.KeyFile, s.cfg.CAFile} {
		if f == "" {
			continue
		}
		dir := filepath.Dir(f)
		if !seen[dir] {
			seen[dir] = true
			primary = append(primary, dir)
		}
		p := f
		for range maxLinkHops {
			target, err := os.Readlink(p)
			if err != nil {
				break // not a link (or gone): the chain ends here
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(p), target)
			}
			p = target
			if d := filepath.Dir(p); !seen[d] {
				seen[d] = true
				linked = append(linked, d)
			}
		}
	}
	return primary, linked
}

// ReloadOn reloads whenever sig delivers, until ctx ends (then it returns
// nil): wire it to SIGHUP with signal.Notify(ch, syscall.SIGHUP), the
// operator's way to say "I replaced the files" where file events are not
// delivered (some network file systems). Failures are logged; the previous
// material serves meanwhile.
func (s *Source) ReloadOn(ctx context.Context, sig <-chan os.Signal) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case v, ok := <-sig:
			if !ok {
				return nil
			}
			if err := s.Reload(); err != nil {
				s.log.Warn("TLS reload failed; still serving the previous material", slog.Any("signal", v), slog.Any("err", err))
			}
		}
	}
}
