// govmomi_client: a backup-style snapshot workflow written against govmomi, the Go
// vSphere library used by govc, Terraform's vSphere provider and many backup products.
//
// Written for vcbsim (benchmarks/interop/); builds offline in GOPATH mode against the
// Debian-packaged govmomi 0.24.2 library (build_govmomi_client.sh). It runs the same
// steps against any vSphere SOAP endpoint (vcbsim serve, vcsim, a real host):
//
//	login              govmomi.NewClient (RetrieveServiceContent + SessionManager.Login)
//	find_vm            find.Finder (default datacenter, VM by name or the first VM by name)
//	enable_cbt         (-cbt only) ReconfigVM_Task changeTrackingEnabled=true, unless it is on
//	read_before        config.hardware.device disk backings (fileName, parent chain,
//	                   changeId) and snapshot
//	create_snapshot    vm.CreateSnapshot(memory=false, quiesce=true) + task.WaitForResult
//	read_during        snapshot tree and the disk chain again, and the snapshot's own
//	                   config.hardware.device (the frozen disks a backup reads)
//	check_redo_log     every disk's backing is now <base>-000001.vmdk with <base>.vmdk as parent
//	remove_snapshot    vm.RemoveSnapshot(name) + task.Wait
//	read_after         the disk chain and snapshot once more
//	check_consolidated the chain is back to what it was before, no snapshot left
//	cycles             -cycles plain create+remove cycles (no quiesce), timed
//
// -backup adds what a backup product reads besides the snapshot (tests/interop/ runs it so):
//
//	host_hardware      after find_vm: every host's hardware (cpuInfo, cpuFeature, systemInfo,
//	                   memorySize) and summary.hardware, each datastore's summary.capacity
//	                   and each VM's runtime.powerState and summary.storage.committed read as
//	                   single property paths (anyType values decoded by their xsi:type)
//	check_change_ids   after check_redo_log: the writable link of every disk and every disk
//	                   of the snapshot carry a changeId (with -cbt)
//	download_disk      after check_change_ids: the first disk's descriptor over /folder and
//	                   the first 64 KiB of its extent (Range), as a backup copies the base
//	cbt_reset          after check_consolidated: ReconfigVM_Task changeTrackingEnabled=false
//	                   then true; config.changeTrackingEnabled must be true again
//	logout             SessionManager.Logout
//
// It prints one JSON object on stdout with what it saw. Exit status: 0 when every step
// and check passed; 1 at the first error of an API call (the workflow stops there and
// the JSON names the step); 2 when the calls all worked but a check (check_redo_log,
// check_consolidated) found something other than what a real ESX host shows.
//
// -debug DIR makes govmomi's soap client write every request and response
// (N-NNNN.req.xml, N-NNNN.res.xml, headers, N-client.log) into DIR, passwords scrubbed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"io"
	"net/http"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/debug"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// DiskFile is one link of a disk's chain, the writable file first.
type DiskFile struct {
	FileName        string `json:"fileName"`
	Backing         string `json:"backing"`
	ChangeID        string `json:"changeId,omitempty"`
	DeltaDiskFormat string `json:"deltaDiskFormat,omitempty"`
}

// Disk is one virtual disk of the VM.
type Disk struct {
	Key   int32      `json:"key"`
	Label string     `json:"label"`
	Chain []DiskFile `json:"chain"`
}

// Snapshot is one node of the snapshot tree, flattened.
type Snapshot struct {
	Name     string `json:"name"`
	Ref      string `json:"ref"`
	Parent   string `json:"parent,omitempty"`
	Quiesced bool   `json:"quiesced"`
	State    string `json:"state"`
	Created  string `json:"created"`
}

// Step is one step of the workflow.
type Step struct {
	Name   string  `json:"name"`
	OK     bool    `json:"ok"`
	Ms     float64 `json:"ms"`
	Detail string  `json:"detail,omitempty"`
}

// Failure is the first error (or failed check) and where it happened.
type Failure struct {
	Step    string `json:"step"`
	Message string `json:"message"`
	GoType  string `json:"go_type"`
	Fault   string `json:"fault,omitempty"`
}

