package render

import (
	"strings"

	"github.com/deploybot/deploybot/internal/cost"
)

// costText is the estimate for the terminal: cost.Estimate.Text.
func costText(e *cost.Estimate) string { return OneLine(e.Text()) }

// costSourceText says which prices the estimate used.
func costSourceText(e *cost.Estimate) string {
	return "On-Demand list prices for " + OneLine(e.Region) + " read " + OneLine(e.Retrieved) +
		", from internal/cost/prices.json; taxes, free tiers and discounts left out"
}

// costTotalMD is the one-line estimate under the summary line: the total,
// and whether anything is left out of it. "$" is escaped by Escape so that
// GitHub does not typeset the text between two of them as math.
func costTotalMD(e *cost.Estimate) string {
	s := Escape("≈ " + cost.Money(e.Delta) + "/month")
	if len(e.Lines) == 1 {
		s += " (" + Escape(e.Lines[0].What) + ")"
	}
	var more []string
	if len(e.Unknown) > 0 {
		more = append(more, plural(len(e.Unknown), "price")+" unknown")
	}
	if len(e.UsageBased) > 0 {
		more = append(more, "plus usage-based charges")
	}
	if len(more) > 0 {
		s += ", " + strings.Join(more, ", ")
	}
	return s + " · " + Escape(OneLine(e.Region)+" list prices of "+OneLine(e.Retrieved))
}

// costSection is the estimate line by line, folded.
func (d *mdDoc) costSection(itemCap int) string {
	e := &d.cost
	var b strings.Builder
	open := "<details>"
	if !d.o.collapsed {
		open = "<details open>"
	}
	b.WriteString(open + "<summary>" + EscapeHTML("Estimated monthly cost of this change: ≈ "+cost.Money(e.Delta)) + "</summary>\n\n")
	b.WriteString(bullets(d, "", e.Lines, itemCap, "cost lines", func(l cost.Line) string {
		return Escape(cost.Money(l.Delta)) + ": " + Escape(l.What)
	}))
	for _, u := range e.Unknown {
		b.WriteString("- unknown: " + Escape(u) + "\n")
	}
	if len(e.UsageBased) > 0 {
		b.WriteString("- usage-based, not estimated: " + Escape(strings.Join(e.UsageBased, "; ")) + "\n")
	}
	b.WriteString("\n" + Escape(costSourceText(e)) + ".\n\n</details>\n\n")
	return b.String()
}
