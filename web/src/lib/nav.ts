// Where a `?back=` or `?next=` link may send the user: only a path of this
// site, never another origin (`//evil.example`, `https://…`).
export function localPath(p: unknown): string | undefined {
  return typeof p === 'string' && p.startsWith('/') && !p.startsWith('//') ? p : undefined
}