// Report is the JSON object printed on stdout.
type Report struct {
	Client         string     `json:"client"`
	URL            string     `json:"url"`
	Server         string     `json:"server,omitempty"`
	APIType        string     `json:"api_type,omitempty"`
	APIVersion     string     `json:"api_version,omitempty"`
	ClientVersion  string     `json:"client_soap_version,omitempty"`
	VM             string     `json:"vm,omitempty"`
	VMRef          string     `json:"vm_ref,omitempty"`
	PowerState     string     `json:"power_state,omitempty"`
	ChainBefore    []Disk     `json:"chain_before"`
	ChainDuring    []Disk     `json:"chain_during"`
	ChainAfter     []Disk     `json:"chain_after"`
	SnapshotDisks  []Disk     `json:"snapshot_disks"`
	CBT            bool       `json:"cbt"`
	SnapshotsBefor []Snapshot `json:"snapshots_before"`
	SnapshotsDurin []Snapshot `json:"snapshots_during"`
	SnapshotsAfter []Snapshot `json:"snapshots_after"`
	SnapshotName   string     `json:"snapshot_name,omitempty"`
	SnapshotRef    string     `json:"snapshot_ref,omitempty"`
	Steps          []Step     `json:"steps"`
	CyclesPlanned  int        `json:"cycles_planned"`
	Cycles         int        `json:"cycles"`
	CyclesSeconds  float64    `json:"cycles_seconds"`
	CyclesPerS     float64    `json:"cycles_per_s"`
	OK             bool       `json:"ok"`
	Error          *Failure   `json:"error"`
	FailedChecks   []Failure  `json:"failed_checks"`
}

func (r *Report) step(name string, t0 time.Time, ok bool, detail string) {
	r.Steps = append(r.Steps, Step{Name: name, OK: ok, Ms: float64(time.Since(t0).Microseconds()) / 1000, Detail: detail})
}

func describe(step string, err error) *Failure {
	f := &Failure{Step: step, Message: err.Error()}
	for next := errors.Unwrap(err); next != nil; next = errors.Unwrap(err) {
		err = next // the cycles wrap the error with the cycle number
	}
	f.GoType = fmt.Sprintf("%T", err)
	var fault interface{}
	switch {
	case soap.IsSoapFault(err):
		sf := soap.ToSoapFault(err)
		fault = sf.VimFault()
		if fault == nil {
			f.Fault = "soap:" + sf.Code
		}
	case soap.IsVimFault(err):
		fault = soap.ToVimFault(err)
	default:
		var te task.Error
		if errors.As(err, &te) && te.LocalizedMethodFault != nil {
			fault = te.Fault()
		}
	}
	if fault != nil {
		f.Fault = strings.TrimPrefix(fmt.Sprintf("%T", fault), "*")
		f.Fault = strings.TrimPrefix(f.Fault, "types.")
	}
	return f
}

// chainOf walks backing.parent with reflection, so that every disk backing type
// (FlatVer2, SeSparse, SparseVer2, RDM, ...) is followed the same way.
func chainOf(b types.BaseVirtualDeviceBackingInfo) []DiskFile {
	var out []DiskFile
	v := reflect.ValueOf(b)
	for v.IsValid() && v.Kind() == reflect.Ptr && !v.IsNil() {
		e := v.Elem()
		df := DiskFile{Backing: e.Type().Name()}
		if fb, ok := v.Interface().(types.BaseVirtualDeviceFileBackingInfo); ok {
			df.FileName = fb.GetVirtualDeviceFileBackingInfo().FileName
		}
		if f := e.FieldByName("ChangeId"); f.IsValid() && f.Kind() == reflect.String {
			df.ChangeID = f.String()
		}
		if f := e.FieldByName("DeltaDiskFormat"); f.IsValid() && f.Kind() == reflect.String {
			df.DeltaDiskFormat = f.String()
		}
		out = append(out, df)
		p := e.FieldByName("Parent")
		if !p.IsValid() {
			break
		}
		v = p
	}
	return out
}

