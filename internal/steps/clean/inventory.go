package clean

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/registry-actions/registry/internal/inventory"
	"github.com/registry-actions/registry/internal/lifecycle"
	"github.com/registry-actions/registry/internal/report"
)

// maxInventoryRows bounds the inventory table of each repository in the job
// summary; the inventory file has every image.
const maxInventoryRows = 50

// inventorySummary writes the repository's inventory as a collapsible table.
func (repo *RepositoryResult) inventorySummary(md *report.Markdown) {
	inv := repo.Inventory
	if inv == nil {
		return
	}
	title := fmt.Sprintf("Inventory: %s, %s", plural(len(inv.Images), "image"), plural(inv.Manifests, "manifest"))
	md.Details(title, func(b *report.Markdown) {
		if len(inv.Images) == 0 {
			b.Paragraph("The repository is empty.")
			return
		}
		withDecision := false
		for _, im := range inv.Images {
			if im.Decision != "" {
				withDecision = true
			}
		}
		header := []string{"Pushed", "Tags", "Digest", "What", "Size", "Attached"}
		if withDecision {
			header = append(header, "Policy")
		}
		var rows [][]string
		for i, im := range inv.Images {
			if i == maxInventoryRows {
				break
			}
			row := []string{pushedCell(im), tagCell(im.Tags), report.Code(inventory.Short(im.Digest)), whatCell(im), sizeCell(im.Size), attachedCell(im.Attached)}
			if withDecision {
				row = append(row, decisionCell(im))
			}
			rows = append(rows, row)
		}
		b.Table(header, rows)
		if n := len(inv.Images); n > maxInventoryRows {
			b.Paragraph("… and %d more in the inventory file.", n-maxInventoryRows)
		}
		for _, u := range repo.Unreadable {
			b.Bullets(fmt.Sprintf("%s%s is listed but cannot be read: %s", report.Code(inventory.Short(u.Digest)), tagSuffix(u.Tags), report.Escape(u.Reason)))
		}
	})
}

func pushedCell(im inventory.ReportImage) string {
	if im.PushedAt.IsZero() {
		return "—"
	}
	s := im.PushedAt.UTC().Format("2006-01-02 15:04")
	switch im.TimeFrom {
	case inventory.ClockAnnotation, inventory.ClockConfig:
		s += " (created)"
	}
	return s
}

func whatCell(im inventory.ReportImage) string {
	what := report.Escape(im.Kind)
	if len(im.Platforms) > 0 {
		what += ": " + report.Escape(strings.Join(im.Platforms, ", "))
	}
	return what
}

func sizeCell(n int64) string {
	if n <= 0 {
		return "—"
	}
	return report.HumanBytes(n)
}

func attachedCell(list []inventory.Attached) string {
	if len(list) == 0 {
		return ""
	}
	counts := map[string]int{}
	var kinds []string
	for _, a := range list {
		if counts[a.Kind] == 0 {
			kinds = append(kinds, a.Kind)
		}
		counts[a.Kind]++
	}
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], report.Escape(k)))
	}
	return strings.Join(parts, ", ")
}

func decisionCell(im inventory.ReportImage) string {
	if im.Decision == "" {
		return ""
	}
	return "**" + im.Decision + "** " + report.Escape(im.Why)
}

// cascadeSuffix says what goes with a deletion: " with 2 children, 1 referrer".
func cascadeSuffix(cascade []lifecycle.Cascaded) string {
	if len(cascade) == 0 {
		return ""
	}
	return ", with " + strings.SplitN(cascadeCell(cascade), ":", 2)[0]
}

// inventoryText prints the inventory as the CLI shows it (list mode).
func (repo *RepositoryResult) inventoryText(w io.Writer) {
	inv := repo.Inventory
	if inv == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PUSHED\tTAGS\tDIGEST\tWHAT\tSIZE\tATTACHED")
	for _, im := range inv.Images {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", stripMarkdown(pushedCell(im)), textTags(im.Tags), inventory.Short(im.Digest),
			stripMarkdown(whatCell(im)), stripMarkdown(sizeCell(im.Size)), stripMarkdown(attachedCell(im.Attached)))
	}
	tw.Flush()
	for _, u := range repo.Unreadable {
		fmt.Fprintf(w, "  unreadable %s: %s\n", u.Digest, u.Reason)
	}
}
