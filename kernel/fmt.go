package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/llmpruner/llmpruner/kernel/ipynb"
	"github.com/llmpruner/llmpruner/lib/atomicfile"
	"github.com/pkg/errors"
)

// notebookDirs are searched for *.ipynb when "fmt" is given no paths.
var notebookDirs = []string{"tutorials", "notebooks"}

// runFmt implements "go run ./kernel fmt [-w] [PATH ...]": it checks (or, with -w, rewrites) every
// notebook under the given files and directories as ipynb.Format stores them, and returns 1 when a
// notebook is invalid or, without -w, not stored that way.
func runFmt(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fmt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	write := fs.Bool("w", false, "rewrite the notebooks in place (nbformat 4.5, markdown cells, no outputs, Jupyter's layout)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./kernel fmt [-w] [NOTEBOOK.ipynb | DIR ...]   (default: %s)\n", strings.Join(notebookDirs, " "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = notebookDirs
	}
	files, err := findNotebooks(paths)
	if err != nil {
		fmt.Fprintf(stderr, "kernel fmt: %v\n", err)
		return 1
	}
	bad := 0
	for _, f := range files {
		if err := fmtOne(f, *write); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", f, err)
			bad++
		}
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "kernel fmt: %d of %d notebooks need attention\n", bad, len(files))
		return 1
	}
	verb := "valid nbformat 4.5, stored as Jupyter writes them"
	if *write {
		verb = "written as valid nbformat 4.5"
	}
	fmt.Fprintf(stdout, "kernel fmt: %d notebooks %s\n", len(files), verb)
	return 0
}

func fmtOne(path string, write bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !write {
		return ipynb.Check(data)
	}
	out, err := ipynb.Format(data)
	if err != nil {
		return err
	}
	if string(out) == string(data) {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, out, info.Mode().Perm())
}

// findNotebooks expands directories into their *.ipynb files (skipping .ipynb_checkpoints).
func findNotebooks(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".ipynb_checkpoints" {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(path, ".ipynb") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, errors.Wrapf(err, "listing %s", p)
		}
	}
	if len(files) == 0 {
		return nil, errors.Errorf("no .ipynb files under %s", strings.Join(paths, ", "))
	}
	sort.Strings(files)
	return files, nil
}