func disksOf(devices []types.BaseVirtualDevice) []Disk {
	disks := []Disk{}
	for _, dev := range devices {
		d, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		disk := Disk{Key: d.Key, Chain: chainOf(d.Backing)}
		if d.DeviceInfo != nil {
			disk.Label = d.DeviceInfo.GetDescription().Label
		}
		disks = append(disks, disk)
	}
	return disks
}

func readVM(ctx context.Context, vm *object.VirtualMachine) ([]Disk, []Snapshot, string, error) {
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.hardware.device", "snapshot", "runtime.powerState"}, &m); err != nil {
		return nil, nil, "", err
	}
	disks := []Disk{}
	if m.Config != nil {
		disks = disksOf(m.Config.Hardware.Device)
	}
	snaps := []Snapshot{}
	if m.Snapshot != nil {
		var walk func(parent string, list []types.VirtualMachineSnapshotTree)
		walk = func(parent string, list []types.VirtualMachineSnapshotTree) {
			for _, t := range list {
				snaps = append(snaps, Snapshot{
					Name: t.Name, Ref: t.Snapshot.Value, Parent: parent, Quiesced: t.Quiesced,
					State: string(t.State), Created: t.CreateTime.UTC().Format(time.RFC3339),
				})
				walk(t.Name, t.ChildSnapshotList)
			}
		}
		walk("", m.Snapshot.RootSnapshotList)
	}
	return disks, snaps, string(m.Runtime.PowerState), nil
}

func baseName(p string) string { return strings.TrimSuffix(p, ".vmdk") }

