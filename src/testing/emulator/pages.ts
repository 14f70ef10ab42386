/**
 * HTML pages of the Chargebee emulator: the portal page an access URL opens and the overview at `/`.
 * The renderers are pure functions from data to HTML; every value that reaches a page goes through
 * `escapeHtml`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hashPortalSessionId } from '../../base/identifiers';
import { safeDecode, sendHtml, sendPlain } from './http';
import type { RequestRecord, SessionStore } from './state';
import { loggedOutId } from './state';
import type { EmulatedPortalSession, PortalPageOutcome, RecordedRequest } from './types';

const OVERVIEW_SESSIONS_PER_SITE = 500;

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** Headers of a logout request worth showing, in display order. Never `authorization`. */
export const ORIGIN_HEADER_NAMES = [
  'chargebee-request-origin-ip',
  'chargebee-request-origin-device',
  'chargebee-request-origin-user',
  'chargebee-request-origin-user-encoded',
  'chargebee-business-entity-id',
  'chargebee-event-webhook',
  'chargebee-event-email',
  'chargebee-event-actions',
  'chargebee-idempotency-key',
] as const;

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222;max-width:72rem}
h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:2rem}code{font-size:.95em}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr.req td{background:#fafafa;font-size:.9em}dl{margin:.25rem 0;display:grid;grid-template-columns:max-content auto;gap:0 1rem}
dt{font-family:monospace}dd{margin:0;font-family:monospace;word-break:break-all}.muted{color:#777}
.status-logged_out{color:#a33}.status-logged_in{color:#272}.box{border:1px solid #ccc;padding:1rem;max-width:36rem}`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
${body}
</body></html>
`;
}

function time(unixSeconds: number | undefined): string {
  if (unixSeconds === undefined) return '<span class="muted">-</span>';
  const d = new Date(unixSeconds * 1000);
  return Number.isNaN(d.getTime()) ? escapeHtml(unixSeconds) : escapeHtml(d.toISOString().replace('.000Z', 'Z'));
}

function from(ip: string | undefined): string {
  return ip === undefined ? '' : ` <span class="muted">from</span> ${escapeHtml(ip)}`;
}

/** Only http(s) URLs become links: a `javascript:` redirect URL must not be clickable. */
function safeHref(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : undefined;
  } catch {
    return undefined;
  }
}

const PORTAL_TITLE = 'Chargebee self-serve portal (emulator)';

export function renderPortalPage(outcome: PortalPageOutcome, session?: EmulatedPortalSession): string {
  let message: string;
  switch (outcome) {
    case 'logged_in':
      message = 'This portal session is logged in.';
      break;
    case 'already_used':
      message = 'This link has already been used. Ask the app for a new portal session.';
      break;
    case 'ended':
      message = 'This portal session has ended (logged out).';
      break;
    case 'expired':
      message = 'This link has expired: an access URL must be opened within one hour of its creation.';
      break;
    case 'not_found':
      message = 'No portal session has this link.';
      break;
  }
  let details = '';
  if (session) {
    const href = safeHref(session.redirect_url);
    details = `<p>Customer <strong>${escapeHtml(session.customer_id)}</strong>, portal session <code>${escapeHtml(session.id)}</code>, status <code>${escapeHtml(session.status)}</code>.</p>`;
    if (href !== undefined) details += `\n<p><a href="${escapeHtml(href)}">Back to the app</a></p>`;
    else if (session.redirect_url !== undefined)
      details += `\n<p>Redirect URL (not a web link): <code>${escapeHtml(session.redirect_url)}</code></p>`;
  }
  return page(
    PORTAL_TITLE,
    `<div class="box"><h1>${PORTAL_TITLE}</h1>\n<p id="message">${escapeHtml(message)}</p>\n${details}</div>`,
  );
}

export interface OverviewSite {
  name: string;
  baseUrl: string;
  /** Total number of portal sessions of the site; `sessions` may hold only the newest of them. */
  sessionCount: number;
  sessions: EmulatedPortalSession[];
}

export interface OverviewData {
  url: string;
  sites: OverviewSite[];
  /** Recorded logout requests by portal-session ID (only those still in the bounded record). */
  logoutRequests: Map<string, RecordedRequest[]>;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

function decodeBase64Utf8(value: string): string | undefined {
  const trimmed = value.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || trimmed.length % 4 === 1) return undefined;
  return Buffer.from(trimmed, 'base64').toString('utf8');
}

function renderLogoutRequest(request: RecordedRequest): string {
  const rows: string[] = [];
  for (const name of ORIGIN_HEADER_NAMES) {
    const value = headerValue(request.headers[name]);
    if (value === undefined) continue;
    let shown = escapeHtml(value);
    if (name === 'chargebee-request-origin-user-encoded') {
      const decoded = decodeBase64Utf8(value);
      shown +=
        decoded === undefined
          ? ' <span class="muted">(not valid Base64)</span>'
          : ` <span class="muted">decoded:</span> ${escapeHtml(decoded)}`;
    }
    rows.push(`<dt>${name}</dt><dd>${shown}</dd>`);
  }
  const when = escapeHtml(new Date(request.at).toISOString());
  const list = rows.length > 0 ? `<dl>${rows.join('')}</dl>` : ' <span class="muted">no origin headers</span>';
  return `<div>Logout request at ${when}:${list}</div>`;
}

function renderSite(site: OverviewSite, logoutRequests: Map<string, RecordedRequest[]>): string {
  const shown = site.sessions.length < site.sessionCount ? ` (showing the newest ${site.sessions.length})` : '';
  const head = `<h2>Site <code>${escapeHtml(site.name)}</code></h2>
<p>Base URL <code>${escapeHtml(site.baseUrl)}</code>, ${site.sessionCount} portal session(s)${shown}.</p>`;
  if (site.sessions.length === 0) return head;
  const rows = site.sessions.map((s) => {
    // The hash is what the middleware's log line and an app's own pages show instead of the raw ID.
    const row =
      `<tr><td><code>${escapeHtml(s.id)}</code><br><span class="muted">hash ${hashPortalSessionId(s.id)}</span></td><td>${escapeHtml(s.customer_id)}</td>` +
      `<td class="status-${escapeHtml(s.status)}">${escapeHtml(s.status)}</td>` +
      `<td>${time(s.created_at)}</td><td>${time(s.login_at)}${from(s.login_ipaddress)}</td><td>${time(s.logout_at)}${from(s.logout_ipaddress)}</td></tr>`;
    const requests = logoutRequests.get(s.id);
    if (!requests) return row;
    return `${row}\n<tr class="req"><td colspan="6">${requests.map(renderLogoutRequest).join('')}</td></tr>`;
  });
  return `${head}
<table><thead><tr><th>Portal session</th><th>Customer</th><th>Status</th><th>Created</th><th>Logged in</th><th>Logged out</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>`;
}

export function renderOverview(data: OverviewData): string {
  const body = `<h1>Chargebee portal-session emulator</h1>
<p>Listening at <code>${escapeHtml(data.url)}</code>. JSON control API under <code>/_emulator</code>.</p>
${data.sites.map((site) => renderSite(site, data.logoutRequests)).join('\n')}`;
  return page('Chargebee emulator', body);
}

/** What the pages read from the emulator. */
export interface PagesHost {
  url: string;
  siteNames: Iterable<string>;
  baseUrl(site: string): string;
  sessions: SessionStore;
  record: RequestRecord;
}

export function handleOverview(host: PagesHost, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendPlain(res, 405, 'The overview only answers GET.');
  const bySite = new Map<string, EmulatedPortalSession[]>();
  const counts = new Map<string, number>();
  for (const name of host.siteNames) {
    bySite.set(name, []);
    counts.set(name, 0);
  }
  for (const stored of host.sessions.byId.values()) {
    const list = bySite.get(stored.site);
    if (!list) continue;
    counts.set(stored.site, (counts.get(stored.site) ?? 0) + 1);
    list.push(stored.data);
    if (list.length > OVERVIEW_SESSIONS_PER_SITE) list.shift();
  }
  const logoutRequests = new Map<string, RecordedRequest[]>();
  for (const r of host.record.toArray()) {
    const id = loggedOutId(r);
    if (id === undefined) continue;
    const list = logoutRequests.get(id);
    if (list) list.push(r);
    else logoutRequests.set(id, [r]);
  }
  const sites: OverviewSite[] = [...bySite].map(([name, sessions]) => ({
    name,
    baseUrl: host.baseUrl(name),
    sessionCount: counts.get(name) ?? 0,
    sessions: sessions.reverse(),
  }));
  sendHtml(res, 200, renderOverview({ url: host.url, sites, logoutRequests }));
}

/** `GET /portal/{site}/{token}`: what the customer's click on the access URL does. */
export function handlePortalPage(host: PagesHost, req: IncomingMessage, res: ServerResponse, pathname: string): void {
  const parts = pathname.split('/'); // ['', 'portal', site, token]
  const stored = parts.length === 4 ? host.sessions.byToken.get(safeDecode(parts[3]) ?? '') : undefined;
  if (!stored || stored.site !== safeDecode(parts[2])) return sendHtml(res, 404, renderPortalPage('not_found'));
  if (req.method !== 'GET') return sendPlain(res, 405, 'An access URL only answers GET.');
  const outcome = host.sessions.open(stored, req.socket.remoteAddress);
  sendHtml(res, outcome === 'logged_in' ? 200 : 410, renderPortalPage(outcome, stored.data));
}
