/** Renders bench results as a Markdown report (also what the console shows). */
import type { Row, Section } from './harness.ts';

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

function rowLine(r: Row): string {
  const ratio = r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x vs ${r.vs}`;
  return `| ${r.name} | ${fmt(r.value)} ${r.unit} | ${ratio} | ${r.note ?? ''} |`;
}

export function formatReport(
  machine: Record<string, unknown>,
  results: { bench: string; sections: Section[] }[],
): string {
  const out: string[] = ['# vrep benchmark report', ''];
  out.push(
    `Machine: ${Object.entries(machine)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(', ')}`,
    '',
  );
  for (const { bench, sections } of results) {
    for (const s of sections) {
      out.push(`## ${bench}: ${s.title}`, '', '| case | value | ratio | note |', '|---|---|---|---|');
      for (const r of s.rows) out.push(rowLine(r));
      out.push('');
    }
  }
  return out.join('\n');
}