// checkRedoLog: during the snapshot each disk writes to <base>-000001.vmdk, whose
// parent is the disk's file from before the snapshot (what ESX does, and what
// backup products read to know which files to copy).
func checkRedoLog(before, during []Disk) error {
	if len(during) == 0 {
		return errors.New("the VM has no virtual disks")
	}
	prev := map[int32]Disk{}
	for _, d := range before {
		prev[d.Key] = d
	}
	var problems []string
	for _, d := range during {
		b, ok := prev[d.Key]
		if !ok || len(b.Chain) == 0 || len(d.Chain) == 0 {
			problems = append(problems, fmt.Sprintf("disk %d: no chain to compare", d.Key))
			continue
		}
		want := baseName(b.Chain[0].FileName) + "-000001.vmdk"
		if d.Chain[0].FileName != want {
			problems = append(problems, fmt.Sprintf("disk %d (%s): backing is %q, want %q", d.Key, d.Label, d.Chain[0].FileName, want))
			continue
		}
		if len(d.Chain) < 2 || d.Chain[1].FileName != b.Chain[0].FileName {
			got := "no parent"
			if len(d.Chain) >= 2 {
				got = fmt.Sprintf("parent %q", d.Chain[1].FileName)
			}
			problems = append(problems, fmt.Sprintf("disk %d (%s): %s, want parent %q", d.Key, d.Label, got, b.Chain[0].FileName))
		}
	}
	if problems != nil {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func fileNames(ds []Disk) string {
	var parts []string
	for _, d := range ds {
		var names []string
		for _, f := range d.Chain {
			names = append(names, f.FileName)
		}
		parts = append(parts, fmt.Sprintf("%d:%s", d.Key, strings.Join(names, "<")))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func main() {
	rawURL := flag.String("url", "http://user:pass@127.0.0.1:8989/sdk", "vSphere SOAP endpoint, user:password@ in the URL")
	insecure := flag.Bool("insecure", false, "skip TLS certificate verification")
	vmName := flag.String("vm", "", "VM name (default: the first VM by name)")
	cycles := flag.Int("cycles", 100, "plain create+remove snapshot cycles to time after the workflow")
	cbt := flag.Bool("cbt", false, "enable changed block tracking first (ReconfigVM_Task), as backup products do")
	backup := flag.Bool("backup", false, "also host_hardware, check_change_ids, download_disk and cbt_reset (see the top of this file)")
	debugDir := flag.String("debug", "", "write every SOAP request/response into this directory (govmomi's vim25/debug)")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()

	os.Exit(run(*rawURL, *insecure, *vmName, *cycles, *cbt, *backup, *debugDir, *timeout))
}

// hostHardware reads, as a management tool does, the hosts' hardware and the single property
// paths whose anyType values a typed decoder reads by their xsi:type (an xsd:int above 2^31
// overflows govmomi's int32; an xsd:string is not a VirtualMachinePowerState).
func hostHardware(ctx context.Context, c *govmomi.Client) (string, error) {
	m := view.NewManager(c.Client)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, nil, true)
	if err != nil {
		return "", err
	}
	defer func() { _ = v.Destroy(ctx) }()
	var parts []string
	var dss []mo.Datastore
	if err := v.Retrieve(ctx, []string{"Datastore"}, []string{"name", "summary.capacity"}, &dss); err != nil {
		return "", fmt.Errorf("Datastore summary.capacity: %w", err)
	}
	for _, ds := range dss {
		parts = append(parts, fmt.Sprintf("%s: %d bytes", ds.Name, ds.Summary.Capacity))
	}
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "runtime.powerState", "summary.storage.committed"}, &vms); err != nil {
		return "", fmt.Errorf("VirtualMachine runtime.powerState, summary.storage.committed: %w", err)
	}
	for _, vm := range vms {
		if vm.Runtime.PowerState == "" || vm.Summary.Storage == nil {
			return "", fmt.Errorf("VM %s: runtime.powerState or summary.storage.committed unset", vm.Name)
		}
	}
	var hosts []mo.HostSystem
	if err := v.Retrieve(ctx, []string{"HostSystem"}, []string{"name", "hardware", "summary.hardware"}, &hosts); err != nil {
		return "", fmt.Errorf("HostSystem hardware: %w", err)
	}
	if len(hosts) == 0 {
		return "", errors.New("no HostSystem in the inventory")
	}
	for _, h := range hosts {
		hw := h.Hardware
		switch {
		case hw == nil:
			return "", fmt.Errorf("host %s: hardware unset", h.Name)
		case hw.CpuInfo.NumCpuCores == 0 || hw.MemorySize == 0 || hw.SystemInfo.Uuid == "" || len(hw.CpuFeature) == 0:
			return "", fmt.Errorf("host %s: hardware incomplete (cores %d, memory %d, uuid %q, %d cpuFeature)",
				h.Name, hw.CpuInfo.NumCpuCores, hw.MemorySize, hw.SystemInfo.Uuid, len(hw.CpuFeature))
		case h.Summary.Hardware == nil || h.Summary.Hardware.CpuModel == "":
			return "", fmt.Errorf("host %s: summary.hardware unset", h.Name)
		}
		parts = append(parts, fmt.Sprintf("%s: %s, %d bytes", h.Name, h.Summary.Hardware.CpuModel, hw.MemorySize))
	}
	return strings.Join(parts, "; "), nil
}

func checkChangeIDs(during, frozen []Disk) error {
	var problems []string
	for _, d := range during {
		if len(d.Chain) == 0 || d.Chain[0].ChangeID == "" {
			problems = append(problems, fmt.Sprintf("disk %d: the writable link has no changeId", d.Key))
		}
	}
	for _, d := range frozen {
		if len(d.Chain) == 0 || d.Chain[0].ChangeID == "" {
			problems = append(problems, fmt.Sprintf("snapshot disk %d: no changeId", d.Key))
		}
	}
	if len(frozen) == 0 {
		problems = append(problems, "the snapshot has no disks")
	}
	if problems != nil {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

var extentLine = regexp.MustCompile(`(?m)^(?:RW|RDONLY) \d+ \S+ "([^"]+)"`)

// downloadDisk: the descriptor of the snapshot's first disk and the first 64 KiB of its
// extent over /folder, with the session cookie (object.Datastore.Download).
func downloadDisk(ctx context.Context, c *govmomi.Client, frozen []Disk) (string, error) {
	if len(frozen) == 0 || len(frozen[0].Chain) == 0 {
		return "", errors.New("no disk to download")
	}
	var p object.DatastorePath
	if !p.FromString(frozen[0].Chain[0].FileName) {
		return "", fmt.Errorf("not a datastore path: %q", frozen[0].Chain[0].FileName)
	}
	finder := find.NewFinder(c.Client, true)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return "", err
	}
	finder.SetDatacenter(dc)
	ds, err := finder.Datastore(ctx, p.Datastore)
	if err != nil {
		return "", err
	}
	// DownloadRequest, not Download: Download takes only 200 for success, and a ranged read
	// is answered 206 Partial Content
	read := func(name string, param *soap.Download, want int) ([]byte, error) {
		u, err := ds.URL(ctx, dc, name)
		if err != nil {
			return nil, err
		}
		res, err := c.Client.DownloadRequest(ctx, u, param)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		defer res.Body.Close()
		if res.StatusCode != want {
			return nil, fmt.Errorf("%s: HTTP %s, want %d", name, res.Status, want)
		}
		return io.ReadAll(res.Body)
	}
	desc, err := read(p.Path, &soap.DefaultDownload, http.StatusOK)
	if err != nil {
		return "", err
	}
	m := extentLine.FindSubmatch(desc)
	if m == nil {
		return "", fmt.Errorf("%s: no extent line in %q", p.Path, desc)
	}
	extent := path.Join(path.Dir(p.Path), string(m[1]))
	param := soap.DefaultDownload
	param.Headers = map[string]string{"Range": "bytes=0-65535"}
	data, err := read(extent, &param, http.StatusPartialContent)
	if err != nil {
		return "", err
	}
	if len(data) != 65536 || data[510] != 0x55 || data[511] != 0xaa {
		return "", fmt.Errorf("%s: %d bytes, no MBR in the first sector", extent, len(data))
	}
	return fmt.Sprintf("%s (%d bytes) and 64 KiB of %s", p.Path, len(desc), extent), nil
}

func cbtReset(ctx context.Context, vm *object.VirtualMachine) error {
	for _, on := range []bool{false, true} {
		tk, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: types.NewBool(on)})
		if err == nil {
			err = tk.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("ReconfigVM_Task changeTrackingEnabled=%v: %w", on, err)
		}
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.changeTrackingEnabled"}, &m); err != nil {
		return err
	}
	if m.Config == nil || m.Config.ChangeTrackingEnabled == nil || !*m.Config.ChangeTrackingEnabled {
		return errors.New("config.changeTrackingEnabled is false after off then on")
	}
	return nil
}

