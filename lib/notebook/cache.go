package notebook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"

	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/pkg/errors"
)

// validKey is what a cache key may look like: it becomes a file or directory name.
var validKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._=+,-]*$`)

func checkKey(dir, key string) error {
	if dir == "" {
		return errors.New("cache: empty directory")
	}
	if !validKey.MatchString(key) {
		return errors.Errorf("cache: key %q must be a plain file name (letters, digits, . _ = + , -)", key)
	}
	return nil
}

// Cache returns the value stored under key in dir (as dir/key.json), or computes it with fn,
// stores it atomically and returns it. T must round-trip through encoding/json. Delete the file
// to recompute. An unreadable entry is an error (not silently recomputed).
func Cache[T any](dir, key string, fn func() (T, error)) (T, error) {
	var v T
	if err := checkKey(dir, key); err != nil {
		return v, err
	}
	path := filepath.Join(dir, key+".json")
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &v); err != nil {
			return v, errors.Wrapf(err, "cache: reading %s (delete it to recompute)", path)
		}
		return v, nil
	} else if !os.IsNotExist(err) {
		return v, errors.Wrapf(err, "cache: reading %s", path)
	}
	v, err := fn()
	if err != nil {
		return v, err
	}
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return v, errors.Wrapf(err, "cache: encoding the value of %q", key)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return v, errors.Wrapf(err, "cache: creating %s", dir)
	}
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return v, errors.WithMessage(err, "cache")
	}
	return v, nil
}

// CacheDir returns dir/key when that directory exists; otherwise fn fills a temporary directory
// that then becomes dir/key atomically (a failed or interrupted fn leaves nothing behind). Use it
// for pruned model directories and adapters. The bool reports whether the directory was cached.
func CacheDir(dir, key string, fn func(tmpDir string) error) (string, bool, error) {
	if err := checkKey(dir, key); err != nil {
		return "", false, err
	}
	path := filepath.Join(dir, key)
	if st, err := os.Stat(path); err == nil {
		if !st.IsDir() {
			return "", false, errors.Errorf("cache: %s is not a directory", path)
		}
		return path, true, nil
	}
	if err := atomicfile.WriteDir(path, fn); err != nil {
		return "", false, errors.WithMessagef(err, "cache: building %s", path)
	}
	return path, false, nil
}
