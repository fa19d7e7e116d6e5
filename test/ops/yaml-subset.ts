/**
 * A parser for the small, explicit subset of YAML the Kubernetes manifests in
 * deploy/ are written in, so the tests can read them without a YAML package
 * (none is installed): block mappings and sequences by indentation, `---`
 * between documents, full-line comments, plain scalars (strings, integers,
 * true/false, null), quoted strings, `{}` and JSON-style flow sequences.
 * Anything else (anchors, aliases, tags, block scalars, inline comments,
 * tabs, duplicate keys) is rejected with the line number, so a manifest that
 * drifts outside the subset fails the test instead of being misread.
 */
export function parseYamlDocuments(source: string): unknown[] {
  const documents: Line[][] = [[]];
  source.split("\n").forEach((raw, index) => {
    const n = index + 1;
    if (raw.includes("\t")) throw new Error(`line ${n}: tabs are not allowed`);
    const text = raw.trimEnd();
    const trimmed = text.trimStart();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    if (text === "---") {
      documents.push([]);
      return;
    }
    documents.at(-1)!.push({ n, indent: text.length - trimmed.length, text: trimmed });
  });
  return documents
    .filter((lines) => lines.length > 0)
    .map((lines) => {
      const [value, next] = parseNode(lines, 0, lines[0]!.indent);
      if (next !== lines.length) throw new Error(`line ${lines[next]!.n}: unexpected indentation`);
      return value;
    });
}

interface Line {
  n: number;
  indent: number;
  text: string;
}

const isSequenceItem = (text: string) => text === "-" || text.startsWith("- ");
const KEY = /^("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_.\/-]+):(?: +(.*))?$/;

function parseNode(lines: Line[], i: number, indent: number): [unknown, number] {
  const line = lines[i]!;
  if (line.indent !== indent) throw new Error(`line ${line.n}: unexpected indentation`);
  return isSequenceItem(line.text) ? parseSequence(lines, i, indent) : parseMapping(lines, i, indent);
}

function parseSequence(lines: Line[], i: number, indent: number): [unknown[], number] {
  const items: unknown[] = [];
  while (i < lines.length && lines[i]!.indent === indent && isSequenceItem(lines[i]!.text)) {
    const line = lines[i]!;
    const rest = line.text.slice(1).trimStart();
    if (rest === "") {
      const child = lines[i + 1];
      if (!child || child.indent <= indent) throw new Error(`line ${line.n}: empty sequence item`);
      const [value, next] = parseNode(lines, i + 1, child.indent);
      items.push(value);
      i = next;
    } else if (KEY.test(rest)) {
      // "- key: value" opens a mapping whose keys line up with "key".
      const inner = indent + (line.text.length - rest.length);
      const copy = [...lines];
      copy[i] = { n: line.n, indent: inner, text: rest };
      const [value, next] = parseMapping(copy, i, inner);
      items.push(value);
      i = next;
    } else {
      items.push(scalar(rest, line.n));
      i++;
    }
  }
  return [items, i];
}

function parseMapping(lines: Line[], i: number, indent: number): [Record<string, unknown>, number] {
  const map: Record<string, unknown> = {};
  while (i < lines.length && lines[i]!.indent === indent && !isSequenceItem(lines[i]!.text)) {
    const line = lines[i]!;
    const match = KEY.exec(line.text);
    if (!match) throw new Error(`line ${line.n}: expected "key: value", got ${JSON.stringify(line.text)}`);
    const key = match[1]!.startsWith('"') ? (JSON.parse(match[1]!) as string) : match[1]!.replace(/^'(.*)'$/, "$1");
    if (Object.hasOwn(map, key)) throw new Error(`line ${line.n}: duplicate key ${key}`);
    const rest = match[2];
    const next = lines[i + 1];
    if (rest !== undefined && rest !== "") {
      map[key] = scalar(rest, line.n);
      i++;
    } else if (next && next.indent > indent) {
      [map[key], i] = parseNode(lines, i + 1, next.indent);
    } else if (next && next.indent === indent && isSequenceItem(next.text)) {
      // A sequence may sit at its key's own indentation.
      [map[key], i] = parseSequence(lines, i + 1, indent);
    } else {
      map[key] = null;
      i++;
    }
  }
  return [map, i];
}

function scalar(text: string, n: number): unknown {
  if (text.startsWith('"')) return JSON.parse(text);
  if (text.startsWith("'")) {
    if (!/^'(?:[^']|'')*'$/.test(text)) throw new Error(`line ${n}: bad single-quoted string`);
    return text.slice(1, -1).replace(/''/g, "'");
  }
  if (text.startsWith("[") || text === "{}") return JSON.parse(text);
  if (/^[&*!|>%@`{]/.test(text) || text.includes(" #") || text.includes(": ")) {
    throw new Error(`line ${n}: ${JSON.stringify(text)} is outside the YAML subset the manifests use`);
  }
  if (text === "true" || text === "false") return text === "true";
  if (text === "null" || text === "~") return null;
  if (/^-?\d+$/.test(text)) return Number(text);
  return text;
}