func run(rawURL string, insecure bool, vmName string, cycles int, cbt bool, backup bool, debugDir string, timeout time.Duration) (code int) {
	r := &Report{Client: "govmomi 0.24.2 (Debian golang-github-vmware-govmomi-dev)", CyclesPlanned: cycles,
		ChainBefore: []Disk{}, ChainDuring: []Disk{}, ChainAfter: []Disk{}, SnapshotDisks: []Disk{},
		SnapshotsBefor: []Snapshot{}, SnapshotsDurin: []Snapshot{}, SnapshotsAfter: []Snapshot{},
		Steps: []Step{}, FailedChecks: []Failure{}}
	defer func() {
		r.OK = r.Error == nil && len(r.FailedChecks) == 0
		if r.Error == nil && len(r.FailedChecks) > 0 {
			code = 2
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		if debugDir != "" {
			debug.SetProvider(nil) // flushes (closes) the capture files
		}
	}()
	fail := func(step string, t0 time.Time, err error) int {
		r.step(step, t0, false, err.Error())
		r.Error = describe(step, err)
		return 1
	}
	check := func(step string, t0 time.Time, err error) {
		if err == nil {
			r.step(step, t0, true, "")
			return
		}
		r.step(step, t0, false, err.Error())
		f := describe(step, err)
		f.GoType = "check"
		r.FailedChecks = append(r.FailedChecks, *f)
	}

	u, err := soap.ParseURL(rawURL)
	if err != nil || u == nil {
		if err == nil {
			err = errors.New("empty -url")
		}
		return fail("parse_url", time.Now(), err)
	}
	r.URL = u.Redacted()
	if debugDir != "" {
		if err := os.MkdirAll(debugDir, 0o755); err != nil {
			return fail("debug", time.Now(), err)
		}
		debug.SetProvider(&debug.FileProvider{Path: debugDir})
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	t0 := time.Now()
	c, err := govmomi.NewClient(ctx, u, insecure)
	if err != nil {
		return fail("login", t0, err)
	}
	about := c.ServiceContent.About
	r.Server, r.APIType, r.APIVersion, r.ClientVersion = about.FullName, about.ApiType, about.ApiVersion, c.Client.Version
	r.step("login", t0, true, about.FullName)
	loggedIn := true
	defer func() {
		if loggedIn { // an early return: still end the session, but do not report it as a step
			_ = c.Logout(context.Background())
		}
	}()

	t0 = time.Now()
	finder := find.NewFinder(c.Client, true)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return fail("find_vm", t0, err)
	}
	finder.SetDatacenter(dc)
	var vm *object.VirtualMachine
	if vmName != "" {
		vm, err = finder.VirtualMachine(ctx, vmName)
		if err != nil {
			return fail("find_vm", t0, err)
		}
	} else {
		vms, err := finder.VirtualMachineList(ctx, "*")
		if err != nil {
			return fail("find_vm", t0, err)
		}
		sort.Slice(vms, func(i, j int) bool { return vms[i].Name() < vms[j].Name() })
		vm = vms[0]
	}
	r.VM, r.VMRef = path.Base(vm.InventoryPath), vm.Reference().Value
	r.step("find_vm", t0, true, vm.InventoryPath)

	if backup {
		t0 = time.Now()
		detail, err := hostHardware(ctx, c)
		check("host_hardware", t0, err)
		if err == nil {
			r.Steps[len(r.Steps)-1].Detail = detail
		}
	}

	if cbt {
		t0 = time.Now()
		var m mo.VirtualMachine
		if err := vm.Properties(ctx, vm.Reference(), []string{"config.changeTrackingEnabled"}, &m); err != nil {
			return fail("enable_cbt", t0, err)
		}
		detail := "already on"
		if m.Config == nil || m.Config.ChangeTrackingEnabled == nil || !*m.Config.ChangeTrackingEnabled {
			tk, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: types.NewBool(true)})
			if err == nil {
				err = tk.Wait(ctx)
			}
			if err != nil {
				return fail("enable_cbt", t0, err)
			}
			if err := vm.Properties(ctx, vm.Reference(), []string{"config.changeTrackingEnabled"}, &m); err != nil {
				return fail("enable_cbt", t0, err)
			}
			detail = "ReconfigVM_Task"
		}
		r.CBT = m.Config != nil && m.Config.ChangeTrackingEnabled != nil && *m.Config.ChangeTrackingEnabled
		if !r.CBT {
			return fail("enable_cbt", t0, errors.New("config.changeTrackingEnabled is still false after ReconfigVM_Task"))
		}
		r.step("enable_cbt", t0, true, detail)
	}

	t0 = time.Now()
	r.ChainBefore, r.SnapshotsBefor, r.PowerState, err = readVM(ctx, vm)
	if err != nil {
		return fail("read_before", t0, err)
	}
	r.step("read_before", t0, true, fileNames(r.ChainBefore))

	t0 = time.Now()
	r.SnapshotName = fmt.Sprintf("interop-backup-%d", time.Now().Unix())
	tk, err := vm.CreateSnapshot(ctx, r.SnapshotName, "govmomi_client (vcbsim benchmarks/interop)", false, true)
	if err != nil {
		return fail("create_snapshot", t0, err)
	}
	info, err := tk.WaitForResult(ctx, nil)
	if err != nil {
		return fail("create_snapshot", t0, err)
	}
	ref, ok := info.Result.(types.ManagedObjectReference)
	if !ok {
		return fail("create_snapshot", t0, fmt.Errorf("CreateSnapshot_Task result is %T, not a ManagedObjectReference", info.Result))
	}
	r.SnapshotRef = ref.Value
	r.step("create_snapshot", t0, true, ref.Type+":"+ref.Value)

	t0 = time.Now()
	r.ChainDuring, r.SnapshotsDurin, _, err = readVM(ctx, vm)
	if err != nil {
		return fail("read_during", t0, err)
	}
	var found *Snapshot
	for i := range r.SnapshotsDurin {
		if r.SnapshotsDurin[i].Ref == ref.Value {
			found = &r.SnapshotsDurin[i]
		}
	}
	if found == nil {
		return fail("read_during", t0, fmt.Errorf("snapshot %s (%s) is not in the VM's snapshot tree", r.SnapshotName, ref.Value))
	}
	var ms mo.VirtualMachineSnapshot
	if err := c.RetrieveOne(ctx, ref, []string{"config.hardware.device"}, &ms); err != nil {
		return fail("read_during", t0, fmt.Errorf("snapshot %s config.hardware.device: %w", ref.Value, err))
	}
	r.SnapshotDisks = disksOf(ms.Config.Hardware.Device)
	r.step("read_during", t0, true, fmt.Sprintf("%s quiesced=%v; %s", found.Name, found.Quiesced, fileNames(r.ChainDuring)))

	t0 = time.Now()
	check("check_redo_log", t0, checkRedoLog(r.ChainBefore, r.ChainDuring))

	if backup {
		if cbt {
			t0 = time.Now()
			check("check_change_ids", t0, checkChangeIDs(r.ChainDuring, r.SnapshotDisks))
		}
		t0 = time.Now()
		detail, err := downloadDisk(ctx, c, r.SnapshotDisks)
		check("download_disk", t0, err)
		if err == nil {
			r.Steps[len(r.Steps)-1].Detail = detail
		}
	}

	t0 = time.Now()
	tk, err = vm.RemoveSnapshot(ctx, r.SnapshotName, false, types.NewBool(true))
	if err != nil {
		return fail("remove_snapshot", t0, err)
	}
	if err = tk.Wait(ctx); err != nil {
		return fail("remove_snapshot", t0, err)
	}
	r.step("remove_snapshot", t0, true, "")

	t0 = time.Now()
	r.ChainAfter, r.SnapshotsAfter, _, err = readVM(ctx, vm)
	if err != nil {
		return fail("read_after", t0, err)
	}
	r.step("read_after", t0, true, fileNames(r.ChainAfter))

	t0 = time.Now()
	var cerr error
	if a, b := fileNames(r.ChainAfter), fileNames(r.ChainBefore); a != b {
		cerr = fmt.Errorf("chain after removal %s, before the snapshot %s", a, b)
	} else if len(r.SnapshotsAfter) != len(r.SnapshotsBefor) {
		cerr = fmt.Errorf("%d snapshots after removal, %d before", len(r.SnapshotsAfter), len(r.SnapshotsBefor))
	}
	check("check_consolidated", t0, cerr)

	if backup {
		t0 = time.Now()
		check("cbt_reset", t0, cbtReset(ctx, vm))
	}

	// plain cycles: create (no memory, no quiesce), wait, remove by reference, wait
	t0 = time.Now()
	for n := 0; n < cycles; n++ {
		tk, err := vm.CreateSnapshot(ctx, fmt.Sprintf("interop-cycle-%d", n), "", false, false)
		if err == nil {
			info, err = tk.WaitForResult(ctx, nil)
		}
		if err != nil {
			return fail("cycles", t0, fmt.Errorf("cycle %d, create: %w", n, err))
		}
		snap, ok := info.Result.(types.ManagedObjectReference)
		if !ok {
			return fail("cycles", t0, fmt.Errorf("cycle %d: CreateSnapshot_Task result is %T", n, info.Result))
		}
		res, err := methods.RemoveSnapshot_Task(ctx, c.Client, &types.RemoveSnapshot_Task{This: snap, RemoveChildren: false})
		if err == nil {
			err = object.NewTask(c.Client, res.Returnval).Wait(ctx)
		}
		if err != nil {
			return fail("cycles", t0, fmt.Errorf("cycle %d, remove: %w", n, err))
		}
		r.Cycles = n + 1
	}
	r.CyclesSeconds = time.Since(t0).Seconds()
	if r.CyclesSeconds > 0 {
		r.CyclesPerS = float64(r.Cycles) / r.CyclesSeconds
	}
	r.step("cycles", t0, true, fmt.Sprintf("%d cycles", r.Cycles))

	t0 = time.Now()
	loggedIn = false
	if err := c.Logout(ctx); err != nil {
		return fail("logout", t0, err)
	}
	r.step("logout", t0, true, "")
	return 0
}
