package push

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/registry-actions/registry/internal/inputs"
	"github.com/registry-actions/registry/internal/registry"
	"github.com/registry-actions/registry/internal/report"
)

// Result is what push did.
type Result struct {
	Digest     string   `json:"digest"`
	MediaType  string   `json:"mediaType"`
	ImageID    string   `json:"imageid"`
	Platforms  []string `json:"platforms"`
	Size       int64    `json:"size"`
	Source     string   `json:"source"`
	SourceKind string   `json:"sourceKind"`
	Built      bool     `json:"built,omitempty"`
	Targets    []Target `json:"targets"`
	// Notes are things the user should know: lower-cased names, a subset
	// index's new digest, created repositories.
	Notes    []string      `json:"notes,omitempty"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"durationSeconds"`
	// Opened is the source as pushed, still open, when Options.KeepSource
	// was set and the source is local: its digests are the pushed ones.
	Opened *registry.Source `json:"-"`
}

// Target is the metadata of one target repository.
type Target struct {
	Reference        string   `json:"reference"`
	Repository       string   `json:"repository"`
	Digest           string   `json:"digest"`
	MediaType        string   `json:"mediaType"`
	Platforms        []string `json:"platforms"`
	Size             int64    `json:"size"`
	Tags             []string `json:"tags"`
	TagsUnchanged    []string `json:"tagsUnchanged,omitempty"`
	BlobsUploaded    int      `json:"blobsUploaded"`
	BytesUploaded    int64    `json:"bytesUploaded"`
	BlobsPresent     int      `json:"blobsSkipped"`
	BytesPresent     int64    `json:"bytesSkipped"`
	BlobsMounted     int      `json:"blobsMounted"`
	BytesMounted     int64    `json:"bytesMounted"`
	ManifestsWritten int      `json:"manifestsWritten"`
	Seconds          float64  `json:"durationSeconds"`
	// Complete: the repository holds the image and every one of its tags.
	Complete bool `json:"complete"`
}

func targetFrom(t registry.Target, s registry.TargetStats, g *registry.Graph) Target {
	mt := ""
	if len(g.Manifests) > 0 {
		mt = string(g.Manifests[len(g.Manifests)-1].MediaType)
	}
	ref := t.Repo.String()
	if s.Digest != "" {
		ref += "@" + s.Digest
	}
	return Target{
		Reference: ref, Repository: t.Repo.String(), Digest: s.Digest, MediaType: mt,
		Platforms: g.Platforms, Size: g.Size, Tags: s.Tags, TagsUnchanged: s.TagsUnchanged,
		BlobsUploaded: s.BlobsUploaded, BytesUploaded: s.BytesUploaded,
		BlobsPresent: s.BlobsPresent, BytesPresent: s.BytesPresent,
		BlobsMounted: s.BlobsMounted, BytesMounted: s.BytesMounted,
		ManifestsWritten: s.Manifests, Seconds: s.Duration.Seconds(), Complete: s.Complete,
	}
}

// completed are the targets that hold the image and all their tags.
func (r *Result) completed() []Target {
	var out []Target
	for _, t := range r.Targets {
		if t.Complete {
			out = append(out, t)
		}
	}
	return out
}

// Pushed returns repository@digest for every target that completed.
func (r *Result) Pushed() []string {
	var out []string
	for _, t := range r.completed() {
		out = append(out, t.Repository+"@"+t.Digest)
	}
	return out
}

func (r *Result) allTags() []string {
	var out []string
	for _, t := range r.completed() {
		out = append(out, t.Tags...)
	}
	return out
}

func (r *Result) totals() (up, present, mounted int64) {
	for _, t := range r.Targets {
		up += t.BytesUploaded
		present += t.BytesPresent
		mounted += t.BytesMounted
	}
	return
}

// Outputs are named like docker/build-push-action's where they overlap.
// They describe only what happened: nothing when no target completed, and
// only the completed targets after a partial failure, so a later step
// cannot sign or deploy a digest that was never pushed.
func (r *Result) Outputs() []report.Output {
	done := r.completed()
	if len(done) == 0 {
		return nil
	}
	meta, _ := json.Marshal(done)
	return []report.Output{
		{Name: inputs.OutDigest, Value: r.Digest},
		{Name: inputs.OutImageID, Value: r.ImageID},
		{Name: inputs.OutImages, Value: report.OutputList(r.Pushed())},
		{Name: inputs.OutTags, Value: report.OutputList(r.allTags())},
		{Name: inputs.OutPlatforms, Value: strings.Join(r.Platforms, ",")},
		{Name: inputs.OutMetadata, Value: string(meta)},
	}
}

// Summary writes the push section of the job summary.
func (r *Result) Summary(md *report.Markdown) {
	md.Heading(2, "Push")
	md.Paragraph("%s %s · %s · %s · from %s", report.Code(short(r.Digest)), mediaKind(r.MediaType), report.Escape(strings.Join(r.Platforms, ", ")), report.HumanBytes(r.Size), report.Escape(r.Source))
	var rows [][]string
	for _, t := range r.Targets {
		tags := make([]string, 0, len(t.Tags))
		for _, tag := range t.Tags {
			tags = append(tags, report.Code(tagOf(tag)))
		}
		switch {
		case !t.Complete:
			tags = append(tags, "_incomplete_")
		case len(tags) == 0:
			tags = append(tags, "_digest only_")
		}
		rows = append(rows, []string{
			report.Code(t.Repository), strings.Join(tags, " "), report.Code(short(t.Digest)),
			report.HumanBytes(t.BytesUploaded), report.HumanBytes(t.BytesPresent), report.HumanBytes(t.BytesMounted),
			fmt.Sprintf("%.1fs", t.Seconds),
		})
	}
	md.Table([]string{"Repository", "Tags", "Digest", "Uploaded", "Already present", "Mounted", "Time"}, rows)
	up, present, mounted := r.totals()
	md.Paragraph("**Transferred** %s uploaded, %s already present, %s mounted across repositories, in %s.",
		report.HumanBytes(up), report.HumanBytes(present), report.HumanBytes(mounted), r.Duration.Round(time.Millisecond))
	if len(r.Notes) > 0 {
		var notes []string
		for _, n := range r.Notes {
			notes = append(notes, report.Escape(n))
		}
		md.Bullets(notes...)
	}
	md.Details("Pushed references", func(b *report.Markdown) {
		b.CodeBlock("", strings.Join(append(r.Pushed(), r.allTags()...), "\n"))
	})
}

// Text is the CLI rendering.
func (r *Result) Text(w io.Writer) {
	verb := "pushed"
	if len(r.completed()) == 0 {
		verb = "did not push"
	}
	fmt.Fprintf(w, "%s %s (%s, %s)\n", verb, r.Digest, strings.Join(r.Platforms, ", "), report.HumanBytes(r.Size))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAGS\tUPLOADED\tPRESENT\tMOUNTED\tTIME")
	for _, t := range r.Targets {
		tags := make([]string, 0, len(t.Tags))
		for _, tag := range t.Tags {
			tags = append(tags, tagOf(tag))
		}
		if !t.Complete {
			tags = append(tags, "(incomplete)")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.1fs\n", t.Repository, strings.Join(tags, ","), report.HumanBytes(t.BytesUploaded), report.HumanBytes(t.BytesPresent), report.HumanBytes(t.BytesMounted), t.Seconds)
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func tagOf(ref string) string {
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[i+1:]
	}
	return ref
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func mediaKind(mt string) string {
	if strings.Contains(mt, "index") || strings.Contains(mt, "list") {
		return "index"
	}
	return "image"
}
