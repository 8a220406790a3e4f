package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/registry-actions/registry/internal/failure"
	"github.com/registry-actions/registry/internal/k8s"
	"github.com/registry-actions/registry/internal/report"
	"github.com/registry-actions/registry/internal/scanner"
	"github.com/registry-actions/registry/internal/version"
)

// Cluster is what a cluster scan found, per workload, as `trivy k8s
// --report summary` tabulates it.
type Cluster struct {
	k8s.Cluster
	Workloads []WorkloadReport `json:"workloads"`
	// Images counts the distinct image digests scanned (each once, however
	// many workloads run it).
	Images int `json:"images"`
	// Unscanned lists images that could not be resolved, with why.
	Unscanned []string `json:"unscanned,omitempty"`
}

// WorkloadReport is one workload's images and reported findings.
type WorkloadReport struct {
	Namespace string `json:"namespace"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	// Images are the references its containers run; Digests what they
	// resolved to (the scanned image), in the same order, "" when not.
	Images  []string `json:"images"`
	Digests []string `json:"digests"`
	// Vulnerabilities counts its images' reported findings (each
	// vulnerability × package once); Misconfigurations its own manifest's.
	Vulnerabilities   scanner.SeverityCounts `json:"vulnerabilities"`
	Misconfigurations scanner.SeverityCounts `json:"misconfigurations"`
}

// ID is namespace/Kind/name, the name its manifest's findings carry.
func (w WorkloadReport) ID() string { return w.Namespace + "/" + w.Kind + "/" + w.Name }

// runCluster lists the cluster's workloads, scans each distinct image
// digest once with the same engine and registry credentials as any image,
// and checks each workload's manifest with the configuration engine.
func runCluster(ctx context.Context, opts Options, res *Result) error {
	c := opts.Cluster
	end := opts.Log.Group("cluster workloads")
	inv, err := k8s.List(ctx, k8s.Options{Kubeconfig: c.Kubeconfig, Context: c.Context, Namespaces: c.Namespaces, UserAgent: version.UserAgent()})
	end()
	if err != nil {
		if errors.Is(err, k8s.ErrConfig) {
			return failure.Invalid(fmt.Errorf("scan: %w", err))
		}
		return fmt.Errorf("scan: %w", err)
	}
	cl := &Cluster{Cluster: inv.Cluster}
	opts.Log.Infof("cluster %s (context %s, Kubernetes %s): %s in %s", inv.Cluster.Server, inv.Cluster.Context, orDash(inv.Cluster.Version),
		plural(len(inv.Workloads), "workload"), namespacesLabel(inv.Cluster.Namespaces))
	for _, k := range inv.Cluster.Skipped {
		opts.Log.Infof("the API server does not serve %ss: none listed", k)
	}

	// Resolve every distinct reference to its digest: workloads naming the
	// same image by different tags (or registries) share one scan.
	digestOf := map[string]string{}
	var targets []Target
	seen := map[string]bool{}
	for _, img := range res.Scan.Images {
		seen[img.Digest] = true
	}
	end = opts.Log.Group("resolve cluster images")
	for _, w := range inv.Workloads {
		for _, ref := range w.Images() {
			if _, done := digestOf[ref]; done {
				continue
			}
			digestOf[ref] = ""
			parsed, err := parseRef(opts, ref)
			if err != nil {
				cl.Unscanned = append(cl.Unscanned, fmt.Sprintf("%s: %v", ref, err))
				continue
			}
			pinned, err := scanner.ResolveDigest(ctx, parsed, remoteOptions(ctx, opts))
			if err != nil {
				if ctx.Err() != nil {
					end()
					return trivyError(err)
				}
				cl.Unscanned = append(cl.Unscanned, fmt.Sprintf("%s: %v", ref, err))
				continue
			}
			digestOf[ref] = pinned.DigestStr()
			if !seen[pinned.DigestStr()] {
				seen[pinned.DigestStr()] = true
				targets = append(targets, Target{Ref: pinned.String()})
			}
		}
	}
	end()
	for _, u := range cl.Unscanned {
		res.Warnings = append(res.Warnings, "cluster image not scanned: "+u)
	}
	cl.Images = len(targets)
	if len(targets) > 0 {
		sub := opts
		sub.Targets = targets
		sres, err := runTrivy(ctx, sub)
		if err != nil {
			return err
		}
		res.Scan.AddImages(sres.Scan)
		res.Warnings = append(res.Warnings, sres.Warnings...)
		res.syncImages()
	}

	cr, err := scanWorkloads(ctx, opts, inv)
	if err != nil {
		return err
	}
	res.addConfig(cr)

	byDigest := map[string]scanner.ImageResult{}
	for _, img := range res.Scan.Images {
		byDigest[img.Digest] = img
	}
	misconf := map[string]*scanner.SeverityCounts{}
	for _, f := range cr.Findings {
		if misconf[f.PkgPath] == nil {
			misconf[f.PkgPath] = &scanner.SeverityCounts{}
		}
		misconf[f.PkgPath].Add(f.Severity)
	}
	for _, w := range inv.Workloads {
		wr := WorkloadReport{Namespace: w.Namespace, Kind: w.Kind, Name: w.Name}
		var lists [][]scanner.Finding
		for _, ref := range w.Images() {
			d := digestOf[ref]
			wr.Images = append(wr.Images, ref)
			wr.Digests = append(wr.Digests, d)
			if img, ok := byDigest[d]; ok {
				lists = append(lists, img.Findings)
			}
		}
		wr.Vulnerabilities = scanner.CountUnique(lists...)
		if c := misconf[wr.ID()]; c != nil {
			wr.Misconfigurations = *c
		}
		cl.Workloads = append(cl.Workloads, wr)
	}
	res.Cluster = cl
	return nil
}

// scanWorkloads checks every workload's manifest with Trivy's Kubernetes
// checks. The manifests go to a temporary directory this run creates and
// removes; findings are named namespace/Kind/name.
func scanWorkloads(ctx context.Context, opts Options, inv *k8s.Inventory) (*scanner.ConfigResult, error) {
	dir, err := os.MkdirTemp("", "registry-k8s-")
	if err != nil {
		return nil, fmt.Errorf("scan: temporary directory for workload manifests: %w", err)
	}
	defer os.RemoveAll(dir)
	names := map[string]string{}
	for i, w := range inv.Workloads {
		file := strconv.Itoa(i) + ".yaml"
		if err := os.WriteFile(path.Join(dir, file), w.Manifest, 0o600); err != nil {
			return nil, fmt.Errorf("scan: write workload manifest: %w", err)
		}
		names[file] = w.ID()
	}
	co := configOptions(ctx, opts)
	co.ChecksBundleRepositories = opts.Config.ChecksBundleRepositories
	co.K8sVersion = strings.TrimPrefix(inv.Cluster.Version, "v")
	co.Root = dir
	target := scanner.ConfigTarget{Path: dir, Rename: func(p string) string {
		if n, ok := names[path.Base(p)]; ok {
			return n
		}
		return p
	}}
	var cr *scanner.ConfigResult
	if len(inv.Workloads) == 0 {
		cr, err = scanner.EmptyConfigResult(opts.Trivy.Severities)
	} else {
		end := opts.Log.Group("configuration checks of " + plural(len(inv.Workloads), "workload"))
		cr, err = scanner.ScanConfig(ctx, []scanner.ConfigTarget{target}, co)
		end()
	}
	if err != nil {
		return nil, trivyError(err)
	}
	cr.ID = "cluster/" + sanitizeCategory(inv.Cluster.Context)
	cr.Name = "cluster " + inv.Cluster.Context
	cr.Paths = []string{inv.Cluster.Server}
	return cr, nil
}

func sanitizeCategory(s string) string {
	s = unsafeChars.ReplaceAllString(s, "-")
	if s = strings.Trim(s, "-."); s == "" {
		return "default"
	}
	return s
}

func namespacesLabel(ns []string) string {
	if len(ns) == 0 {
		return "every namespace"
	}
	return "namespaces " + strings.Join(ns, ", ")
}

// clusterSummary is the namespaces × workloads × severities table, as
// `trivy k8s --report summary` prints it.
func (r *Result) clusterSummary(md *report.Markdown) {
	c := r.Cluster
	md.Heading(3, "Cluster %s", report.Escape(c.Context))
	line := []string{report.Code(c.Server)}
	if c.Version != "" {
		line = append(line, "Kubernetes "+report.Escape(c.Version))
	}
	line = append(line, report.Escape(namespacesLabel(c.Namespaces)), plural(len(c.Workloads), "workload"),
		fmt.Sprintf("%s scanned once each", plural(c.Images, "distinct image")))
	md.Paragraph("%s", strings.Join(line, " · "))
	if len(c.Skipped) > 0 {
		md.Paragraph("Not served by the API server, so not listed: %s.", report.Escape(strings.Join(c.Skipped, ", ")))
	}
	if len(c.Workloads) == 0 {
		md.Paragraph("No workloads found.")
		return
	}
	header := []string{"Namespace", "Workload"}
	for _, s := range []string{"C", "H", "M", "L", "U"} {
		header = append(header, "Vuln "+s)
	}
	for _, s := range []string{"C", "H", "M", "L", "U"} {
		header = append(header, "Misconf "+s)
	}
	var rows [][]string
	for _, w := range c.Workloads {
		row := []string{report.Code(w.Namespace), report.Escape(w.Kind + "/" + w.Name)}
		if slices.Contains(w.Digests, "") {
			row[1] += " ⚠️"
		}
		row = append(row, countCells(w.Vulnerabilities)...)
		rows = append(rows, append(row, countCells(w.Misconfigurations)...))
	}
	if len(rows) > maxClusterRows {
		md.Table(header, rows[:maxClusterRows])
		md.Paragraph("%d more workloads are in the JSON report.", len(rows)-maxClusterRows)
	} else {
		md.Table(header, rows)
	}
	if len(c.Unscanned) > 0 {
		md.Paragraph("⚠️ marks workloads running an image that could not be resolved, so was not scanned (see the warnings above).")
	}
}

const maxClusterRows = 300
