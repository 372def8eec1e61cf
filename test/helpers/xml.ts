/** XML checks shared by the tests of SVG output (plots, diagrams). */

/** A small well-formedness check: tags nest and close, attributes are quoted, entities are known. */
export const wellFormedXml = (xml: string): string | undefined => {
  const body = xml.replace(/^\s*<\?xml[^?]*\?>/, '').replace(/<!--[\s\S]*?-->/g, '').replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '');
  const stack: string[] = [];
  let roots = 0;
  const tag = /<([^>]*)>/g;
  let last = 0;
  for (let m = tag.exec(body); m !== null; m = tag.exec(body)) {
    const between = body.slice(last, m.index);
    if (between.includes('<')) return `stray '<' before offset ${m.index}`;
    if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(between)) return `bad entity near offset ${m.index}`;
    if (stack.length === 0 && between.trim() !== '') return `text outside the root element`;
    last = m.index + m[0].length;
    const inner = m[1]!;
    if (inner.startsWith('/')) {
      const name = inner.slice(1).trim();
      if (stack.pop() !== name) return `</${name}> does not close the open element`;
      continue;
    }
    const selfClosing = inner.endsWith('/');
    const parsed = /^([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*\/?$/.exec(inner);
    if (parsed === null) return `malformed tag <${inner.slice(0, 60)}>`;
    const names = [...parsed[2]!.matchAll(/([A-Za-z_][\w.:-]*)\s*=\s*(?:"[^"]*"|'[^']*')/g)].map((a) => a[1]!);
    if (new Set(names).size !== names.length) return `repeated attribute in <${parsed[1]}>`;
    if (stack.length === 0) roots += 1;
    if (!selfClosing) stack.push(parsed[1]!);
  }
  if (body.slice(last).trim() !== '') return 'text after the root element';
  if (stack.length > 0) return `unclosed <${stack.join('> <')}>`;
  return roots === 1 ? undefined : `${roots} root elements`;
};
