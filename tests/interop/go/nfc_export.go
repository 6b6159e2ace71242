// nfc_export: govc's export path (govmomi's nfc.Lease) against a vcbsim endpoint.
//
// Usage: nfc_export -url https://127.0.0.1:PORT/sdk -vm NAME -out DIR
//
// Takes the VM's current snapshot, ExportSnapshot, waits for the lease with a property
// collector wait (nfc.Lease.Wait), keeps it alive with the lease updater (HttpNfcLeaseProgress),
// downloads every disk URL (nfc.Lease.DownloadFile), completes the lease, and prints one
// downloaded path per line. Built offline against Debian's govmomi (tests/interop/test_nfc_govmomi.py).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "nfc_export: %s: %v\n", what, err)
	os.Exit(1)
}

func main() {
	rawURL := flag.String("url", "", "SDK URL")
	vmName := flag.String("vm", "", "VM name")
	out := flag.String("out", ".", "directory for the disks")
	flag.Parse()
	ctx := context.Background()
	u, err := url.Parse(*rawURL)
	if err != nil {
		fail("url", err)
	}
	u.User = url.UserPassword("user", "pass")
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		fail("login", err)
	}
	finder := find.NewFinder(c.Client, true)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		fail("datacenter", err)
	}
	finder.SetDatacenter(dc)
	vm, err := finder.VirtualMachine(ctx, *vmName)
	if err != nil {
		fail("vm", err)
	}
	var props mo.VirtualMachine
	if err = vm.Properties(ctx, vm.Reference(), []string{"snapshot"}, &props); err != nil {
		fail("snapshot property", err)
	}
	if props.Snapshot == nil || props.Snapshot.CurrentSnapshot == nil {
		fail("snapshot", fmt.Errorf("%s has no current snapshot", *vmName))
	}
	res, err := methods.ExportSnapshot(ctx, c.Client, &types.ExportSnapshot{This: *props.Snapshot.CurrentSnapshot})
	if err != nil {
		fail("ExportSnapshot", err)
	}
	lease := nfc.NewLease(c.Client, res.Returnval)
	info, err := lease.Wait(ctx, nil)
	if err != nil {
		fail("lease wait", err)
	}
	updater := lease.StartUpdater(ctx, info)
	for _, item := range info.Items {
		path := filepath.Join(*out, item.Path)
		if err = lease.DownloadFile(ctx, path, item, soap.DefaultDownload); err != nil {
			_ = lease.Abort(ctx, nil)
			fail("download "+item.Path, err)
		}
		fmt.Println(path)
	}
	updater.Done()
	if err = lease.Complete(ctx); err != nil {
		fail("complete", err)
	}
}
