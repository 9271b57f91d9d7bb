/** The run's chart (performance.md: "a PNG or SVG chart"): one horizontal bar per measured subject, its
 *  throughput as a ratio of the nginx anchor of the same case, with a line at 1.0. Plain SVG text, so no
 *  charting dependency is needed. */

import type { CaseReport } from './report.js'

const ROW_HEIGHT = 26
const LABEL_WIDTH = 220
const PLOT_WIDTH = 480
const MARGIN = 16

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;')
}

/** null when no subject has a ratio (nothing served), so the runner writes no empty chart. */
export function renderRatioChart(cases: readonly CaseReport[], title: string): string | null {
  const bars = cases.flatMap((c) =>
    c.targets.flatMap((t) => (t.role === 'subject' && t.ratioVsAnchor !== null ? [{ label: `${c.name} · ${t.label}`, ratio: t.ratioVsAnchor }] : [])),
  )
  if (bars.length === 0) return null
  const maxRatio = Math.max(1.2, ...bars.map((b) => b.ratio))
  const x = (ratio: number): number => LABEL_WIDTH + (ratio / maxRatio) * PLOT_WIDTH
  const top = MARGIN + 24
  const height = top + bars.length * ROW_HEIGHT + MARGIN + 16
  const width = LABEL_WIDTH + PLOT_WIDTH + MARGIN * 2 + 48
  const rows = bars.map((bar, i) => {
    const y = top + i * ROW_HEIGHT
    return [
      `<text x="${LABEL_WIDTH - 8}" y="${y + 17}" text-anchor="end">${escapeXml(bar.label)}</text>`,
      `<rect x="${LABEL_WIDTH}" y="${y + 4}" width="${(x(bar.ratio) - LABEL_WIDTH).toFixed(1)}" height="${ROW_HEIGHT - 8}" fill="#4a7ab5"/>`,
      `<text x="${(x(bar.ratio) + 6).toFixed(1)}" y="${y + 17}">${bar.ratio.toFixed(2)}x</text>`,
    ].join('\n  ')
  })
  const oneX = x(1).toFixed(1)
  const bottom = top + bars.length * ROW_HEIGHT
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">
  <text x="${MARGIN}" y="${MARGIN + 8}" font-weight="bold">${escapeXml(title)}</text>
  ${rows.join('\n  ')}
  <line x1="${oneX}" y1="${top}" x2="${oneX}" y2="${bottom}" stroke="#c0392b" stroke-dasharray="4 3"/>
  <text x="${oneX}" y="${bottom + 14}" text-anchor="middle" fill="#c0392b">nginx = 1.0</text>
</svg>
`
}
