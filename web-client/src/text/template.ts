// Template variables filled in on the client, so the recruiter sees and can edit the text
// before sending (docs/api.md: `{{applicant.name}}`, `{{vacancy}}`, `{{user.name}}`,
// `{{company.name}}`). Unknown variables stay as written; a variable without a value
// becomes empty.

export type TemplateVars = Record<string, string | null | undefined>;

export function fillTemplate(body: string, vars: TemplateVars): string {
  return body.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (whole, name: string) => {
    if (!(name in vars)) return whole;
    return vars[name] ?? '';
  });
}

/** Variables left unfilled (unknown to the client, or without a value). */
export function unfilledVariables(body: string, vars: TemplateVars): string[] {
  const out: string[] = [];
  for (const m of body.matchAll(/\{\{\s*([\w.]+)\s*\}\}/g)) {
    if (!vars[m[1]] && !out.includes(m[1])) out.push(m[1]);
  }
  return out;
}
