// Package atomicfile writes files and directories so that a reader never sees a half-written
// result: content goes to a temporary sibling first and is renamed into place only on success.
package atomicfile

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
)

// WriteFile writes data to path atomically (temp file in the same directory, fsync, rename).
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// Write creates path atomically: fill is given a temporary file in the same directory; if fill
// succeeds the file is synced and renamed to path, otherwise it is removed and path is untouched.
func Write(path string, perm os.FileMode, fill func(f *os.File) error) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrapf(err, "creating directory %q", dir)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return errors.Wrapf(err, "creating temporary file for %q", path)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return errors.WithMessagef(err, "writing %q", path)
	}
	if err = f.Sync(); err != nil {
		return errors.Wrapf(err, "syncing %q", path)
	}
	if err = f.Chmod(perm); err != nil {
		return errors.Wrapf(err, "setting mode of %q", path)
	}
	if err = f.Close(); err != nil {
		return errors.Wrapf(err, "closing %q", path)
	}
	if err = os.Rename(tmp, path); err != nil {
		return errors.Wrapf(err, "renaming %q to %q", tmp, path)
	}
	return nil
}

// WriteDir creates the directory dir atomically: fill populates a temporary sibling directory;
// on success an existing dir is replaced by it, on failure the temporary directory is removed
// and dir is left as it was.
func WriteDir(dir string, fill func(tmpDir string) error) (err error) {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return errors.Wrapf(err, "creating directory %q", parent)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return errors.Wrapf(err, "creating temporary directory for %q", dir)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err = os.Chmod(tmp, 0o755); err != nil {
		return errors.Wrapf(err, "setting mode of %q", tmp)
	}
	if err = fill(tmp); err != nil {
		return err
	}
	var old string
	if _, statErr := os.Stat(dir); statErr == nil {
		old = tmp + ".old"
		if err = os.Rename(dir, old); err != nil {
			return errors.Wrapf(err, "moving existing %q aside", dir)
		}
	}
	if err = os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return errors.Wrapf(err, "renaming %q to %q", tmp, dir)
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return nil
}

// RemoveAll removes path (a file or a directory tree) so that it is either complete or gone at
// every moment: it is first renamed to a temporary entry (IsTemp) in the same directory, one
// atomic step, then removed. A process killed while removing leaves that temporary entry, which
// RemoveStale clears, never a directory with some of its files missing. A missing path is no error.
func RemoveAll(path string) error {
	doomed := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-removing")
	if err := os.RemoveAll(doomed); err != nil {
		return errors.Wrapf(err, "removing %q", doomed)
	}
	if err := os.Rename(path, doomed); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return errors.Wrapf(err, "removing %q", path)
	}
	return errors.Wrapf(os.RemoveAll(doomed), "removing %q", path)
}

// IsTemp reports whether name (a base name) is one of the temporary entries Write and WriteDir
// create: ".<target>.tmp-<random>" (and ".<target>.tmp-<random>.old" while WriteDir swaps
// directories). A process killed while writing leaves such an entry behind; the target itself
// is then either its previous complete version or absent.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// RemoveStale removes the temporary entries (IsTemp) directly inside dir, left there by writers
// that were killed, and returns their names. Call it only where no other process writes into
// dir at the same time.
func RemoveStale(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, errors.Wrapf(err, "listing %q", dir)
	}
	var removed []string
	for _, e := range entries {
		if !IsTemp(e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return removed, errors.Wrapf(err, "removing the stale temporary %q", filepath.Join(dir, e.Name()))
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}
