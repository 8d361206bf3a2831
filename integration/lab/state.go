package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Default places of the lab's kernel-adjacent state.
const (
	// MarkerDir holds one <runid>.json marker per lab.
	MarkerDir = "/run/edge-lab"
	// netnsDir is where iproute2 keeps named namespaces.
	netnsDir = "/run/netns"
)

const (
	nsPrefix    = "edge-"
	runIDLen    = 6
	logDirStem  = "edge-lab-"
	markerExt   = ".json"
	lockName    = ".lock"
	killTimeout = 3 * time.Second
)

// NamespaceName returns the namespace name of node in run runID:
// edge-<runid>-<node>.
func NamespaceName(runID, node string) string {
	return nsPrefix + runID + "-" + node
}

// parseNamespaceName splits a lab namespace name into run id and node; ok
// is false for any other name.
func parseNamespaceName(name string) (runID, node string, ok bool) {
	rest, found := strings.CutPrefix(name, nsPrefix)
	if !found || len(rest) < runIDLen+2 || rest[runIDLen] != '-' {
		return "", "", false
	}
	runID, node = rest[:runIDLen], rest[runIDLen+1:]
	if !validRunID(runID) {
		return "", "", false
	}
	return runID, node, true
}

// validRunID reports whether s has the form of a run id: six lowercase hex
// digits.
func validRunID(s string) bool {
	if len(s) != runIDLen {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func randomRunID() string {
	b := make([]byte, runIDLen/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// marker is the ownership record of one lab, /run/edge-lab/<runid>.json.
type marker struct {
	RunID string   `json:"runid"`
	Nodes []string `json:"nodes"`
	// OwnerPID is the process that made the lab and will remove it; 0
	// marks a persistent lab that only "edge-lab down" removes.
	OwnerPID int `json:"owner_pid"`
	// OwnerStart is the owner's start time in clock ticks after boot
	// (/proc/<pid>/stat field 22), so a reused pid is not taken for the
	// owner. 0 means unknown.
	OwnerStart uint64    `json:"owner_start,omitempty"`
	Started    time.Time `json:"started"`
	LogDir     string    `json:"log_dir"`
	KeepLogs   bool      `json:"keep_logs,omitempty"`
}

func (m *marker) persistent() bool { return m.OwnerPID == 0 }

// parseMarker decodes a marker and checks the fields cleanup relies on.
func parseMarker(data []byte) (*marker, error) {
	var m marker
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode marker: %w", err)
	}
	if !validRunID(m.RunID) {
		return nil, fmt.Errorf("marker: runid %q is not %d hex digits", m.RunID, runIDLen)
	}
	if m.OwnerPID < 0 {
		return nil, fmt.Errorf("marker: negative owner_pid %d", m.OwnerPID)
	}
	for _, n := range m.Nodes {
		if err := checkName(n); err != nil {
			return nil, fmt.Errorf("marker: node %q: %v", n, err)
		}
	}
	return &m, nil
}

// state is the on-disk view of every lab on this machine: markers and
// named namespaces. Its directories are fields so unit tests can point
// them at temporary directories.
type state struct {
	markerDir string
	netnsDir  string
	// alive reports whether the owner of a marker still runs.
	alive func(pid int, start uint64) bool
}

func defaultState() state {
	return state{markerDir: MarkerDir, netnsDir: netnsDir, alive: processAlive}
}

func (s state) markerPath(runID string) string {
	return filepath.Join(s.markerDir, runID+markerExt)
}

// lock takes the machine-wide lab lock, which serializes leftover cleanup
// and the choice of a new run id. Call the returned function to release it.
func (s state) lock() (func(), error) {
	if err := os.MkdirAll(s.markerDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.markerDir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// writeMarker writes m atomically (temp file, fsync, rename).
func (s state) writeMarker(m *marker) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := s.markerPath(m.RunID)
	tmp, err := os.CreateTemp(s.markerDir, "."+m.RunID+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// run is what the machine holds of one run id: its marker (if any) and
// its namespaces (if any).
type run struct {
	ID         string
	Marker     *marker // nil when there is no marker
	MarkerErr  error   // set when the marker exists but cannot be read
	Namespaces []string
}

// live reports whether the run must be left alone: it is persistent, its
// owner still runs, or its marker cannot be read (better to leave a stray
// namespace than to break somebody's lab).
func (r run) live(alive func(pid int, start uint64) bool) bool {
	switch {
	case r.MarkerErr != nil:
		return true
	case r.Marker == nil:
		// A live lab writes its marker before its first namespace and
		// removes it after its last, so namespaces without a marker are
		// leftovers.
		return false
	case r.Marker.persistent():
		return true
	}
	return alive(r.Marker.OwnerPID, r.Marker.OwnerStart)
}

// runs lists every lab on the machine, by run id.
func (s state) runs() ([]run, error) {
	byID := map[string]*run{}
	get := func(id string) *run {
		if byID[id] == nil {
			byID[id] = &run{ID: id}
		}
		return byID[id]
	}

	entries, err := os.ReadDir(s.markerDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), markerExt)
		if !ok || !validRunID(id) || !e.Type().IsRegular() {
			continue
		}
		r := get(id)
		data, err := os.ReadFile(filepath.Join(s.markerDir, e.Name()))
		if err == nil {
			r.Marker, err = parseMarker(data)
		}
		if err == nil && r.Marker.RunID != id {
			r.Marker, err = nil, fmt.Errorf("marker %s names run %s", e.Name(), r.Marker.RunID)
		}
		r.MarkerErr = err
	}

	entries, err = os.ReadDir(s.netnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		if id, _, ok := parseNamespaceName(e.Name()); ok {
			r := get(id)
			r.Namespaces = append(r.Namespaces, e.Name())
		}
	}

	var all []run
	for _, r := range byID {
		slices.Sort(r.Namespaces)
		all = append(all, *r)
	}
	slices.SortFunc(all, func(a, b run) int { return strings.Compare(a.ID, b.ID) })
	return all, nil
}

// deadRuns returns the runs whose owner is gone.
func (s state) deadRuns() ([]run, error) {
	all, err := s.runs()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(r run) bool { return r.live(s.alive) }), nil
}

// removeDeadRuns removes every dead run and returns the ids it removed.
// The caller holds the lock.
func (s state) removeDeadRuns(ctx context.Context) ([]string, error) {
	dead, err := s.deadRuns()
	if err != nil {
		return nil, fmt.Errorf("list leftover labs: %w", err)
	}
	var removed []string
	var errs []error
	for _, r := range dead {
		if err := s.removeRun(ctx, r, false); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, r.ID)
	}
	return removed, errors.Join(errs...)
}

// newRunID picks a run id that no marker or namespace uses. The caller
// holds the lock.
func (s state) newRunID() (string, error) {
	all, err := s.runs()
	if err != nil {
		return "", err
	}
	for range 100 {
		id := randomRunID()
		if !slices.ContainsFunc(all, func(r run) bool { return r.ID == id }) {
			return id, nil
		}
	}
	return "", errors.New("no free run id after 100 tries")
}

// removeRun kills every process left in the run's namespaces, deletes the
// namespaces, then the log directory (unless the run asked to keep it or
// keepLogs is set) and finally the marker, so a crash half-way leaves a
// marker that the next cleanup finds.
func (s state) removeRun(ctx context.Context, r run, keepLogs bool) error {
	var errs []error
	namespaces := slices.Clone(r.Namespaces)
	if r.Marker != nil {
		for _, node := range r.Marker.Nodes {
			namespaces = append(namespaces, NamespaceName(r.ID, node))
		}
	}
	slices.Sort(namespaces)
	namespaces = slices.Compact(namespaces)

	for _, ns := range namespaces {
		if !s.namespaceExists(ns) {
			continue
		}
		if err := killNamespace(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range namespaces {
		if !s.namespaceExists(ns) {
			continue
		}
		if _, err := ipCmd(ctx, nil, "netns", "del", ns); err != nil && s.namespaceExists(ns) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove lab %s: %w", r.ID, errors.Join(errs...))
	}

	if m := r.Marker; m != nil && !m.KeepLogs && !keepLogs && ownLogDir(m.LogDir, r.ID) {
		if err := os.RemoveAll(m.LogDir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(s.markerPath(r.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove lab %s: %w", r.ID, errors.Join(errs...))
	}
	return nil
}

// ownLogDir reports whether dir is a log directory the lab made for runID
// (an absolute path ending in edge-lab-<runid>), so a damaged marker can
// never make cleanup delete anything else.
func ownLogDir(dir, runID string) bool {
	return filepath.IsAbs(dir) && filepath.Clean(dir) == dir && filepath.Base(dir) == logDirStem+runID
}

func (s state) namespaceExists(ns string) bool {
	_, err := os.Stat(filepath.Join(s.netnsDir, ns))
	return err == nil
}

// killNamespace SIGKILLs every process in namespace ns and waits until
// none is left. Only lab namespaces reach here, and everything in them was
// started by a lab.
func killNamespace(ctx context.Context, ns string) error {
	deadline := time.Now().Add(killTimeout)
	for {
		pids, err := namespacePids(ctx, ns)
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v still in namespace %s after SIGKILL", pids, ns)
		}
		for _, pid := range pids {
			if pid > 1 && pid != os.Getpid() {
				killPid(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// namespacePids lists the processes in namespace ns.
func namespacePids(ctx context.Context, ns string) ([]int, error) {
	out, err := ipCmd(ctx, nil, "netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("ip netns pids %s: unexpected output %q", ns, out)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// processAlive reports whether pid runs and, when start is known, is the
// same process that started at that time (and not a later one that reused
// the pid). Zombies count as dead.
func processAlive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	st, err := parseProcStat(string(data))
	if err != nil || st.state == 'Z' || st.state == 'X' {
		return false
	}
	return start == 0 || st.start == start
}

// processStart returns the start time of pid in clock ticks after boot, or
// 0 if it cannot be read.
func processStart(pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	st, err := parseProcStat(string(data))
	if err != nil {
		return 0
	}
	return st.start
}

type procStat struct {
	state byte
	start uint64
}

// parseProcStat reads the state (field 3) and start time (field 22) of a
// /proc/<pid>/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from its last ')'.
func parseProcStat(line string) (procStat, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return procStat{}, errors.New("proc stat: no command name")
	}
	fields := strings.Fields(line[i+1:])
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procStat{}, errors.New("proc stat: too few fields")
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("proc stat: start time: %w", err)
	}
	return procStat{state: fields[0][0], start: start}, nil
}
