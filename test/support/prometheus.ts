// A strict reader of the Prometheus text exposition format (0.0.4), for the metrics tests:
// it throws on any line that is not a HELP, a TYPE or a sample, on a sample whose family
// has no HELP and TYPE before it, and on a histogram whose buckets do not add up.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Family name → TYPE. */
  types: Map<string, string>;
  help: Map<string, string>;
  /** The value of the one sample with this name whose labels include `labels`; throws if not exactly one. */
  value(name: string, labels?: Record<string, string>): number;
  /** Sum over every sample with this name whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
  /** Every sample name and family name present. */
  names(): Set<string>;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?,?\\})? (\\S+)(?: -?\\d+)?$`);
const LABEL_G = new RegExp(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`, 'g');
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(s: string, line: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad sample value: ${line}`);
  return Number(s);
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const t = types.get(base);
    if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
  }
  return undefined;
}

const matches = (s: Sample, labels: Record<string, string>): boolean => Object.entries(labels).every(([k, v]) => s.labels[k] === v);

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) {
        if (/^# (HELP|TYPE)/.test(line)) throw new Error(`bad comment: ${line}`);
        continue; // other comments are allowed
      }
      if (!new RegExp(`^${NAME}$`).test(m[2])) throw new Error(`bad metric name: ${line}`);
      if (m[1] === 'HELP') {
        if (help.has(m[2])) throw new Error(`second HELP for ${m[2]}`);
        if (m[3].trim() === '') throw new Error(`empty HELP for ${m[2]}`);
        help.set(m[2], m[3]);
      } else {
        if (types.has(m[2])) throw new Error(`second TYPE for ${m[2]}`);
        if (!TYPES.has(m[3])) throw new Error(`unknown TYPE: ${line}`);
        types.set(m[2], m[3]);
      }
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL_G)) {
      if (l[1] in labels) throw new Error(`label ${l[1]} twice: ${line}`);
      labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const family = familyOf(m[1], types);
    if (family === undefined) throw new Error(`sample without a TYPE before it: ${line}`);
    if (!help.has(family)) throw new Error(`sample without a HELP before it: ${line}`);
    const key = m[1] + JSON.stringify(Object.entries(labels).sort());
    if (seen.has(key)) throw new Error(`duplicate sample: ${line}`);
    seen.add(key);
    samples.push({ name: m[1], labels, value: parseValue(m[3], line) });
  }

  for (const [family, type] of types) {
    if (!help.has(family)) throw new Error(`TYPE without HELP: ${family}`);
    if (type === 'counter') {
      for (const s of samples) if (s.name === family && !(s.value >= 0)) throw new Error(`negative or NaN counter ${family}`);
    }
    if (type !== 'histogram') continue;
    // per label set (le aside): buckets cumulative, +Inf present and equal to _count
    const groups = new Map<string, Sample[]>();
    for (const s of samples) {
      if (s.name !== family + '_bucket') continue;
      if (s.labels.le === undefined) throw new Error(`bucket without le in ${family}`);
      const { le: _le, ...rest } = s.labels;
      const k = JSON.stringify(Object.entries(rest).sort());
      groups.set(k, [...(groups.get(k) ?? []), s]);
    }
    for (const [k, buckets] of groups) {
      const rest = Object.fromEntries(JSON.parse(k) as [string, string][]);
      const sorted = buckets.map((b) => ({ le: parseValue(b.labels.le, b.labels.le), v: b.value })).sort((a, b) => a.le - b.le);
      for (let i = 1; i < sorted.length; i++) if (sorted[i].v < sorted[i - 1].v) throw new Error(`${family} buckets not cumulative`);
      if (sorted.at(-1)?.le !== Infinity) throw new Error(`${family} has no +Inf bucket`);
      const count = samples.find((s) => s.name === family + '_count' && matches(s, rest) && Object.keys(s.labels).length === Object.keys(rest).length);
      const sum = samples.find((s) => s.name === family + '_sum' && matches(s, rest) && Object.keys(s.labels).length === Object.keys(rest).length);
      if (!count || !sum) throw new Error(`${family} ${k} lacks _count or _sum`);
      if (count.value !== sorted.at(-1)!.v) throw new Error(`${family} ${k}: +Inf bucket ${sorted.at(-1)!.v} != _count ${count.value}`);
    }
  }

  return {
    samples,
    types,
    help,
    value(name, labels = {}) {
      const found = samples.filter((s) => s.name === name && matches(s, labels));
      if (found.length !== 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
      return found[0].value;
    },
    sum(name, labels = {}) {
      return samples.filter((s) => s.name === name && matches(s, labels)).reduce((a, s) => a + s.value, 0);
    },
    names() {
      return new Set([...samples.map((s) => s.name), ...types.keys()]);
    },
  };
}
