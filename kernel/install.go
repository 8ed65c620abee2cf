package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/pkg/errors"
)

// logger prints timed progress lines.
type logger struct {
	w     io.Writer
	start time.Time
}

func (l *logger) printf(format string, args ...any) {
	fmt.Fprintf(l.w, "[kernel %5.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}

// install builds the tools and writes the llmpruner kernelspec.
func install(o options, stdout io.Writer) error {
	log := &logger{w: stdout, start: time.Now()}
	if o.JupyterDataDir == "" {
		return errors.New("no Jupyter data directory: pass --jupyter-data-dir or set JUPYTER_DATA_DIR")
	}
	repo, err := repoRoot()
	if err != nil {
		return err
	}
	goDir, err := goCommandDir()
	if err != nil {
		return err
	}
	dataDir := o.DataDir
	if dataDir != "" {
		if dataDir, err = filepath.Abs(dataDir); err != nil {
			return errors.Wrapf(err, "resolving --data %q", o.DataDir)
		}
		if st, err := os.Stat(dataDir); err != nil || !st.IsDir() {
			return errors.Errorf("--data / LLMPRUNER_DATA %q is not a directory", dataDir)
		}
	}
	bin := o.binDir()
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return errors.Wrapf(err, "creating %s", bin)
	}
	log.printf("repository %s; tools into %s", repo, bin)

	// GoNB at the version go.mod pins (built inside the module, so the tool pin applies).
	log.printf("building %s (version pinned in go.mod)", gonbPkg)
	if err := goInstall(repo, bin, gonbPkg, log); err != nil {
		return err
	}
	for _, t := range []struct{ name, target, mod, version string }{
		{"gopls", goplsModule + "@" + goplsVersion, goplsModule, goplsVersion},
		{"goimports", goimportsPkg + "@" + goimportsVer, goimportsMod, goimportsVer},
	} {
		if v, err := binaryModuleVersion(filepath.Join(bin, t.name), t.mod); err == nil && v == t.version {
			log.printf("%s %s already installed", t.name, v)
			continue
		}
		log.printf("building %s", t.target)
		if err := goInstall(repo, bin, t.target, log); err != nil {
			return err
		}
	}

	// GoNB's own installer writes kernels/gonb/kernel.json into a staging data dir; we keep its argv
	// and logo and write our own kernelspec with the project's environment.
	staging, err := os.MkdirTemp("", "llmpruner-kernel-*")
	if err != nil {
		return errors.Wrap(err, "creating staging directory")
	}
	defer os.RemoveAll(staging)
	gonb := filepath.Join(bin, "gonb")
	cmd := exec.Command(gonb, "--install")
	cmd.Env = append(os.Environ(), "JUPYTER_DATA_DIR="+staging, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.Wrapf(err, "%s --install:\n%s", gonb, out)
	}
	spec, logo, err := readGonbSpec(filepath.Join(staging, "kernels", "gonb"))
	if err != nil {
		return err
	}
	spec = projectSpec(spec, gonb, specEnv{
		Repo: repo, Bin: bin, GoDir: goDir, Backend: o.Backend, DataDir: dataDir,
	})
	if err := writeSpec(o.kernelDir(), spec, logo); err != nil {
		return err
	}
	log.printf("kernel %q installed in %s (GOMLX_BACKEND=%s, LLMPRUNER_DATA=%s)", kernelName, o.kernelDir(), o.Backend, orNone(dataDir))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}
